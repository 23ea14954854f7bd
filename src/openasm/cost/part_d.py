"""Part D fills in the cost measures (ebcm.md §5, §10.3): assigned by the drug class of their NDC, and the gap
the drug-class map leaves (fills whose NDC it does not hold cannot be assigned, so they are counted, not lost).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.qualifying import final_lines
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum

GAP_COLUMNS = ("measure_id", "part_d_fill_count", "unmapped_fill_count", "unmapped_ndc_count", "part_d_amount",
               "unmapped_amount", "unmapped_share")


def part_d_fill_cost(fills: ir.Table, rules: RulesForYear) -> tuple[ir.NumericValue, ir.StringValue]:
    """§5: a fill's cost, `cost.part_d_cost_field` (gross drug cost, else the allowed amount), and its source."""
    if rules.value("cost.part_d_cost_field") == "gross_drug_cost":
        amount = fills.gross_drug_cost_amount.fill_null(fills.allowed_amount)
        return amount, ibis.ifelse(fills.gross_drug_cost_amount.notnull(), "gross_drug_cost", "allowed_amount")
    return fills.allowed_amount, ibis.literal("allowed_amount")


def select_part_d_services(*, pharmacy_claim: ir.Table, ndc_class: ir.Table, classes: list[str],
                           rules: RulesForYear, measure_id: str) -> ir.Table:
    """§10.3: final-action fills whose NDC maps (`ndc_class`: ndc_code, drug_class) to one of the measure's
    assigned drug classes, dated by fill date, in the assigned-service columns of `cost.assign`."""
    fills = final_lines(pharmacy_claim)
    wanted = ndc_class.filter(ndc_class.drug_class.isin(classes))
    fills = fills.join(wanted, "ndc_code")
    amount, source = part_d_fill_cost(fills, rules)
    return fills.select(
        measure_id=ibis.literal(measure_id), source_table=ibis.literal("pharmacy_claim"), claim_id=fills.claim_id,
        line_number=ibis.literal(1, "int32"), bene_id=fills.bene_id, claim_type=ibis.literal("pharmacy"),
        service_date=fills.fill_date, hcpcs_code=ibis.null("string"), drg_code=ibis.null("string"),
        rendering_npi=fills.prescriber_npi, billing_tin=ibis.null("string"),
        assignment_rule=ibis.literal("part_d:") + fills.drug_class, std_cost_amount=amount.cast("float64"),
        cost_source=source, discharge_date=ibis.null("date"),
    )


def summarize_part_d_class_gap(*, episode: ir.Table, pharmacy_claim: ir.Table, ndc_class: ir.Table,
                               rules: RulesForYear) -> ir.Table:
    """§5 / §10.3: per measure, the final-action Part D fills of an episode's beneficiary dated inside one of the
    measure's episodes (each fill once per measure), and those whose NDC the drug-class map does not hold: they
    cannot be assigned whatever their drug, so `unmapped_share` (of Part D dollars, cost per
    `cost.part_d_cost_field`) bounds what the map leaves out. A measure with episodes but no fills has zero counts
    and a null share.

    Grain: measure. Columns: GAP_COLUMNS.
    """
    fills = final_lines(pharmacy_claim)
    amount, _ = part_d_fill_cost(fills, rules)
    fills = fills.select("claim_id", "bene_id", "fill_date", "ndc_code", _amount=amount.cast("float64"))
    scoped = episode.select(_measure=episode.measure_id, _bene=episode.bene_id, _from=episode.episode_start_date,
                            _to=episode.episode_end_date)
    inside = scoped.join(fills, (scoped._bene == fills.bene_id) & (fills.fill_date >= scoped._from)
                         & (fills.fill_date <= scoped._to))
    inside = inside.select(measure_id=inside._measure, claim_id=inside.claim_id, ndc_code=inside.ndc_code,
                           _amount=inside._amount).distinct()
    mapped = ndc_class.select(_mapped_ndc=ndc_class.ndc_code).distinct()
    flagged = inside.left_join(mapped, inside.ndc_code == mapped._mapped_ndc)
    flagged = flagged.mutate(_unmapped=flagged._mapped_ndc.isnull(), _amount=flagged._amount.fill_null(0.0))
    totals = flagged.group_by(_gap_measure=flagged.measure_id).agg(
        part_d_fill_count=flagged.count(),
        unmapped_fill_count=flagged._unmapped.cast("int64").sum(),
        unmapped_ndc_count=flagged.ndc_code.nunique(where=flagged._unmapped),
        part_d_amount=exact_sum(flagged._amount),
        unmapped_amount=exact_sum(ibis.ifelse(flagged._unmapped, flagged._amount, 0.0)),
    )
    measures = episode.select("measure_id").distinct()
    joined = measures.left_join(totals, measures.measure_id == totals._gap_measure)
    total = joined.part_d_amount.fill_null(0.0)
    unmapped = joined.unmapped_amount.fill_null(0.0)
    return joined.select(
        "measure_id",
        part_d_fill_count=joined.part_d_fill_count.fill_null(0).cast("int64"),
        unmapped_fill_count=joined.unmapped_fill_count.fill_null(0).cast("int64"),
        unmapped_ndc_count=joined.unmapped_ndc_count.fill_null(0).cast("int64"),
        part_d_amount=total,
        unmapped_amount=unmapped,
        unmapped_share=ibis.ifelse(total > 0, unmapped / total, ibis.null("float64")),
    )

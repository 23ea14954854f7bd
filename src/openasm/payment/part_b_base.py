"""Part B covered professional services paid per participant (42 CFR 512.705 incentive pool; 512.750(a);
asm-model.md §7.3, §7.5).

The pool base PB_i is what Medicare paid on the participant's covered professional services furnished in the
performance year, from final-action claims processed within `payment.claims_runout_days` after the year ends.
The payment-year amount the multiplier applies to is the same quantity for services furnished in PaY = PY + 2.
Covered professional services are lines of `payment.covered_services_claim_types` claims rendered by the
participant, outside the `payment.non_pfs_hcpcs_ranges` (laboratory, drugs, DMEPOS, ambulance). The multiplier
follows the NPI across all the TINs it bills under (`payment.multiplier_tin_scope`), so amounts are kept per
(NPI, billing TIN) and summed per NPI.

Every claim line gets one `part_b_status`, so the counted lines and the reasons for the rest reconcile with the
input (`reconcile_part_b_lines`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis
import ibis.expr.types as ir

from openasm.ingest.final_action import STATUS_COLUMN
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum

ServiceYear = Literal["performance_year", "payment_year"]
# Statuses in the order they are tested: a line gets the first that applies.
PART_B_STATUSES = (
    "not_final_action", "not_participant", "not_covered_claim_type", "outside_service_year", "after_runout",
    "non_pfs_hcpcs", "missing_paid_amount", "counted",
)
CLAIM_COLUMNS = (
    "claim_id", "line_number", "claim_type", "claim_from_date", "line_from_date", "claim_processed_date",
    "hcpcs_code", "rendering_npi", "billing_tin", "paid_amount", STATUS_COLUMN,
)


def _check_scope(rules: RulesForYear) -> None:
    scope = rules.value("payment.adjusted_claims_scope")
    if scope != "covered_professional_services":
        raise ValueError(f"payment.adjusted_claims_scope: only covered_professional_services is implemented, "
                         f"got {scope!r} (§512.750(a) names covered professional services)")
    tin_scope = rules.value("payment.multiplier_tin_scope")
    if tin_scope != "all_tins_for_npi":
        raise ValueError(f"payment.multiplier_tin_scope: only all_tins_for_npi is implemented, got {tin_scope!r}")


def service_year_of(rules: RulesForYear, service_year: ServiceYear) -> int:
    """The calendar year whose services count: the PY for the pool base, PaY = PY + 2 for the application."""
    if service_year == "performance_year":
        return rules.performance_year
    if service_year == "payment_year":
        return rules.payment_year
    raise ValueError(f"service_year must be performance_year or payment_year, got {service_year!r}")


def non_pfs_category(hcpcs_code: ir.StringValue, rules: RulesForYear) -> ir.StringValue:
    """§512.750(a), asm-model §7.5: the `payment.non_pfs_hcpcs_ranges` category of a HCPCS code, null when the
    code is paid under the PFS. A handful of ranges, so a CASE expression rather than a range join."""
    code = hcpcs_code.upper()
    ranges = rules.value("payment.non_pfs_hcpcs_ranges")
    branches = [(code.between(str(r["first_hcpcs"]), str(r["last_hcpcs"])), str(r["category"])) for r in ranges]
    if not branches:
        return ibis.null("string")
    return ibis.cases(*branches, else_=ibis.null("string"))


def classify_part_b_lines(
    *, claim_line_status: ir.Table, participant: ir.Table, rules: RulesForYear,
    service_year: ServiceYear = "performance_year",
) -> ir.Table:
    """§512.705, §512.750(a): label every claim line with the first `PART_B_STATUSES` reason that applies.

    Input: `claim_line_status` (claim lines with `final_action_status` from `resolve_final_action`; columns
    CLAIM_COLUMNS), `participant` (column `npi`). Service date = line_from_date, else claim_from_date. The
    run-out cut-off (Dec 31 + `payment.claims_runout_days`) applies to the performance-year pool base only; a
    line without a processing date is taken as processed in time. Grain: claim line (claim_id, line_number).
    Columns: CLAIM_COLUMNS without the status, plus service_date, service_year, non_pfs_category, part_b_status.
    """
    _check_scope(rules)
    year = service_year_of(rules, service_year)
    claim_types = [str(t) for t in rules.value("payment.covered_services_claim_types")]
    runout = int(rules.value("payment.claims_runout_days"))
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    cutoff = last + dt.timedelta(days=runout)

    npis = participant.select(_participant_npi=participant.npi).distinct()
    c = claim_line_status.select(*CLAIM_COLUMNS)
    c = c.left_join(npis, c.rendering_npi == npis._participant_npi)
    service_date = c.line_from_date.fill_null(c.claim_from_date)
    c = c.mutate(service_date=service_date, non_pfs_category=non_pfs_category(c.hcpcs_code, rules))
    after_runout = (
        ibis.literal(service_year == "performance_year")
        & c.claim_processed_date.notnull() & (c.claim_processed_date > ibis.literal(cutoff))
    )
    status = ibis.cases(
        (c[STATUS_COLUMN] != "final", "not_final_action"),
        (c._participant_npi.isnull(), "not_participant"),
        (~c.claim_type.isin(claim_types), "not_covered_claim_type"),
        (~c.service_date.between(ibis.literal(first), ibis.literal(last)), "outside_service_year"),
        (after_runout, "after_runout"),
        (c.non_pfs_category.notnull(), "non_pfs_hcpcs"),
        (c.paid_amount.isnull(), "missing_paid_amount"),
        else_="counted",
    )
    return c.mutate(part_b_status=status, service_year=ibis.literal(year, "int32")).drop(
        "_participant_npi", STATUS_COLUMN
    )


def compute_part_b_base_by_tin(
    *, claim_line_status: ir.Table, participant: ir.Table, rules: RulesForYear,
    service_year: ServiceYear = "performance_year",
) -> ir.Table:
    """§512.705, §512.750(a): Medicare paid on each participant's covered professional services per billing
    TIN in the service year. Grain: (npi, billing_tin) with at least one counted line. Columns: service_year,
    npi, billing_tin, part_b_paid_amount, line_count."""
    lines = classify_part_b_lines(
        claim_line_status=claim_line_status, participant=participant, rules=rules, service_year=service_year
    )
    counted = lines.filter(lines.part_b_status == "counted")
    return counted.group_by(
        service_year=counted.service_year, npi=counted.rendering_npi, billing_tin=counted.billing_tin
    ).agg(part_b_paid_amount=exact_sum(counted.paid_amount), line_count=counted.count())


def compute_part_b_base(
    *, claim_line_status: ir.Table, participant: ir.Table, rules: RulesForYear,
    service_year: ServiceYear = "performance_year",
) -> ir.Table:
    """§512.705 (pool base), §512.750(a): per participant NPI, Medicare paid on its covered professional
    services in the service year over all TINs it bills under; 0 for a participant without such lines.

    Input: `participant` with `npi` (one row per NPI, other columns kept; an existing `part_b_paid_amount` is
    replaced). Grain: participant. Added columns: part_b_paid_amount, part_b_line_count, part_b_tin_count,
    missing_paid_line_count (participant lines with no paid amount, not counted), has_part_b_claims.
    """
    lines = classify_part_b_lines(
        claim_line_status=claim_line_status, participant=participant, rules=rules, service_year=service_year
    )
    mine = lines.filter(lines.part_b_status.isin(["counted", "missing_paid_amount"]))
    counted = mine.part_b_status == "counted"
    per_npi = mine.group_by(_base_npi=mine.rendering_npi).agg(
        part_b_paid_amount=exact_sum(ibis.ifelse(counted, mine.paid_amount, 0.0)),
        part_b_line_count=counted.cast("int64").sum(),
        part_b_tin_count=mine.billing_tin.nunique(where=counted),
        missing_paid_line_count=(~counted).cast("int64").sum(),
    )
    p = participant.drop("part_b_paid_amount") if "part_b_paid_amount" in participant.columns else participant
    out = p.left_join(per_npi, p.npi == per_npi._base_npi).drop("_base_npi")
    return out.mutate(
        part_b_paid_amount=out.part_b_paid_amount.fill_null(0.0),
        part_b_line_count=out.part_b_line_count.fill_null(0),
        part_b_tin_count=out.part_b_tin_count.fill_null(0),
        missing_paid_line_count=out.missing_paid_line_count.fill_null(0),
        has_part_b_claims=out.part_b_line_count.fill_null(0) > 0,
    )


def reconcile_part_b_lines(*, classified: ir.Table) -> ir.Table:
    """Row accounting for `classify_part_b_lines`: lines and paid amount per status (the counts add up to the
    input line count). Grain: part_b_status."""
    return classified.group_by("part_b_status").agg(
        line_count=classified.count(), paid_amount=exact_sum(classified.paid_amount)
    )


def claims_cover_year(*, claim_line_status: ir.Table, year: int) -> ir.Table:
    """Whether the claims hold any final-action line with a service date in `year` (one row:
    has_claims_in_year). Used to decide if payment-year amounts are known or must be estimated."""
    c = claim_line_status
    service_date = c.line_from_date.fill_null(c.claim_from_date)
    in_year = (c[STATUS_COLUMN] == "final") & service_date.between(
        ibis.literal(dt.date(year, 1, 1)), ibis.literal(dt.date(year, 12, 31))
    )
    return c.aggregate(_lines_in_year=in_year.cast("int64").sum()).select(
        has_claims_in_year=ibis._._lines_in_year.fill_null(0) > 0
    )

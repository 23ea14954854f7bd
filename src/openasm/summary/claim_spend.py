"""Claim spend by setting and by clinician specialty, from final-action claims.

These summaries answer the first questions about a claims extract: how much Medicare spend it holds, in
which settings, billed by which specialties, and how many claim versions ingest resolved.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.ingest.final_action import STATUS_COLUMN
from openasm.schema.sums import exact_sum

PART_D_SETTING = "part_d"


def summarize_spend_by_setting(*, claim_line: ir.Table, pharmacy_claim: ir.Table) -> ir.Table:
    """Grain: setting (claim_type, plus `part_d`). Final-action lines only; amounts in dollars."""
    final = claim_line.filter(claim_line[STATUS_COLUMN] == "final")
    parts_ab = final.group_by(setting=final.claim_type).agg(
        claim_count=final.claim_id.nunique(),
        line_count=final.count(),
        bene_count=final.bene_id.nunique(),
        allowed_amount=exact_sum(final.allowed_amount),
        paid_amount=exact_sum(final.paid_amount),
    )
    fills = pharmacy_claim.filter(pharmacy_claim[STATUS_COLUMN] == "final")
    part_d = fills.aggregate(
        claim_count=fills.claim_id.nunique(),
        line_count=fills.count(),
        bene_count=fills.bene_id.nunique(),
        allowed_amount=exact_sum(fills.allowed_amount),
        paid_amount=exact_sum(fills.paid_amount),
    ).mutate(setting=ibis.literal(PART_D_SETTING))
    # No fills (e.g. a CCLF source, whose Part D events carry no cost): the setting shows zero spend.
    part_d = part_d.mutate(allowed_amount=part_d.allowed_amount.fill_null(0.0), paid_amount=part_d.paid_amount.fill_null(0.0))
    combined = parts_ab.union(part_d.select(*parts_ab.columns))
    total = exact_sum(combined.allowed_amount).over(ibis.window())
    return combined.mutate(
        allowed_share=ibis.ifelse(total > 0, combined.allowed_amount / total, 0.0)
    ).order_by(ibis.desc("allowed_amount"), "setting")


def summarize_spend_by_specialty(*, claim_line: ir.Table, specialty_names: ir.Table) -> ir.Table:
    """Grain: provider specialty code on Part B professional (carrier and DME) final-action lines."""
    final = claim_line.filter(
        (claim_line[STATUS_COLUMN] == "final") & claim_line.claim_type.isin(("carrier", "dme"))
    )
    by_specialty = final.group_by(specialty_code=final.provider_specialty_code).agg(
        npi_count=final.rendering_npi.nunique(),
        line_count=final.count(),
        bene_count=final.bene_id.nunique(),
        allowed_amount=exact_sum(final.allowed_amount),
        paid_amount=exact_sum(final.paid_amount),
    )
    names = specialty_names.select(_code=specialty_names.code, specialty_name=specialty_names.name)
    joined = by_specialty.left_join(names, by_specialty.specialty_code == names._code).drop("_code")
    return joined.mutate(specialty_name=joined.specialty_name.fill_null("(not in reference list)")).order_by(
        ibis.desc("allowed_amount"), "specialty_code"
    )


def count_claim_versions(*, claim_line: ir.Table, pharmacy_claim: ir.Table) -> ir.Table:
    """Grain: table x final-action status; lines and distinct claims in each status."""
    def by_status(table: ir.Table, name: str) -> ir.Table:
        return table.group_by(STATUS_COLUMN).agg(
            line_count=table.count(), claim_count=table.claim_id.nunique()
        ).mutate(table_name=ibis.literal(name))

    lines = by_status(claim_line, "claim_line")
    fills = by_status(pharmacy_claim, "pharmacy_claim")
    return lines.union(fills.select(*lines.columns)).order_by("table_name", STATUS_COLUMN)

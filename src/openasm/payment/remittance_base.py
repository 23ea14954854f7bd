"""The Part B base from a practice's own remittances (X12 835, `openasm ingest-835`) instead of claims.

A practice that holds its Medicare remittances knows what Medicare paid it line by line, often more completely
than a claims feed (an ACO's CCLF covers only its assigned beneficiaries). The same covered-services definition
as the claims base applies (§512.705, §512.750(a)): professional services outside `payment.non_pfs_hcpcs_ranges`,
furnished in the service year, remitted by Dec 31 + `payment.claims_runout_days`; reversals (CLP02 = 22) net
out. `payment` uses it for the NPIs the remittances cover (`use_remittance_base`).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from openasm.payment.part_b_base import ServiceYear, non_pfs_category, service_year_of
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum

CLAIMS, REMITTANCES = "claims", "remittances"


def compute_remittance_part_b_base(*, remittance_line: ir.Table, rules: RulesForYear,
                                   service_year: ServiceYear = "performance_year") -> ir.Table:
    """§512.705, §512.750(a): paid amounts of covered professional services per (NPI, TIN) in the service
    year, reversals netted, remitted by Dec 31 + `payment.claims_runout_days` (performance year only).
    Grain: (npi, billing_tin). Columns: npi, billing_tin, part_b_paid_amount, line_count, reversal_line_count,
    service_year."""
    year = service_year_of(rules, service_year)
    runout = int(rules.value("payment.claims_runout_days"))
    cutoff = dt.date(year, 12, 31) + dt.timedelta(days=runout)
    r = remittance_line
    counted = r.filter(
        r.service_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31))
        & non_pfs_category(r.hcpcs_code, rules).isnull()
        & (ibis.literal(service_year != "performance_year") | r.remittance_date.isnull()
           | (r.remittance_date <= ibis.literal(cutoff)))
    )
    return counted.group_by(npi=counted.rendering_npi, billing_tin=counted.billing_tin).agg(
        part_b_paid_amount=exact_sum(counted.paid_amount), line_count=counted.count(),
        reversal_line_count=(counted.claim_status_code == "22").cast("int64").sum(),
    ).mutate(service_year=ibis.literal(year, "int32"))


def use_remittance_base(*, participant_base: ir.Table, remittance_base: ir.Table | None, year: int) -> ir.Table:
    """§512.705 with the practice's remittances: for each participant NPI the remittances of `year` cover, the
    remittance base (summed over its TINs) replaces the claims base (`compute_part_b_base`); the others keep the
    claims base. The NPI's base spans every TIN it bills under (`payment.multiplier_tin_scope`), so remittances of
    some of its TINs only give a partial base. Adds `part_b_base_source` (claims or remittances). Grain:
    participant."""
    if remittance_base is None:
        return participant_base.mutate(part_b_base_source=ibis.literal(CLAIMS))
    r = remittance_base.filter(remittance_base.service_year == year)
    per_npi = r.group_by(_remit_npi=r.npi).agg(
        _remit_paid=exact_sum(r.part_b_paid_amount), _remit_lines=r.line_count.sum().cast("int64"),
        _remit_tins=r.billing_tin.nunique().cast("int64"))
    out = participant_base.left_join(per_npi, participant_base.npi == per_npi._remit_npi)
    covered = out._remit_npi.notnull()
    return out.mutate(
        part_b_paid_amount=ibis.ifelse(covered, out._remit_paid, out.part_b_paid_amount),
        part_b_line_count=ibis.ifelse(covered, out._remit_lines, out.part_b_line_count),
        part_b_tin_count=ibis.ifelse(covered, out._remit_tins, out.part_b_tin_count),
        has_part_b_claims=ibis.ifelse(covered, out._remit_lines > 0, out.has_part_b_claims),
        part_b_base_source=ibis.ifelse(covered, ibis.literal(REMITTANCES), ibis.literal(CLAIMS)),
    ).drop("_remit_npi", "_remit_paid", "_remit_lines", "_remit_tins")

"""A clinician's specialty from the plurality of their Part B claims: the one mechanism behind the EBCM
specialty of an attributed NPI (ebcm.md §4) and the ASM specialty of a clinician (§512.710(b); asm-model.md
§2.2 item 2).

Both weigh the NPI's final-action Part B professional lines of one calendar year by allowed charges or by
distinct claims, give ties to the lower code, and let a non-null `clinician.specialty_code` (the lowest if the
NPI's TIN rows disagree) override the claims, as the canonical clinician contract states.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.qualifying import final_lines, line_service_date
from openasm.rules import RulesForYear
from openasm.schema.canonical import PART_B_PROFESSIONAL
from openasm.schema.sums import exact_sum

PLURALITY_BASES = ("allowed_charges", "claim_count")


def plurality_basis(rules: RulesForYear, name: str) -> str:
    """The rule `name` (allowed_charges | claim_count), checked."""
    basis = rules.value(name)
    if basis not in PLURALITY_BASES:
        raise ValueError(f"{name}: unsupported value {basis!r}")
    return basis


def part_b_lines(*, claim_line: ir.Table, year: int) -> ir.Table:
    """The final-action Part B professional lines (carrier, DME) with a rendering NPI whose service date (line
    from-date, else claim from-date) falls in `year`.

    Grain: claim line. Columns: npi, tin, specialty_code, claim_id, allowed_amount (null as 0).
    """
    lines = final_lines(claim_line)
    lines = lines.filter(
        lines.claim_type.isin(PART_B_PROFESSIONAL) & lines.rendering_npi.notnull()
        & (line_service_date(lines).year() == year)
    )
    return lines.select(
        npi=lines.rendering_npi, tin=lines.billing_tin, specialty_code=lines.provider_specialty_code,
        claim_id=lines.claim_id, allowed_amount=lines.allowed_amount.fill_null(0.0),
    )


def plurality_weight(lines: ir.Table, basis: str) -> ir.FloatingScalar:
    """The plurality measure over a group of lines: allowed charges, or distinct claims."""
    if basis == "allowed_charges":
        return exact_sum(lines.allowed_amount)
    return lines.claim_id.nunique().cast("float64")


def plurality_specialty(*, lines: ir.Table, basis: str) -> ir.Table:
    """Per NPI, the specialty code with the largest weight among its coded lines; ties go to the lower code.

    Grain: NPI. Columns: npi, specialty_code, specialty_weight, is_specialty_tie.
    """
    coded = lines.filter(lines.specialty_code.notnull())
    tallies = coded.group_by("npi", "specialty_code").agg(_weight=plurality_weight(coded, basis))
    by_npi = ibis.window(group_by="npi")
    tallies = tallies.mutate(_top=tallies._weight.max().over(by_npi))
    tallies = tallies.mutate(
        _at_top=ibis.ifelse(tallies._weight == tallies._top, 1, 0).sum().over(by_npi),
        _rank=ibis.row_number().over(ibis.window(group_by="npi", order_by=[ibis.desc("_weight"), "specialty_code"])),
    )
    best = tallies.filter(tallies._rank == 0)
    return best.select("npi", "specialty_code", specialty_weight=best._weight, is_specialty_tie=best._at_top > 1)


def clinician_table_specialty(*, clinician: ir.Table) -> ir.Table:
    """Per NPI, the clinician table's specialty (the lowest code when its TIN rows disagree).

    Grain: NPI. Columns: npi, specialty_code.
    """
    rows = clinician.filter(clinician.specialty_code.notnull())
    return rows.group_by("npi").agg(specialty_code=rows.specialty_code.min())


def assign_clinician_specialty(*, claim_line: ir.Table, clinician: ir.Table, rules: RulesForYear) -> ir.Table:
    """ebcm §4: an NPI's specialty is the plurality `provider_specialty_code` on its Part B lines in the
    performance year (`episodes.npi_specialty_basis`: claim_count or allowed_charges; ties go to the lower
    code); a non-null `clinician.specialty_code` overrides it for that NPI.

    Grain: NPI. Columns: rendering_npi, specialty_code, specialty_source (claims | clinician_table).
    """
    basis = plurality_basis(rules, "episodes.npi_specialty_basis")
    lines = part_b_lines(claim_line=claim_line, year=rules.performance_year)
    from_claims = plurality_specialty(lines=lines, basis=basis).select(
        "npi", _claims_specialty="specialty_code")
    overrides = clinician_table_specialty(clinician=clinician).select(_t_npi="npi", _table_specialty="specialty_code")
    npis = from_claims.select("npi").union(overrides.select(npi=overrides._t_npi)).distinct()
    merged = npis.left_join(from_claims, "npi").drop("npi_right")
    merged = merged.left_join(overrides, merged.npi == overrides._t_npi).drop("_t_npi")
    return merged.select(
        rendering_npi=merged.npi,
        specialty_code=merged._table_specialty.fill_null(merged._claims_specialty),
        specialty_source=ibis.ifelse(merged._table_specialty.notnull(), "clinician_table", "claims"),
    )

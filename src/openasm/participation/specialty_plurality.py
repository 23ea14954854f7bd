"""A clinician's ASM specialty: the specialty code on the plurality of their Part B claims (§512.710(b)).

asm-model.md §2.2 item 2: the Medicare specialty code used on the plurality of the clinician's Part B claims in
the eligibility year, measured by `participation.specialty_plurality_basis` (allowed charges, or number of
claims). Ties go to the lower code (the same tie rule as the EBCM specialty of ebcm.md §4) and are flagged.
A non-null `clinician.specialty_code` overrides the claims, as the canonical clinician contract states.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.qualifying import final_lines
from openasm.participation.eligibility import eligibility_year
from openasm.rules import RulesForYear
from openasm.schema.canonical import PART_B_PROFESSIONAL

PLURALITY_BASES = ("allowed_charges", "claim_count")
CLINICIAN_TABLE_BASIS = "clinician_table"


def plurality_basis(rules: RulesForYear) -> str:
    """`participation.specialty_plurality_basis`, checked."""
    basis = rules.value("participation.specialty_plurality_basis")
    if basis not in PLURALITY_BASES:
        raise ValueError(f"participation.specialty_plurality_basis: unsupported value {basis!r}")
    return basis


def select_part_b_lines(*, claim_line: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b): the final-action Part B professional lines (carrier, DME) with a rendering NPI whose service
    date (line from-date, else claim from-date) falls in the eligibility year (PY − lookback).

    Grain: claim line. Columns: npi, tin, specialty_code, claim_id, allowed_amount.
    """
    year = eligibility_year(rules)
    lines = final_lines(claim_line)
    lines = lines.filter(
        lines.claim_type.isin(PART_B_PROFESSIONAL) & lines.rendering_npi.notnull()
        & (lines.line_from_date.fill_null(lines.claim_from_date).year() == year)
    )
    return lines.select(
        npi=lines.rendering_npi, tin=lines.billing_tin, specialty_code=lines.provider_specialty_code,
        claim_id=lines.claim_id, allowed_amount=lines.allowed_amount.fill_null(0.0),
    )


def plurality_weight(lines: ir.Table, basis: str) -> ir.FloatingScalar:
    """The plurality measure over a group of lines: allowed charges, or distinct claims."""
    if basis == "allowed_charges":
        return lines.allowed_amount.sum().cast("float64")
    return lines.claim_id.nunique().cast("float64")


def assign_plurality_specialty(*, claim_line: ir.Table, clinician: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b), asm-model §2.2 item 2: per NPI, the specialty code with the largest weight
    (`participation.specialty_plurality_basis`: allowed charges or distinct claims) among the NPI's Part B
    lines in the eligibility year; ties go to the lower code and set `is_specialty_tie`. A non-null
    `clinician.specialty_code` (lowest if several TIN rows disagree) overrides the claims.

    Grain: NPI (every NPI with a Part B line in the eligibility year or a clinician-table specialty).
    Columns: npi, specialty_code, specialty_basis (allowed_charges | claim_count | clinician_table),
    specialty_weight (winning weight; null for the clinician table), is_specialty_tie, part_b_line_count.
    """
    basis = plurality_basis(rules)
    lines = select_part_b_lines(claim_line=claim_line, rules=rules)
    coded = lines.filter(lines.specialty_code.notnull())
    tallies = coded.group_by("npi", "specialty_code").agg(_weight=plurality_weight(coded, basis))
    by_npi = ibis.window(group_by="npi")
    tallies = tallies.mutate(_top=tallies._weight.max().over(by_npi))
    tallies = tallies.mutate(
        _at_top=ibis.ifelse(tallies._weight == tallies._top, 1, 0).sum().over(by_npi),
        _rank=ibis.row_number().over(
            ibis.window(group_by="npi", order_by=[ibis.desc("_weight"), "specialty_code"])
        ),
    )
    from_claims = tallies.filter(tallies._rank == 0).select(
        _c_npi=tallies.npi, _claims_code=tallies.specialty_code, _claims_weight=tallies._weight,
        _claims_tie=tallies._at_top > 1,
    )
    counts = lines.group_by(_n_npi=lines.npi).agg(_line_count=lines.count())
    table_rows = clinician.filter(clinician.specialty_code.notnull())
    overrides = table_rows.group_by(_t_npi=table_rows.npi).agg(_table_code=table_rows.specialty_code.min())

    npis = lines.select("npi").union(table_rows.select("npi")).distinct()
    merged = npis.left_join(from_claims, npis.npi == from_claims._c_npi).drop("_c_npi")
    merged = merged.left_join(counts, merged.npi == counts._n_npi).drop("_n_npi")
    merged = merged.left_join(overrides, merged.npi == overrides._t_npi).drop("_t_npi")
    from_table = merged._table_code.notnull()
    return merged.select(
        "npi",
        specialty_code=merged._table_code.fill_null(merged._claims_code),
        specialty_basis=ibis.ifelse(from_table, CLINICIAN_TABLE_BASIS, ibis.literal(basis)),
        specialty_weight=ibis.ifelse(from_table, ibis.null("float64"), merged._claims_weight),
        is_specialty_tie=~from_table & merged._claims_tie.fill_null(False),
        part_b_line_count=merged._line_count.fill_null(0).cast("int64"),
    )

"""A clinician's ASM specialty: the specialty code on the plurality of their Part B claims (§512.710(b)).

asm-model.md §2.2 item 2: the Medicare specialty code used on the plurality of the clinician's Part B claims in
the eligibility year, measured by `participation.specialty_plurality_basis` (allowed charges, or number of
claims). Ties go to the lower code (the same tie rule as the EBCM specialty of ebcm.md §4) and are flagged.
A non-null `clinician.specialty_code` overrides the claims, as the canonical clinician contract states.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.specialty import (
    clinician_table_specialty,
    part_b_lines,
    plurality_basis,
    plurality_specialty,
)
from openasm.participation.eligibility import eligibility_year
from openasm.rules import RulesForYear

PLURALITY_RULE = "participation.specialty_plurality_basis"

CLINICIAN_TABLE_BASIS = "clinician_table"


def select_part_b_lines(*, claim_line: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b): the Part B professional lines of the eligibility year (PY − lookback); see
    `episodes.specialty.part_b_lines`."""
    return part_b_lines(claim_line=claim_line, year=eligibility_year(rules))


def assign_plurality_specialty(*, claim_line: ir.Table, clinician: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b), asm-model §2.2 item 2: per NPI, the specialty code with the largest weight
    (`participation.specialty_plurality_basis`: allowed charges or distinct claims) among the NPI's Part B
    lines in the eligibility year; ties go to the lower code and set `is_specialty_tie`. A non-null
    `clinician.specialty_code` (lowest if several TIN rows disagree) overrides the claims.

    Grain: NPI (every NPI with a Part B line in the eligibility year or a clinician-table specialty).
    Columns: npi, specialty_code, specialty_basis (allowed_charges | claim_count | clinician_table),
    specialty_weight (winning weight; null for the clinician table), is_specialty_tie, part_b_line_count.
    """
    basis = plurality_basis(rules, PLURALITY_RULE)
    lines = select_part_b_lines(claim_line=claim_line, rules=rules)
    best = plurality_specialty(lines=lines, basis=basis)
    from_claims = best.select(_c_npi="npi", _claims_code="specialty_code", _claims_weight="specialty_weight",
                              _claims_tie="is_specialty_tie")
    counts = lines.group_by(_n_npi=lines.npi).agg(_line_count=lines.count())
    overrides = clinician_table_specialty(clinician=clinician).select(_t_npi="npi", _table_code="specialty_code")

    npis = lines.select("npi").union(overrides.select(npi=overrides._t_npi)).distinct()
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

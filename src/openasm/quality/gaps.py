"""Gap lists: the patients a practice can still act on, per measure (quality.md §4 proportion semantics, §7).

A gap is a denominator case that is neither excluded, nor met, nor excepted — for an inverse measure (lower is
better: `is_inverse` in `codes/quality__measure_spec.csv`, e.g. Q238 high-risk medications) it is a case *in* the
numerator, the adverse event. Each row carries the clinician (TIN/NPI), the qualifying encounter and its date, the patient's birth date
and gender, why it is a gap and the evidence (FHIR resource ids) behind the decision.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.quality.aggregate import inverse_measure_ids
from openasm.rules import RulesForYear

GAP_COLUMNS = (
    "performance_year", "measure_id", "ecqm_id", "collection_type", "population_group", "stratum", "tin", "npi",
    "patient_id", "birth_date", "gender", "encounter_id", "encounter_date", "gap_reason", "evidence",
    "attribution_status",
)
INVERSE_GAP_REASON = "in the numerator of an inverse measure (an adverse event to review; see evidence)"
DIRECT_GAP_REASON = "numerator not met"


def list_measure_gaps(*, measure_case_result: ir.Table, patient: ir.Table, rules: RulesForYear) -> ir.Table:
    """quality.md §4: one row per gap case (see module docstring), for the practice's weekly work list.

    Input: attributed case results (`attribution.attribute_cases` output: measure_case_result columns plus
    performance_year, collection_type, tin, npi, encounter_date, attribution_status; ecqm_id, population_group
    and encounter_date optional) and `patient` (patient_id, birth_date, gender). Output columns: GAP_COLUMNS.
    """
    inverse = inverse_measure_ids(rules)
    c = measure_case_result

    def f(name: str) -> ir.BooleanValue:
        return c[name].fill_null(False)

    denom = f("is_denominator") & ~f("is_denominator_exclusion")
    is_inverse = c.measure_id.isin(inverse) if inverse else ibis.literal(False)
    direct_gap = ~is_inverse & denom & ~f("is_numerator") & ~f("is_denominator_exception")
    inverse_gap = is_inverse & denom & f("is_numerator")
    reason = ibis.cases(
        (inverse_gap, ibis.coalesce(c.gap_reason, ibis.literal(INVERSE_GAP_REASON))),
        else_=ibis.coalesce(c.gap_reason, ibis.literal(DIRECT_GAP_REASON)))
    gaps = c.filter(direct_gap | inverse_gap).mutate(_gap_reason=reason)
    people = patient.group_by(_pt_id=patient.patient_id).agg(
        _pt_birth=patient.birth_date.min(), _pt_gender=patient.gender.min())
    joined = gaps.left_join(people, gaps.patient_id == people._pt_id)

    def opt(name: str, dtype: str) -> ir.Value:
        return joined[name].cast(dtype) if name in joined.columns else ibis.null(dtype)

    return joined.select(
        performance_year=joined.performance_year.cast("int32"), measure_id=joined.measure_id.cast("string"),
        ecqm_id=opt("ecqm_id", "string"), collection_type=joined.collection_type.cast("string"),
        population_group=opt("population_group", "int32"), stratum=opt("stratum", "string"),
        tin=joined.tin.cast("string"), npi=joined.npi.cast("string"), patient_id=joined.patient_id,
        birth_date=joined._pt_birth.cast("date"), gender=joined._pt_gender.cast("string"),
        encounter_id=opt("encounter_id", "string"), encounter_date=opt("encounter_date", "date"),
        gap_reason=joined._gap_reason.cast("string"), evidence=opt("evidence", "string"),
        attribution_status=opt("attribution_status", "string"))


def write_gap_list_csv(gaps: pa.Table, path: Path) -> int:
    """Write a gap list (GAP_COLUMNS, in that order; sorted by TIN, NPI, measure, stratum, patient) as CSV with
    a header row; dates as YYYY-MM-DD. Returns the number of rows written."""
    missing = [col for col in GAP_COLUMNS if col not in gaps.column_names]
    if missing:
        raise ValueError(f"gap list lacks column(s) {', '.join(missing)}")
    ordered = gaps.select(list(GAP_COLUMNS)).sort_by(
        [(k, "ascending") for k in ("tin", "npi", "measure_id", "stratum", "patient_id", "encounter_id")])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(ordered, path)
    return ordered.num_rows

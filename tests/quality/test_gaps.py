"""Gap lists (quality.md §4, §7): denominator misses of direct measures, numerator cases of inverse measures (Q238),
with clinician, qualifying encounter date, demographics, reason and evidence; CSV export."""

from __future__ import annotations

import csv
from datetime import date

import ibis
import pyarrow as pa

from openasm.engine import connect
from openasm.quality.gaps import GAP_COLUMNS, INVERSE_GAP_REASON, list_measure_gaps, write_gap_list_csv
from openasm.rules import load_rules

T1, N1 = "111111111", "1000000001"


def attributed(rows):
    """rows: (measure, stratum, patient, denom, denex, numer, denexcep, gap_reason, tin, npi)."""
    n = len(rows)
    return ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * n, pa.int32()), "measure_id": [r[0] for r in rows],
        "ecqm_id": ["CMS2" if r[0] == "134" else "CMS156" for r in rows],
        "collection_type": ["electronicHealthRecord"] * n,
        "population_group": pa.array([1 if r[1] in ("overall",) else 2 for r in rows], pa.int32()),
        "stratum": [r[1] for r in rows], "patient_id": [r[2] for r in rows],
        "encounter_id": [f"E-{r[2]}" for r in rows], "is_initial_population": [True] * n,
        "is_denominator": [r[3] for r in rows], "is_denominator_exclusion": [r[4] for r in rows],
        "is_numerator": [r[5] for r in rows], "is_denominator_exception": [r[6] for r in rows],
        "evidence": [f"Encounter/E-{r[2]}" for r in rows], "gap_reason": pa.array([r[7] for r in rows], pa.string()),
        "tin": pa.array([r[8] for r in rows], pa.string()), "npi": pa.array([r[9] for r in rows], pa.string()),
        "encounter_date": pa.array([date(2027, 4, 1)] * n, pa.date32()),
        "attribution_status": ["attributed" if r[8] else "encounter_without_organization" for r in rows],
    }))


ROWS = [
    ("134", "overall", "a", True, False, False, False, "no depression screening on or 14 days before", T1, N1),
    ("134", "overall", "b", True, False, True, False, None, T1, N1),        # met: no gap
    ("134", "overall", "c", True, True, False, False, None, T1, N1),        # excluded: no gap
    ("134", "overall", "d", True, False, False, True, None, T1, N1),        # excepted: no gap
    ("134", "overall", "e", True, False, False, False, None, None, N1),     # gap, default reason, no TIN
    ("238", "overall", "f", True, False, True, False, None, T1, N1),        # inverse: numerator is the gap
    ("238", "overall", "g", True, False, False, False, None, T1, N1),       # inverse: not in numerator, fine
    ("238", "appropriateDiagnosis", "f", True, False, True, False, "2 antipsychotic orders", T1, N1),
]
PATIENTS = pa.table({"patient_id": ["a", "e", "f"], "birth_date": pa.array([date(1950, 1, 2)] * 3, pa.date32()),
                     "gender": ["female", "male", "female"]})


def test_gap_list_on_both_backends(backend, engine_for):
    engine = engine_for(backend)
    out = list_measure_gaps(measure_case_result=attributed(ROWS), patient=ibis.memtable(PATIENTS),
                            rules=load_rules(2027))
    rows = engine.fetch(out).to_pylist()
    assert list(rows[0]) == list(GAP_COLUMNS)
    got = {(r["measure_id"], r["stratum"], r["patient_id"]): r for r in rows}
    assert set(got) == {("134", "overall", "a"), ("134", "overall", "e"), ("238", "overall", "f"),
                        ("238", "appropriateDiagnosis", "f")}
    assert got[("134", "overall", "a")]["gap_reason"] == "no depression screening on or 14 days before"
    assert got[("134", "overall", "e")]["gap_reason"] == "numerator not met"
    assert got[("134", "overall", "e")]["tin"] is None  # reported, not dropped
    assert got[("238", "overall", "f")]["gap_reason"] == INVERSE_GAP_REASON
    assert got[("238", "appropriateDiagnosis", "f")]["gap_reason"] == "2 antipsychotic orders"
    a = got[("134", "overall", "a")]
    assert (str(a["birth_date"]), a["gender"], str(a["encounter_date"]), a["encounter_id"], a["npi"]) == (
        "1950-01-02", "female", "2027-04-01", "E-a", N1)


def test_gap_list_csv(tmp_path):
    engine = connect("duckdb")
    gaps = engine.fetch(list_measure_gaps(measure_case_result=attributed(ROWS), patient=ibis.memtable(PATIENTS),
                                          rules=load_rules(2027)))
    path = tmp_path / "gaps" / "gap_list.csv"
    assert write_gap_list_csv(gaps, path) == 4
    with path.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert list(records[0]) == list(GAP_COLUMNS)
    first = next(r for r in records if r["patient_id"] == "a")
    assert first["encounter_date"] == "2027-04-01" and first["birth_date"] == "1950-01-02"
    assert first["tin"] == T1 and first["evidence"] == "Encounter/E-a"
    engine.close()

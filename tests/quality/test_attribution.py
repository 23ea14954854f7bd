"""Case attribution (quality.md §4, §8 #15): the qualifying encounter's practitioner NPI and organization TIN, or the
practice's patient attribution list; unattributable cases keep a null TIN/NPI with a reason and are not dropped."""

from __future__ import annotations

from datetime import datetime

import ibis
import pyarrow as pa
import pytest

from openasm.engine import connect
from openasm.quality.attribution import attribute_cases, unattributed_cases
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.rules import load_rules

T1, T2, N1, N2, N3 = "111111111", "222222222", "1000000001", "1000000002", "1000000003"


def _table(name, rows):
    schema = CLINICAL_SCHEMAS[name]
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)


def clinical():
    encounters = [  # (patient, encounter id, practitioner ref, organization ref)
        ("p1", "E1", "P1", "O1"), ("p8", "E1", "P4", "O1"),  # same encounter id, another patient
        ("p4", "E4", None, "O1"), ("p5", "E5", "P2", "O1"), ("p6", "E6", "P3", "O1"), ("p7", "E7", "P1", "O2"),
        ("p9", "E9", "P1", None),
    ]
    encounter = _table("encounter", [
        {"patient_id": p, "resource_id": e, "status": "finished", "practitioner_ref": pr, "organization_ref": o,
         "period_start": datetime(2027, 3, 5, 9, 30), "period_end": datetime(2027, 3, 5, 10, 0)}
        for p, e, pr, o in encounters])
    practitioner = _table("practitioner", [
        {"resource_id": "P1", "npi": N1}, {"resource_id": "P2", "npi": None}, {"resource_id": "P3", "npi": N2},
        {"resource_id": "P3", "npi": N3}, {"resource_id": "P4", "npi": N3}])
    organization = _table("organization", [{"resource_id": "O1", "tin": T1}, {"resource_id": "O2", "tin": None}])
    return encounter, practitioner, organization


def case_results():
    patients = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"]
    encounter_ids = ["E1", None, "E404", "E4", "E5", "E6", "E7", "E1", "E9"]
    n = len(patients)
    return pa.table({
        "measure_id": ["134"] * n, "ecqm_id": ["CMS2"] * n, "population_group": pa.array([1] * n, pa.int32()),
        "stratum": ["overall"] * n, "patient_id": patients, "encounter_id": pa.array(encounter_ids, pa.string()),
        "is_initial_population": [True] * n, "is_denominator": [True] * n, "is_denominator_exclusion": [False] * n,
        "is_numerator": [False] * n, "is_denominator_exception": [False] * n,
        "evidence": ["Encounter/x"] * n, "gap_reason": ["no depression screening"] * n})


EXPECTED = {  # patient → (tin, npi, status)
    "p1": (T1, N1, "attributed"), "p2": (None, None, "no_qualifying_encounter"),
    "p3": (None, None, "encounter_not_found"), "p4": (T1, None, "encounter_without_practitioner"),
    "p5": (T1, None, "practitioner_without_npi"), "p6": (T1, None, "practitioner_with_several_npis"),
    "p7": (None, N1, "organization_without_tin"), "p8": (T1, N3, "attributed"),
    "p9": (None, N1, "encounter_without_organization"),
}


def test_attribution_by_qualifying_encounter(backend, engine_for):
    engine = engine_for(backend)
    encounter, practitioner, organization = clinical()
    out = attribute_cases(measure_case_result=ibis.memtable(case_results()), encounter=ibis.memtable(encounter),
                          practitioner=ibis.memtable(practitioner), organization=ibis.memtable(organization),
                          rules=load_rules(2027))
    rows = engine.fetch(out).to_pylist()
    assert len(rows) == 9  # nothing dropped
    got = {r["patient_id"]: (r["tin"], r["npi"], r["attribution_status"]) for r in rows}
    assert got == EXPECTED
    p1 = next(r for r in rows if r["patient_id"] == "p1")
    assert str(p1["encounter_date"]) == "2027-03-05"
    assert p1["performance_year"] == 2027 and p1["collection_type"] == "electronicHealthRecord"
    assert p1["gap_reason"] == "no depression screening"  # input columns kept
    missing = engine.fetch(unattributed_cases(attributed_case_result=out)).column("patient_id").to_pylist()
    assert sorted(missing) == ["p2", "p3", "p4", "p5", "p6", "p7", "p9"]


def test_attribution_by_patient_list():
    engine = connect("duckdb")
    encounter, practitioner, organization = clinical()
    listing = ibis.memtable({"patient_id": ["p1", "p2", "p2", "p3", "p3"],
                             "tin": [T2, T1, T2, T1, T1], "npi": [N2, N1, N1, N3, N3]})
    rules = load_rules(2027, overrides={"quality.case_attribution": "patient_attribution"})
    out = attribute_cases(measure_case_result=ibis.memtable(case_results()), encounter=ibis.memtable(encounter),
                          practitioner=ibis.memtable(practitioner), organization=ibis.memtable(organization),
                          rules=rules, patient_attribution=listing)
    got = {r["patient_id"]: (r["tin"], r["npi"], r["attribution_status"]) for r in engine.fetch(out).to_pylist()}
    assert got["p1"] == (T2, N2, "attributed")
    assert got["p2"] == (None, None, "patient_attributed_to_several_clinicians")
    assert got["p3"] == (T1, N3, "attributed")  # the same pair twice is one clinician
    assert got["p4"] == (None, None, "patient_not_attributed")
    with pytest.raises(ValueError, match="patient_attribution table"):
        attribute_cases(measure_case_result=ibis.memtable(case_results()), encounter=ibis.memtable(encounter),
                        practitioner=ibis.memtable(practitioner), organization=ibis.memtable(organization),
                        rules=rules)
    engine.close()

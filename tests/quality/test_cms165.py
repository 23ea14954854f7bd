"""Q236 / CMS165 Controlling High Blood Pressure (quality.md §4.5): hand-built golden cases on DuckDB, and the
published conformance cases on every backend (DuckDB and PySpark) with the same result on both."""

from __future__ import annotations

import pytest

from openasm.quality.clinical import ClinicalTables
from openasm.quality.measures.cms165 import evaluate_cms165
from tests.quality.test_shared_exclusions import (
    MP_2025,
    SUITES_ROOT,
    check_conformance_on_backend,
    clinical_from,
    condition,
    encounter,
    observation,
    patient,
    value_set_table,
)

OFFICE_VISIT = "185463005"  # in Office Visit (A.101.12.1001)
SYS, DIA = "8480-6", "8462-4"


def hypertensive(pid: str, *, birth: str = "1965-05-05", onset: str = "2024-01-01",
                 visit: str = "2025-03-01") -> tuple[dict, ...]:
    """An adult with essential hypertension (I10) and one office visit in 2025."""
    return (patient(pid, birth), condition(pid, "htn", "I10", onset=onset),
            encounter(pid, "visit", OFFICE_VISIT, f"{visit}T09:00:00Z", f"{visit}T09:30:00Z"))


def bp(pid: str, rid: str, when: str, systolic: float | None, diastolic: float | None, **kw) -> dict:
    parts = [(code, value) for code, value in ((SYS, systolic), (DIA, diastolic)) if value is not None]
    return observation(pid, rid, "85354-9", when, components=parts, **kw)


def run(clinical: ClinicalTables) -> dict[str, dict]:
    rows = evaluate_cms165(clinical=clinical, value_set_code=value_set_table(), period=MP_2025,
                           rules=None).to_pyarrow().to_pylist()
    return {row["patient_id"]: row for row in rows}


def test_numerator_uses_lowest_readings_on_the_most_recent_day(tmp_path):
    c = clinical_from(
        tmp_path,
        # 139/89 → controlled (both strictly below 140/90).
        *hypertensive("ok"), bp("ok", "b1", "2025-06-01T10:00:00Z", 139, 89),
        # 140/89 → systolic not below 140.
        *hypertensive("edge"), bp("edge", "b1", "2025-06-01T10:00:00Z", 140, 89),
        # Last day 2025-10-01 has 150/95 and 135/85: lowest systolic 135, lowest diastolic 85 → controlled;
        # the earlier day does not matter.
        *hypertensive("low"), bp("low", "b0", "2025-05-01T10:00:00Z", 180, 110),
        bp("low", "b1", "2025-10-01T08:00:00Z", 150, 95), bp("low", "b2", "2025-10-01T16:00:00Z", 135, 85),
        # Controlled in May, uncontrolled on the most recent day → not met.
        *hypertensive("worse"), bp("worse", "b0", "2025-05-01T10:00:00Z", 120, 70),
        bp("worse", "b1", "2025-11-01T10:00:00Z", 150, 95),
        # A reading taken in an emergency encounter does not qualify; the June reading is the most recent.
        *hypertensive("ed"), bp("ed", "b0", "2025-06-01T10:00:00Z", 150, 95),
        encounter("ed", "er", "4525004", "2025-11-01T01:00:00Z", "2025-11-01T05:00:00Z", klass="EMER"),
        bp("ed", "b1", "2025-11-01T02:00:00Z", 120, 70, encounter_id="er"),
        # No reading at all.
        *hypertensive("none"),
        # The most recent day has a reading without a diastolic value → unknown lowest diastolic → not met.
        *hypertensive("half"), bp("half", "b0", "2025-09-01T08:00:00Z", 120, 70),
        bp("half", "b1", "2025-09-01T09:00:00Z", 118, None),
    )
    got = run(c)
    assert {pid for pid, row in got.items() if row["is_numerator"]} == {"ok", "low"}
    assert got["edge"]["gap_reason"] == "most recent BP 140/89 not below 140/90"
    assert got["worse"]["gap_reason"] == "most recent BP 150/95 not below 140/90"
    assert got["ed"]["gap_reason"] == "most recent BP 150/95 not below 140/90"
    assert got["none"]["gap_reason"].startswith("no blood pressure recorded")
    assert got["half"]["gap_reason"].startswith("most recent blood pressure day lacks")
    assert got["low"]["evidence"] == "Condition/htn;Encounter/visit;Observation/b1;Observation/b2"
    assert got["ok"]["encounter_id"] == "visit" and got["ok"]["gap_reason"] is None


def test_initial_population_age_diagnosis_window_and_encounter(tmp_path):
    c = clinical_from(
        tmp_path,
        *hypertensive("age85", birth="1940-12-31"),  # 85 on 2025-12-31 → in
        *hypertensive("age86", birth="1939-12-31"),  # 86 → out
        *hypertensive("age17", birth="2008-06-01"),  # 17 → out
        *hypertensive("june29", onset="2025-06-29"),  # onset inside [MP start, MP start + 6 months) → in
        # A date-only onset on the window's last day: [MP start, MP start + 6 months) ends at
        # 2025-06-30T23:59:59.999, which a day-precision value can neither precede nor follow (CQL: null) → out.
        *hypertensive("june30", onset="2025-06-30"),
        *hypertensive("july1", onset="2025-07-01"),  # onset on the open end of the window → out
        # Hypertension resolved in 2024 (abatement before the window) → out.
        patient("resolved", "1965-05-05"),
        condition("resolved", "htn", "I10", onset="2020-01-01", abatement="2024-06-01", status="resolved"),
        encounter("resolved", "visit", OFFICE_VISIT, "2025-03-01T09:00:00Z", "2025-03-01T09:30:00Z"),
        # The only visit runs into 2026 → not during the MP → out.
        patient("late", "1965-05-05"), condition("late", "htn", "I10", onset="2024-01-01"),
        encounter("late", "visit", OFFICE_VISIT, "2025-12-31T23:00:00Z", "2026-01-01T00:30:00Z"),
    )
    got = run(c)
    assert set(got) == {"age85", "june29"}
    assert all(row["is_initial_population"] and row["is_denominator"] for row in got.values())


def test_exclusions_remove_from_numerator_consideration(tmp_path):
    c = clinical_from(
        tmp_path,
        # ESRD (N18.6) overlapping the MP → excluded even with a controlled reading.
        *hypertensive("esrd"), condition("esrd", "ckd", "N18.6", onset="2023-01-01"),
        bp("esrd", "b1", "2025-06-01T10:00:00Z", 120, 70),
        # Dialysis (108241001) performed in 2024 still counts ("ends on or before the end of the MP").
        *hypertensive("dialysis"), {"resourceType": "Procedure", "id": "dx", "status": "completed",
                                    "subject": {"reference": "Patient/dialysis"},
                                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "108241001"}]},
                                    "performedDateTime": "2024-03-01"},
        # Age 81 with a frailty diagnosis → excluded; age 70 with frailty only → not excluded.
        *hypertensive("frail81", birth="1944-01-01"), condition("frail81", "f", "L89.000", onset="2025-02-01"),
        *hypertensive("frail70", birth="1955-01-01"), condition("frail70", "f", "L89.000", onset="2025-02-01"),
    )
    got = run(c)
    excluded = {pid for pid, row in got.items() if row["is_denominator_exclusion"]}
    assert excluded == {"esrd", "dialysis", "frail81"}
    assert not got["esrd"]["is_numerator"] and got["esrd"]["gap_reason"] is None
    assert "Condition/ckd" in got["esrd"]["evidence"]
    assert got["frail70"]["gap_reason"].startswith("no blood pressure recorded")


@pytest.mark.skipif(not SUITES_ROOT.is_dir(), reason=f"{SUITES_ROOT} is not present")
def test_conformance_cases_on_backend(backend, engine_for):
    """Every CMS165 conformance case passes on this backend, with the same full result as DuckDB."""
    assert check_conformance_on_backend("CMS165", evaluate_cms165, engine_for(backend)) > 0


def test_inactive_diagnosis_without_abatement_has_no_prevalence_interval(tmp_path):
    """QICoreCommon.prevalenceInterval of an inactive condition without abatement is a query over a null source,
    hence null (CQL 1.5.3, FHIR-40225): never in the initial population. Found by the fqm-execution differential
    (6 patients of 1,024); with an abatement date, or active, the diagnosis counts."""
    def with_status(pid: str, *, status: str, abatement: str | None = None) -> tuple[dict, ...]:
        return (patient(pid, "1965-05-05"),
                condition(pid, "htn", "I10", onset="2025-01-12T09:00:00-06:00", status=status, abatement=abatement),
                encounter(pid, "visit", OFFICE_VISIT, "2025-03-01T09:00:00Z", "2025-03-01T09:30:00Z"))

    c = clinical_from(tmp_path, *with_status("inactive", status="inactive"),
                      *with_status("abated", status="inactive", abatement="2025-09-01T09:00:00-06:00"),
                      *with_status("resolved", status="resolved"), *with_status("active", status="active"))
    got = run(c)
    assert {pid for pid, row in got.items() if row["is_initial_population"]} == {"abated", "active"}

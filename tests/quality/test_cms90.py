"""Q377/CMS90 functional status assessments for heart failure: hand-built golden patients through the FHIR reader,
one per population and gap reason, evaluated on DuckDB and PySpark.

Unless stated, a golden patient is born 1950, has heart failure (ICD-10 I11.0, active, confirmed) since 2024-06-01 —
so its prevalence starts before MP 2025 and overlaps it — and two finished office visits, E1 2025-03-10 09:00–09:30
and E2 2025-04-20 09:00–09:30 (E2 starts ≥ 1 day after E1 ends). MP end − 180 days = 2025-07-04, so both visits end
early enough to anchor an initial assessment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openasm.quality.measures.cms90 import (
    GAP_NO_ENCOUNTER,
    GAP_NO_FOLLOW_UP,
    GAP_NO_INITIAL,
)
from tests.quality.test_hf_lvsd import (
    CPT,
    ICD10,
    LOINC,
    SNOMED,
    condition,
    encounter,
    evaluate,
    flags,
    observation,
    patient,
    read_clinical,
)

KCCQ_TOTAL = (LOINC, "71940-1")
PROMIS10 = ((LOINC, "71969-0"), (LOINC, "71971-6"))


def hf_patient(pid: str, *, birth: str = "1950-01-01", hf_onset: str = "2024-06-01",
               visits: tuple[tuple[str, str], ...] = (("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
                                                      ("2025-04-20T09:00:00Z", "2025-04-20T09:30:00Z"))) -> list[dict]:
    resources = [patient(pid, birth), condition(pid, "HF", (ICD10, "I11.0"), hf_onset)]
    resources += [encounter(pid, f"E{i}", start, end) for i, (start, end) in enumerate(visits, start=1)]
    return resources


def assessment(pid: str, oid: str, code: tuple[str, str], day: str, value: float | None = 60.0) -> dict:
    """A survey observation (final) on `day` at 08:00 UTC."""
    return observation(pid, oid, code, f"{day}T08:00:00Z", value, "{score}", category="survey")


def golden_resources() -> list[dict]:
    r: list[dict] = []
    # Age 17 on 2025-01-01 → not in the IP, no row.
    r += hf_patient("minor", birth="2007-06-01")
    # HF starting inside the MP does not "overlap before" it → not in the IP.
    r += hf_patient("hf_in_mp", hf_onset="2025-02-01")
    # Second visit on the same day the first ends → not two encounters a day apart → not in the IP.
    r += hf_patient("same_day", visits=(("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
                                        ("2025-03-10T15:00:00Z", "2025-03-10T15:30:00Z")))
    # KCCQ total score 2025-03-01 (9 days before E1 ends) and again 2025-04-15 (45 days later, in 30..180) → NUMER.
    r += hf_patient("kccq") + [assessment("kccq", "K1", KCCQ_TOTAL, "2025-03-01"),
                               assessment("kccq", "K2", KCCQ_TOTAL, "2025-04-15")]
    # Follow-up 181 days after the initial (2025-03-01 + 181 = 2025-08-29) → no follow-up.
    r += hf_patient("kccq_181") + [assessment("kccq_181", "K1", KCCQ_TOTAL, "2025-03-01"),
                                   assessment("kccq_181", "K2", KCCQ_TOTAL, "2025-08-29")]
    # Follow-up exactly 180 days later (2025-08-28) → still in the window → NUMER.
    r += hf_patient("kccq_180") + [assessment("kccq_180", "K1", KCCQ_TOTAL, "2025-03-01"),
                                   assessment("kccq_180", "K2", KCCQ_TOTAL, "2025-08-28")]
    # PROMIS-10: both items on 2025-03-05, but at follow-up (2025-05-01) only one item → no follow-up.
    r += hf_patient("promis_partial") + [
        assessment("promis_partial", "P1", PROMIS10[0], "2025-03-05"),
        assessment("promis_partial", "P2", PROMIS10[1], "2025-03-05"),
        assessment("promis_partial", "P3", PROMIS10[0], "2025-05-01")]
    # Both assessments exist but the initial one has no value → no complete initial assessment.
    r += hf_patient("no_value") + [assessment("no_value", "K1", KCCQ_TOTAL, "2025-03-01", value=None),
                                   assessment("no_value", "K2", KCCQ_TOTAL, "2025-04-15")]
    # Visits only after 2025-07-04 (MP end − 180 days) → no encounter can anchor the assessments.
    r += hf_patient("late_visits", visits=(("2025-08-01T09:00:00Z", "2025-08-01T09:30:00Z"),
                                           ("2025-09-01T09:00:00Z", "2025-09-01T09:30:00Z")))
    # Severe cognitive impairment (SNOMED 702956004) since 2025-05-01 overlaps the MP → DENEX.
    r += hf_patient("cognitive") + [condition("cognitive", "CI", (SNOMED, "702956004"), "2025-05-01")]
    # Hospice care (SNOMED 385763009, Hospice Care Ambulatory) performed 2025-12-31 → DENEX (shared Hospice logic).
    r += hf_patient("hospice") + [{"resourceType": "Procedure", "id": "HS", "status": "completed",
                                   "subject": {"reference": "Patient/hospice"},
                                   "code": {"coding": [{"system": SNOMED, "code": "385763009"}]},
                                   "performedDateTime": "2025-12-31"}]
    # Telephone visits (SNOMED 185317003) qualify too.
    r += [patient("phone"), condition("phone", "HF", (ICD10, "I11.0"), "2024-06-01"),
          encounter("phone", "T1", "2025-02-01T10:00:00Z", "2025-02-01T10:10:00Z", code=(SNOMED, "185317003")),
          encounter("phone", "T2", "2025-02-03T10:00:00Z", "2025-02-03T10:10:00Z", code=(CPT, "99213"))]
    return r


_GAP = (1, 1, 0, 0)
EXPECTED = {
    "kccq": (1, 1, 0, 1), "kccq_181": _GAP, "kccq_180": (1, 1, 0, 1), "promis_partial": _GAP, "no_value": _GAP,
    "late_visits": _GAP, "cognitive": (1, 1, 1, 0), "hospice": (1, 1, 1, 0), "phone": _GAP,
}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return read_clinical(tmp_path_factory.mktemp("cms90"), golden_resources())


def test_golden_populations_on_each_backend(backend, engine_for, golden) -> None:
    rows = evaluate("CMS90", golden, engine_for(backend).con)
    assert {pid: flags(row)[:4] for pid, row in rows.items()} == EXPECTED
    assert not any(row["is_denominator_exception"] for row in rows.values())  # CMS90 has no exceptions


def test_gap_reasons_encounters_and_evidence(golden) -> None:
    rows = evaluate("CMS90", golden)
    assert rows["kccq_181"]["gap_reason"] == GAP_NO_FOLLOW_UP
    assert rows["promis_partial"]["gap_reason"] == GAP_NO_FOLLOW_UP
    assert rows["no_value"]["gap_reason"] == GAP_NO_FOLLOW_UP  # the 2025-04-15 score anchors on E2 (5 days before)
    assert rows["late_visits"]["gap_reason"] == GAP_NO_ENCOUNTER
    assert rows["phone"]["gap_reason"] == GAP_NO_INITIAL
    assert all(rows[p]["gap_reason"] is None for p in ("kccq", "cognitive", "hospice"))
    # The numerator case sits on the encounter its initial assessment anchors to, with both assessments as evidence.
    assert rows["kccq"]["encounter_id"] == "E1" and rows["kccq"]["measure_id"] == "377"
    assert {"Encounter/E1", "Observation/K1", "Observation/K2", "Condition/HF"} <= set(
        rows["kccq"]["evidence"].split(";"))
    assert "Condition/CI" in rows["cognitive"]["evidence"].split(";")
    assert "Procedure/HS" in rows["hospice"]["evidence"].split(";")


def test_assessment_without_survey_category_does_not_count(tmp_path: Path) -> None:
    resources = hf_patient("p") + [
        observation("p", "K1", KCCQ_TOTAL, "2025-03-01T08:00:00Z", 60, "{score}"),
        observation("p", "K2", KCCQ_TOTAL, "2025-04-15T08:00:00Z", 60, "{score}")]
    row = evaluate("CMS90", read_clinical(tmp_path, resources))["p"]
    assert flags(row)[:4] == _GAP and row["gap_reason"] == GAP_NO_INITIAL

"""The pro_assessment derived table (quality.md §7): Observations (or components) coded with a PRO instrument LOINC
become rows with instrument, score type, value and date; other codes, non-final and negated Observations do not."""

from __future__ import annotations

import json

import pytest

from openasm.quality.clinical import ClinicalTables
from openasm.quality.fhir_read import read_fhir
from openasm.quality.pro_assessment import PRO_ASSESSMENT_COLUMNS, derive_pro_assessment
from openasm.rules import load_rules

LOINC = "http://loinc.org"


def observation(rid, code, value=None, status="final", effective="2027-02-01T10:00:00Z", components=(), extra=None):
    resource = {"resourceType": "Observation", "id": rid, "status": status, "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": effective,
                "encounter": {"reference": "Encounter/E1"}}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": "{score}"}
    if components:
        resource["component"] = [{"code": {"coding": [{"system": LOINC, "code": c}]},
                                  "valueQuantity": {"value": v, "unit": "{T-score}"}} for c, v in components]
    resource.update(extra or {})
    return resource


@pytest.fixture
def clinical_arrow(tmp_path):
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1950-05-01", "gender": "female"},
        observation("kccq", "71940-1", 62.5),                                  # KCCQ overall summary
        observation("phq9", "44261-6", 12),                                    # PHQ-9 total
        observation("odi", "97909-6", 38, effective="2027-03-01"),             # ODI
        observation("promis", "61576-5", components=[("71959-1", 41.2), ("71965-8", 55.0), ("9999-9", 1.0)]),
        observation("bmi", "39156-5", 27.1),                                   # not a PRO
        observation("prelim", "71940-1", 50, status="preliminary"),           # not final
    ]
    folder = tmp_path / "fhir"
    folder.mkdir()
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    (folder / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    return read_fhir([folder]).tables


def test_pro_assessment_rows_on_both_backends(backend, engine_for, clinical_arrow):
    engine = engine_for(backend)
    clinical = ClinicalTables.from_arrow(clinical_arrow)
    out = derive_pro_assessment(observation=clinical.observation,
                                observation_component=clinical.observation_component,
                                clinical_coding=clinical.clinical_coding, rules=load_rules(2027))
    rows = engine.fetch(out).to_pylist()
    assert list(rows[0]) == list(PRO_ASSESSMENT_COLUMNS)
    got = {r["pro_id"]: r for r in rows}
    assert set(got) == {"kccq", "phq9", "odi", "promis#0", "promis#1"}
    assert (got["kccq"]["instrument"], got["kccq"]["score_type"], got["kccq"]["value"]) == ("KCCQ", "total", 62.5)
    phq9 = got["phq9"]
    assert (phq9["instrument"], phq9["instrument_version"], phq9["value"]) == ("PHQ9", "adult", 12.0)
    assert got["odi"]["instrument"] == "ODI" and str(got["odi"]["assessed_dt"]) == "2027-03-01 00:00:00"
    assert (got["promis#0"]["instrument"], got["promis#0"]["domain"], got["promis#0"]["value"]) == (
        "PROMIS29", "physical_function", 41.2)
    assert got["promis#1"]["domain"] == "depression" and got["promis#1"]["observation_id"] == "promis"
    assert all(r["patient_id"] == "p1" and r["encounter_id"] == "E1" for r in rows)
    assert all(r["episode_id"] is None and r["mode"] is None for r in rows)


def test_every_instrument_of_the_spec_is_listed():
    listed = {r["instrument"] for r in load_rules(2027).code_list("quality__pro_instruments").to_pylist()}
    assert listed == {"KCCQ", "KCCQ12", "MLHFQ", "PROMIS10", "PROMIS29", "VR12", "VR36", "PHQ9", "PHQ2", "ODI"}

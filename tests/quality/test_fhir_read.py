"""FHIR R4 reading: single resources, Bundles and NDJSON; malformed input is quarantined with file, line and id, an
invalid element is nulled and recorded while its resource is kept."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest

from openasm.quality.cql_datetime import InvalidDateTime, parse_fhir_datetime
from openasm.quality.fhir_read import FhirInputError, read_fhir
from openasm.runs.fhir_ingest import FhirInputs, run_fhir_ingest

PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-04-02", "gender": "female"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": "Patient/p1"},
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
             "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
             "period": {"start": "2025-03-10T09:00:00-04:00", "end": "2025-03-10"}}


def write(path: Path, content) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def reasons(result) -> list[tuple[str, str | None, int, str]]:
    q = result.quarantine.to_pylist()
    return [(r["reason"], r["resource_id"], r["source_line"], r["detail"]) for r in q]


def test_single_resources_and_times(tmp_path: Path) -> None:
    write(tmp_path / "Patient-p1.json", PATIENT)
    write(tmp_path / "Encounter-e1.json", ENCOUNTER)
    result = read_fhir([tmp_path])
    assert (result.resources_read, result.resources_accepted, result.resources_quarantined) == (2, 2, 0)
    encounter = result.tables["encounter"].to_pylist()[0]
    # Kept as written: 09:00 at UTC-4 (CQL compares days as written, instants across offsets); a date-only period
    # end is the whole day, with no offset.
    assert (encounter["period_start"], encounter["period_start_last"], encounter["period_start_offset"]) == (
        datetime(2025, 3, 10, 9, 0), datetime(2025, 3, 10, 9, 0), -240.0)
    assert (encounter["period_end"], encounter["period_end_last"], encounter["period_end_offset"]) == (
        datetime(2025, 3, 10), datetime(2025, 3, 10, 23, 59, 59, 999999), None)
    codes = {(r["element"], r["code"]) for r in result.tables["clinical_coding"].to_pylist()}
    assert codes == {("type", "99213"), ("class", "AMB")}


def test_truncated_json_file_is_one_quarantine_row_naming_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "Patient-p1.json", PATIENT)
    bad = write(tmp_path / "Encounter-e1.json", json.dumps(ENCOUNTER, indent=1)[:-40])
    result = read_fhir([tmp_path])
    assert result.resources_read == 2 and result.resources_accepted == 1 and result.resources_quarantined == 1
    row = result.quarantine.to_pylist()[0]
    assert row["reason"] == "malformed_json" and row["source_file"] == str(bad)
    assert row["source_line"] > 1 and "line" in row["detail"]


def test_ndjson_bad_line_loses_only_that_line(tmp_path: Path) -> None:
    lines = [json.dumps(PATIENT), '{"resourceType": "Encounter", "id": "e2", ', "", json.dumps(ENCOUNTER)]
    path = tmp_path / "export.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    result = read_fhir([path])
    assert result.resources_read == 3  # the blank line is not a resource
    assert [(r[0], r[2]) for r in reasons(result)] == [("malformed_json", 2)]
    assert result.tables["encounter"].num_rows == 1


@pytest.mark.parametrize(("resource", "reason", "words"), [
    ({**ENCOUNTER, "resourceType": "Encountr"}, "unsupported_resource_type", "Encountr"),
    ({k: v for k, v in ENCOUNTER.items() if k != "resourceType"}, "missing_resource_type", "resourceType"),
    ({k: v for k, v in ENCOUNTER.items() if k != "subject"}, "missing_subject", "Encounter/e1 has no subject"),
    ({k: v for k, v in ENCOUNTER.items() if k != "id"}, "missing_id", "Encounter has no id"),
    ([1, 2], "not_a_resource", "JSON object"),
])
def test_unusable_resources_are_quarantined_with_reason(tmp_path: Path, resource, reason, words) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": PATIENT}, {"resource": resource}]}
    path = write(tmp_path / "bundle.json", bundle)
    result = read_fhir([path])
    assert result.resources_read == 2 and result.resources_accepted == 1
    ((got_reason, _rid, line, detail),) = reasons(result)
    assert got_reason == reason and line == 2  # the second Bundle entry
    assert words in detail and str(path) in detail
    # A quarantined resource leaves no partial rows behind.
    assert result.tables["encounter"].num_rows == 0
    assert result.tables["clinical_coding"].num_rows == 0


def test_medication_reference_is_resolved_or_reported(tmp_path: Path) -> None:
    medication = {"resourceType": "Medication", "id": "m1",
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197446"}]}}
    request = {"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-02-01",
               "medicationReference": {"reference": "Medication/m1"},
               "dispenseRequest": {"numberOfRepeatsAllowed": 1,
                                   "expectedSupplyDuration": {"value": 4, "unit": "weeks", "code": "wk"}}}
    orphan = {**request, "id": "r2", "medicationReference": {"reference": "Medication/missing"}}
    write(tmp_path / "a.ndjson", "\n".join(json.dumps(r) for r in (PATIENT, medication, request, orphan)))
    result = read_fhir([tmp_path])
    assert result.resources_quarantined == 0 and result.resources_accepted == 4
    coded = [(r["resource_id"], r["element"], r["code"]) for r in result.tables["clinical_coding"].to_pylist()]
    (warning,) = result.quarantine.to_pylist()
    assert warning["action"] == "kept" and warning["reason"] == "unresolved_medication_reference"
    # The referenced Medication's code is kept apart from inline codes: whether a measure follows it is its rule.
    assert ("r1", "medication_reference", "197446") in coded
    row = result.tables["medication_request"].to_pylist()[0]
    assert row["expected_supply_days"] == 28.0 and row["refills"] == 1.0


def test_negation_becomes_not_done_with_reason(tmp_path: Path) -> None:
    not_done = {"resourceType": "Observation", "id": "o1", "status": "cancelled",
                "subject": {"reference": "Patient/p1"}, "issued": "2025-06-15T08:05:00.000+00:00",
                "modifierExtension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDone",
                                       "valueBoolean": True}],
                "extension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
                               "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                                    "code": "183932001"}]}}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]}}
    write(tmp_path / "o.json", not_done)
    result = read_fhir([tmp_path])
    (row,) = result.tables["not_done"].to_pylist()
    assert row["resource_type"] == "Observation" and row["recorded_at"] == datetime(2025, 6, 15, 8, 5)
    assert row["recorded_at_offset"] == 0.0
    coded = {(r["element"], r["code"]) for r in result.tables["clinical_coding"].to_pylist()}
    assert ("negation_reason", "183932001") in coded and ("code", "39156-5") in coded


@pytest.mark.parametrize(("text", "low", "high", "offset"), [
    ("2025", datetime(2025, 1, 1), datetime(2025, 12, 31, 23, 59, 59, 999999), None),
    ("2024-02", datetime(2024, 2, 1), datetime(2024, 2, 29, 23, 59, 59, 999999), None),
    ("2025-03-10", datetime(2025, 3, 10), datetime(2025, 3, 10, 23, 59, 59, 999999), None),
    ("2025-01-01T00:30+01:00", datetime(2025, 1, 1, 0, 30), datetime(2025, 1, 1, 0, 30, 59, 999999), 60),
    # Seconds and milliseconds are one decimal precision (CQL): a time with seconds is exact.
    ("2025-06-10T14:40:00Z", datetime(2025, 6, 10, 14, 40), datetime(2025, 6, 10, 14, 40), 0),
    ("2025-12-31T21:00:00.250-05:00", datetime(2025, 12, 31, 21, 0, 0, 250000),
     datetime(2025, 12, 31, 21, 0, 0, 250000), -300),
])
def test_dates_keep_precision_and_offset(text, low, high, offset) -> None:
    value = parse_fhir_datetime(text)
    assert (value.low, value.high, value.offset_minutes) == (low, high, offset)


@pytest.mark.parametrize("text", ["2025-02-30", "2025-13-01", "yesterday", "2025-01-01T25:00:00Z",
                                  "2025-01-01T10:00:00+15:00", 20250101])
def test_invalid_dates_are_refused(text) -> None:
    with pytest.raises(InvalidDateTime):
        parse_fhir_datetime(text)


@pytest.mark.parametrize(("element", "value", "column", "reason"), [
    ("authoredOn", "2027-02-30", "authored_on", "invalid_datetime"),
    ("authoredOn", 20270201, "authored_on", "wrong_type"),
    ("intent", ["order"], "intent", "wrong_type"),
    ("doNotPerform", "yes", "do_not_perform", "wrong_type"),
])
def test_an_invalid_element_is_nulled_and_recorded_the_rest_kept(tmp_path: Path, element, value, column,
                                                                 reason) -> None:
    request = {"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p1"}, "authoredOn": "2027-02-01",
               "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                         "code": "197446"}]},
               "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2027-02-01",
                                                                              "end": "2027-05-01"}}}}],
               element: value}
    path = write(tmp_path / "MedicationRequest.ndjson", json.dumps(PATIENT) + "\n" + json.dumps(request) + "\n")
    result = read_fhir([path])
    # Nothing is lost: both resources accepted, read = accepted + quarantined.
    assert (result.resources_read, result.resources_accepted, result.resources_quarantined) == (2, 2, 0)
    (row,) = result.tables["medication_request"].to_pylist()
    assert row[column] in (None, False)
    assert row["bounds_start"] == datetime(2027, 2, 1) and row["status"] == "active"
    (issue,) = result.quarantine.to_pylist()
    assert (issue["source_file"], issue["source_line"], issue["resource_type"], issue["resource_id"],
            issue["element"], issue["reason"], issue["action"]) == (
        str(path), 2, "MedicationRequest", "r1", element, reason, "element_nulled")


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FhirInputError, match="no such file"):
        read_fhir([tmp_path / "nope"])
    with pytest.raises(FhirInputError, match="no FHIR files"):
        read_fhir([tmp_path])


def test_ingest_gives_the_same_tables_on_both_backends(tmp_path: Path, backend: str, engine_for) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write(inputs / "p.json", PATIENT)
    write(inputs / "e.json", ENCOUNTER)
    write(inputs / "bad.json", "{")
    engine = engine_for(backend)
    result = run_fhir_ingest(engine, None, tmp_path / "out", FhirInputs((inputs,)))
    assert result.reconciles and result.resources_quarantined == 1
    encounter = engine.fetch(engine.table("encounter")).to_pylist()
    assert (encounter[0]["period_start"], encounter[0]["period_start_offset"]) == (datetime(2025, 3, 10, 9, 0), -240)
    summary = {r["resource_type"]: (r["accepted"], r["quarantined"])
               for r in engine.fetch(engine.table("fhir_ingest_summary")).to_pylist()}
    assert summary == {"Encounter": (1, 0), "Patient": (1, 0), "(unknown)": (0, 1)}

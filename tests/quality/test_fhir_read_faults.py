"""FHIR ingest under bad input (issue 9, FHIR group): each fault found by probing ingest, reproduced with a generated
file, must end as quarantine rows or nulled elements — never an exception — and `read = accepted + quarantined`.
Then hypothesis fuzzes the NDJSON reader with random bytes and with random JSON types in every element."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.quality.fhir_read import FhirReadResult, read_fhir

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-04-02"}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
               "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},
               "effectiveDateTime": "2027-03-01T09:00:00Z", "valueQuantity": {"value": 24.9, "code": "kg/m2"}}


def reconciles(result: FhirReadResult) -> bool:
    return result.resources_read == result.resources_accepted + result.resources_quarantined


def quarantined(result: FhirReadResult) -> list[tuple[str, int, str]]:
    return [(r["reason"], r["source_line"], r["action"]) for r in result.quarantine.to_pylist()]


def ndjson(*resources: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def test_wrongly_typed_values_are_nulled_or_quarantined_not_fatal(tmp_path: Path) -> None:
    """`"gender": ["male"]` and `resourceType: 5` used to end the ingest with an ArrowTypeError."""
    path = tmp_path / "x.ndjson"
    path.write_text(ndjson({**PATIENT, "gender": ["male"]}, {**OBSERVATION, "resourceType": 5}), encoding="utf-8")
    result = read_fhir([path])
    assert (result.resources_read, result.resources_accepted, result.resources_quarantined) == (2, 1, 1)
    assert result.tables["patient"].column("gender").to_pylist() == [None]
    rows = {(r["reason"], r["element"], r["action"]) for r in result.quarantine.to_pylist()}
    assert rows == {("wrong_type", "gender", "element_nulled"), ("missing_resource_type", None, "quarantined")}


def test_undecodable_text_is_one_quarantine_row_per_line(tmp_path: Path) -> None:
    """Random bytes and Latin-1 text used to raise UnicodeDecodeError."""
    path = tmp_path / "x.ndjson"
    path.write_bytes(json.dumps(PATIENT).encode() + b"\n" + '{"resourceType": "Patient", "id": "Jos\xe9"}'.encode(
        "latin-1") + b"\n\xff\xfe\x00garbage\n")
    result = read_fhir([path])
    assert reconciles(result) and result.resources_accepted == 1
    assert quarantined(result) == [("not_utf8", 2, "quarantined"), ("not_utf8", 3, "quarantined")]


def test_very_deep_json_is_quarantined(tmp_path: Path) -> None:
    """10,000-deep JSON on one NDJSON line used to raise RecursionError."""
    path = tmp_path / "x.ndjson"
    path.write_text(ndjson(PATIENT) + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    result = read_fhir([path])
    assert reconciles(result) and quarantined(result) == [("too_deep", 2, "quarantined")]


def test_bundle_entry_that_is_not_an_array_is_quarantined(tmp_path: Path) -> None:
    """`"entry": 5` used to raise TypeError."""
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": 5}), encoding="utf-8")
    result = read_fhir([path])
    assert reconciles(result) and quarantined(result) == [("malformed_bundle", 1, "quarantined")]


def test_plain_text_named_gz_and_a_truncated_gz(tmp_path: Path) -> None:
    """Plain text named .gz used to raise BadGzipFile; a truncated .gz printed only "Aborted."."""
    (tmp_path / "a.ndjson.gz").write_text(ndjson(PATIENT), encoding="utf-8")
    whole = gzip.compress(ndjson(*[{**PATIENT, "id": f"p{i}"} for i in range(2000)]).encode())
    (tmp_path / "b.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    result = read_fhir([tmp_path])
    assert reconciles(result)
    reasons = [(r["reason"], Path(r["source_file"]).name) for r in result.quarantine.to_pylist()]
    assert reasons == [("unreadable_file", "a.ndjson.gz"), ("unreadable_file", "b.ndjson.gz")]
    assert 0 < result.resources_accepted < 2000  # the lines before the break are kept
    detail = result.quarantine.to_pylist()[1]["detail"]
    assert "ends early or is corrupt after line" in detail


def test_suffixes_in_any_case_and_files_not_read_are_listed(tmp_path: Path) -> None:
    """`Patient.NDJSON` used to be skipped without a word; other files are now listed."""
    (tmp_path / "Patient.NDJSON").write_text(ndjson(PATIENT), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not FHIR", encoding="utf-8")
    result = read_fhir([tmp_path])
    assert result.resources_accepted == 1 and reconciles(result)
    (row,) = result.quarantine.to_pylist()
    assert (Path(row["source_file"]).name, row["action"]) == ("notes.txt", "file_not_read")


def test_a_text_where_a_number_belongs_is_nulled_and_recorded(tmp_path: Path) -> None:
    """`valueQuantity.value: "high"` used to be accepted as null without a word."""
    path = tmp_path / "o.ndjson"
    path.write_text(ndjson(PATIENT, {**OBSERVATION, "valueQuantity": {"value": "high", "code": "kg/m2"}}),
                    encoding="utf-8")
    result = read_fhir([path])
    assert (result.resources_accepted, result.resources_quarantined) == (2, 0)
    (row,) = result.quarantine.to_pylist()
    assert (row["element"], row["reason"], row["action"], row["resource_id"]) == (
        "valueQuantity.value", "wrong_type", "element_nulled", "o1")
    assert result.tables["observation"].column("value_quantity").to_pylist() == [None]


def test_arrays_and_nested_bundles_count_their_members(tmp_path: Path) -> None:
    """A JSON array of 20 resources used to count as one quarantined resource; a Bundle in a Bundle hid its
    entries."""
    (tmp_path / "array.json").write_text(json.dumps([{**PATIENT, "id": f"a{i}"} for i in range(20)]),
                                         encoding="utf-8")
    inner = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": {**PATIENT, "id": f"n{i}"}} for i in range(3)]}
    outer = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": inner}, {"resource": PATIENT}]}
    (tmp_path / "bundle.json").write_text(json.dumps(outer), encoding="utf-8")
    result = read_fhir([tmp_path])
    assert (result.resources_read, result.resources_accepted, result.resources_quarantined) == (24, 24, 0)


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    """Duplicate resource ids used to be accepted twice; the same id for another patient is another resource."""
    other = {**OBSERVATION, "subject": {"reference": "Patient/p2"}}
    path = tmp_path / "x.ndjson"
    path.write_text(ndjson(PATIENT, {**PATIENT, "id": "p2"}, OBSERVATION, {**OBSERVATION, "status": "amended"},
                           other, PATIENT), encoding="utf-8")
    result = read_fhir([path])
    assert (result.resources_read, result.resources_accepted, result.resources_quarantined) == (6, 4, 2)
    assert quarantined(result) == [("duplicate_id", 4, "quarantined"), ("duplicate_id", 6, "quarantined")]
    assert result.tables["observation"].column("status").to_pylist() == ["final", "final"]


# --- Fuzzing ------------------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
TEMPLATES = [
    PATIENT, OBSERVATION,
    {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": "Patient/p1"},
     "class": {"code": "AMB"}, "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185463005"}]}],
     "period": {"start": "2027-01-01T09:00:00-05:00", "end": "2027-01-01"}, "length": {"value": 20, "code": "min"},
     "participant": [{"individual": {"reference": "Practitioner/n1"}}], "diagnosis": [
         {"condition": {"reference": "Condition/c1"}}]},
    {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order", "doNotPerform": False,
     "subject": {"reference": "Patient/p1"}, "authoredOn": "2027-02-01", "medicationReference": {"reference": "x/1"},
     "dispenseRequest": {"numberOfRepeatsAllowed": 1, "quantity": {"value": 30, "code": "{tbl}"},
                         "expectedSupplyDuration": {"value": 30, "code": "d"}},
     "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                                  "boundsPeriod": {"start": "2027-02-01"}}},
                            "doseAndRate": [{"doseQuantity": {"value": 1}}]}]},
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetPeriod": {"start": "2020"},
     "abatementPeriod": {"end": "2026-05"}, "recordedDate": "2020-01-01",
     "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I50.9"}]}},
]


def _mutations(template: dict) -> st.SearchStrategy[dict]:
    """The template with random JSON values put at random top-level and nested keys."""
    keys = sorted(template)
    return st.dictionaries(st.sampled_from(keys + ["extension", "modifierExtension", "valueQuantity"]), JSON_VALUES,
                           max_size=4).map(lambda changes: {**template, **changes})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resources=st.lists(st.sampled_from(TEMPLATES).flatmap(_mutations), min_size=1, max_size=6))
def test_fuzz_random_types_in_every_element(tmp_path_factory, resources: list[dict]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.ndjson"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in resources), encoding="utf-8")
    result = read_fhir([path])
    assert reconciles(result) and result.resources_read == len(resources)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".ndjson", ".json", ".ndjson.gz", ".json.gz"]),
       compress=st.booleans())
def test_fuzz_random_bytes(tmp_path_factory, content: bytes, suffix: str, compress: bool) -> None:
    path = tmp_path_factory.mktemp("bytes") / f"x{suffix}"
    path.write_bytes(gzip.compress(content) if compress else content)
    result = read_fhir([path])
    assert reconciles(result)

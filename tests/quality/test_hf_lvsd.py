"""Q008/CMS144 and Q005/CMS135 (shared AHAOverall logic in `hf_lvsd`): hand-built golden patients through the FHIR
reader, one per population and gap reason, evaluated on DuckDB and PySpark; plus the dosage-period collapse.

Every golden patient (unless stated) is born 1950, has two finished office visits in MP 2025 — E1 2025-03-10
09:00–09:30 and E2 2025-06-10 09:00–09:30 (CPT 99213, Office Visit) — a confirmed active heart-failure diagnosis
(ICD-10 I11.0) from 2025-01-15, so both visits are HF outpatient encounters, and (unless stated) a confirmed active
LVSD diagnosis (SNOMED 134401001, severity 24484000 "severe") from 2025-02-01, so both are HF-LVSD encounters.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.fhir_read import read_fhir
from openasm.quality.measures import measure_for
from openasm.quality.measures.cms135 import GAP_REASON as GAP_135
from openasm.quality.measures.cms144 import GAP_REASON as GAP_144
from openasm.quality.measures.hf_lvsd import OVERLAPS, Criterion, first_dosage_period
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.cql_datetime import END_OF_TIME, FhirDateTime
from openasm.quality.fhir_elements import moment_values
from openasm.quality.value_sets import value_set_codes

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
PERIOD = MeasurementPeriod.calendar_year(2025)
FLAGS = ("is_initial_population", "is_denominator", "is_denominator_exclusion", "is_numerator",
         "is_denominator_exception")


# --- FHIR builders (also used by test_cms90) ---------------------------------------------------------------------

def _cc(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def patient(pid: str, birth: str = "1950-01-01") -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": "female"}


def encounter(pid: str, eid: str, start: str, end: str, code: tuple[str, str] = (CPT, "99213"),
              status: str = "finished") -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "type": [_cc(*code)], "period": {"start": start, "end": end}}


def condition(pid: str, cid: str, code: tuple[str, str], onset: str | None, *, clinical: str = "active",
              verification: str | None = "confirmed", severity: str | None = None) -> dict:
    resource = {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
                "code": _cc(*code),
                "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical)}
    if verification:
        resource["verificationStatus"] = _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                             verification)
    if onset:
        resource["onsetDateTime"] = onset
    if severity:
        resource["severity"] = _cc(SNOMED, severity)
    return resource


def observation(pid: str, oid: str, code: tuple[str, str], when: str, value: float | None, unit: str | None, *,
                status: str = "final", category: str | None = None) -> dict:
    resource = {"resourceType": "Observation", "id": oid, "status": status, "subject": {"reference": f"Patient/{pid}"},
                "code": _cc(*code), "effectiveDateTime": when}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if category:
        resource["category"] = [_cc("http://terminology.hl7.org/CodeSystem/observation-category", category)]
    return resource


def medication_request(pid: str, mid: str, code: str, authored: str, *, bounds: tuple[str, str] | None = None,
                       status: str = "active", do_not_perform: bool = False) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
                "subject": {"reference": f"Patient/{pid}"}, "medicationCodeableConcept": _cc(RXNORM, code),
                "authoredOn": authored}
    if do_not_perform:
        resource["doNotPerform"] = True
    if bounds:
        resource["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"start": bounds[0],
                                                                                  "end": bounds[1]}}}}]
    return resource


def procedure(pid: str, prid: str, code: tuple[str, str], performed: str, status: str = "completed") -> dict:
    return {"resourceType": "Procedure", "id": prid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "code": _cc(*code), "performedDateTime": performed}


def allergy(pid: str, aid: str, code: tuple[str, str], onset: str, verification: str = "confirmed") -> dict:
    return {"resourceType": "AllergyIntolerance", "id": aid, "patient": {"reference": f"Patient/{pid}"},
            "code": _cc(*code), "onsetDateTime": onset,
            "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                      verification)}


def read_clinical(folder: Path, resources: list[dict]) -> ClinicalTables:
    """Write each resource to its own JSON file and read them through the FHIR reader (nothing quarantined)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, resource in enumerate(resources):
        (folder / f"{resource['resourceType']}-{index}.json").write_text(json.dumps(resource), encoding="utf-8")
    read = read_fhir([folder])
    assert read.resources_quarantined == 0, read.quarantine.to_pylist()
    return ClinicalTables.from_arrow(read.tables)


def evaluate(ecqm_id: str, clinical: ClinicalTables, con=None) -> dict[str, dict]:
    """patient_id → result row of one measure (on `con`, or DuckDB by default)."""
    expr = measure_for(ecqm_id).evaluate(clinical=clinical, value_set_code=ibis.memtable(value_set_codes()),
                                         period=PERIOD, rules=None)
    table = con.to_pyarrow(expr) if con is not None else expr.to_pyarrow()
    rows = table.to_pylist()
    assert len({r["patient_id"] for r in rows}) == len(rows), "one row per patient"
    return {r["patient_id"]: r for r in rows}


# --- Golden patients --------------------------------------------------------------------------------------------

def hf_patient(pid: str, *, lvsd: bool = True, birth: str = "1950-01-01") -> list[dict]:
    resources = [patient(pid, birth),
                 encounter(pid, "E1", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
                 encounter(pid, "E2", "2025-06-10T09:00:00Z", "2025-06-10T09:30:00Z"),
                 condition(pid, "HF", (ICD10, "I11.0"), "2025-01-15")]
    if lvsd:
        resources.append(condition(pid, "LVSD", (SNOMED, "134401001"), "2025-02-01", severity="24484000"))
    return resources


def golden_resources() -> list[dict]:
    r: list[dict] = []
    # Age 16 on 2025-01-01: not in the initial population, so no row.
    r += hf_patient("minor", birth="2008-06-01")
    # No LVSD finding: IP only.
    r += hf_patient("ip_only", lvsd=False)
    # Beta-blocker (RxNorm 200031) ordered during E2 → NUMER (CMS144).
    r += hf_patient("bb_ordered") + [medication_request("bb_ordered", "M1", "200031", "2025-06-10T09:15:00Z")]
    # Ordered 2024-11-01 with dosage bounds to 2025-12-31: the period overlaps E2 and ends after its day → NUMER.
    r += hf_patient("bb_active") + [medication_request("bb_active", "M1", "200031", "2024-11-01",
                                                       bounds=("2024-11-01", "2025-12-31"))]
    # Bounds end on E1's day (not after it) and before E2: not "overlaps after" either encounter → gap.
    r += hf_patient("bb_ended") + [medication_request("bb_ended", "M1", "200031", "2024-11-01",
                                                      bounds=("2024-11-01", "2025-03-10T18:00:00Z"))]
    # doNotPerform is a negation, not an order → gap.
    r += hf_patient("bb_not_given") + [medication_request("bb_not_given", "M1", "200031", "2025-06-10T09:15:00Z",
                                                          do_not_perform=True)]
    # LVSD from an ejection fraction of 35 % (LOINC 10230-1) taken during E1 → DENOM, gap.
    r += hf_patient("ef_35", lvsd=False) + [observation("ef_35", "EF", (LOINC, "10230-1"), "2025-03-10T09:10:00Z",
                                                        35, "%")]
    # An ejection fraction of 45 % is not moderate/severe LVSD → IP only.
    r += hf_patient("ef_45", lvsd=False) + [observation("ef_45", "EF", (LOINC, "10230-1"), "2025-03-10T09:10:00Z",
                                                        45, "%")]
    # LVAD placement (SNOMED 232967006) completed 2024-05-01, before the encounters end → DENEX (both measures).
    r += hf_patient("lvad") + [procedure("lvad", "P1", (SNOMED, "232967006"), "2024-05-01")]
    # Heart rates 45 then 48 /min during E2 → consecutive rates < 50 → DENEXCEP (CMS144).
    r += hf_patient("hr_slow") + [
        observation("hr_slow", "HR1", (LOINC, "8867-4"), "2025-06-10T09:05:00Z", 45, "/min"),
        observation("hr_slow", "HR2", (LOINC, "8867-4"), "2025-06-10T09:10:00Z", 48, "/min")]
    # The rate before the slow one is 70 /min → not consecutive → gap.
    r += hf_patient("hr_mixed") + [
        observation("hr_mixed", "HR1", (LOINC, "8867-4"), "2025-06-10T09:05:00Z", 70, "/min"),
        observation("hr_mixed", "HR2", (LOINC, "8867-4"), "2025-06-10T09:10:00Z", 45, "/min")]
    # AV block (I44.0) from 2025-05-01 overlaps E2 → DENEXCEP (CMS144) ...
    r += hf_patient("av_block") + [condition("av_block", "AV", (ICD10, "I44.0"), "2025-05-01")]
    # ... unless a cardiac pacer is in situ (Z95.0, active, so it overlaps after E2) → gap.
    r += hf_patient("av_paced") + [condition("av_paced", "AV", (ICD10, "I44.0"), "2025-05-01"),
                                   condition("av_paced", "PACER", (ICD10, "Z95.0"), "2025-05-01")]
    # Bradycardia (R00.1) from 2025-06-11, the day after E2: overlaps neither encounter → gap.
    r += hf_patient("brady_late") + [condition("brady_late", "BR", (ICD10, "R00.1"), "2025-06-11")]
    # ACE-I/ARB/ARNI (RxNorm 1091652) active all year → NUMER (CMS135).
    r += hf_patient("acei_active") + [medication_request("acei_active", "M1", "1091652", "2025-01-02",
                                                         bounds=("2025-01-02", "2025-12-31"))]
    # Pregnancy (O09.00) from 2025-01-10: within 9 months before E1 starts (2024-06-10 .. 2025-03-10) → DENEXCEP.
    r += hf_patient("pregnant") + [condition("pregnant", "PG", (ICD10, "O09.00"), "2025-01-10")]
    # Pregnancy from 2024-05-01: before 2024-06-10 (E1 − 9 months) and 2024-09-10 (E2 − 9 months) → gap.
    r += hf_patient("pregnant_earlier") + [condition("pregnant_earlier", "PG", (ICD10, "O09.00"), "2024-05-01")]
    # Confirmed active allergy to an ARB ingredient (RxNorm 1091643 azilsartan) since 2004 → DENEXCEP (CMS135) ...
    r += hf_patient("arb_allergy") + [allergy("arb_allergy", "AL", (RXNORM, "1091643"), "2004")]
    # ... but not when the allergy is unconfirmed → gap.
    r += hf_patient("arb_allergy_unconfirmed") + [allergy("arb_allergy_unconfirmed", "AL", (RXNORM, "1091643"),
                                                          "2004", verification="unconfirmed")]
    return r


# Expected (IP, DENOM, DENEX, NUMER, DENEXCEP) per patient; patients absent here have no row.
_GAP = (1, 1, 0, 0, 0)
EXPECTED_144 = {
    "ip_only": (1, 0, 0, 0, 0), "bb_ordered": (1, 1, 0, 1, 0), "bb_active": (1, 1, 0, 1, 0), "bb_ended": _GAP,
    "bb_not_given": _GAP, "ef_35": _GAP, "ef_45": (1, 0, 0, 0, 0), "lvad": (1, 1, 1, 0, 0),
    "hr_slow": (1, 1, 0, 0, 1), "hr_mixed": _GAP, "av_block": (1, 1, 0, 0, 1), "av_paced": _GAP, "brady_late": _GAP,
    "acei_active": _GAP, "pregnant": _GAP, "pregnant_earlier": _GAP, "arb_allergy": _GAP,
    "arb_allergy_unconfirmed": _GAP,
}
EXPECTED_135 = {
    **{pid: _GAP for pid in EXPECTED_144},
    "ip_only": (1, 0, 0, 0, 0), "ef_45": (1, 0, 0, 0, 0), "lvad": (1, 1, 1, 0, 0),
    "acei_active": (1, 1, 0, 1, 0), "pregnant": (1, 1, 0, 0, 1), "arb_allergy": (1, 1, 0, 0, 1),
}


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> ClinicalTables:
    return read_clinical(tmp_path_factory.mktemp("hf_lvsd"), golden_resources())


def flags(row: dict) -> tuple[int, ...]:
    return tuple(int(row[name]) for name in FLAGS)


@pytest.mark.parametrize(("ecqm_id", "expected"), [("CMS144", EXPECTED_144), ("CMS135", EXPECTED_135)])
def test_golden_populations_on_each_backend(backend, engine_for, golden, ecqm_id, expected) -> None:
    rows = evaluate(ecqm_id, golden, engine_for(backend).con)
    assert {pid: flags(row) for pid, row in rows.items()} == expected


def test_gap_reasons_encounters_and_evidence(golden) -> None:
    rows144, rows135 = evaluate("CMS144", golden), evaluate("CMS135", golden)
    # Denominator misses carry the measure's gap reason; met, excluded and excepted cases carry none.
    assert rows144["ef_35"]["gap_reason"] == GAP_144 and rows135["ef_35"]["gap_reason"] == GAP_135
    assert all(rows144[p]["gap_reason"] is None for p in ("bb_ordered", "lvad", "hr_slow", "ip_only"))
    assert rows144["ef_35"]["measure_id"] == "008" and rows135["ef_35"]["measure_id"] == "005"
    # The case sits on the latest HF-LVSD encounter (E2); its evidence names it and the LVSD finding.
    ef = rows144["ef_35"]
    assert ef["encounter_id"] == "E2" and set(ef["evidence"].split(";")) == {"Encounter/E2", "Observation/EF"}
    # A numerator case names the order and the encounter it was ordered in.
    assert set(rows144["bb_ordered"]["evidence"].split(";")) == {"Encounter/E2", "Condition/LVSD",
                                                                  "MedicationRequest/M1"}
    assert set(rows144["hr_slow"]["evidence"].split(";")) >= {"Observation/HR1", "Observation/HR2"}
    assert "Procedure/P1" in rows135["lvad"]["evidence"].split(";")
    # An IP-only case sits on its latest HF encounter, with the HF diagnosis as evidence.
    assert rows144["ip_only"]["encounter_id"] == "E2"
    assert set(rows144["ip_only"]["evidence"].split(";")) == {"Encounter/E2", "Condition/HF"}


def test_hf_encounter_needs_a_confirmed_active_diagnosis(tmp_path: Path) -> None:
    # HF diagnosis unconfirmed (verification "provisional"): no HF outpatient encounter, so no initial population.
    resources = hf_patient("p")
    resources[3] = condition("p", "HF", (ICD10, "I11.0"), "2025-01-15", verification="provisional")
    assert evaluate("CMS144", read_clinical(tmp_path, resources)) == {}


def test_one_qualifying_encounter_is_not_enough(tmp_path: Path) -> None:
    resources = [r for r in hf_patient("p") if r.get("id") != "E1"]
    assert evaluate("CMS135", read_clinical(tmp_path, resources)) == {}


def test_first_dosage_period_collapses_overlapping_and_meeting_bounds() -> None:
    def ts(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    rows = [  # request, start, end
        ("A", "2025-01-01", "2025-01-10"), ("A", "2025-01-10", "2025-02-01"), ("A", "2025-03-01", "2025-04-01"),
        ("B", "2025-05-01", None),
        ("C", None, "2025-06-01"),
        ("D", "2025-01-01", "2025-03-01"), ("D", "2025-02-01", "2025-02-15"), ("D", "2025-03-01 00:00:00.001", None),
    ]
    def exact(text: str | None) -> FhirDateTime | None:
        return FhirDateTime(ts(text), ts(text), 0) if text else None

    schema = CLINICAL_SCHEMAS["medication_request_dosage"]
    bounds = ibis.memtable(pa.Table.from_pylist([
        {"patient_id": "p", "resource_id": request, "dosage_index": index,
         **moment_values("bounds_start", exact(start)), **moment_values("bounds_end", exact(end))}
        for index, (request, start, end) in enumerate(rows)], schema=schema))
    got = {r["_d_id"]: (r["_d_start"], r["_d_end"]) for r in first_dosage_period(bounds).to_pyarrow().to_pylist()}
    assert got == {
        # [01-01, 01-10] and [01-10, 02-01] share 01-10 → merged; [03-01, 04-01] is a later interval.
        "A": (ts("2025-01-01"), ts("2025-02-01")),
        # No end: open to the end of time.
        "B": (ts("2025-05-01"), END_OF_TIME),
        # "C" has no start (unknown): no period.
        # [02-01, 02-15] lies inside [01-01, 03-01]; the third starts 1 ms after → meets → merged, no end.
        "D": (ts("2025-01-01"), END_OF_TIME),
    }


def test_criterion_rejects_unknown_timing() -> None:
    assert Criterion("x", "Condition", OVERLAPS, oids=("B.370",)).timing == OVERLAPS
    with pytest.raises(ValueError, match="unsupported timing"):
        Criterion("x", "Condition", "during", oids=("B.370",))

"""Shared eCQM exclusions (Hospice, PalliativeCare, AdvancedIllnessandFrailty; quality.md §4 common rules): tiny
FHIR patients written to JSON, read through `read_fhir`, evaluated for measurement period 2025 on DuckDB.

The FHIR builders here are reused by tests/quality/test_cms69.py and test_cms165.py.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import ibis
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.conformance import POPULATION_CODES, discover_suites, read_cases
from openasm.quality.fhir_read import read_fhir
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.cql_datetime import parse_fhir_datetime
from openasm.quality.fhir_elements import moment_values
from openasm.quality.measures import shared_exclusions as se
from openasm.quality.measures.common import prevalence_interval
from openasm.quality.measures.medication_duration import medication_request_period
from openasm.quality.value_sets import value_set_codes
from tests.conftest import assert_tables_equal

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
MP_2025 = MeasurementPeriod(date(2025, 1, 1), date(2025, 12, 31))
SUITES_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ecqm-tests"


# --- tiny FHIR builders ------------------------------------------------------------------------------------------

def cc(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def patient(pid: str, birth: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth}


def encounter(pid: str, rid: str, code: str, start: str, end: str | None, *, system: str = SCT,
              status: str = "finished", klass: str = "AMB", discharge: str | None = None) -> dict:
    res = {"resourceType": "Encounter", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
           "class": {"system": ACT, "code": klass}, "type": [cc(system, code)],
           "period": {"start": start, **({"end": end} if end else {})}}
    if discharge:
        res["hospitalization"] = {"dischargeDisposition": cc(SCT, discharge)}
    return res


def condition(pid: str, rid: str, code: str, *, system: str = ICD10, onset: str | None = None,
              abatement: str | None = None, status: str = "active", category: tuple[str, str] | None = None) -> dict:
    res = {"resourceType": "Condition", "id": rid, "subject": {"reference": f"Patient/{pid}"},
           "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", status),
           "code": cc(system, code)}
    if onset:
        res["onsetDateTime"] = onset
    if abatement:
        res["abatementDateTime"] = abatement
    if category:
        res["category"] = [cc(*category)]
    return res


def observation(pid: str, rid: str, code: str, effective: str, *, system: str = LOINC, status: str = "final",
                quantity: tuple[float, str] | None = None, value: tuple[str, str] | None = None,
                survey: bool = False, components: list[tuple[str, float]] | None = None,
                encounter_id: str | None = None, not_done_reason: tuple[str, str] | None = None) -> dict:
    res = {"resourceType": "Observation", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
           "code": cc(system, code), "effectiveDateTime": effective}
    if quantity:
        res["valueQuantity"] = {"value": quantity[0], "code": quantity[1], "system": "http://unitsofmeasure.org"}
    if value:
        res["valueCodeableConcept"] = cc(*value)
    if survey:
        res["category"] = [cc("http://terminology.hl7.org/CodeSystem/observation-category", "survey")]
    if components:
        res["component"] = [{"code": cc(LOINC, c), "valueQuantity": {"value": v, "code": "mm[Hg]"}}
                            for c, v in components]
    if encounter_id:
        res["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if not_done_reason:
        res["modifierExtension"] = [{"url": QICORE + "qicore-notDone", "valueBoolean": True}]
        res["extension"] = [{"url": QICORE + "qicore-notDoneReason", "valueCodeableConcept": cc(*not_done_reason)}]
    return res


def procedure(pid: str, rid: str, code: str, performed: str, *, system: str = SCT, status: str = "completed",
              reason: tuple[str, str] | None = None) -> dict:
    res = {"resourceType": "Procedure", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
           "code": cc(system, code), "performedDateTime": performed}
    if reason:
        res["reasonCode"] = [cc(*reason)]
    return res


def service_request(pid: str, rid: str, code: str, authored: str, *, system: str = SCT, status: str = "active",
                    reason: tuple[str, str] | None = None, not_requested_reason: tuple[str, str] | None = None,
                    resource_type: str = "ServiceRequest") -> dict:
    res = {"resourceType": resource_type, "id": rid, "status": status, "intent": "order",
           "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored}
    res["codeCodeableConcept" if resource_type == "DeviceRequest" else "code"] = cc(system, code)
    if reason:
        res["reasonCode"] = [cc(*reason)]
    if not_requested_reason:
        res["doNotPerform"] = True
        res["extension"] = [{"url": QICORE + "qicore-doNotPerformReason",
                             "valueCodeableConcept": cc(*not_requested_reason)}]
    return res


def medication_request(pid: str, rid: str, rxnorm: str, authored: str, *, status: str = "active",
                       supply_days: float | None = None, refills: int | None = None,
                       reason: tuple[str, str] | None = None, do_not_perform: bool = False,
                       as_reference: bool = False) -> tuple[dict, ...]:
    res = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
           "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored}
    extra: tuple[dict, ...] = ()
    if as_reference:
        res["medicationReference"] = {"reference": f"Medication/{rid}-med"}
        extra = ({"resourceType": "Medication", "id": f"{rid}-med", "code": cc(RXNORM, rxnorm)},)
    else:
        res["medicationCodeableConcept"] = cc(RXNORM, rxnorm)
    dispense = {}
    if supply_days is not None:
        dispense["expectedSupplyDuration"] = {"value": supply_days, "code": "d"}
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    if dispense:
        res["dispenseRequest"] = dispense
    if reason:
        res["reasonCode"] = [cc(*reason)]
    if do_not_perform:
        res["doNotPerform"] = True
    return (res, *extra)


def clinical_from(tmp_path: Path, *resources: dict | tuple[dict, ...]) -> ClinicalTables:
    """Write each resource to its own JSON file and read them back as clinical tables (nothing quarantined)."""
    flat = [r for item in resources for r in (item if isinstance(item, tuple) else (item,))]
    folder = tmp_path / "fhir"
    folder.mkdir(exist_ok=True)
    for index, res in enumerate(flat):
        (folder / f"{index:03d}-{res['resourceType']}.json").write_text(json.dumps(res), encoding="utf-8")
    read = read_fhir([folder])
    assert read.quarantine.num_rows == 0, read.quarantine.to_pylist()
    return ClinicalTables.from_arrow(read.tables)


@lru_cache(maxsize=1)
def value_set_arrow() -> pa.Table:
    """The shipped value-set codes (rules/codes/quality__value_set_codes.csv)."""
    return value_set_codes()


def value_set_table() -> ibis.Table:
    return ibis.memtable(value_set_arrow())


def check_conformance_on_backend(ecqm_id: str, evaluate, engine) -> int:
    """Evaluate all conformance cases of a measure on `engine` in one query; every population of every case must
    match its expected MeasureReport and the whole result (evidence, gap reasons) must equal DuckDB's.
    Returns the number of cases checked."""
    cases = next(iter(discover_suites(SUITES_ROOT, ecqm_id).values()))
    periods = {case.period for case in cases}
    assert len(periods) == 1
    expr = evaluate(clinical=ClinicalTables.from_arrow(read_cases(cases)), value_set_code=value_set_table(),
                    period=periods.pop(), rules=None)
    result = engine.con.to_pyarrow(expr)
    if engine.backend != "duckdb":
        assert_tables_equal(result, expr.to_pyarrow())
    flags = {(row["patient_id"], row["population_group"]): row for row in result.to_pylist()}
    failures = []
    for case in cases:
        for group, expected in enumerate(case.expected, start=1):
            row = flags.get((case.patient_id, group), {})
            for code, count in expected.items():
                if int(bool(row.get(POPULATION_CODES[code], False))) != count:
                    failures.append((case.case_id, case.title, group, code, count))
    assert not failures, failures
    return len(cases)


def patients_of(fn, clinical: ClinicalTables, **kw) -> dict[str, str]:
    """patient_id → evidence of a shared-exclusion function, run on DuckDB."""
    rows = fn(clinical=clinical, value_set_code=value_set_table(), period=MP_2025, **kw).to_pyarrow().to_pylist()
    return {row["patient_id"]: row["evidence"] for row in rows}


# --- Hospice -----------------------------------------------------------------------------------------------------

def test_hospice_each_path_and_its_timing(tmp_path):
    c = clinical_from(
        tmp_path,
        # Inpatient stay (183452005) discharged to hospice (428361000124107), ending in the MP → in.
        encounter("p1", "e1", "183452005", "2025-02-25T08:00:00Z", "2025-03-01T10:00:00Z", discharge="428361000124107"),
        # Same stay ending 2026-01-01 → out (must end during the MP).
        encounter("p2", "e1", "183452005", "2025-12-30T08:00:00Z", "2026-01-01T10:00:00Z", discharge="428361000124107"),
        # Hospice encounter (183919006) overlapping the MP start → in; one ending 2024-12-31 → out.
        encounter("p3", "e1", "183919006", "2024-12-15T08:00:00Z", "2025-01-02T08:00:00Z"),
        encounter("p4", "e1", "183919006", "2024-12-15T08:00:00Z", "2024-12-31T23:00:00Z"),
        # MDS hospice assessment answered Yes, survey category → in; without survey category → out.
        observation("p5", "o1", "45755-6", "2025-05-01", value=(SCT, "373066001"), survey=True),
        observation("p6", "o1", "45755-6", "2025-05-01", value=(SCT, "373066001")),
        # Hospice order (170935008) active → in; draft → out.
        service_request("p7", "s1", "170935008", "2025-04-01"),
        service_request("p8", "s1", "170935008", "2025-04-01", status="draft"),
        # Hospice diagnosis active since 2020 → in; resolved without abatement (unknown end) → out;
        # abated 2024-06-01 → out.
        condition("p9", "c1", "170935008", system=SCT, onset="2020-01-01"),
        condition("p10", "c1", "170935008", system=SCT, onset="2020-01-01", status="resolved"),
        condition("p11", "c1", "170935008", system=SCT, onset="2020-01-01", abatement="2024-06-01",
                  status="resolved"),
    )
    got = patients_of(se.hospice_patients, c)
    assert got == {"p1": "Encounter/e1", "p3": "Encounter/e1", "p5": "Observation/o1", "p7": "ServiceRequest/s1",
                   "p9": "Condition/c1"}


def test_palliative_paths(tmp_path):
    c = clinical_from(
        tmp_path,
        observation("p1", "o1", "71007-9", "2025-03-01", survey=True),  # FACIT-Pal → in
        condition("p2", "c1", "Z51.5", onset="2025-12-31"),  # palliative dx starting the last day → in
        procedure("p3", "x1", "103735009", "2025-06-01"),  # completed palliative intervention → in
        procedure("p4", "x1", "103735009", "2025-06-01", status="in-progress"),  # not completed → out
        condition("p5", "c1", "Z51.5", onset="2026-01-01"),  # starts after the MP → out
    )
    got = patients_of(se.palliative_patients, c)
    assert set(got) == {"p1", "p2", "p3"}
    assert got["p3"] == "Procedure/x1"


# --- Advanced illness and frailty ---------------------------------------------------------------------------------

FRAILTY_DX = "L89.000"
ADVANCED_ILLNESS = "A81.00"
DEMENTIA_RX = "1100184"


def test_age_bands_frailty_and_advanced_illness(tmp_path):
    # Ages at 2025-12-31: born 1955-06-01 → 70; 1944-12-31 → 81; 1945-01-01 → 80.
    c = clinical_from(
        tmp_path,
        patient("p70a", "1955-06-01"), condition("p70a", "f", FRAILTY_DX, onset="2025-02-01"),
        condition("p70a", "ai", ADVANCED_ILLNESS, onset="2024-01-01"),  # starts on MP start − 1 year → counts
        patient("p70b", "1955-06-01"), condition("p70b", "f", FRAILTY_DX, onset="2025-02-01"),
        condition("p70b", "ai", ADVANCED_ILLNESS, onset="2023-12-31"),  # one day too early
        patient("p81", "1944-12-31"), condition("p81", "f", FRAILTY_DX, onset="2025-02-01"),
        patient("p80", "1945-01-01"), condition("p80", "f", FRAILTY_DX, onset="2025-02-01"),
        patient("p65", "1960-01-01"), condition("p65", "f", FRAILTY_DX, onset="2025-02-01"),
        condition("p65", "ai", ADVANCED_ILLNESS, onset="2025-01-01"),
    )
    got = patients_of(se.advanced_illness_and_frailty_patients, c)
    assert got == {"p70a": "Condition/f;Condition/ai", "p81": "Condition/f"}


def test_frailty_device_order_do_not_perform_and_equipment_observation(tmp_path):
    device = "1142151007"  # in Frailty Device
    c = clinical_from(
        tmp_path,
        service_request("p1", "d1", device, "2025-03-01", resource_type="DeviceRequest", status="completed"),
        {**service_request("p2", "d1", device, "2025-03-01", resource_type="DeviceRequest"),
         "modifierExtension": [{"url": QICORE + "qicore-doNotPerform", "valueBoolean": True}]},
        observation("p3", "o1", "98181-1", "2025-03-01", value=(SCT, device), survey=True),
        observation("p4", "o1", "98181-1", "2025-03-01", value=(SCT, "000000"), survey=True),
        observation("p5", "o1", "R26.2", "2025-03-01", system=ICD10, status="preliminary"),  # frailty symptom
    )
    assert set(patients_of(se.frailty_patients, c)) == {"p1", "p3", "p5"}


def test_dementia_medication_period_and_reference_switch(tmp_path):
    c = clinical_from(
        tmp_path,
        # Authored 2023-11-01 with 90 days → [2023-11-01, 2024-01-29] overlaps [2024-01-01, 2025-12-31] → in.
        medication_request("p1", "m1", DEMENTIA_RX, "2023-11-01", supply_days=90),
        # 30 days → [2023-11-01, 2023-11-30] → out.
        medication_request("p2", "m1", DEMENTIA_RX, "2023-11-01", supply_days=30),
        # 30 days × (1 + 2 refills) = 90 days → in.
        medication_request("p3", "m1", DEMENTIA_RX, "2023-11-01", supply_days=30, refills=2),
        # No supply and no bounds → no period → out.
        medication_request("p4", "m1", DEMENTIA_RX, "2025-03-01"),
        # Completed (not active) → out.
        medication_request("p5", "m1", DEMENTIA_RX, "2025-03-01", supply_days=30, status="completed"),
        # Ordered through a Medication reference: out by default (CQLIT-412), in when references resolve.
        medication_request("p6", "m1", DEMENTIA_RX, "2025-03-01", supply_days=30, as_reference=True),
    )
    assert set(patients_of(se.dementia_medication_patients, c)) == {"p1", "p3"}
    assert set(patients_of(se.dementia_medication_patients, c, resolve_medication_reference=True)) == {
        "p1", "p3", "p6"}
    periods = medication_request_period(c.medication_request).to_pyarrow().to_pylist()
    by_patient = {row["patient_id"]: (row["med_period_start"], row["med_period_end"]) for row in periods}
    assert by_patient["p1"] == (date(2023, 11, 1), date(2024, 1, 29))  # 2023-11-01 + 89 days
    assert by_patient["p4"] == (None, None)


def test_nursing_home_uses_the_last_housing_status(tmp_path):
    nursing_home = (SCT, "160734000")
    c = clinical_from(
        tmp_path,
        patient("p1", "1950-01-01"),
        observation("p1", "h1", "71802-3", "2025-02-01", value=nursing_home, survey=True),
        patient("p2", "1950-01-01"),  # nursing home earlier, then a later status that is not → out
        observation("p2", "h1", "71802-3", "2025-02-01", value=nursing_home, survey=True),
        observation("p2", "h2", "71802-3", "2025-09-01", value=(SCT, "000000"), survey=True),
        patient("p3", "1960-06-01"),  # age 65 → out
        observation("p3", "h1", "71802-3", "2025-02-01", value=nursing_home, survey=True),
        patient("p4", "1950-01-01"),  # the last status is after the MP, so the one before counts → in
        observation("p4", "h1", "71802-3", "2025-02-01", value=nursing_home, survey=True),
        observation("p4", "h2", "71802-3", "2026-02-01", value=(SCT, "000000"), survey=True),
    )
    assert patients_of(se.nursing_home_patients, c) == {"p1": "Observation/h1", "p4": "Observation/h1"}


def test_prevalence_interval_end_semantics(tmp_path):
    c = clinical_from(
        tmp_path,
        condition("active", "c1", "I10", onset="2020-01-01"),
        condition("resolved", "c1", "I10", onset="2020-01-01", status="resolved"),
        condition("abated", "c1", "I10", onset="2020-01-01", abatement="2024-06-01", status="resolved"),
        condition("no-onset", "c1", "I10"),
    )
    cond = c.condition
    prevalence = prevalence_interval(cond)
    rows = cond.select("patient_id", start=prevalence.start.low, end=prevalence.end.low).to_pyarrow().to_pylist()
    got = {row["patient_id"]: tuple(row[b].year if row[b] else None for b in ("start", "end")) for row in rows}
    # Neither active nor abated: no interval at all (a query over a null source is null, FHIR-40225).
    assert got == {"active": (2020, 9999), "resolved": (None, None), "abated": (2020, 2024), "no-onset": (1800, 9999)}


@settings(max_examples=25, deadline=None)
@given(supply=st.integers(min_value=1, max_value=400), refills=st.integers(min_value=0, max_value=5),
       offset=st.integers(min_value=0, max_value=700))
def test_medication_request_period_covers_supply_times_fills(supply, refills, offset):
    """Property: with an expected supply of S days and R refills the period is [start, start + S × (1 + R) − 1]."""
    authored = date(2023, 1, 1) + timedelta(days=offset)
    row = {name: None for name in CLINICAL_SCHEMAS["medication_request"].names}
    row.update(patient_id="p", resource_id="m", expected_supply_days=float(supply), refills=float(refills),
               **moment_values("authored_on", parse_fhir_datetime(authored.isoformat())))
    orders = ibis.memtable(pa.Table.from_pylist([row], schema=CLINICAL_SCHEMAS["medication_request"]))
    row = medication_request_period(orders).to_pyarrow().to_pylist()[0]
    assert row["med_period_start"] == authored
    assert row["med_period_end"] == authored + timedelta(days=supply * (1 + refills) - 1)

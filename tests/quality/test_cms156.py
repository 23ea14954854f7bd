"""Q238 / CMS156 Use of High-Risk Medications in Older Adults (quality.md §4.1): hand-built golden patients for
measurement period 2025 (each numerator path, its gap reason, the exclusions and IP misses), a property of
moreThanOneOrder, and the published conformance cases on every backend (DuckDB and PySpark)."""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.quality.clinical import ClinicalTables
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.cql_datetime import parse_fhir_datetime
from openasm.quality.fhir_elements import moment_values
from openasm.quality.measures import measure_for
from openasm.quality.measures.cms156 import evaluate_cms156
from openasm.quality.measures.cms156_orders import high_risk_orders
from openasm.quality.measures.common import CASE_RESULT_COLUMNS
from tests.conftest import assert_tables_equal
from tests.quality.test_shared_exclusions import (
    ICD10,
    MP_2025,
    RXNORM,
    SCT,
    SUITES_ROOT,
    cc,
    check_conformance_on_backend,
    clinical_from,
    condition,
    encounter,
    patient,
    value_set_table,
)

OFFICE_VISIT = ("http://www.ama-assn.org/go/cpt", "99202")  # in Office Visit (A.101.12.1001)
CPT_99211 = ("http://www.ama-assn.org/go/cpt", "99211")  # direct-reference code of "Qualifying Encounters"
HOSPICE_ENCOUNTER = "183919006"  # in Hospice Encounter (A.1003)
CARISOPRODOL = "197446"  # carisoprodol 350 MG, in Skeletal Muscle Relaxants (A.1062)
NITROFURANTOIN = "1648755"  # in Anti-infectives (A.196.12.1481)
DIGOXIN_250 = "197606"  # digoxin 0.25 MG Oral Tablet (strength 0.25 mg)
DIGOXIN_62_5 = "245273"  # digoxin 0.0625 MG Oral Tablet
CLOBAZAM = "1366192"  # in Benzodiazepines (A.196.12.1522)
ANTIPSYCHOTIC = "1006801"  # in Antipsychotics (A.196.12.1523)
ANXIETY_DISORDER = "10586006"  # SNOMED, in Generalized Anxiety Disorder (A.105.12.1210)
SCHIZOPHRENIA = "F20.0"  # ICD-10-CM, in Schizophrenia (A.105.12.1205)


def order(pid: str, rid: str, rxnorm: str, authored: str, *, refills: int | None = None,
          bounds_start: str | None = None, supply_days: float | None = None, quantity: float | None = None,
          status: str = "active", intent: str = "order") -> dict:
    """A MedicationRequest with the dosage/dispense elements CumulativeMedicationDuration reads."""
    res = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": intent,
           "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored,
           "medicationCodeableConcept": cc(RXNORM, rxnorm)}
    if bounds_start:
        res["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"start": bounds_start}}}}]
    dispense: dict = {}
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    if supply_days is not None:
        dispense["expectedSupplyDuration"] = {"value": supply_days, "system": "http://unitsofmeasure.org",
                                              "code": "d"}
    if quantity is not None:
        dispense["quantity"] = {"value": quantity}
    if dispense:
        res["dispenseRequest"] = dispense
    return res


def elder(pid: str, *, birth: str = "1950-05-05", visit: tuple[str, str] = OFFICE_VISIT,
          status: str = "finished") -> tuple[dict, ...]:
    """A 75-year-old with one qualifying visit on 2025-03-01."""
    return (patient(pid, birth), encounter(pid, "visit", visit[1], "2025-03-01T09:00:00Z", "2025-03-01T09:30:00Z",
                                           system=visit[0], status=status))


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[ClinicalTables, pa.Table]:
    """The golden patients and their CMS156 result on DuckDB."""
    c = clinical_from(
        tmp_path_factory.mktemp("cms156"),
        # Two muscle-relaxant orders on different days → N1 (and N3).
        *elder("relaxants"), order("relaxants", "m1", CARISOPRODOL, "2025-02-01T10:00:00Z"),
        order("relaxants", "m2", CARISOPRODOL, "2025-03-01T10:00:00Z"),
        # One order with a refill → N1 ("moreThanOneOrder" rule a).
        *elder("refills"), order("refills", "m1", CARISOPRODOL, "2025-04-01T10:00:00Z", refills=2),
        # Same day, medicationRequestPeriods starting on different days in the MP → N1 (rule c).
        *elder("same-day"), order("same-day", "m1", CARISOPRODOL, "2025-04-01T10:00:00Z",
                                  bounds_start="2025-04-01", supply_days=30),
        order("same-day", "m2", CARISOPRODOL, "2025-04-01T11:00:00Z", bounds_start="2025-05-01", supply_days=30),
        # Same day, same start → one prescription event: no numerator.
        *elder("same-start"), order("same-start", "m1", CARISOPRODOL, "2025-04-01T10:00:00Z",
                                    bounds_start="2025-04-01", supply_days=30),
        order("same-start", "m2", CARISOPRODOL, "2025-04-01T11:00:00Z", bounds_start="2025-04-01", supply_days=30),
        # Anti-infectives: 61 + 30 = 91 days > 90 → N1; 61 + 29 = 90 → not.
        *elder("anti-91"), order("anti-91", "a1", NITROFURANTOIN, "2025-01-10T08:00:00Z", supply_days=61),
        order("anti-91", "a2", NITROFURANTOIN, "2025-03-15T08:00:00Z", supply_days=30),
        *elder("anti-90"), order("anti-90", "a1", NITROFURANTOIN, "2025-01-10T08:00:00Z", supply_days=61),
        order("anti-90", "a2", NITROFURANTOIN, "2025-03-15T08:00:00Z", supply_days=29),
        # Digoxin 0.25 mg × 10 tablets over 10 days = 0.25 mg/day > 0.125 → N1; 0.0625 mg tablets → 0.0625 → not.
        *elder("digoxin-high"),
        order("digoxin-high", "d1", DIGOXIN_250, "2025-02-01T08:00:00Z", supply_days=10, quantity=10),
        order("digoxin-high", "d2", DIGOXIN_250, "2025-02-15T08:00:00Z", supply_days=10, quantity=10),
        *elder("digoxin-low"),
        order("digoxin-low", "d1", DIGOXIN_62_5, "2025-02-01T08:00:00Z", supply_days=10, quantity=10),
        order("digoxin-low", "d2", DIGOXIN_62_5, "2025-02-15T08:00:00Z", supply_days=10, quantity=10),
        # Two benzodiazepine orders with an active anxiety disorder since mid-2024 → appropriate: no N2.
        *elder("benzo-gad"), order("benzo-gad", "b1", CLOBAZAM, "2025-02-01T08:00:00Z"),
        order("benzo-gad", "b2", CLOBAZAM, "2025-05-01T08:00:00Z"),
        condition("benzo-gad", "gad", ANXIETY_DISORDER, system=SCT, onset="2024-06-01"),
        # Two antipsychotic orders; schizophrenia resolved mid-2023, before the one-year look-back → N2 (and N3).
        *elder("antipsychotic"), order("antipsychotic", "p1", ANTIPSYCHOTIC, "2025-02-01T08:00:00Z"),
        order("antipsychotic", "p2", ANTIPSYCHOTIC, "2025-06-01T08:00:00Z"),
        condition("antipsychotic", "scz", SCHIZOPHRENIA, system=ICD10, onset="2020-01-01",
                  abatement="2023-06-30", status="resolved"),
        # Hospice encounter in the MP → excluded, never in a numerator.
        *elder("hospice"), encounter("hospice", "h1", HOSPICE_ENCOUNTER, "2025-06-01T08:00:00Z",
                                     "2025-06-02T08:00:00Z"),
        order("hospice", "m1", CARISOPRODOL, "2025-02-01T10:00:00Z"),
        order("hospice", "m2", CARISOPRODOL, "2025-03-01T10:00:00Z"),
        # Orders that are not orders (a plan) do not count.
        *elder("plans"), order("plans", "m1", CARISOPRODOL, "2025-02-01T10:00:00Z", intent="plan"),
        order("plans", "m2", CARISOPRODOL, "2025-03-01T10:00:00Z", intent="plan"),
        # 99211 visit (direct-reference code) qualifies; nothing ordered.
        *elder("nurse-visit", visit=CPT_99211),
        # Age 64 on 2025-12-31 and a cancelled visit: not in the initial population.
        *elder("age-64", birth="1961-06-01"), order("age-64", "m1", CARISOPRODOL, "2025-02-01T10:00:00Z"),
        order("age-64", "m2", CARISOPRODOL, "2025-03-01T10:00:00Z"),
        *elder("cancelled-visit", status="cancelled"),
    )
    result = evaluate_cms156(clinical=c, value_set_code=value_set_table(), period=MP_2025, rules=None)
    return c, result.to_pyarrow()


def rows_by_group(result: pa.Table) -> dict[tuple[str, int], dict]:
    return {(row["patient_id"], row["population_group"]): row for row in result.to_pylist()}


def numerator(result: pa.Table, group: int) -> set[str]:
    return {r["patient_id"] for r in result.to_pylist() if r["population_group"] == group and r["is_numerator"]}


def test_result_contract_and_three_groups(golden):
    _, result = golden
    assert tuple(result.column_names) == CASE_RESULT_COLUMNS
    rows = result.to_pylist()
    assert {(r["population_group"], r["stratum"]) for r in rows} == {
        (1, "overall"), (2, "appropriateDiagnosis"), (3, "totalRate")}
    assert {r["measure_id"] for r in rows} == {"238"} and {r["ecqm_id"] for r in rows} == {"CMS156"}
    # Every IP patient has exactly three rows, all with the same IP/DENOM/DENEX and the qualifying encounter.
    patients = {r["patient_id"] for r in rows}
    assert len(rows) == 3 * len(patients)
    assert all(r["is_initial_population"] and r["is_denominator"] and r["encounter_id"] == "visit" for r in rows)
    assert not any(r["is_denominator_exception"] for r in rows)


def test_initial_population_age_encounter_and_direct_code(golden):
    _, result = golden
    patients = {r["patient_id"] for r in result.to_pylist()}
    assert "nurse-visit" in patients  # CPT 99211
    assert not {"age-64", "cancelled-visit"} & patients  # 64 at MP end; visit not performed


def test_numerator_1_paths(golden):
    _, result = golden
    assert numerator(result, 1) == {"relaxants", "refills", "same-day", "anti-91", "digoxin-high"}


def test_numerator_2_and_3(golden):
    _, result = golden
    assert numerator(result, 2) == {"antipsychotic"}  # benzo-gad has an appropriate diagnosis
    # N3 = N1 ∪ N2, each patient once.
    assert numerator(result, 3) == numerator(result, 1) | numerator(result, 2)


def test_gap_reasons_name_what_was_ordered(golden):
    _, result = golden
    got = rows_by_group(result)
    assert got[("relaxants", 1)]["gap_reason"] == "2 orders of skeletal muscle relaxants (high-risk class)"
    assert got[("refills", 1)]["gap_reason"] == "1 order with refills of skeletal muscle relaxants (high-risk class)"
    assert got[("anti-91", 1)]["gap_reason"] == "anti-infectives ordered for 91 days in total (more than 90)"
    # 10 tablets × 0.25 mg ÷ 10 days = 0.25 mg/day.
    assert got[("digoxin-high", 1)]["gap_reason"] == "digoxin average daily dose 0.25 mg/day (limit 0.125 mg/day)"
    assert got[("antipsychotic", 2)]["gap_reason"] == (
        "2 orders of antipsychotics without a diagnosis of schizophrenia or bipolar disorder")
    assert got[("antipsychotic", 3)]["gap_reason"] == got[("antipsychotic", 2)]["gap_reason"]
    # Inverse measure: no gap outside the numerator.
    assert got[("antipsychotic", 1)]["gap_reason"] is None
    assert got[("nurse-visit", 1)]["gap_reason"] is None and got[("anti-90", 1)]["gap_reason"] is None


def test_evidence_lists_the_deciding_resources(golden):
    _, result = golden
    got = rows_by_group(result)
    assert got[("relaxants", 1)]["evidence"] == "Encounter/visit;MedicationRequest/m1;MedicationRequest/m2"
    assert got[("relaxants", 2)]["evidence"] == "Encounter/visit"
    assert got[("hospice", 1)]["evidence"] == "Encounter/visit;Encounter/h1"


def test_exclusion_wins_over_numerator(golden):
    _, result = golden
    got = rows_by_group(result)
    for group in (1, 2, 3):
        row = got[("hospice", group)]
        assert row["is_denominator_exclusion"] and not row["is_numerator"] and row["gap_reason"] is None
    assert not any(got[(p, 1)]["is_numerator"] for p in ("same-start", "anti-90", "digoxin-low", "plans"))


def test_registry_exposes_the_measure():
    measure = measure_for("CMS156")
    assert (measure.measure_id, measure.ecqm_id, measure.strata) == (
        "238", "CMS156", ("overall", "appropriateDiagnosis", "totalRate"))


# --- moreThanOneOrder property ------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-40, 400), st.integers(0, 2)), min_size=1, max_size=4))
def test_more_than_one_order_without_supply(orders):
    """Without dosage or supply (no medicationRequestPeriod), an order is kept iff it is authored in the MP and has
    a refill, or another order of the class is authored in the MP on a different day."""
    start = date(2025, 1, 1)
    days = [start + timedelta(days=offset) for offset, _ in orders]
    rows = [{name: None for name in CLINICAL_SCHEMAS["medication_request"].names} | {
        "patient_id": "p", "resource_id": f"o{i}", "status": "active", "intent": "order", "do_not_perform": False,
        "refills": float(refills), **moment_values("authored_on", parse_fhir_datetime(f"{day.isoformat()}T12:00:00Z"))}
        for i, ((_, refills), day) in enumerate(zip(orders, days))]
    mr = pa.Table.from_pylist(rows, schema=CLINICAL_SCHEMAS["medication_request"])
    coding = pa.table({"patient_id": ["p"] * len(orders), "resource_type": ["MedicationRequest"] * len(orders),
                       "resource_id": [f"o{i}" for i in range(len(orders))],
                       "element": ["medication"] * len(orders), "system": [RXNORM] * len(orders),
                       "code": [CARISOPRODOL] * len(orders)})
    got = high_risk_orders(clinical_coding=ibis.memtable(coding), medication_request=ibis.memtable(mr),
                           value_set_code=value_set_table(), period=MP_2025).to_pyarrow().to_pylist()
    kept = {r["resource_id"]: r["is_more_than_one_order"] for r in got}
    in_mp = [start <= d <= date(2025, 12, 31) for d in days]
    mp_days = {d for d, inside in zip(days, in_mp) if inside}
    for i, ((_, refills), day, inside) in enumerate(zip(orders, days, in_mp)):
        expected = inside and (refills >= 1 or len(mp_days - {day}) > 0)
        assert kept[f"o{i}"] == expected, (orders, i)


# --- every backend ------------------------------------------------------------------------------------------------

def test_golden_cases_same_on_every_backend(backend, engine_for, golden):
    clinical, expected = golden
    expr = evaluate_cms156(clinical=clinical, value_set_code=value_set_table(), period=MP_2025, rules=None)
    assert_tables_equal(engine_for(backend).con.to_pyarrow(expr), expected)


@pytest.mark.skipif(not SUITES_ROOT.is_dir(), reason=f"{SUITES_ROOT} is not present")
def test_conformance_cases_on_every_backend(backend, engine_for):
    assert check_conformance_on_backend("CMS156", evaluate_cms156, engine_for(backend)) > 0

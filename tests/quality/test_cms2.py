"""Q134 / CMS2 Screening for Depression and Follow-Up Plan (quality.md §4.2): hand-built golden patients for
measurement period 2025 (each population, each gap reason, the age-appropriate tools) on DuckDB, and the same
result on every backend (DuckDB and PySpark)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from openasm.quality.clinical import ClinicalTables
from openasm.quality.measures import measure_for
from openasm.quality.measures.cms2 import evaluate_cms2
from openasm.quality.measures.common import CASE_RESULT_COLUMNS
from tests.conftest import assert_tables_equal
from tests.quality.test_shared_exclusions import (
    LOINC,
    MP_2025,
    QICORE,
    SCT,
    cc,
    clinical_from,
    condition,
    encounter,
    medication_request,
    patient,
    procedure,
    service_request,
    value_set_table,
)

SCREEN_VISIT = "10197000"  # in Encounter to Screen for Depression (C.1916)
TELEPHONE = "185317003"  # in Telephone Visits (A.101.12.1080)
ADULT_TOOL, ADOLESCENT_TOOL = "73832-8", "73831-0"
NEGATIVE, POSITIVE = (SCT, "428171000124102"), (SCT, "428181000124104")
DECLINED = (SCT, "720834000")  # Depression screening declined
CONTRAINDICATED = (SCT, "183932001")  # in Medical Reason (B.1007)
ADULT_REFERRAL = "183524004"  # in Referral for Adult Depression (B.1571)
ADULT_MEDICATION = "1000048"  # doxepin 10 MG, in Adult Depression Medications (B.1566)
FAMILY_PSYCHOTHERAPY = "108313002"  # in Follow Up for Adult Depression (B.1568)
BIPOLAR = "F31.0"  # ICD-10-CM, in Bipolar Disorder
PROBLEM_LIST = ("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")
ENCOUNTER_DIAGNOSIS = ("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")
VISIT_DAY = "2025-06-20"


def visit(pid: str, *, birth: str = "1990-03-03", status: str = "finished",
          code: str = SCREEN_VISIT) -> tuple[dict, ...]:
    """A patient with one qualifying visit on 2025-06-20, 09:00–09:30 UTC."""
    return (patient(pid, birth), encounter(pid, "visit", code, f"{VISIT_DAY}T09:00:00Z", f"{VISIT_DAY}T09:30:00Z",
                                           status=status))


def screen(pid: str, rid: str, day: str, result: tuple[str, str], *, tool: str = ADULT_TOOL,
           status: str = "final") -> dict:
    return {"resourceType": "Observation", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "code": cc(LOINC, tool), "effectiveDateTime": f"{day}T08:00:00Z", "valueCodeableConcept": cc(*result)}


def not_screened(pid: str, rid: str, reason: tuple[str, str], *, tool: str = ADULT_TOOL) -> dict:
    """A screening not done (QI-Core notDone) issued during the visit, with its reason."""
    return {"resourceType": "Observation", "id": rid, "status": "cancelled", "subject": {"reference": f"Patient/{pid}"},
            "code": cc(LOINC, tool), "issued": f"{VISIT_DAY}T09:10:00Z",
            "modifierExtension": [{"url": QICORE + "qicore-notDone", "valueBoolean": True}],
            "extension": [{"url": QICORE + "qicore-notDoneReason", "valueCodeableConcept": cc(*reason)}]}


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[ClinicalTables, pa.Table]:
    """The golden patients (ages at 2025-01-01) and their CMS2 result on DuckDB."""
    c = clinical_from(
        tmp_path_factory.mktemp("cms2"),
        # Negative adult screen 10 days before the visit → met.
        *visit("negative"), screen("negative", "s1", "2025-06-10", NEGATIVE),
        # Positive on the visit day, referral authored 2 days after → met.
        *visit("referral"), screen("referral", "s1", VISIT_DAY, POSITIVE),
        service_request("referral", "r1", ADULT_REFERRAL, "2025-06-22T10:00:00Z"),
        # Positive, follow-up psychotherapy performed during the visit → met.
        *visit("procedure"), screen("procedure", "s1", "2025-06-18", POSITIVE),
        procedure("procedure", "f1", FAMILY_PSYCHOTHERAPY, f"{VISIT_DAY}T09:20:00Z"),
        # Positive, medication ordered 5 days after the visit → not met.
        *visit("late-follow-up"), screen("late-follow-up", "s1", VISIT_DAY, POSITIVE),
        *medication_request("late-follow-up", "m1", ADULT_MEDICATION, "2025-06-25T10:00:00Z"),
        # Exactly 14 days before the visit → inside the window; 19 days before → outside.
        *visit("fourteen-days"), screen("fourteen-days", "s1", "2025-06-06", NEGATIVE),
        *visit("too-early"), screen("too-early", "s1", "2025-06-01", NEGATIVE),
        # Most recent screen decides: older positive, newer negative → met; older negative, newer positive → not.
        *visit("newer-negative"), screen("newer-negative", "s1", "2025-06-12", POSITIVE),
        screen("newer-negative", "s2", "2025-06-18", NEGATIVE),
        *visit("newer-positive"), screen("newer-positive", "s1", "2025-06-12", NEGATIVE),
        screen("newer-positive", "s2", "2025-06-18", POSITIVE),
        # Age-appropriate tools: 14 years old with the adult tool → not met; 17 with the adult tool → met;
        # 14 with the adolescent tool → met.
        *visit("teen-adult-tool", birth="2010-07-01"), screen("teen-adult-tool", "s1", "2025-06-15", NEGATIVE),
        *visit("seventeen", birth="2007-08-01"), screen("seventeen", "s1", "2025-06-15", NEGATIVE),
        *visit("teen", birth="2010-07-01"),
        screen("teen", "s1", "2025-06-15", NEGATIVE, tool=ADOLESCENT_TOOL),
        # Telephone visit without any screen → not met.
        *visit("no-screen", code=TELEPHONE),
        # Bipolar disorder on the problem list before the visit → excluded; as an encounter diagnosis → not.
        *visit("bipolar"), condition("bipolar", "bp", BIPOLAR, onset="2020-01-01", category=PROBLEM_LIST),
        *visit("bipolar-encounter-dx"),
        condition("bipolar-encounter-dx", "bp", BIPOLAR, onset="2020-01-01", category=ENCOUNTER_DIAGNOSIS),
        # Screening declined during the visit → exception; a medical reason but a screen was done → no exception.
        *visit("declined"), not_screened("declined", "n1", DECLINED),
        *visit("reason-but-screened"), not_screened("reason-but-screened", "n1", CONTRAINDICATED),
        screen("reason-but-screened", "s1", "2025-06-15", POSITIVE),
        # Not in the initial population: 11 on 2025-01-01; visit not finished.
        *visit("eleven", birth="2013-01-02"), screen("eleven", "s1", "2025-06-15", NEGATIVE, tool=ADOLESCENT_TOOL),
        *visit("in-progress", status="in-progress"),
    )
    result = evaluate_cms2(clinical=c, value_set_code=value_set_table(), period=MP_2025, rules=None)
    return c, result.to_pyarrow()


def by_patient(result: pa.Table) -> dict[str, dict]:
    return {row["patient_id"]: row for row in result.to_pylist()}


def test_result_contract_and_initial_population(golden):
    _, result = golden
    assert tuple(result.column_names) == CASE_RESULT_COLUMNS
    got = by_patient(result)
    assert len(got) == result.num_rows  # one row per patient (one population group)
    assert not {"eleven", "in-progress"} & set(got)
    assert all(r["population_group"] == 1 and r["stratum"] == "overall" and r["encounter_id"] == "visit"
               and r["is_denominator"] for r in got.values())
    assert {r["measure_id"] for r in got.values()} == {"134"}


def test_numerator(golden):
    _, result = golden
    met = {pid for pid, row in by_patient(result).items() if row["is_numerator"]}
    assert met == {"negative", "fourteen-days", "referral", "procedure", "newer-negative", "seventeen", "teen"}


def test_exclusion_and_exception(golden):
    _, result = golden
    got = by_patient(result)
    assert {pid for pid, r in got.items() if r["is_denominator_exclusion"]} == {"bipolar"}
    assert {pid for pid, r in got.items() if r["is_denominator_exception"]} == {"declined"}
    assert got["declined"]["evidence"] == "Encounter/visit;Observation/n1"
    assert got["bipolar"]["evidence"] == "Condition/bp;Encounter/visit"


def test_gap_reasons(golden):
    _, result = golden
    gaps = {pid: row["gap_reason"] for pid, row in by_patient(result).items() if row["gap_reason"]}
    positive = "positive screen without follow-up plan on the encounter date or within 2 days after"
    missing = "no depression screening on or 14 days before the encounter"
    assert gaps == {
        "late-follow-up": positive, "newer-positive": positive, "reason-but-screened": positive,
        "too-early": missing, "no-screen": missing, "bipolar-encounter-dx": missing,
        "teen-adult-tool": "depression screening used the adult tool; ages 12 to 16 need the adolescent tool "
                           "(LOINC 73831-0)",
    }


def test_evidence_names_screen_and_follow_up(golden):
    _, result = golden
    got = by_patient(result)
    assert got["referral"]["evidence"] == "Encounter/visit;Observation/s1;ServiceRequest/r1"
    assert got["procedure"]["evidence"] == "Encounter/visit;Observation/s1;Procedure/f1"
    assert got["newer-negative"]["evidence"] == "Encounter/visit;Observation/s2"  # the most recent screen


def test_registry_exposes_the_measure():
    measure = measure_for("CMS2")
    assert (measure.measure_id, measure.ecqm_id, measure.strata) == ("134", "CMS2", ("overall",))


def test_golden_cases_same_on_every_backend(backend, engine_for, golden):
    clinical, expected = golden
    expr = evaluate_cms2(clinical=clinical, value_set_code=value_set_table(), period=MP_2025, rules=None)
    assert_tables_equal(engine_for(backend).con.to_pyarrow(expr), expected)


def test_same_day_screenings_tie_independently_of_input_order(tmp_path):
    """Two date-only screenings on one day tie in `sort by start of effective.toInterval()`; CQL leaves the order of
    ties open. fqm-execution's comparator answers "greater" for two equal DateTimes, so its `Last` is the screening
    that comes first in the Bundle (swapping the two flips its numerator; 5 patients of the date-only
    differential). openasm breaks the tie on the resources' own values (the greatest resource id is the most
    recent), the same whatever order the files list them in: argued, not followed."""
    def patient_with(pid: str, order: tuple[str, str]) -> list[dict]:
        screens = {"a-negative": NEGATIVE, "b-positive": POSITIVE}
        rows = [{**screen(pid, rid, VISIT_DAY, screens[rid]), "effectiveDateTime": VISIT_DAY} for rid in order]
        return [*visit(pid), *rows]

    c = clinical_from(tmp_path, *patient_with("neg-first", ("a-negative", "b-positive")),
                      *patient_with("pos-first", ("b-positive", "a-negative")))
    rows = {r["patient_id"]: r for r in evaluate_cms2(clinical=c, value_set_code=value_set_table(), period=MP_2025,
                                                      rules=None).to_pyarrow().to_pylist()}
    # The positive screen (greatest id) is the most recent in both orders; no follow-up → not in the numerator.
    assert [rows[pid]["is_numerator"] for pid in ("neg-first", "pos-first")] == [False, False]
    assert "Observation/b-positive" in rows["neg-first"]["evidence"]

"""Q134 / CMS2 — Preventive care and screening: screening for depression and follow-up plan (quality.md §4.2),
ported from the CQL of `PCSDepressionScreenAndFollowUpFHIR` (2025 package, QI-Core 4.1.1) embedded in the measure
definition.

Two screening tools run side by side, as a `tool` column: `adolescent` (LOINC 73831-0, for ages 12–16) and `adult`
(LOINC 73832-8, for 18+); at 17 either counts. Ages are taken at the start of the measurement period.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import DAY, Interval, Moment, before, contains, during, within_after, within_before
from openasm.quality.measures import EcqmMeasure
from openasm.quality.measures.common import (
    ANY_MEDICATION,
    LOINC,
    SNOMED,
    age_in_years,
    coded,
    collect_evidence,
    evidence_of,
    finalize_case_result,
    first_per_patient,
    having_code,
    having_value_set,
    period_of,
    prevalence_interval,
)
from openasm.rules import RulesForYear

MEASURE_ID = "134"
ECQM_ID = "CMS2"
STRATA = ("overall",)

# Ages at the start of the MP, as written in the CQL.
MIN_AGE = 12
ADOLESCENT_AGES = (12, 16)
EITHER_TOOL_AGE = 17
ADULT_MIN_AGE = 18
SCREEN_LOOKBACK_DAYS = 14  # screening "14 days or less on or before day of start of" the encounter
FOLLOW_UP_DAYS = 2  # follow-up order "2 days or less on or after day of end of" the encounter

QUALIFYING_ENCOUNTER_VALUE_SETS = ("C.1916", "B.1022", "A.101.12.1080")  # screen for depression, PT eval, telephone
BIPOLAR_DISORDER = "2.16.840.1.113883.3.67.1.101.1.128"
MEDICAL_REASON = "B.1007"
NEGATIVE_SCREEN = "428171000124102"  # Depression screening negative (finding)
POSITIVE_SCREEN = "428181000124104"  # Depression screening positive (finding)
SCREEN_DECLINED = "720834000"  # Depression screening declined (situation)
CONDITION_CATEGORIES = (("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item"),
                        ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern"))
ORDER_STATUSES = ("active", "completed")


@dataclass(frozen=True)
class ScreeningTool:
    """One screening assessment and the follow-up value sets that go with it."""

    loinc: str
    medications: str
    referral: str
    follow_up: str


SCREENING_TOOLS = {
    "adolescent": ScreeningTool(loinc="73831-0", medications="B.1567", referral="B.1570", follow_up="B.1569"),
    "adult": ScreeningTool(loinc="73832-8", medications="B.1566", referral="B.1571", follow_up="B.1568"),
}


def evaluate_cms2(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                  rules: RulesForYear | None = None) -> ir.Table:
    """CMS2 patient-level result (one population group). IP = DENOM: age ≥ 12 at MP start with a finished
    qualifying encounter during the MP. DENEX: bipolar disorder (problem list or health concern) starting before a
    qualifying encounter. NUMER: the most recent age-appropriate screen within 14 days before an encounter is
    negative, or positive with follow-up. DENEXCEP: screening not done for a medical or patient reason during an
    encounter, and no screen of that tool. `rules` is not used (no configurable parameter)."""
    c = clinical
    encounters = qualifying_encounters(clinical=c, value_set_code=value_set_code, period=period)
    screens = screenings_in_window(clinical=c, encounters=encounters, period=period)
    latest = _latest_per_tool(screens, period)
    followed = followed_up_positive_screens(clinical=c, value_set_code=value_set_code, period=period,
                                            latest=latest, encounters=encounters)
    not_screened = not_screened_for_reason(clinical=c, value_set_code=value_set_code, encounters=encounters,
                                           period=period)
    bipolar = bipolar_before_encounter(clinical=c, value_set_code=value_set_code, encounters=encounters,
                                       period=period)

    flags = _tool_flags(screens=screens, latest=latest, followed=followed, not_screened=not_screened)
    population = _initial_population(c.patient, encounters, period)
    cases = population.left_join(flags, population.patient_id == flags._t_patient)
    flag = {name: {tool: cases[f"{name}_{tool}"].fill_null(False) for tool in SCREENING_TOOLS}
            for name in ("screened", "negative", "positive", "followed", "not_done")}
    age = cases.age
    met = {tool: flag["negative"][tool] | flag["followed"][tool] for tool in SCREENING_TOOLS}
    numerator = _age_appropriate(age, met)
    exception = ibis.or_(*[flag["not_done"][tool] & ~flag["screened"][tool] for tool in SCREENING_TOOLS])
    appropriate_screen = _age_appropriate(age, flag["screened"])
    other_tool_only = ~appropriate_screen & (flag["screened"]["adolescent"] | flag["screened"]["adult"])
    gap = ibis.cases(
        (other_tool_only, ibis.ifelse(age >= ADULT_MIN_AGE,
                                      "depression screening used the adolescent tool; ages 18 and over need the "
                                      "adult tool (LOINC 73832-8)",
                                      "depression screening used the adult tool; ages 12 to 16 need the adolescent "
                                      "tool (LOINC 73831-0)")),
        (~appropriate_screen, "no depression screening on or 14 days before the encounter"),
        (_age_appropriate(age, flag["positive"]),
         "positive screen without follow-up plan on the encounter date or within 2 days after"),
        else_="most recent depression screening is recorded as neither positive nor negative")

    evidence = collect_evidence([
        population.select(patient_id=population.patient_id, evidence="Encounter/" + population.encounter_id),
        evidence_of(latest, "Observation"),
        followed.select("patient_id", "evidence"),
        not_screened.anti_join(screens, [not_screened.patient_id == screens.patient_id,
                                         not_screened.tool == screens.tool]).select("patient_id", "evidence"),
        bipolar.select("patient_id", "evidence")])
    ev = evidence.select(_v_patient="patient_id", _v_evidence="evidence")
    bp = bipolar.select(_b_patient="patient_id").distinct()
    cases = cases.mutate(_numerator=numerator, _exception=exception, _gap=gap)
    cases = cases.left_join(ev, cases.patient_id == ev._v_patient)
    cases = cases.left_join(bp, cases.patient_id == bp._b_patient)
    rows = cases.select(
        patient_id=cases.patient_id, population_group=ibis.literal(1, "int32"), stratum=ibis.literal(STRATA[0]),
        encounter_id=cases.encounter_id, is_initial_population=ibis.literal(True),
        is_denominator=ibis.literal(True), is_denominator_exclusion=cases._b_patient.notnull(),
        is_numerator=cases._numerator, is_denominator_exception=cases._exception, evidence=cases._v_evidence,
        gap_reason=cases._gap)
    return finalize_case_result(rows, measure_id=MEASURE_ID, ecqm_id=ECQM_ID)


def _age_appropriate(age: ir.IntegerValue, by_tool: dict[str, ir.BooleanValue]) -> ir.BooleanValue:
    """The "Numerator" age split: the adolescent tool counts at 12–16, either tool at 17, the adult tool at 18+."""
    adolescent, adult = by_tool["adolescent"], by_tool["adult"]
    return ((age.between(*ADOLESCENT_AGES) & adolescent) | ((age == EITHER_TOOL_AGE) & (adolescent | adult))
            | ((age >= ADULT_MIN_AGE) & adult))


def _tool_flags(*, screens: ir.Table, latest: ir.Table, followed: ir.Table, not_screened: ir.Table) -> ir.Table:
    """One row per patient (`_t_patient`) with `<flag>_<tool>` booleans: screened (a screen in the window),
    negative / positive (the most recent screen), followed (positive with follow-up), not_done (a reason)."""
    keys = ibis.union(screens.select("patient_id", "tool"), not_screened.select("patient_id", "tool"), distinct=True)
    last = latest.select(_l_patient="patient_id", _l_tool="tool", _l_negative="is_negative",
                         _l_positive="is_positive")
    per_tool = keys.left_join(last, [keys.patient_id == last._l_patient, keys.tool == last._l_tool])
    fu = followed.select(_f_patient="patient_id", _f_tool="tool").distinct()
    per_tool = per_tool.left_join(fu, [per_tool.patient_id == fu._f_patient, per_tool.tool == fu._f_tool])
    ns = not_screened.select(_n_patient="patient_id", _n_tool="tool").distinct()
    per_tool = per_tool.left_join(ns, [per_tool.patient_id == ns._n_patient, per_tool.tool == ns._n_tool])
    per_tool = per_tool.select(
        "patient_id", "tool", screened=per_tool._l_patient.notnull(),
        negative=per_tool._l_negative.fill_null(False), positive=per_tool._l_positive.fill_null(False),
        followed=per_tool._f_patient.notnull(), not_done=per_tool._n_patient.notnull())
    return per_tool.group_by(_t_patient=per_tool.patient_id).aggregate(**{
        f"{name}_{tool}": ((per_tool.tool == tool) & per_tool[name]).any()
        for tool in SCREENING_TOOLS for name in ("screened", "negative", "positive", "followed", "not_done")})


@shared_result("cms2_qualifying_encounters")
def qualifying_encounters(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Qualifying Encounter During Measurement Period": a finished encounter to screen for depression, physical
    therapy evaluation or telephone visit whose period is during day of the MP. Columns: patient_id, resource_id,
    period_start*, period_end*."""
    enc = coded(clinical.encounter.filter(clinical.encounter.status == "finished"), clinical, value_set_code,
                list(QUALIFYING_ENCOUNTER_VALUE_SETS), resource_type="Encounter", element="type")
    enc = enc.filter(during(period_of(enc, "period"), period.interval, DAY, tz=period.tz))
    return enc.select("patient_id", "resource_id", *[c for c in enc.columns if c.startswith("period_")])


def _encounter_starts(encounters: ir.Table) -> ir.Table:
    """(_e_patient, _e_start*, _e_end*) of the qualifying encounters, for joins."""
    return encounters.select(_e_patient=encounters.patient_id, **period_of(encounters, "period").columns("_e"))


@shared_result("cms2_screenings_in_window")
def screenings_in_window(*, clinical: ClinicalTables, encounters: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Final screening assessments with a value whose effective time ends 14 days or less on or before day of the
    start of a qualifying encounter ("Has ... Depression Screening"). One row per (patient, tool, observation):
    resource_id, effective_start*, is_positive, is_negative."""
    c = clinical
    obs = c.observation
    valued = c.clinical_coding.filter((c.clinical_coding.resource_type == "Observation")
                                      & (c.clinical_coding.element == "value"))
    finals = obs.filter(obs.status == "final")
    parts = [having_code(finals, c.clinical_coding, LOINC, spec.loinc, resource_type="Observation").mutate(
        tool=ibis.literal(tool)) for tool, spec in SCREENING_TOOLS.items()]
    screens = ibis.union(*parts)
    coded_value = screens.semi_join(valued, [screens.patient_id == valued.patient_id,
                                             screens.resource_id == valued.resource_id])
    scalar = screens.filter(screens.value_quantity.notnull() | screens.value_boolean.notnull()
                            | screens.value_string.notnull() | screens.value_datetime.notnull())
    screens = ibis.union(coded_value, scalar, distinct=True)
    enc = _encounter_starts(encounters)
    near = screens.join(enc, [screens.patient_id == enc._e_patient,
                              within_before(period_of(screens, "effective").end, Interval.of(enc, "_e").start,
                                            SCREEN_LOOKBACK_DAYS, tz=period.tz)])
    near = near.select("patient_id", "tool", "resource_id",
                       *[name for name in screens.columns if name.startswith("effective_start")]).distinct()
    return _with_result(near, c.clinical_coding)


def _with_result(screens: ir.Table, clinical_coding: ir.Table) -> ir.Table:
    """Adds is_positive / is_negative from the value coding (value ~ the SNOMED positive / negative finding)."""
    out = screens
    for column, code in (("is_positive", POSITIVE_SCREEN), ("is_negative", NEGATIVE_SCREEN)):
        hits = having_code(screens, clinical_coding, SNOMED, code, resource_type="Observation", element="value")
        hits = hits.select(_r_patient="patient_id", _r_resource="resource_id").distinct()
        out = out.left_join(hits, [out.patient_id == hits._r_patient, out.resource_id == hits._r_resource])
        out = out.mutate(**{column: out._r_patient.notnull()}).drop("_r_patient", "_r_resource")
    return out


def _latest_per_tool(screens: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Most Recent ... Depression Screening": the last by the start of its effective time (then id) per patient and
    tool."""
    order = Moment.of(screens, "effective_start").instant_span(period.tz)[0]
    return first_per_patient(screens, ibis.desc(order), ibis.desc(screens.resource_id), by=["patient_id", "tool"])


def follow_up_interventions(*, clinical: ClinicalTables, value_set_code: ir.Table) -> ir.Table:
    """"Follow Up Intervention for Positive ... Depression Screening" per tool: depression medication orders
    (active/completed, intent order; the ELM follows medicationReference), referrals (active/completed) and
    completed follow-up procedures; requests marked doNotPerform are of the negation profiles and never follow-up.
    Columns: patient_id, tool, evidence, performed_start*, authored_on*."""
    c = clinical
    mr, sr, pr = c.medication_request, c.service_request, c.procedure
    meds = mr.filter(mr.status.isin(ORDER_STATUSES) & (mr.intent == "order") & ~mr.do_not_perform.fill_null(False))
    referrals = sr.filter(sr.status.isin(ORDER_STATUSES) & ~sr.do_not_perform.fill_null(False))
    procedures = pr.filter(pr.status == "completed")
    unknown = Moment.unknown()
    parts = []
    for tool, spec in SCREENING_TOOLS.items():
        for table, resource_type, oids, element in (
                (meds, "MedicationRequest", spec.medications, ANY_MEDICATION),
                (referrals, "ServiceRequest", spec.referral, "code"),
                (procedures, "Procedure", spec.follow_up, "code")):
            rows = coded(table, c, value_set_code, oids, resource_type=resource_type, element=element)
            performed = period_of(rows, "performed").start if resource_type == "Procedure" else unknown
            authored = unknown if resource_type == "Procedure" else Moment.of(rows, "authored_on")
            parts.append(rows.select(
                patient_id=rows.patient_id, tool=ibis.literal(tool),
                evidence=ibis.literal(f"{resource_type}/") + rows.resource_id,
                **performed.columns("performed_start"), **authored.columns("authored_on")))
    return ibis.union(*parts, distinct=True)


def followed_up_positive_screens(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                                 latest: ir.Table, encounters: ir.Table) -> ir.Table:
    """"Most Recent ... Screening Positive and Follow Up Provided": the most recent screen is positive and starts
    14 days or less on or before day of the start of a qualifying encounter, and a follow-up either starts during
    that encounter or is authored 2 days or less on or after day of its end, and Coalesce(its start, authoredOn) is
    during day of the MP. Columns: patient_id, tool, evidence (the follow-up)."""
    tz = period.tz
    positive = latest.filter(latest.is_positive).select("patient_id", "tool",
                                                        **Moment.of(latest, "effective_start").columns("_p"))
    enc = _encounter_starts(encounters)
    pairs = positive.join(enc, positive.patient_id == enc._e_patient)
    pairs = pairs.filter(within_before(Moment.of(pairs, "_p"), Interval.of(pairs, "_e").start, SCREEN_LOOKBACK_DAYS,
                                       tz=tz))
    follow = follow_up_interventions(clinical=clinical, value_set_code=value_set_code)
    started = Moment.of(follow, "performed_start").or_else(Moment.of(follow, "authored_on"))
    follow = follow.filter(contains(period.interval, started, DAY, tz=tz))
    follow = follow.select(_f_patient="patient_id", _f_tool="tool", evidence="evidence",
                           **{f"_f_{name}": follow[name] for name in follow.columns
                              if name.startswith(("performed_start", "authored_on"))})
    joined = pairs.join(follow, [pairs.patient_id == follow._f_patient, pairs.tool == follow._f_tool])
    encounter = Interval.of(joined, "_e")
    during_visit = contains(encounter, Moment.of(joined, "_f_performed_start"), tz=tz)
    soon_after = within_after(Moment.of(joined, "_f_authored_on"), encounter.end, FOLLOW_UP_DAYS, tz=tz)
    joined = joined.filter(during_visit | soon_after)
    return joined.select("patient_id", "tool", "evidence").distinct()


def not_screened_for_reason(*, clinical: ClinicalTables, value_set_code: ir.Table, encounters: ir.Table,
                            period: MeasurementPeriod) -> ir.Table:
    """"Medical or Patient Reason for Not Screening ... for Depression": a cancelled (not done) screening assessment
    issued during a qualifying encounter, with reason "screening declined" or a medical reason.
    Columns: patient_id, tool, evidence."""
    c = clinical
    cancelled = c.observation.filter(c.observation.status == "cancelled")
    reasons = ibis.union(
        having_code(cancelled, c.clinical_coding, SNOMED, SCREEN_DECLINED, resource_type="Observation",
                    element="negation_reason"),
        having_value_set(cancelled, c.clinical_coding, value_set_code, MEDICAL_REASON, resource_type="Observation",
                         element="negation_reason"),
        distinct=True)
    enc = _encounter_starts(encounters)
    parts = []
    for tool, spec in SCREENING_TOOLS.items():
        rows = having_code(reasons, c.clinical_coding, LOINC, spec.loinc, resource_type="Observation")
        rows = rows.join(enc, [rows.patient_id == enc._e_patient,
                               contains(Interval.of(enc, "_e"), Moment.of(rows, "issued"), tz=period.tz)])
        parts.append(rows.select(patient_id=rows.patient_id, tool=ibis.literal(tool),
                                 evidence="Observation/" + rows.resource_id))
    return ibis.union(*parts, distinct=True)


def bipolar_before_encounter(*, clinical: ClinicalTables, value_set_code: ir.Table, encounters: ir.Table,
                             period: MeasurementPeriod) -> ir.Table:
    """"History of Bipolar Diagnosis Before Qualifying Encounter": a bipolar disorder problem-list item or health
    concern whose prevalence interval starts before a qualifying encounter starts (instants). Columns: patient_id,
    evidence."""
    c = clinical
    conditions = coded(c.condition, c, value_set_code, BIPOLAR_DISORDER, resource_type="Condition")
    categories = [having_code(conditions, c.clinical_coding, system, code, resource_type="Condition",
                              element="category") for system, code in CONDITION_CATEGORIES]
    conditions = ibis.union(*categories, distinct=True)
    conditions = conditions.select("patient_id", "resource_id", **prevalence_interval(conditions).start.columns("_p"))
    enc = _encounter_starts(encounters)
    before_visit = conditions.join(enc, [conditions.patient_id == enc._e_patient,
                                         before(Moment.of(conditions, "_p"), Interval.of(enc, "_e").closed_start(),
                                                tz=period.tz)])
    return evidence_of(before_visit, "Condition").distinct()


def _initial_population(patient: ir.Table, encounters: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Patients aged ≥ 12 at MP start with a qualifying encounter: patient_id, age, encounter_id (the latest
    qualifying encounter, by start then id)."""
    latest = first_per_patient(encounters, ibis.desc(encounters.period_start), ibis.desc(encounters.resource_id))
    latest = latest.select(_e_patient="patient_id", encounter_id="resource_id")
    aged = patient.select("patient_id", age=age_in_years(patient.birth_date, period.start_date))
    aged = aged.filter(aged.age >= MIN_AGE).distinct()
    joined = aged.join(latest, aged.patient_id == latest._e_patient)
    return joined.select("patient_id", "age", "encounter_id")


MEASURE = EcqmMeasure(measure_id=MEASURE_ID, ecqm_id=ECQM_ID, strata=STRATA, evaluate=evaluate_cms2,
                      title="Preventive Care and Screening: Screening for Depression and Follow-Up Plan")

"""Q236 / CMS165 — Controlling High Blood Pressure (quality.md §4.5), ported from ControllingHighBloodPressureFHIR
(2025 package, QI-Core 4.1.1) with the AdultOutpatientEncounters, Hospice, PalliativeCare and
AdvancedIllnessandFrailty libraries.

IP = DENOM: age 18–85 at the end of the MP, essential hypertension overlapping the first six months of the MP, and a
qualifying outpatient encounter during day of the MP. NUMER: on the most recent MP day with a qualifying
blood-pressure reading, the lowest systolic is < 140 and the lowest diastolic < 90 mm[Hg]. No exceptions.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import DAY, Interval, Moment, calendar_day, contains, during, overlaps, same_or_before
from openasm.quality.measures import EcqmMeasure, rule_value
from openasm.quality.measures.common import (
    LOINC,
    age_in_years,
    attach,
    coded,
    collect_evidence,
    evidence_of,
    finalize_case_result,
    first_per_patient,
    having_code,
    latest,
    period_of,
    prevalence_interval,
    quantity_in,
    with_profile,
)
from openasm.quality.measures.shared_exclusions import (
    encounters_performed,
    frailty_exclusion_patients,
    hospice_patients,
    palliative_patients,
    procedures_completed,
)
from openasm.rules import RulesForYear

MEASURE_ID, ECQM_ID = "236", "CMS165"

# Initial population, as written in the CQL.
AGE_RANGE = (18, 85)
HYPERTENSION_WINDOW_MONTHS = 6
VS_ESSENTIAL_HYPERTENSION = "A.104.12.1011"
VS_QUALIFYING_ENCOUNTERS = (  # AdultOutpatientEncounters."Qualifying Encounters"
    "A.101.12.1001", "B.1240", "A.101.12.1025", "A.101.12.1023", "A.101.12.1016", "A.101.12.1089", "A.101.12.1080")

# Exclusions specific to CMS165.
VS_PREGNANCY_OR_RENAL = ("B.378", "B.353", "A.109.12.1029", "B.1002")  # pregnancy, ESRD, transplant recipient, CKD 5
VS_ESRD_PROCEDURES = ("A.109.12.1012", "A.109.12.1013")  # kidney transplant, dialysis services
VS_ESRD_MONTHLY_SERVICES = "A.109.12.1014"

# Numerator: readings whose encounter has one of these classes do not qualify (v3 ActCode).
EXCLUDED_ENCOUNTER_CLASSES = ("EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS")
BP_PANEL_LOINC = "85354-9"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"  # ["observation-bp"]
SYSTOLIC_LOINC, DIASTOLIC_LOINC = "8480-6", "8462-4"
BP_STATUSES = ("final", "amended", "corrected")  # Status.isObservationBP
BP_UNIT = "mm[Hg]"
SYSTOLIC_BELOW, DIASTOLIC_BELOW = 140.0, 90.0


def evaluate_cms165(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                    rules: RulesForYear | None) -> ir.Table:
    """One row per patient in the initial population (population group 1), with evidence and gap reason."""
    resolve_reference = bool(rule_value(rules, "quality.ecqm_cms165_resolve_medication_reference"))
    c = clinical
    low, high = AGE_RANGE
    patients = c.patient.filter(age_in_years(c.patient.birth_date, period.end_date).between(low, high))
    # Inner joins: each piece is used once, so the plan (and Spark's job count) does not repeat subtrees.
    hypertension = collect_evidence([evidence_of(_essential_hypertension(c, value_set_code, period), "Condition")])
    hypertension = hypertension.select(_h_patient="patient_id", _h_evidence="evidence")
    encounters = _qualifying_encounters(c, value_set_code, period)
    last = first_per_patient(encounters, ibis.desc(encounters.period_start), ibis.desc(encounters.resource_id))
    last = last.select(_e_patient="patient_id", encounter_id="resource_id")
    ip = patients.select("patient_id")
    ip = ip.join(hypertension, ip.patient_id == hypertension._h_patient).select("patient_id", "_h_evidence")
    ip = ip.join(last, ip.patient_id == last._e_patient).select("patient_id", "_h_evidence", "encounter_id")

    kw = {"clinical": c, "value_set_code": value_set_code, "period": period}
    exclusion = collect_evidence([
        hospice_patients(**kw), palliative_patients(**kw), _renal_or_pregnancy_patients(c, value_set_code, period),
        frailty_exclusion_patients(**kw, resolve_medication_reference=resolve_reference)])
    excluded = exclusion.select(_x_patient="patient_id", _x_evidence="evidence")
    reading = _most_recent_day_reading(c, period).rename(_r_patient="patient_id")
    cases = attach(attach(ip, excluded, "_x_patient"), reading, "_r_patient")
    is_excluded = cases._x_patient.notnull()
    is_numerator = (cases.systolic < SYSTOLIC_BELOW) & (cases.diastolic < DIASTOLIC_BELOW)
    cases = cases.select(
        patient_id=cases.patient_id, population_group=ibis.literal(1), stratum=ibis.literal("overall"),
        encounter_id=cases.encounter_id, is_initial_population=ibis.literal(True), is_denominator=ibis.literal(True),
        is_denominator_exclusion=is_excluded, is_numerator=is_numerator.fill_null(False),
        # The hypertension diagnosis and the encounter, then what decided: the exclusion or the BP readings.
        evidence=ibis.literal(";").join([
            cases._h_evidence, ibis.literal("Encounter/") + cases.encounter_id,
            ibis.ifelse(is_excluded, cases._x_evidence, cases.bp_evidence)]),
        gap_reason=_gap_reason(cases.bp_day, cases.systolic, cases.diastolic))
    return finalize_case_result(cases, measure_id=MEASURE_ID, ecqm_id=ECQM_ID)


@shared_result("cms165_qualifying_encounters")
def _qualifying_encounters(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """AdultOutpatientEncounters: a performed encounter of the seven types whose period is during day of the MP."""
    enc = coded(encounters_performed(c.encounter), c, value_set_code, list(VS_QUALIFYING_ENCOUNTERS),
                resource_type="Encounter", element="type")
    return enc.filter(during(period_of(enc, "period"), period.interval, DAY, tz=period.tz))


@shared_result("cms165_essential_hypertension")
def _essential_hypertension(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Essential hypertension whose prevalence overlaps Interval[MP start, MP start + 6 months) (instants)."""
    conditions = coded(c.condition, c, value_set_code, VS_ESSENTIAL_HYPERTENSION, resource_type="Condition")
    first = period.start
    months = first.month - 1 + HYPERTENSION_WINDOW_MONTHS
    year, month = first.year + months // 12, months % 12 + 1
    # CQL date + months clamps the day to the length of the target month; `)` ends one millisecond before.
    window_end = calendar_day(datetime(year, month, min(first.day, calendar.monthrange(year, month)[1])).date())
    window = Interval(period.start_moment, Moment.at(window_end - timedelta(milliseconds=1), period.tz))
    return conditions.filter(overlaps(prevalence_interval(conditions), window, tz=period.tz))


@shared_result("cms165_renal_or_pregnancy_patients")
def _renal_or_pregnancy_patients(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Pregnancy or renal diagnosis overlapping the MP; kidney transplant or dialysis procedure (status ~ completed)
    ending on or before the MP end; ESRD monthly outpatient services encounter starting on or before the MP end."""
    tz = period.tz
    conditions = coded(c.condition, c, value_set_code, list(VS_PREGNANCY_OR_RENAL), resource_type="Condition")
    conditions = conditions.filter(overlaps(prevalence_interval(conditions), period.interval, tz=tz))
    procedures = coded(procedures_completed(c.procedure), c, value_set_code, list(VS_ESRD_PROCEDURES),
                       resource_type="Procedure")
    procedures = procedures.filter(same_or_before(period_of(procedures, "performed").end, period.end_moment, tz=tz))
    esrd = coded(encounters_performed(c.encounter), c, value_set_code, VS_ESRD_MONTHLY_SERVICES,
                 resource_type="Encounter", element="type")
    esrd = esrd.filter(same_or_before(period_of(esrd, "period").start, period.end_moment, tz=tz))
    return collect_evidence([evidence_of(conditions, "Condition"), evidence_of(procedures, "Procedure"),
                             evidence_of(esrd, "Encounter")])


@shared_result("cms165_most_recent_day_reading")
def _most_recent_day_reading(c: ClinicalTables, period: MeasurementPeriod) -> ir.Table:
    """Per patient: the most recent day (`date from` the latest effective time, as written) with a qualifying BP
    panel (final/amended/corrected, latest effective during day of the MP, its encounter's class not
    inpatient/emergency-type), and the lowest systolic and diastolic that day in mm[Hg]. As CQL's `sort asc` puts
    nulls first, a reading that day without a systolic (diastolic) value makes the lowest one unknown."""
    obs = c.observation
    panels = having_code(obs.filter(obs.status.isin(BP_STATUSES)), c.clinical_coding, LOINC, BP_PANEL_LOINC,
                         resource_type="Observation")
    panels = with_profile(panels, c.clinical_coding, BP_PROFILE, resource_type="Observation")
    enc = c.encounter.select(_e_patient="patient_id", _e_id="resource_id", _e_class="class_code")
    panels = panels.left_join(enc, [panels.patient_id == enc._e_patient, panels.encounter_ref == enc._e_id])
    panels = panels.filter(~panels._e_class.isin(EXCLUDED_ENCOUNTER_CLASSES).fill_null(False))
    when = latest(period_of(panels, "effective"))
    panels = panels.filter(contains(period.interval, when, DAY, tz=period.tz))
    panels = panels.select("patient_id", "resource_id", bp_day=when.date())
    last_day = panels.group_by("patient_id").aggregate(_last_day=panels.bp_day.max())
    on_day = panels.join(last_day, [panels.patient_id == last_day.patient_id, panels.bp_day == last_day._last_day])
    on_day = on_day.select("patient_id", "resource_id", "bp_day")
    values = _bp_components(c)
    readings = on_day.left_join(values, [on_day.patient_id == values._c_patient,
                                         on_day.resource_id == values._c_resource])
    return readings.group_by("patient_id").aggregate(
        bp_day=readings.bp_day.max(),
        systolic=ibis.ifelse(readings.systolic.isnull().any(), ibis.null("float64"), readings.systolic.min()),
        diastolic=ibis.ifelse(readings.diastolic.isnull().any(), ibis.null("float64"), readings.diastolic.min()),
        bp_evidence=(ibis.literal("Observation/") + readings.resource_id).collect(distinct=True).sort().join(";"))


def _bp_components(c: ClinicalTables) -> ir.Table:
    """Per observation: `singleton from (component where code ~ X return value as Quantity)` for the systolic and
    diastolic codes, in mm[Hg]. A unit UCUM cannot convert, or more than one matching component, leaves the value
    unknown."""
    comp = c.observation_component
    comp = comp.filter((comp.system == LOINC) & comp.code.isin([SYSTOLIC_LOINC, DIASTOLIC_LOINC]))
    value = quantity_in(comp.value_quantity, comp.value_unit, BP_UNIT)

    def singleton(code: str) -> ir.FloatingValue:
        is_code = comp.code == code
        return ibis.ifelse(is_code.sum() == 1, value.max(where=is_code), ibis.null("float64"))

    return comp.group_by(_c_patient=comp.patient_id, _c_resource=comp.resource_id).aggregate(
        systolic=singleton(SYSTOLIC_LOINC), diastolic=singleton(DIASTOLIC_LOINC))


def _mmhg(value: ir.FloatingValue) -> ir.StringValue:
    return ibis.ifelse(value == value.floor(), value.cast("int64").cast("string"), value.cast("string"))


def _gap_reason(day: ir.DateValue, systolic: ir.FloatingValue, diastolic: ir.FloatingValue) -> ir.StringValue:
    below = f"{SYSTOLIC_BELOW:g}/{DIASTOLIC_BELOW:g}"
    return ibis.cases(
        (day.isnull(), ibis.literal("no blood pressure recorded outside inpatient/emergency care in the "
                                    "measurement period")),
        (systolic.isnull() | diastolic.isnull(),
         ibis.literal("most recent blood pressure day lacks a systolic or diastolic value in mm[Hg]")),
        else_=ibis.literal("most recent BP ") + _mmhg(systolic) + "/" + _mmhg(diastolic) + f" not below {below}")


MEASURE = EcqmMeasure(measure_id=MEASURE_ID, ecqm_id=ECQM_ID, strata=("overall",), evaluate=evaluate_cms165,
                      title="Controlling High Blood Pressure")

"""Q128 / CMS69 — Preventive Care and Screening: BMI Screening and Follow-Up Plan (quality.md §4.3), ported from
PCSBMIScreenAndFollowUpFHIR (2025 package, QI-Core 4.1.1) with the Hospice and PalliativeCare libraries.

IP = DENOM: a finished, non-virtual "Encounter to Evaluate BMI" during day of the MP at age ≥ 18 on its start date.
DENEX: hospice, palliative care, or an active pregnancy diagnosis overlapping day of the MP.
NUMER: a BMI in the MP that is normal (18.5 ≤ BMI < 25 with no abnormal BMI in the MP), or abnormal with a follow-up
ordered/performed in the MP (`cms69_followup`). DENEXCEP: a medical reason for not ordering a follow-up, or a
medical/patient reason for not measuring BMI, on the day of a qualifying encounter. The medication retrieves of
this measure's ELM follow medicationReference.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import DAY, Moment, during, overlaps
from openasm.quality.measures import EcqmMeasure
from openasm.quality.measures.cms69_followup import (
    BMI_LOINC,
    BMI_UNIT,
    HIGH_BMI_FROM,
    LOW_BMI_BELOW,
    bmi_observations,
    high_bmi_followups,
    low_bmi_followups,
)
from openasm.quality.measures.common import (
    ANY_MEDICATION,
    LOINC,
    age_in_years,
    attach,
    coded,
    collect_evidence,
    equivalent,
    evidence_of,
    finalize_case_result,
    first_per_patient,
    having_code,
    having_value_set,
    period_of,
    prevalence_interval,
    with_profile,
)
from openasm.quality.measures.shared_exclusions import hospice_patients, palliative_patients
from openasm.rules import RulesForYear

MEASURE_ID, ECQM_ID = "128", "CMS69"

MIN_AGE = 18  # AgeInYearsAt(date from start of the encounter) >= 18
VS_ENCOUNTER_TO_EVALUATE_BMI = "C.1.1751"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
VIRTUAL_CLASS = "VR"
VS_PREGNANCY = "C.1.1623"
VS_MEDICAL_REASON = "B.1007"
VS_PATIENT_DECLINED = "B.1582"
OBSERVATION_NOT_DONE_PROFILE = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-observationnotdone"
VS_FOLLOW_UP_SERVICES = ("C.1.1527", "C.1.1525", "C.1.1528")  # referrals; above-normal; below-normal follow-up
VS_FOLLOW_UP_MEDICATIONS = ("B.1561", "B.1562")


def evaluate_cms69(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                   rules: RulesForYear | None) -> ir.Table:
    """One row per patient in the initial population (population group 1), with evidence and gap reason. `rules`
    is unused: the measure has no configurable parameter."""
    c = clinical
    encounters = qualifying_encounters(c, value_set_code, period)
    births = c.patient.select(_p_patient="patient_id", _p_birth="birth_date")
    adult = encounters.join(births, encounters.patient_id == births._p_patient)
    adult = adult.filter(age_in_years(adult._p_birth, Moment.of(adult, "period_start").date()) >= MIN_AGE)
    # One row per IP patient, with the most recent adult qualifying encounter (the one the case is attributed to).
    ip = first_per_patient(adult, ibis.desc(adult.period_start), ibis.desc(adult.resource_id))
    ip = ip.select(patient_id=ip.patient_id, encounter_id=ip.resource_id)

    kw = {"clinical": c, "value_set_code": value_set_code, "period": period}
    exclusion = collect_evidence([hospice_patients(**kw), palliative_patients(**kw),
                                  _pregnancy_patients(c, value_set_code, period)])
    exception = _exception_patients(c, value_set_code, encounters)

    bmi = bmi_observations(c, period)
    summary = bmi.group_by(_s_patient=bmi.patient_id).aggregate(
        _has_high=(bmi.value_quantity >= HIGH_BMI_FROM).any(),
        _has_low=(bmi.value_quantity < LOW_BMI_BELOW).any(),
        _max_high=bmi.value_quantity.max(where=bmi.value_quantity >= HIGH_BMI_FROM),
        _min_low=bmi.value_quantity.min(where=bmi.value_quantity < LOW_BMI_BELOW),
        _b_evidence=(ibis.literal("Observation/") + bmi.resource_id).collect(distinct=True).sort().join(";"))
    high_followed = high_bmi_followups(c, value_set_code, period)
    low_followed = low_bmi_followups(c, value_set_code, period)

    cases = attach(ip, summary, "_s_patient")
    cases = attach(cases, exclusion.select(_x_patient="patient_id", _x_evidence="evidence"), "_x_patient")
    cases = attach(cases, exception.select(_c_patient="patient_id", _c_evidence="evidence"), "_c_patient")
    cases = attach(cases, high_followed.select(_h_patient="patient_id", _h_evidence="evidence"), "_h_patient")
    cases = attach(cases, low_followed.select(_l_patient="patient_id", _l_evidence="evidence"), "_l_patient")

    has_bmi = cases._s_patient.notnull()
    high, low = cases._has_high.fill_null(False), cases._has_low.fill_null(False)
    high_ok = high & cases._h_patient.notnull()
    low_ok = low & cases._l_patient.notnull()
    is_numerator = high_ok | low_ok | (has_bmi & ~high & ~low)
    is_excluded = cases._x_patient.notnull()
    gap = ibis.cases(
        (~has_bmi, ibis.literal("BMI not documented in the measurement period")),
        (high & ~high_ok, ibis.literal("above-normal BMI (") + _number(cases._max_high)
         + f" ≥ {HIGH_BMI_FROM:g} {BMI_UNIT}) without a follow-up plan in the measurement period"),
        else_=ibis.literal("below-normal BMI (") + _number(cases._min_low)
        + f" < {LOW_BMI_BELOW:g} {BMI_UNIT}) without a follow-up plan in the measurement period")
    follow_up = ibis.ifelse(high_ok, cases._h_evidence, ibis.null("string")).fill_null(
        ibis.ifelse(low_ok, cases._l_evidence, ibis.null("string")))
    # The encounter and the BMIs, then what decided: the exclusion, the follow-up, or the exception.
    deciding = ibis.ifelse(is_excluded, cases._x_evidence, follow_up.fill_null(cases._c_evidence))
    cases = cases.select(
        patient_id=cases.patient_id, population_group=ibis.literal(1), stratum=ibis.literal("overall"),
        encounter_id=cases.encounter_id, is_initial_population=ibis.literal(True), is_denominator=ibis.literal(True),
        is_denominator_exclusion=is_excluded, is_numerator=is_numerator,
        is_denominator_exception=cases._c_patient.notnull(), gap_reason=gap,
        evidence=ibis.literal(";").join([ibis.literal("Encounter/") + cases.encounter_id, cases._b_evidence,
                                         deciding]))
    return finalize_case_result(cases, measure_id=MEASURE_ID, ecqm_id=ECQM_ID)


@shared_result("cms69_qualifying_encounters")
def qualifying_encounters(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Qualifying Encounter during Day of Measurement Period": Encounter to Evaluate BMI, status finished, class not
    virtual (ActCode VR), period during day of the MP (an encounter with no end never is)."""
    enc = c.encounter.filter(c.encounter.status == "finished")
    enc = coded(enc, c, value_set_code, VS_ENCOUNTER_TO_EVALUATE_BMI, resource_type="Encounter", element="type")
    cc = c.clinical_coding
    virtual = cc.filter((cc.resource_type == "Encounter") & (cc.element == "class") & (cc.system == ACT_CODE)
                        & (cc.code == VIRTUAL_CLASS))
    enc = enc.anti_join(virtual, [enc.patient_id == virtual.patient_id, enc.resource_id == virtual.resource_id])
    return enc.filter(during(period_of(enc, "period"), period.interval, DAY, tz=period.tz))


def _pregnancy_patients(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Is Pregnant during Day of Measurement Period": a pregnancy (or related) diagnosis with clinicalStatus
    `active` whose prevalence overlaps day of the MP. (The CQL also asks for a qualifying encounter, which every
    initial-population patient has.)"""
    conditions = coded(c.condition.filter(c.condition.clinical_status == "active"), c, value_set_code, VS_PREGNANCY,
                       resource_type="Condition")
    conditions = conditions.filter(overlaps(prevalence_interval(conditions), period.interval, DAY, tz=period.tz))
    return collect_evidence([evidence_of(conditions, "Condition")])


@shared_result("cms69_exception_patients")
def _exception_patients(c: ClinicalTables, value_set_code: ir.Table, encounters: ir.Table) -> ir.Table:
    """Denominator exceptions, each on the start day of a qualifying encounter (`same day as`): a follow-up service
    not requested (status ~ completed) with a medical reason (reasonRefused), a follow-up medication not requested
    (status ~ completed) with a medical reason (reasonCode), or a BMI observation cancelled (not done) for a medical
    reason or patient decline (notDoneReason) whose effective time ends that day."""
    days = encounters.select(_d_patient="patient_id", _d_day=Moment.of(encounters, "period_start").date())
    sr = c.service_request
    services = coded(sr.filter(sr.do_not_perform & equivalent(sr.status, "completed")), c, value_set_code,
                     list(VS_FOLLOW_UP_SERVICES), resource_type="ServiceRequest")
    services = having_value_set(services, c.clinical_coding, value_set_code, VS_MEDICAL_REASON,
                                resource_type="ServiceRequest", element="negation_reason")
    services = _on_encounter_day(services, Moment.of(services, "authored_on"), days)
    mr = c.medication_request
    medications = coded(mr.filter(mr.do_not_perform & equivalent(mr.status, "completed")), c, value_set_code,
                        list(VS_FOLLOW_UP_MEDICATIONS), resource_type="MedicationRequest", element=ANY_MEDICATION)
    medications = having_value_set(medications, c.clinical_coding, value_set_code, VS_MEDICAL_REASON,
                                   resource_type="MedicationRequest", element="reason_code")
    medications = _on_encounter_day(medications, Moment.of(medications, "authored_on"), days)
    obs = c.observation
    no_bmi = having_code(obs.filter(obs.status == "cancelled"), c.clinical_coding, LOINC, BMI_LOINC,
                         resource_type="Observation")
    no_bmi = with_profile(no_bmi, c.clinical_coding, OBSERVATION_NOT_DONE_PROFILE, resource_type="Observation")
    no_bmi = having_value_set(no_bmi, c.clinical_coding, value_set_code, [VS_MEDICAL_REASON, VS_PATIENT_DECLINED],
                              resource_type="Observation", element="negation_reason")
    no_bmi = _on_encounter_day(no_bmi, period_of(no_bmi, "effective").end, days)
    return collect_evidence([evidence_of(services, "ServiceRequest"), evidence_of(medications, "MedicationRequest"),
                             evidence_of(no_bmi, "Observation")])


def _on_encounter_day(table: ir.Table, when: Moment, days: ir.Table) -> ir.Table:
    """Rows whose `when` is the same day as (CQL `same day as`: both known to the day, dates as written) the start
    of one of the patient's qualifying encounters."""
    dated = table.mutate(_day=when.date())
    return dated.semi_join(days, [dated.patient_id == days._d_patient, dated._day == days._d_day]).drop("_day")


def _number(value: ir.FloatingValue) -> ir.StringValue:
    rounded = value.round(1)
    return ibis.ifelse(rounded == rounded.floor(), rounded.cast("int64").cast("string"), rounded.cast("string"))


MEASURE = EcqmMeasure(measure_id=MEASURE_ID, ecqm_id=ECQM_ID, strata=("overall",), evaluate=evaluate_cms69,
                      title="Preventive Care and Screening: Body Mass Index (BMI) Screening and Follow-Up Plan")

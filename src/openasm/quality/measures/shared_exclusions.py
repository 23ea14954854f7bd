"""Denominator exclusions shared by several eCQMs (quality.md §4 common rules), ported from the CQL libraries the
2025 measure packages embed: `Hospice` 6.12.000, `PalliativeCare` 1.11.000 and `AdvancedIllnessandFrailty` 1.16.000
(with the `Status`, `QICoreCommon` and `CumulativeMedicationDuration` functions they call).

Every public `*_patients` function takes the clinical tables, the value-set table and the measurement period and
returns one row per qualifying patient: (patient_id, evidence), evidence = the deciding resources as
`ResourceType/id` joined by `;`. Timing follows `cql_datetime` (precision, offsets, unknown → not counted).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import (
    DAY,
    Interval,
    Moment,
    calendar_day,
    contains,
    during,
    overlaps,
    same_or_before,
)
from openasm.quality.measures.common import (
    LOINC,
    SNOMED,
    age_in_years,
    coded,
    collect_evidence,
    equivalent,
    evidence_of,
    first_per_patient,
    having_code,
    medication_elements,
    period_of,
    point_of,
    prevalence_interval,
)
from openasm.quality.measures.medication_duration import medication_request_period

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Status library 1.8.000
ENCOUNTER_PERFORMED_STATUSES = ("finished", "arrived", "triaged", "in-progress", "onleave")  # isEncounterPerformed
ASSESSMENT_STATUSES = ("final", "amended", "corrected")  # isAssessmentPerformed
SYMPTOM_STATUSES = ("preliminary", "final", "amended", "corrected")  # isSymptom
ORDER_STATUSES = ("active", "completed")  # isInterventionOrder / isDeviceOrder (intent order)

# Direct-reference codes declared in the CQL libraries.
HOSPICE_DISCHARGE_CODES = ("428361000124107", "428371000124100")  # to home / to facility for hospice care (SNOMED)
HOSPICE_ASSESSMENT_LOINC = "45755-6"  # Hospice care [Minimum Data Set]
YES_SNOMED = "373066001"  # Yes (qualifier value)
PALLIATIVE_ASSESSMENT_LOINC = "71007-9"  # FACIT-Pal
MEDICAL_EQUIPMENT_USED_LOINC = "98181-1"
HOUSING_STATUS_LOINC = "71802-3"
LIVES_IN_NURSING_HOME_SNOMED = "160734000"

# Value sets (quality.md §4 short OIDs).
VS_ENCOUNTER_INPATIENT = "2.16.840.1.113883.3.666.5.307"
VS_HOSPICE_ENCOUNTER = "A.1003"
VS_HOSPICE_CARE_AMBULATORY = "B.1584"
VS_HOSPICE_DIAGNOSIS = "A.1165"
VS_PALLIATIVE_DIAGNOSIS = "A.1167"
VS_PALLIATIVE_ENCOUNTER = "A.101.12.1090"
VS_PALLIATIVE_INTERVENTION = "A.198.12.1135"
VS_FRAILTY_DEVICE = "A.118.12.1300"
VS_FRAILTY_DIAGNOSIS = "A.113.12.1074"
VS_FRAILTY_ENCOUNTER = "A.101.12.1088"
VS_FRAILTY_SYMPTOM = "A.113.12.1075"
VS_ADVANCED_ILLNESS = "A.110.12.1082"
VS_DEMENTIA_MEDICATIONS = "A.196.12.1510"

# AdvancedIllnessandFrailty age bands (AgeInYearsAt end of the measurement period), as written in the CQL.
FRAILTY_ADVANCED_ILLNESS_AGES = (66, 80)
FRAILTY_ONLY_MIN_AGE = 81
NURSING_HOME_MIN_AGE = 66
ADVANCED_ILLNESS_LOOKBACK_YEARS = 1


def encounters_performed(encounter: ir.Table) -> ir.Table:
    """Status.isEncounterPerformed."""
    return encounter.filter(encounter.status.isin(ENCOUNTER_PERFORMED_STATUSES))


def procedures_completed(procedure: ir.Table) -> ir.Table:
    """Status.isInterventionPerformed / isProcedurePerformed: status ~ 'completed'."""
    return procedure.filter(equivalent(procedure.status, "completed"))


def assessments_performed(observation: ir.Table, clinical_coding: ir.Table) -> ir.Table:
    """Status.isAssessmentPerformed: final/amended/corrected with a `survey` category."""
    done = observation.filter(observation.status.isin(ASSESSMENT_STATUSES))
    return having_code(done, clinical_coding, OBSERVATION_CATEGORY, "survey", resource_type="Observation",
                       element="category")


def orders_of(request: ir.Table) -> ir.Table:
    """Status.isInterventionOrder / isDeviceOrder: active or completed, intent order. A doNotPerform request is of
    the negation profile, which the positive retrieve does not return."""
    return request.filter(request.status.isin(ORDER_STATUSES) & (request.intent == "order")
                          & ~request.do_not_perform.fill_null(False))


def _assessments(c: ClinicalTables, loinc: str) -> ir.Table:
    """Assessments performed (Status.isAssessmentPerformed) with the LOINC code."""
    return having_code(assessments_performed(c.observation, c.clinical_coding), c.clinical_coding, LOINC, loinc,
                       resource_type="Observation")


def _overlapping(table: ir.Table, interval: Interval, period: MeasurementPeriod) -> ir.Table:
    return table.filter(overlaps(interval, period.interval, DAY, tz=period.tz))


# --- Hospice ----------------------------------------------------------------------------------------------------

@shared_result("hospice")
def hospice_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Hospice."Has Hospice Services": a performed inpatient encounter discharged to hospice whose period ends during
    day of the MP; a performed hospice encounter, an MDS hospice assessment answered Yes, or a completed ambulatory
    hospice procedure overlapping day of the MP; a hospice order (active/completed, intent order) authored during
    day of the MP; a hospice diagnosis whose prevalence overlaps day of the MP."""
    c, mp, tz = clinical, period.interval, period.tz
    performed = encounters_performed(c.encounter)
    inpatient = coded(performed, c, value_set_code, VS_ENCOUNTER_INPATIENT, resource_type="Encounter", element="type")
    discharged = having_code(inpatient, c.clinical_coding, SNOMED, HOSPICE_DISCHARGE_CODES, resource_type="Encounter",
                             element="discharge_disposition")
    discharged = discharged.filter(contains(mp, period_of(discharged, "period").end, DAY, tz=tz))
    hospice_enc = coded(performed, c, value_set_code, VS_HOSPICE_ENCOUNTER, resource_type="Encounter",
                        element="type")
    hospice_enc = _overlapping(hospice_enc, period_of(hospice_enc, "period"), period)
    mds = having_code(_assessments(c, HOSPICE_ASSESSMENT_LOINC), c.clinical_coding, SNOMED, YES_SNOMED,
                      resource_type="Observation", element="value")
    mds = _overlapping(mds, period_of(mds, "effective"), period)
    orders = coded(orders_of(c.service_request), c, value_set_code, VS_HOSPICE_CARE_AMBULATORY,
                   resource_type="ServiceRequest")
    orders = orders.filter(during(point_of(orders, "authored_on"), mp, DAY, tz=tz))
    procedures = _completed_procedures_overlapping(c, value_set_code, VS_HOSPICE_CARE_AMBULATORY, period)
    diagnoses = _conditions_overlapping(c, value_set_code, VS_HOSPICE_DIAGNOSIS, period)
    return collect_evidence([
        evidence_of(discharged, "Encounter"), evidence_of(hospice_enc, "Encounter"),
        evidence_of(mds, "Observation"), evidence_of(orders, "ServiceRequest"),
        evidence_of(procedures, "Procedure"), evidence_of(diagnoses, "Condition")])


# --- Palliative care --------------------------------------------------------------------------------------------

@shared_result("palliative")
def palliative_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                        period: MeasurementPeriod) -> ir.Table:
    """PalliativeCare."Has Palliative Care in the Measurement Period": a FACIT-Pal assessment, palliative care
    diagnosis, performed palliative care encounter or completed palliative intervention overlapping day of the MP."""
    c = clinical
    facit = _assessments(c, PALLIATIVE_ASSESSMENT_LOINC)
    facit = _overlapping(facit, period_of(facit, "effective"), period)
    diagnoses = _conditions_overlapping(c, value_set_code, VS_PALLIATIVE_DIAGNOSIS, period)
    encounters = coded(encounters_performed(c.encounter), c, value_set_code, VS_PALLIATIVE_ENCOUNTER,
                       resource_type="Encounter", element="type")
    encounters = _overlapping(encounters, period_of(encounters, "period"), period)
    interventions = _completed_procedures_overlapping(c, value_set_code, VS_PALLIATIVE_INTERVENTION, period)
    return collect_evidence([
        evidence_of(facit, "Observation"), evidence_of(diagnoses, "Condition"),
        evidence_of(encounters, "Encounter"), evidence_of(interventions, "Procedure")])


def _conditions_overlapping(c: ClinicalTables, value_set_code: ir.Table, oids: str,
                            period: MeasurementPeriod) -> ir.Table:
    conditions = coded(c.condition, c, value_set_code, oids, resource_type="Condition")
    return _overlapping(conditions, prevalence_interval(conditions), period)


def _completed_procedures_overlapping(c: ClinicalTables, value_set_code: ir.Table, oids: str,
                                      period: MeasurementPeriod) -> ir.Table:
    procedures = coded(procedures_completed(c.procedure), c, value_set_code, oids, resource_type="Procedure")
    return _overlapping(procedures, period_of(procedures, "performed"), period)


# --- Advanced illness and frailty -------------------------------------------------------------------------------

def frailty_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Criteria Indicating Frailty": a frailty device order (active/completed, intent
    order, not doNotPerform) authored during day of the MP; a "Medical equipment used" assessment with a
    frailty-device value ending during day of the MP; a frailty diagnosis, performed frailty encounter or frailty
    symptom (preliminary/final/amended/corrected) overlapping day of the MP."""
    c, mp, tz = clinical, period.interval, period.tz
    devices = coded(orders_of(c.device_request), c, value_set_code, VS_FRAILTY_DEVICE, resource_type="DeviceRequest")
    devices = devices.filter(during(point_of(devices, "authored_on"), mp, DAY, tz=tz))
    equipment = coded(_assessments(c, MEDICAL_EQUIPMENT_USED_LOINC), c, value_set_code, VS_FRAILTY_DEVICE,
                      resource_type="Observation", element="value")
    equipment = equipment.filter(contains(mp, period_of(equipment, "effective").end, DAY, tz=tz))
    diagnoses = _conditions_overlapping(c, value_set_code, VS_FRAILTY_DIAGNOSIS, period)
    encounters = coded(encounters_performed(c.encounter), c, value_set_code, VS_FRAILTY_ENCOUNTER,
                       resource_type="Encounter", element="type")
    encounters = _overlapping(encounters, period_of(encounters, "period"), period)
    obs = c.observation
    symptoms = coded(obs.filter(obs.status.isin(SYMPTOM_STATUSES)), c, value_set_code, VS_FRAILTY_SYMPTOM,
                     resource_type="Observation")
    symptoms = _overlapping(symptoms, period_of(symptoms, "effective"), period)
    return collect_evidence([
        evidence_of(devices, "DeviceRequest"), evidence_of(equipment, "Observation"),
        evidence_of(diagnoses, "Condition"), evidence_of(encounters, "Encounter"),
        evidence_of(symptoms, "Observation")])


def _lookback(period: MeasurementPeriod) -> Interval:
    """Interval[start of "Measurement Period" - 1 year, end of "Measurement Period"]."""
    start = period.start
    day = 28 if (start.month, start.day) == (2, 29) else start.day  # CQL date arithmetic clamps 29 February
    low = calendar_day(date(start.year - ADVANCED_ILLNESS_LOOKBACK_YEARS, start.month, day))
    return Interval(Moment.at(low, period.tz), period.end_moment)


def advanced_illness_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                              period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Advanced Illness in Year Before or During Measurement Period": an advanced
    illness diagnosis whose prevalence starts during day of [MP start − 1 year, MP end]."""
    conditions = coded(clinical.condition, clinical, value_set_code, VS_ADVANCED_ILLNESS, resource_type="Condition")
    conditions = conditions.filter(contains(_lookback(period), prevalence_interval(conditions).start, DAY,
                                            tz=period.tz))
    return collect_evidence([evidence_of(conditions, "Condition")])


def dementia_medication_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                                 resolve_medication_reference: bool = False) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Dementia Medications in Year Before or During Measurement Period": an active
    order (Status.isMedicationActive: status active, intent order; not doNotPerform) of a dementia medication whose
    medicationRequestPeriod overlaps day of [MP start − 1 year, MP end]. The 2025 ELM matches the inline
    medication code only (CQLIT-412); `resolve_medication_reference` also follows medicationReference."""
    mr = clinical.medication_request
    active = mr.filter((mr.status == "active") & (mr.intent == "order") & ~mr.do_not_perform.fill_null(False))
    orders = medication_request_period(coded(active, clinical, value_set_code, VS_DEMENTIA_MEDICATIONS,
                                             resource_type="MedicationRequest",
                                             element=medication_elements(resolve_medication_reference)))
    supplied = Interval(Moment.of_date(orders.med_period_start), Moment.of_date(orders.med_period_end))
    orders = orders.filter(overlaps(supplied, _lookback(period), DAY, tz=period.tz))
    return collect_evidence([evidence_of(orders, "MedicationRequest")])


def nursing_home_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                          period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Is Age 66 or Older Living Long Term in a Nursing Home": age ≥ 66 at MP end and the
    last housing-status assessment (sorted by the end of its effective time) among those ending on or before day of
    the MP end says "Lives in a nursing home"."""
    c = clinical
    housing = _assessments(c, HOUSING_STATUS_LOINC)
    housing = housing.filter(same_or_before(period_of(housing, "effective").end, period.end_moment, DAY,
                                            tz=period.tz))
    last = first_per_patient(housing, ibis.desc(housing.effective_end), ibis.desc(housing.resource_id))
    last = having_code(last, c.clinical_coding, SNOMED, LIVES_IN_NURSING_HOME_SNOMED, resource_type="Observation",
                       element="value")
    aged = _aged(c.patient, period, minimum=NURSING_HOME_MIN_AGE)
    last = last.semi_join(aged, last.patient_id == aged.patient_id)
    return collect_evidence([evidence_of(last, "Observation")])


def advanced_illness_and_frailty_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                                          period: MeasurementPeriod,
                                          resolve_medication_reference: bool = False) -> ir.Table:
    """AdvancedIllnessandFrailty."Is Age 66 to 80 with Advanced Illness and Frailty or Is Age 81 or Older with
    Frailty" (ages at MP end)."""
    kw = {"clinical": clinical, "value_set_code": value_set_code, "period": period}
    frail = frailty_patients(**kw)
    illness = collect_evidence([
        advanced_illness_patients(**kw),
        dementia_medication_patients(**kw, resolve_medication_reference=resolve_medication_reference)])
    low, high = FRAILTY_ADVANCED_ILLNESS_AGES
    p = clinical.patient
    ages = p.select(_a_patient=p.patient_id, _age=age_in_years(p.birth_date, period.end_date))
    ill = illness.select(_i_patient="patient_id", _i_evidence="evidence")
    frail = frail.join(ages, frail.patient_id == ages._a_patient).select("patient_id", "evidence", "_age")
    frail = frail.left_join(ill, frail.patient_id == ill._i_patient).select(
        "patient_id", "evidence", "_age", "_i_evidence")
    in_band = frail._age.between(low, high) & frail._i_evidence.notnull()
    frail = frail.filter(in_band | (frail._age >= FRAILTY_ONLY_MIN_AGE))
    return frail.select("patient_id", evidence=ibis.ifelse(
        frail._age <= high, frail.evidence + ";" + frail._i_evidence, frail.evidence))


@shared_result("frailty_exclusion")
def frailty_exclusion_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                               resolve_medication_reference: bool = False) -> ir.Table:
    """Both AdvancedIllnessandFrailty exclusions (advanced illness and frailty by age, or long-term nursing home)."""
    kw = {"clinical": clinical, "value_set_code": value_set_code, "period": period}
    return collect_evidence([
        advanced_illness_and_frailty_patients(**kw, resolve_medication_reference=resolve_medication_reference),
        nursing_home_patients(**kw)])


def _aged(patient: ir.Table, period: MeasurementPeriod, *, minimum: int) -> ir.Table:
    """Patients whose AgeInYearsAt(end of MP) ≥ minimum."""
    return patient.filter(age_in_years(patient.birth_date, period.end_date) >= minimum)

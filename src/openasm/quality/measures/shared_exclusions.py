"""Denominator exclusions shared by several eCQMs (quality.md §4 common rules), ported from the CQL libraries the
2025 measure packages embed: `Hospice` 6.12.000, `PalliativeCare` 1.11.000 and `AdvancedIllnessandFrailty` 1.16.000
(with the `Status`, `QICoreCommon` and `CumulativeMedicationDuration` functions they call).

Every public `*_patients` function takes the clinical tables, the value-set table and the measurement period and
returns one row per qualifying patient: (patient_id, evidence), evidence = the deciding resources as
`ResourceType/id` joined by `;`. The interval helpers follow CQL semantics at day precision: a FHIR Period with no end
is open-ended (FHIRHelpers.ToInterval), a point in time is a point interval, and an unknown boundary (null) makes the
comparison unknown, which a `where` clause reads as false.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.measures.common import LOINC, SNOMED, age_in_years, oid

# Stand-ins for CQL's minimum/maximum DateTime (a closed interval boundary that is null).
FAR_PAST, FAR_FUTURE = datetime(1800, 1, 1), datetime(9999, 12, 31)

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Status.isEncounterPerformed
ENCOUNTER_PERFORMED_STATUSES = ("finished", "arrived", "triaged", "in-progress", "onleave")
ASSESSMENT_STATUSES = ("final", "amended", "corrected")  # Status.isAssessmentPerformed
SYMPTOM_STATUSES = ("preliminary", "final", "amended", "corrected")  # Status.isSymptom
ORDER_STATUSES = ("active", "completed")  # Status.isInterventionOrder / isDeviceOrder
ACTIVE_CLINICAL_STATUSES = ("active", "recurrence", "relapse")  # QICoreCommon.isActive

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

EVIDENCE_COLUMNS = ("patient_id", "evidence")


# --- CQL interval semantics at day precision -------------------------------------------------------------------

def finite(value: ir.FloatingValue) -> ir.FloatingValue:
    """NaN read as null: some backends (PySpark from Arrow memtables) turn missing floats into NaN."""
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value)


def period_end(end: ir.TimestampValue) -> ir.TimestampValue:
    """FHIRHelpers.ToInterval(Period): a Period with no end is closed at the end of time."""
    return end.fill_null(ibis.timestamp(FAR_FUTURE))


def overlaps_day_of(start: ir.TimestampValue, end: ir.TimestampValue, low: ir.DateValue,
                    high: ir.DateValue) -> ir.BooleanValue:
    """`Interval[start, end] overlaps day of Interval[low, high]`."""
    return (start.date() <= high) & (end.date() >= low)


def during_day_of(start: ir.TimestampValue, end: ir.TimestampValue, low: ir.DateValue,
                  high: ir.DateValue) -> ir.BooleanValue:
    """`Interval[start, end] during day of Interval[low, high]` (included in)."""
    return (start.date() >= low) & (end.date() <= high)


def point_during_day_of(point: ir.TimestampValue | ir.DateValue, low: ir.DateValue,
                        high: ir.DateValue) -> ir.BooleanValue:
    """`X starts/ends during day of Interval[low, high]` for one boundary or point X."""
    day = point.date() if isinstance(point, ir.TimestampValue) else point
    return (day >= low) & (day <= high)


def prevalence_interval(condition: ir.Table) -> tuple[ir.TimestampValue, ir.TimestampValue]:
    """QICoreCommon.prevalenceInterval: [onset start, abatement end]; no onset → from the beginning of time. An
    active/recurrence/relapse condition without abatement runs to the end of time; any other condition without
    abatement has an unknown end (null)."""
    start = condition.onset_start.fill_null(ibis.timestamp(FAR_PAST))
    active = condition.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False)
    end = ibis.ifelse(active, condition.abatement_end.fill_null(ibis.timestamp(FAR_FUTURE)), condition.abatement_end)
    return start, end


def encounters_performed(encounter: ir.Table) -> ir.Table:
    """Status.isEncounterPerformed."""
    return encounter.filter(encounter.status.isin(ENCOUNTER_PERFORMED_STATUSES))


def assessments_performed(observation: ir.Table, clinical_coding: ir.Table) -> ir.Table:
    """Status.isAssessmentPerformed: final/amended/corrected with a `survey` category."""
    done = observation.filter(observation.status.isin(ASSESSMENT_STATUSES))
    return having_code(done, clinical_coding, OBSERVATION_CATEGORY, "survey", resource_type="Observation",
                       element="category")


def _assessments(c: ClinicalTables, loinc: str) -> ir.Table:
    """Assessments performed (Status.isAssessmentPerformed) with the LOINC code."""
    return having_code(assessments_performed(c.observation, c.clinical_coding), c.clinical_coding, LOINC, loinc,
                       resource_type="Observation")


def with_value_code(observation: ir.Table, clinical_coding: ir.Table, system: str, code: str) -> ir.Table:
    """Observations whose valueCodeableConcept ~ the code."""
    return having_code(observation, clinical_coding, system, code, resource_type="Observation", element="value")


def coded(table: ir.Table, clinical: ClinicalTables, value_set_code: ir.Table, oids: str | Sequence[str], *,
          resource_type: str, element: str = "code") -> ir.Table:
    """Rows of a clinical table with a coding of `element` in any of the value sets (a CQL retrieve)."""
    return having_value_set(table, clinical.clinical_coding, value_set_code, oids, resource_type=resource_type,
                            element=element)


def having_value_set(table: ir.Table, clinical_coding: ir.Table, value_set_code: ir.Table,
                     oids: str | Sequence[str], *, resource_type: str, element: str | Sequence[str] = "code"
                     ) -> ir.Table:
    """Rows of `table` (patient_id, resource_id, ...) with a coding of `element` in any of the value sets. Semi-joins
    only, so rows are neither duplicated nor need a distinct (cheap on Spark)."""
    wanted = [oid(o) for o in ([oids] if isinstance(oids, str) else oids)]
    members = value_set_code.filter(value_set_code.oid.isin(wanted))
    codings = _codings_of(clinical_coding, resource_type, element)
    codings = codings.semi_join(members, [codings.system == members.system, codings.code == members.code])
    return _having(table, codings)


def having_code(table: ir.Table, clinical_coding: ir.Table, system: str, codes: str | Sequence[str], *,
                resource_type: str, element: str | Sequence[str] = "code") -> ir.Table:
    """Rows of `table` with a direct-reference code (CQL `~ "code"` / `code = "code"`) in `element`."""
    wanted = [codes] if isinstance(codes, str) else list(codes)
    codings = _codings_of(clinical_coding, resource_type, element)
    codings = codings.filter((codings.system == system) & codings.code.isin(wanted))
    return _having(table, codings)


def _codings_of(clinical_coding: ir.Table, resource_type: str, element: str | Sequence[str]) -> ir.Table:
    elements = [element] if isinstance(element, str) else list(element)
    return clinical_coding.filter((clinical_coding.resource_type == resource_type)
                                  & clinical_coding.element.isin(elements))


def _having(table: ir.Table, codings: ir.Table) -> ir.Table:
    return table.semi_join(codings, [table.patient_id == codings.patient_id,
                                     table.resource_id == codings.resource_id])


def evidence_of(table: ir.Table, resource_type: str) -> ir.Table:
    """(patient_id, evidence) with evidence `ResourceType/id` per row."""
    return table.select(patient_id=table.patient_id,
                        evidence=ibis.literal(f"{resource_type}/") + table.resource_id.cast("string"))


def collect_evidence(parts: list[ir.Table]) -> ir.Table:
    """One row per patient: the distinct evidence items of all parts, sorted, joined by `;`."""
    items = ibis.union(*parts) if len(parts) > 1 else parts[0]
    # collect → sort → join rather than an ordered group_concat, which PySpark does not compile.
    return items.group_by("patient_id").aggregate(evidence=items.evidence.collect(distinct=True).sort().join(";"))


# --- Hospice ----------------------------------------------------------------------------------------------------

def hospice_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Hospice."Has Hospice Services": inpatient encounter discharged to hospice ending in the MP; hospice encounter,
    MDS hospice assessment answered Yes, or completed ambulatory hospice procedure overlapping the MP; hospice order
    (active/completed, intent order) authored in the MP; hospice diagnosis overlapping the MP. Orders with
    doNotPerform are not orders (the CQL leaves the check out only for a tooling issue, CQLIT-447; QI-Core fixes
    doNotPerform to false on the positive ServiceRequest profile)."""
    c, lo, hi = clinical, period.start_date, period.end_date
    performed = encounters_performed(c.encounter)
    inpatient = coded(performed, c, value_set_code, VS_ENCOUNTER_INPATIENT, resource_type="Encounter", element="type")
    discharged = having_code(inpatient, c.clinical_coding, SNOMED, HOSPICE_DISCHARGE_CODES, resource_type="Encounter",
                             element="discharge_disposition")
    discharged = discharged.filter(point_during_day_of(period_end(discharged.period_end), lo, hi))
    hospice_enc = coded(performed, c, value_set_code, VS_HOSPICE_ENCOUNTER, resource_type="Encounter",
                        element="type")
    hospice_enc = hospice_enc.filter(overlaps_day_of(hospice_enc.period_start, period_end(hospice_enc.period_end),
                                                     lo, hi))
    mds = _assessments(c, HOSPICE_ASSESSMENT_LOINC)
    mds = with_value_code(mds, c.clinical_coding, SNOMED, YES_SNOMED)
    mds = mds.filter(overlaps_day_of(mds.effective_start, period_end(mds.effective_end), lo, hi))
    sr = c.service_request
    orders = coded(sr.filter(sr.status.isin(ORDER_STATUSES) & (sr.intent == "order") & ~sr.do_not_perform.fill_null(
        False)), c, value_set_code, VS_HOSPICE_CARE_AMBULATORY, resource_type="ServiceRequest")
    orders = orders.filter(point_during_day_of(orders.authored_on, lo, hi))
    procedures = _completed_procedures_overlapping(c, value_set_code, VS_HOSPICE_CARE_AMBULATORY, lo, hi)
    diagnoses = _conditions_overlapping(c, value_set_code, VS_HOSPICE_DIAGNOSIS, lo, hi)
    return collect_evidence([
        evidence_of(discharged, "Encounter"), evidence_of(hospice_enc, "Encounter"),
        evidence_of(mds, "Observation"), evidence_of(orders, "ServiceRequest"),
        evidence_of(procedures, "Procedure"), evidence_of(diagnoses, "Condition")])


# --- Palliative care --------------------------------------------------------------------------------------------

def palliative_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                        period: MeasurementPeriod) -> ir.Table:
    """PalliativeCare."Has Palliative Care in the Measurement Period": a FACIT-Pal assessment, palliative care
    diagnosis, performed palliative care encounter or completed palliative intervention overlapping the MP."""
    c, lo, hi = clinical, period.start_date, period.end_date
    facit = _assessments(c, PALLIATIVE_ASSESSMENT_LOINC)
    facit = facit.filter(overlaps_day_of(facit.effective_start, period_end(facit.effective_end), lo, hi))
    diagnoses = _conditions_overlapping(c, value_set_code, VS_PALLIATIVE_DIAGNOSIS, lo, hi)
    encounters = coded(encounters_performed(c.encounter), c, value_set_code, VS_PALLIATIVE_ENCOUNTER,
                       resource_type="Encounter", element="type")
    encounters = encounters.filter(overlaps_day_of(encounters.period_start, period_end(encounters.period_end),
                                                   lo, hi))
    interventions = _completed_procedures_overlapping(c, value_set_code, VS_PALLIATIVE_INTERVENTION, lo, hi)
    return collect_evidence([
        evidence_of(facit, "Observation"), evidence_of(diagnoses, "Condition"),
        evidence_of(encounters, "Encounter"), evidence_of(interventions, "Procedure")])


def _conditions_overlapping(c: ClinicalTables, value_set_code: ir.Table, oids: str, lo: ir.DateValue,
                            hi: ir.DateValue) -> ir.Table:
    conditions = coded(c.condition, c, value_set_code, oids, resource_type="Condition")
    start, end = prevalence_interval(conditions)
    return conditions.filter(overlaps_day_of(start, end, lo, hi))


def _completed_procedures_overlapping(c: ClinicalTables, value_set_code: ir.Table, oids: str, lo: ir.DateValue,
                                      hi: ir.DateValue) -> ir.Table:
    """Status.isInterventionPerformed (status completed) with performed overlapping day of [lo, hi]."""
    procedures = coded(c.procedure.filter(c.procedure.status == "completed"), c, value_set_code, oids,
                       resource_type="Procedure")
    return procedures.filter(overlaps_day_of(procedures.performed_start, period_end(procedures.performed_end),
                                             lo, hi))


# --- Advanced illness and frailty -------------------------------------------------------------------------------

def frailty_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Criteria Indicating Frailty": a frailty device order (active/completed, intent
    order, not doNotPerform) authored in the MP; a "Medical equipment used" assessment with a frailty-device value
    ending in the MP; a frailty diagnosis, performed frailty encounter or frailty symptom (preliminary/final/amended/
    corrected) overlapping the MP."""
    c, lo, hi = clinical, period.start_date, period.end_date
    dr = c.device_request
    devices = coded(dr.filter(dr.status.isin(ORDER_STATUSES) & (dr.intent == "order") & ~dr.do_not_perform.fill_null(
        False)), c, value_set_code, VS_FRAILTY_DEVICE, resource_type="DeviceRequest")
    devices = devices.filter(point_during_day_of(devices.authored_on, lo, hi))
    equipment = _assessments(c, MEDICAL_EQUIPMENT_USED_LOINC)
    equipment = coded(equipment, c, value_set_code, VS_FRAILTY_DEVICE, resource_type="Observation", element="value")
    equipment = equipment.filter(point_during_day_of(period_end(equipment.effective_end), lo, hi))
    diagnoses = _conditions_overlapping(c, value_set_code, VS_FRAILTY_DIAGNOSIS, lo, hi)
    encounters = coded(encounters_performed(c.encounter), c, value_set_code, VS_FRAILTY_ENCOUNTER,
                       resource_type="Encounter", element="type")
    encounters = encounters.filter(overlaps_day_of(encounters.period_start, period_end(encounters.period_end),
                                                   lo, hi))
    obs = c.observation
    symptoms = coded(obs.filter(obs.status.isin(SYMPTOM_STATUSES)), c, value_set_code, VS_FRAILTY_SYMPTOM,
                     resource_type="Observation")
    symptoms = symptoms.filter(overlaps_day_of(symptoms.effective_start, period_end(symptoms.effective_end), lo, hi))
    return collect_evidence([
        evidence_of(devices, "DeviceRequest"), evidence_of(equipment, "Observation"),
        evidence_of(diagnoses, "Condition"), evidence_of(encounters, "Encounter"),
        evidence_of(symptoms, "Observation")])


def advanced_illness_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                              period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Advanced Illness in Year Before or During Measurement Period": an advanced
    illness diagnosis whose prevalence starts during [MP start − 1 year, MP end]."""
    c = clinical
    conditions = coded(c.condition, c, value_set_code, VS_ADVANCED_ILLNESS, resource_type="Condition")
    start, _ = prevalence_interval(conditions)
    conditions = conditions.filter(point_during_day_of(start, _lookback_start(period), period.end_date))
    return collect_evidence([evidence_of(conditions, "Condition")])


def dementia_medication_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                                 resolve_medication_reference: bool = False) -> ir.Table:
    """AdvancedIllnessandFrailty."Has Dementia Medications in Year Before or During Measurement Period": an active
    order (status active, intent order, not doNotPerform) of a dementia medication whose medicationRequestPeriod
    overlaps [MP start − 1 year, MP end]. The CQL retrieve matches medicationCodeableConcept only (CQLIT-412); set
    `resolve_medication_reference` to also match orders that reference a Medication resource."""
    c = clinical
    mr = c.medication_request
    active = mr.filter((mr.status == "active") & (mr.intent == "order") & ~mr.do_not_perform.fill_null(False))
    if not resolve_medication_reference:
        active = active.filter(active.medication_ref.isnull())
    orders = medication_request_period(coded(active, c, value_set_code, VS_DEMENTIA_MEDICATIONS,
                                             resource_type="MedicationRequest", element="medication"))
    orders = orders.filter((orders.med_period_start <= period.end_date)
                           & (orders.med_period_end >= _lookback_start(period)))
    return collect_evidence([evidence_of(orders, "MedicationRequest")])


def _lookback_start(period: MeasurementPeriod) -> ir.DateValue:
    """start of "Measurement Period" - 1 year (29 February falls back to 28 February, as in CQL)."""
    start = period.start
    year = start.year - ADVANCED_ILLNESS_LOOKBACK_YEARS
    day = 28 if (start.month, start.day) == (2, 29) else start.day
    return ibis.date(date(year, start.month, day))


# ToDaily: hours in one unit of the timing period (CumulativeMedicationDuration; mo = 30 days, a = 365 days).
_HOURS_PER_UNIT = {"h": 1.0, "hour": 1.0, "hours": 1.0, "min": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60,
                   "s": 1 / 3600, "second": 1 / 3600, "seconds": 1 / 3600, "d": 24.0, "day": 24.0, "days": 24.0,
                   "wk": 168.0, "week": 168.0, "weeks": 168.0, "mo": 720.0, "month": 720.0, "months": 720.0,
                   "a": 8760.0, "year": 8760.0, "years": 8760.0}


def medication_request_period(orders: ir.Table) -> ir.Table:
    """CumulativeMedicationDuration.medicationRequestPeriod: adds date columns med_period_start/med_period_end.
    Start = bounds start, else authoredOn. Days supplied = expectedSupplyDuration, else quantity ÷ (dose × doses
    per day), times (1 + refills); doses per day from frequency/period (ToDaily), else 1. Period = [start, start +
    days − 1]; without a supply, [start, bounds end]; otherwise null. (validityPeriod and timeOfDay are not in the
    clinical model.)"""
    frequency, every = finite(orders.frequency), finite(orders.period)
    hours = ibis.cases(*[(orders.period_unit == unit, ibis.literal(h)) for unit, h in _HOURS_PER_UNIT.items()],
                       else_=ibis.null("float64"))
    doses_per_day = (frequency * 24.0 / (every * hours)).fill_null(1.0)
    total_days = (finite(orders.expected_supply_days).fill_null(
        finite(orders.dispense_quantity) / (finite(orders.dose_value) * doses_per_day))
        * (1.0 + finite(orders.refills).fill_null(0.0)))
    start = orders.bounds_start.date().fill_null(orders.authored_on.date())
    offset = total_days - 1.0
    whole = ibis.ifelse(offset >= 0, offset.floor(), offset.ceil()).cast("int64")
    end = ibis.cases(
        (start.notnull() & total_days.notnull(), start + whole.as_interval("D")),
        (start.notnull() & orders.bounds_end.notnull(), orders.bounds_end.date()),
        else_=ibis.null("date"))
    return orders.mutate(med_period_start=ibis.ifelse(end.notnull(), start, ibis.null("date")), med_period_end=end)


def nursing_home_patients(*, clinical: ClinicalTables, value_set_code: ir.Table,
                          period: MeasurementPeriod) -> ir.Table:
    """AdvancedIllnessandFrailty."Is Age 66 or Older Living Long Term in a Nursing Home": age ≥ 66 at MP end and the
    last housing-status assessment ending on or before the MP end day says "Lives in a nursing home"."""
    c = clinical
    housing = _assessments(c, HOUSING_STATUS_LOINC)
    housing = housing.filter(period_end(housing.effective_end).date() <= period.end_date)
    ranked = housing.mutate(_rank=ibis.row_number().over(ibis.window(
        group_by=housing.patient_id, order_by=[ibis.desc(housing.effective_end), ibis.desc(housing.resource_id)])))
    last = ranked.filter(ranked._rank == 0).drop("_rank")
    last = with_value_code(last, c.clinical_coding, SNOMED, LIVES_IN_NURSING_HOME_SNOMED)
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


def frailty_exclusion_patients(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                               resolve_medication_reference: bool = False) -> ir.Table:
    """Both AdvancedIllnessandFrailty exclusions (advanced illness and frailty by age, or long-term nursing home)."""
    kw = {"clinical": clinical, "value_set_code": value_set_code, "period": period}
    return collect_evidence([
        advanced_illness_and_frailty_patients(**kw, resolve_medication_reference=resolve_medication_reference),
        nursing_home_patients(**kw)])


def _aged(patient: ir.Table, period: MeasurementPeriod, *, minimum: int, maximum: int | None = None) -> ir.Table:
    """Patients whose AgeInYearsAt(end of MP) is in [minimum, maximum]."""
    age = age_in_years(patient.birth_date, period.end_date)
    return patient.filter(age >= minimum if maximum is None else age.between(minimum, maximum))

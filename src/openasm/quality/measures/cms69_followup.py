"""CMS69 numerator pieces (PCSBMIScreenAndFollowUpFHIR, 2025): the BMI readings of the measurement period and the
follow-up interventions for an above- or below-normal BMI."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.measures.common import LOINC
from openasm.quality.measures.common import oid as full_oid
from openasm.quality.measures.shared_exclusions import (
    ACTIVE_CLINICAL_STATUSES,
    coded,
    collect_evidence,
    evidence_of,
    finite,
    having_code,
    period_end,
    point_during_day_of,
    prevalence_interval,
)

BMI_LOINC = "39156-5"
BMI_UNIT = "kg/m2"
BMI_STATUSES = ("final", "amended", "corrected")
# BMI bands, as written in the CQL (kg/m2).
HIGH_BMI_FROM = 25.0
LOW_BMI_BELOW = 18.5

VS_OVERWEIGHT_OR_OBESE = "D.1047.502"
VS_UNDERWEIGHT = "B.1563"
VS_FOLLOW_UP_ABOVE_NORMAL = "C.1.1525"
VS_FOLLOW_UP_BELOW_NORMAL = "C.1.1528"
VS_REFERRALS_WEIGHT = "C.1.1527"
VS_MEDICATIONS_ABOVE_NORMAL = "B.1561"
VS_MEDICATIONS_BELOW_NORMAL = "B.1562"
PROBLEM_LIST = ("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")
HEALTH_CONCERN = ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern")


def bmi_observations(c: ClinicalTables, period: MeasurementPeriod) -> ir.Table:
    """"BMI during Measurement Period": LOINC 39156-5, final/amended/corrected, value > 0 kg/m2 (a value in
    another unit is not comparable), effective during day of the MP."""
    obs = c.observation.mutate(value_quantity=finite(c.observation.value_quantity))
    obs = obs.filter(obs.status.isin(BMI_STATUSES) & ~obs.is_not_done.fill_null(False)
                     & (obs.value_unit == BMI_UNIT) & (obs.value_quantity > 0))
    obs = having_code(obs, c.clinical_coding, LOINC, BMI_LOINC, resource_type="Observation")
    return obs.filter((obs.effective_start.date() >= period.start_date)
                      & (period_end(obs.effective_end).date() <= period.end_date))


def high_bmi_followups(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence) of "High BMI Interventions Ordered" ∪ "... Performed" starting during the MP.
    Ordered: follow-up or referral service, or above-normal-BMI medication, with a reason in Overweight or Obese or
    an active overweight/obese problem-list or health-concern condition starting on or before the order day.
    Performed: a follow-up procedure with that reason or an overweight/obese condition (any category or status)
    prevalent on the procedure day."""
    lo, hi = period.start_date, period.end_date
    requests = _requests(c, value_set_code, [VS_FOLLOW_UP_ABOVE_NORMAL, VS_REFERRALS_WEIGHT],
                         VS_MEDICATIONS_ABOVE_NORMAL)
    conditions = _conditions(c, value_set_code, VS_OVERWEIGHT_OR_OBESE)
    listed = _in_category(conditions.filter(conditions._c_active), c, [PROBLEM_LIST, HEALTH_CONCERN])
    ordered = ibis.union(_with_reason(requests, c, value_set_code, VS_OVERWEIGHT_OR_OBESE),
                         _started_by(requests, listed))
    ordered = ordered.filter(point_during_day_of(ordered.authored_on, lo, hi))
    procedures = _procedures(c, value_set_code, VS_FOLLOW_UP_ABOVE_NORMAL)
    performed = ibis.union(_with_reason(procedures, c, value_set_code, VS_OVERWEIGHT_OR_OBESE),
                           _prevalent_at(procedures, conditions))
    performed = performed.filter(point_during_day_of(performed.performed_start, lo, hi))
    return _evidence(ordered, performed)


def low_bmi_followups(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence) of "Low BMI Interventions Ordered" ∪ "... Performed" starting during the MP.
    Ordered: below-normal follow-up or referral service, or below-normal-BMI medication, with a reason in
    Underweight, or an active underweight health-concern condition starting on or before an order day in the MP.
    Performed: a completed follow-up procedure with an Underweight reason, or one performed during the MP while an
    active underweight health concern was prevalent."""
    lo, hi = period.start_date, period.end_date
    requests = _requests(c, value_set_code, [VS_FOLLOW_UP_BELOW_NORMAL, VS_REFERRALS_WEIGHT],
                         VS_MEDICATIONS_BELOW_NORMAL)
    conditions = _conditions(c, value_set_code, VS_UNDERWEIGHT)
    concerns = _in_category(conditions.filter(conditions._c_active), c, [HEALTH_CONCERN])
    in_period = requests.filter(point_during_day_of(requests.authored_on, lo, hi))
    ordered = ibis.union(_with_reason(requests, c, value_set_code, VS_UNDERWEIGHT), _started_by(in_period, concerns))
    ordered = ordered.filter(point_during_day_of(ordered.authored_on, lo, hi))
    procedures = _procedures(c, value_set_code, VS_FOLLOW_UP_BELOW_NORMAL)
    completed = procedures.filter(procedures.status == "completed")
    during = procedures.filter((procedures.performed_start.date() >= lo)
                               & (period_end(procedures.performed_end).date() <= hi))
    performed = ibis.union(_with_reason(completed, c, value_set_code, VS_UNDERWEIGHT),
                           _prevalent_at(during, concerns))
    performed = performed.filter(point_during_day_of(performed.performed_start, lo, hi))
    return _evidence(ordered, performed)


def _requests(c: ClinicalTables, value_set_code: ir.Table, service_oids: list[str], medication_oid: str) -> ir.Table:
    """Service and medication requests (not negated) in the value sets: patient_id, resource_type, resource_id,
    authored_on."""
    sr = c.service_request
    services = coded(sr.filter(~sr.do_not_perform.fill_null(False)), c, value_set_code, service_oids,
                     resource_type="ServiceRequest")
    mr = c.medication_request
    medications = coded(mr.filter(~mr.do_not_perform.fill_null(False)), c, value_set_code, medication_oid,
                        resource_type="MedicationRequest", element="medication")
    columns = ("patient_id", "resource_type", "resource_id", "authored_on")
    return ibis.union(
        services.mutate(resource_type=ibis.literal("ServiceRequest")).select(*columns),
        medications.mutate(resource_type=ibis.literal("MedicationRequest")).select(*columns))


def _procedures(c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Procedures in the value set, of the positive profile (a not-done procedure is no intervention)."""
    procedures = c.procedure.filter(c.procedure.status.fill_null("") != "not-done")
    procedures = coded(procedures, c, value_set_code, oid, resource_type="Procedure")
    return procedures.mutate(resource_type=ibis.literal("Procedure")).select(
        "patient_id", "resource_type", "resource_id", "status", "performed_start", "performed_end")


def _with_reason(events: ir.Table, c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Events whose reasonCode is in the value set."""
    members = value_set_code.filter(value_set_code.oid == full_oid(oid))
    reasons = c.clinical_coding.filter(c.clinical_coding.element == "reason_code")
    reasons = reasons.semi_join(members, [reasons.system == members.system, reasons.code == members.code])
    return events.semi_join(reasons, [events.patient_id == reasons.patient_id,
                                      events.resource_type == reasons.resource_type,
                                      events.resource_id == reasons.resource_id])


def _conditions(c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Conditions in the value set with their prevalence interval: patient_id, resource_id, _c_start, _c_end,
    _c_active."""
    conditions = coded(c.condition, c, value_set_code, oid, resource_type="Condition")
    start, end = prevalence_interval(conditions)
    return conditions.select(
        "patient_id", "resource_id", _c_start=start, _c_end=end,
        _c_active=conditions.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False))


def _in_category(conditions: ir.Table, c: ClinicalTables, categories: list[tuple[str, str]]) -> ir.Table:
    """Conditions with any of the (system, code) categories (QICoreCommon isProblemListItem / isHealthConcern)."""
    cc = c.clinical_coding
    wanted = ibis.or_(*[(cc.system == system) & (cc.code == code) for system, code in categories])
    codings = cc.filter((cc.resource_type == "Condition") & (cc.element == "category") & wanted)
    return conditions.semi_join(codings, [conditions.patient_id == codings.patient_id,
                                          conditions.resource_id == codings.resource_id])


def _started_by(requests: ir.Table, conditions: ir.Table) -> ir.Table:
    """Requests with a condition whose prevalence starts on or before the day the request was authored."""
    return requests.semi_join(conditions, [requests.patient_id == conditions.patient_id,
                                           conditions._c_start.date() <= requests.authored_on.date()])


def _prevalent_at(procedures: ir.Table, conditions: ir.Table) -> ir.Table:
    """Procedures with a condition whose prevalence starts on or before, and does not end before, the day the
    procedure was performed (an unknown end never qualifies)."""
    day = procedures.performed_start.date()
    return procedures.semi_join(conditions, [procedures.patient_id == conditions.patient_id,
                                             conditions._c_start.date() <= day,
                                             ~(conditions._c_end.date() < day)])


def _evidence(ordered: ir.Table, performed: ir.Table) -> ir.Table:
    items = [ordered.select(patient_id=ordered.patient_id,
                            evidence=ordered.resource_type + "/" + ordered.resource_id),
             evidence_of(performed, "Procedure")]
    return collect_evidence(items)

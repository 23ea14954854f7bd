"""CMS69 numerator pieces (PCSBMIScreenAndFollowUpFHIR 0.2.000): the BMI readings of the measurement period and the
follow-up interventions for an above- or below-normal BMI. Timing per `cql_datetime`; quantities compared in UCUM.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import DAY, Interval, Moment, before, contains, during, same_or_before
from openasm.quality.measures.common import (
    ACTIVE_CLINICAL_STATUSES,
    ANY_MEDICATION,
    LOINC,
    coded,
    collect_evidence,
    having_code,
    period_of,
    prevalence_interval,
    quantity_in,
    with_profile,
)
from openasm.quality.measures.common import oid as full_oid

BMI_LOINC = "39156-5"
BMI_PROFILE = "http://hl7.org/fhir/StructureDefinition/bmi"  # ["observation-bmi"]
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


@shared_result("cms69_followup_bmi_observations")
def bmi_observations(c: ClinicalTables, period: MeasurementPeriod) -> ir.Table:
    """"BMI during Measurement Period": the BMI profile (LOINC 39156-5, not a negation; a resource that declares
    only other profiles is not retrieved, `with_profile`), final/amended/corrected, value > 0 kg/m2 (another unit
    converted through UCUM, an unknown one never compares), effective during day of the MP.
    `value_quantity` is replaced by the value in kg/m2."""
    obs = c.observation.mutate(value_quantity=quantity_in(c.observation.value_quantity, c.observation.value_unit,
                                                          BMI_UNIT))
    obs = obs.filter(obs.status.isin(BMI_STATUSES) & ~obs.is_not_done.fill_null(False) & (obs.value_quantity > 0))
    obs = having_code(obs, c.clinical_coding, LOINC, BMI_LOINC, resource_type="Observation")
    obs = with_profile(obs, c.clinical_coding, BMI_PROFILE, resource_type="Observation")
    return obs.filter(during(period_of(obs, "effective"), period.interval, DAY, tz=period.tz))


@shared_result("cms69_followup_high_bmi_followups")
def high_bmi_followups(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence) of "High BMI Interventions Ordered" ∪ "... Performed" starting during day of the MP.
    Ordered: follow-up or referral service, or above-normal-BMI medication (any status), with a reason in Overweight
    or Obese or an active overweight/obese problem-list item or health concern whose prevalence starts on or before
    the order day. Performed: a follow-up procedure with that reason, or a performedDateTime on or after the day an
    overweight/obese condition (any category or status) starts and not after the day it ends."""
    requests = _requests(c, value_set_code, [VS_FOLLOW_UP_ABOVE_NORMAL, VS_REFERRALS_WEIGHT],
                         VS_MEDICATIONS_ABOVE_NORMAL)
    conditions = _conditions(c, value_set_code, VS_OVERWEIGHT_OR_OBESE)
    listed = _in_category(conditions.filter(conditions._c_active), c, [PROBLEM_LIST, HEALTH_CONCERN])
    ordered = ibis.union(_with_reason(requests, c, value_set_code, VS_OVERWEIGHT_OR_OBESE),
                         _started_by(requests, listed, period))
    procedures = _procedures(c, value_set_code, VS_FOLLOW_UP_ABOVE_NORMAL)
    performed = ibis.union(_with_reason(procedures, c, value_set_code, VS_OVERWEIGHT_OR_OBESE),
                           _prevalent_at(procedures, conditions, period, _performed_point(procedures)))
    return _starting_in_period(ordered, performed, period)


@shared_result("cms69_followup_low_bmi_followups")
def low_bmi_followups(c: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence) of "Low BMI Interventions Ordered" ∪ "... Performed" starting during day of the MP.
    Ordered: below-normal follow-up or referral service, or below-normal-BMI medication, with a reason in
    Underweight, or an active underweight health concern starting on or before the day of an order authored during
    day of the MP. Performed: a completed follow-up procedure with an Underweight reason, or one performed during
    day of the MP while an active underweight health concern was prevalent."""
    requests = _requests(c, value_set_code, [VS_FOLLOW_UP_BELOW_NORMAL, VS_REFERRALS_WEIGHT],
                         VS_MEDICATIONS_BELOW_NORMAL)
    conditions = _conditions(c, value_set_code, VS_UNDERWEIGHT)
    concerns = _in_category(conditions.filter(conditions._c_active), c, [HEALTH_CONCERN])
    in_period = requests.filter(contains(period.interval, Moment.of(requests, "authored_on"), DAY, tz=period.tz))
    ordered = ibis.union(_with_reason(requests, c, value_set_code, VS_UNDERWEIGHT),
                         _started_by(in_period, concerns, period))
    procedures = _procedures(c, value_set_code, VS_FOLLOW_UP_BELOW_NORMAL)
    completed = procedures.filter(procedures.status == "completed")
    during_mp = procedures.filter(during(period_of(procedures, "performed"), period.interval, DAY, tz=period.tz))
    performed = ibis.union(_with_reason(completed, c, value_set_code, VS_UNDERWEIGHT),
                           _prevalent_at(during_mp, concerns, period, period_of(during_mp, "performed").start))
    return _starting_in_period(ordered, performed, period)


def _requests(c: ClinicalTables, value_set_code: ir.Table, service_oids: list[str], medication_oid: str) -> ir.Table:
    """Service and medication requests of the positive profiles (not doNotPerform) in the value sets; the ELM
    follows medicationReference. Columns: patient_id, resource_type, resource_id, authored_on*."""
    sr = c.service_request
    services = coded(sr.filter(~sr.do_not_perform.fill_null(False)), c, value_set_code, service_oids,
                     resource_type="ServiceRequest")
    mr = c.medication_request
    medications = coded(mr.filter(~mr.do_not_perform.fill_null(False)), c, value_set_code, medication_oid,
                        resource_type="MedicationRequest", element=ANY_MEDICATION)
    authored = [name for name in sr.columns if name.startswith("authored_on")]
    return ibis.union(
        services.select("patient_id", resource_type=ibis.literal("ServiceRequest"), resource_id="resource_id",
                        **{n: services[n] for n in authored}),
        medications.select("patient_id", resource_type=ibis.literal("MedicationRequest"), resource_id="resource_id",
                           **{n: medications[n] for n in authored}))


def _procedures(c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Procedures in the value set, of the positive profile (a not-done procedure is no intervention)."""
    procedures = c.procedure.filter(c.procedure.status.fill_null("") != "not-done")
    procedures = coded(procedures, c, value_set_code, oid, resource_type="Procedure")
    return procedures.mutate(resource_type=ibis.literal("Procedure"))


def _performed_point(procedures: ir.Table) -> Moment:
    """`performed as DateTime`: the performed dateTime; null for a performedPeriod (stored with distinct ends)."""
    start, end = Moment.of(procedures, "performed_start"), Moment.of(procedures, "performed_end")
    point = (start.low == end.low) & (start.high == end.high)
    return start.choose(point, Moment.unknown())


def _with_reason(events: ir.Table, c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Events (of any resource type) whose reasonCode is in the value set."""
    members = value_set_code.filter(value_set_code.oid == full_oid(oid))
    reasons = c.clinical_coding.filter(c.clinical_coding.element == "reason_code")
    reasons = reasons.semi_join(members, [reasons.system == members.system, reasons.code == members.code])
    return events.semi_join(reasons, [events.patient_id == reasons.patient_id,
                                      events.resource_type == reasons.resource_type,
                                      events.resource_id == reasons.resource_id])


def _conditions(c: ClinicalTables, value_set_code: ir.Table, oid: str) -> ir.Table:
    """Conditions in the value set with their prevalence interval (`_c_prev*`) and whether they are active."""
    conditions = coded(c.condition, c, value_set_code, oid, resource_type="Condition")
    return conditions.select(
        "patient_id", "resource_id", **prevalence_interval(conditions).columns("_c_prev"),
        _c_active=conditions.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False))


def _in_category(conditions: ir.Table, c: ClinicalTables, categories: list[tuple[str, str]]) -> ir.Table:
    """Conditions with any of the (system, code) categories (QICoreCommon isProblemListItem / isHealthConcern)."""
    cc = c.clinical_coding
    wanted = ibis.or_(*[(cc.system == system) & (cc.code == code) for system, code in categories])
    codings = cc.filter((cc.resource_type == "Condition") & (cc.element == "category") & wanted)
    return conditions.semi_join(codings, [conditions.patient_id == codings.patient_id,
                                          conditions.resource_id == codings.resource_id])


def _started_by(requests: ir.Table, conditions: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Requests with a condition whose prevalence starts on or before the day the request was authored."""
    return requests.semi_join(conditions, [
        requests.patient_id == conditions.patient_id,
        same_or_before(Interval.of(conditions, "_c_prev").start, Moment.of(requests, "authored_on"), DAY,
                       tz=period.tz)])


def _prevalent_at(procedures: ir.Table, conditions: ir.Table, period: MeasurementPeriod, at: Moment) -> ir.Table:
    """Procedures with a condition whose prevalence starts on or before the day of `at` and does not end before it
    (an unknown end never qualifies: `not null` is null)."""
    prevalence = Interval.of(conditions, "_c_prev")
    return procedures.semi_join(conditions, [
        procedures.patient_id == conditions.patient_id,
        same_or_before(prevalence.start, at, DAY, tz=period.tz),
        ~before(prevalence.end, at, DAY, tz=period.tz)])


def _starting_in_period(ordered: ir.Table, performed: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Interventions whose Coalesce(performed, authoredOn) starts during day of the MP, as (patient_id, evidence)."""
    ordered = ordered.filter(contains(period.interval, Moment.of(ordered, "authored_on"), DAY, tz=period.tz))
    performed = performed.filter(contains(period.interval, period_of(performed, "performed").start, DAY,
                                          tz=period.tz))
    return collect_evidence([
        ordered.select(patient_id=ordered.patient_id, evidence=ordered.resource_type + "/" + ordered.resource_id),
        performed.select(patient_id=performed.patient_id, evidence="Procedure/" + performed.resource_id)])


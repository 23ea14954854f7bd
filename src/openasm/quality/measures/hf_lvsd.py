"""Shared logic of Q008/CMS144 and Q005/CMS135, heart failure with LVSD (quality.md §4.4), ported from the CQL
library `AHAOverall` 2.8.000 that both 2025 measure packages embed: the initial population, the HF outpatient
encounter with a history of moderate or severe LVSD (the denominator), the heart-transplant/LVAD exclusions, the
"ordered or active during the encounter" numerator test, and the timing functions the exceptions use.

Intervals follow the CQL: a FHIR Period without an end is closed at the end of time (FHIRHelpers.ToInterval), a Period
without a start has an unknown start (comparisons on it are unknown, which a `where` reads as false), a dateTime is a
point interval, and a closed null boundary of a constructed interval is the beginning or end of time. `day of`
comparisons compare calendar dates; the others compare timestamps.

Timed criteria (exclusions, exceptions) are data: each `Criterion` names its resource type, codes and timing, and all
criteria of a measure are matched and joined to the HF-LVSD encounters in one pass, which keeps the query plan small.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.measures.common import (
    SNOMED,
    age_in_years,
    finalize_case_result,
    oid,
    resources_in,
)
from openasm.quality.measures.shared_exclusions import (
    FAR_FUTURE,
    FAR_PAST,
    prevalence_interval,
)

# Encounter value sets (AHAOverall "Heart Failure Outpatient Encounter"; the qualifying list adds Patient Provider
# Interaction).
VS_HF_ENCOUNTERS = ("A.101.12.1014", "A.101.12.1016", "A.101.12.1012", "A.101.12.1001", "A.101.12.1008")
VS_PATIENT_PROVIDER_INTERACTION = "B.1012"
VS_HEART_FAILURE = "B.376"
VS_EJECTION_FRACTION = "B.1134"
VS_MODERATE_OR_SEVERE_LVSD = "B.1090"
VS_MODERATE_OR_SEVERE = "B.1092"
LVSD_SNOMED = "134401001"  # Left ventricular systolic dysfunction (disorder)

# Constants written in the CQL.
MINIMUM_AGE = 18  # AgeInYearsAt(date from start of "Measurement Period") >= 18
MINIMUM_QUALIFYING_ENCOUNTERS = 2  # two Qualifying Outpatient Encounters with different ids
LVSD_EJECTION_FRACTION_MAX = 40.0  # EjectionFraction.value as Quantity <= 40 '%'
PERCENT_UNITS = ("%",)
OBSERVATION_DONE = ("final", "amended", "corrected")
ACTIVE_CLINICAL_STATUSES = ("active", "recurrence", "relapse")  # QICoreCommon.isActive
ORDER_STATUSES = ("active", "completed")
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")

# How a criterion's resource is timed against an HF-LVSD encounter (AHAOverall fluent functions):
OVERLAPS = "overlaps"  # overlapsHeartFailureOutpatientEncounter: interval overlaps day of the encounter
OVERLAPS_AFTER = "overlaps_after"  # overlapsAfter...: overlaps day of it and ends after its end day
STARTS_BEFORE_END = "starts_before_end"  # interval starts before the end of the encounter
DIAGNOSED_BEFORE_END = "diagnosed_before_end"  # Coalesce(recordedDate, start of prevalence) before its end
TIMINGS = (OVERLAPS, OVERLAPS_AFTER, STARTS_BEFORE_END, DIAGNOSED_BEFORE_END)


@dataclass(frozen=True)
class Criterion:
    """A timed criterion: resources of one type (Condition: confirmed active; AllergyIntolerance: clinical status
    active and verification confirmed; Procedure: completed) coded in `oids` or with a SNOMED `snomed` code, timed
    against some HF-LVSD encounter by `timing`."""

    name: str
    resource_type: str
    timing: str
    oids: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.timing not in TIMINGS or self.resource_type not in ("Condition", "AllergyIntolerance", "Procedure"):
            raise ValueError(f"criterion {self.name}: unsupported timing {self.timing} or type {self.resource_type}")


# AHAOverall "Has Heart Transplant" / "Has Heart Transplant Complications" / "Has Left Ventricular Assist Device" /
# "Has Left Ventricular Assist Device Complications".
EXCLUSION_CRITERIA = (
    Criterion("heart_transplant", "Procedure", STARTS_BEFORE_END, oids=("D.1178.33",)),
    Criterion("heart_transplant_complications", "Condition", DIAGNOSED_BEFORE_END, oids=("D.1178.56",)),
    Criterion("lvad", "Procedure", STARTS_BEFORE_END, oids=("D.1178.61",)),
    Criterion("lvad_complications", "Condition", DIAGNOSED_BEFORE_END, oids=("D.1178.58",)),
)

_ENC = ("patient_id", "encounter_id", "enc_start", "enc_end")


@dataclass(frozen=True)
class HfLvsdBase:
    """The populations every AHAOverall measure shares, as Ibis tables:
    `initial_population` (patient_id, ip_encounter_id, ip_evidence) — one row per IP patient, the latest HF encounter;
    `lvsd_encounters` (patient_id, encounter_id, enc_start, enc_end, lvsd_evidence) — every HF outpatient encounter
    with a history of moderate or severe LVSD (the CQL does not restrict it to IP patients);
    `exclusions` (patient_id, evidence) — heart transplant or LVAD (or their complications) before such an encounter.
    """

    initial_population: ir.Table
    lvsd_encounters: ir.Table
    exclusions: ir.Table


def is_confirmed_active(condition: ir.Table) -> ir.BooleanValue:
    """AHAOverall.isConfirmedActiveDiagnosis: clinical status active/recurrence/relapse and verification confirmed."""
    return (condition.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False)
            & (condition.verification_status == "confirmed").fill_null(False))


def code_matches(clinical: ClinicalTables, value_set_code: ir.Table, criteria: list[tuple[str, str, str, tuple, tuple]]
                 ) -> ir.Table:
    """(patient_id, resource_type, resource_id, criterion) for every coding of `element` in a criterion's value sets
    or SNOMED codes; `criteria` rows are (criterion, resource_type, element, oids, snomed). One join for all."""
    by_oid = [(name, rtype, element, oid(o)) for name, rtype, element, oids, _ in criteria for o in oids]
    direct = [(name, rtype, element, SNOMED, code) for name, rtype, element, _, codes in criteria for code in codes]
    parts = []
    if by_oid:
        wanted = ibis.memtable(pa.table(dict(zip(("criterion", "_w_type", "_w_element", "_w_oid"), zip(*by_oid)))))
        vs = value_set_code.join(wanted, value_set_code.oid == wanted._w_oid)
        parts.append(vs.select("criterion", "_w_type", "_w_element", _w_system=vs.system, _w_code=vs.code))
    if direct:
        parts.append(ibis.memtable(pa.table(dict(zip(("criterion", "_w_type", "_w_element", "_w_system", "_w_code"),
                                                     zip(*direct))))))
    codes = ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct()
    c = clinical.clinical_coding
    hits = c.join(codes, [c.resource_type == codes._w_type, c.element == codes._w_element, c.system == codes._w_system,
                          c.code == codes._w_code])
    return hits.select("patient_id", "resource_type", "resource_id", "criterion").distinct()


def _with_criterion(table: ir.Table, matches: ir.Table, criterion: str) -> ir.Table:
    """Rows of a clinical table matched to `criterion`."""
    return resources_in(table, matches.filter(matches.criterion == criterion))


# --- Initial population and denominator ---------------------------------------------------------------------------

def hf_lvsd_base(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> HfLvsdBase:
    """AHAOverall: initial population (age ≥ 18 at MP start, two qualifying encounters, one HF outpatient encounter),
    HF outpatient encounters with a history of moderate or severe LVSD (a finding starting before the encounter
    ends), and the denominator exclusions."""
    matches = code_matches(clinical, value_set_code, [
        ("hf_encounter", "Encounter", "type", VS_HF_ENCOUNTERS, ()),
        ("qualifying_encounter", "Encounter", "type", (VS_PATIENT_PROVIDER_INTERACTION,), ()),
        ("heart_failure", "Condition", "code", (VS_HEART_FAILURE,), ()),
        ("ejection_fraction", "Observation", "code", (VS_EJECTION_FRACTION,), ()),
        ("lvsd_listed", "Condition", "code", (VS_MODERATE_OR_SEVERE_LVSD,), ()),
        ("lvsd", "Condition", "code", (), (LVSD_SNOMED,)),
        ("moderate_or_severe", "Condition", "severity", (VS_MODERATE_OR_SEVERE,), ()),
    ])
    e = clinical.encounter
    # "during day of" the MP: a missing start is unknown and a missing end is the end of time, so both are needed.
    in_period = e.filter((e.status == "finished") & e.period_start.notnull() & e.period_end.notnull()
                         & (e.period_start.date() >= period.start_date) & (e.period_end.date() <= period.end_date))
    encounter_types = matches.filter(matches.resource_type == "Encounter")
    typed = resources_in(in_period, encounter_types)
    hf_typed = _with_criterion(in_period, matches, "hf_encounter")
    two = (typed.group_by("patient_id").aggregate(_n=typed.resource_id.nunique())
           .filter(lambda t: t._n >= MINIMUM_QUALIFYING_ENCOUNTERS).select(_q_patient="patient_id"))
    hf = _hf_outpatient_encounters(hf_typed, _with_criterion(clinical.condition, matches, "heart_failure"))

    p = clinical.patient
    adults = p.filter(age_in_years(p.birth_date, period.start_date) >= MINIMUM_AGE).select(_a_patient=p.patient_id)
    latest = _latest_per_patient(hf)
    ip = latest.join(two, latest.patient_id == two._q_patient).join(adults, latest.patient_id == adults._a_patient)
    ip = ip.select(patient_id=ip.patient_id, ip_encounter_id=ip.encounter_id,
                   ip_evidence=ibis.literal("Encounter/") + ip.encounter_id + ";" + ip.hf_evidence)

    findings = _lvsd_findings(clinical, matches).rename(_f_patient="patient_id")
    joined = hf.join(findings, [hf.patient_id == findings._f_patient, findings.finding_start < hf.enc_end])
    lvsd = joined.group_by(list(_ENC)).aggregate(lvsd_evidence=joined.finding.min())
    exclusions = timed_events(lvsd, clinical, value_set_code, EXCLUSION_CRITERIA)
    return HfLvsdBase(initial_population=ip, lvsd_encounters=lvsd,
                      exclusions=gather_evidence([exclusions.select("patient_id", "evidence")]))


def _hf_outpatient_encounters(hf_typed: ir.Table, heart_failure: ir.Table) -> ir.Table:
    """AHAOverall "Heart Failure Outpatient Encounter": an HF-type encounter during the MP overlapping a confirmed
    active heart-failure diagnosis. (patient_id, encounter_id, enc_start, enc_end, hf_evidence)."""
    encounters = hf_typed.select(patient_id=hf_typed.patient_id, encounter_id=hf_typed.resource_id,
                                 enc_start=hf_typed.period_start, enc_end=hf_typed.period_end).distinct()
    hf = heart_failure.filter(is_confirmed_active(heart_failure))
    low, high = prevalence_interval(hf)
    hf = hf.select(_h_patient=hf.patient_id, _h_id=hf.resource_id, _h_low=low, _h_high=high)
    joined = encounters.join(hf, [encounters.patient_id == hf._h_patient, hf._h_low <= encounters.enc_end,
                                  hf._h_high >= encounters.enc_start])
    per_encounter = joined.group_by(list(_ENC)).aggregate(_h_first=joined._h_id.min())
    return per_encounter.select(*_ENC, hf_evidence=ibis.literal("Condition/") + per_encounter._h_first)


def _lvsd_findings(clinical: ClinicalTables, matches: ir.Table) -> ir.Table:
    """AHAOverall "Moderate or Severe LVSD Findings" as (patient_id, finding_start, finding): an ejection fraction
    ≤ 40 % (final/amended/corrected; its effective start), or a confirmed active moderate/severe LVSD diagnosis (start
    of its prevalence interval; no onset = the beginning of time)."""
    obs = _with_criterion(clinical.observation, matches, "ejection_fraction")
    obs = obs.filter(obs.status.isin(OBSERVATION_DONE) & obs.value_unit.isin(PERCENT_UNITS)
                     & (obs.value_quantity <= LVSD_EJECTION_FRACTION_MAX) & obs.effective_start.notnull())
    ef = obs.select(patient_id=obs.patient_id, finding_start=obs.effective_start.cast("timestamp"),
                    finding=ibis.literal("Observation/") + obs.resource_id)
    c = clinical.condition
    severe = _with_criterion(_with_criterion(c, matches, "lvsd"), matches, "moderate_or_severe")
    conditions = ibis.union(_with_criterion(c, matches, "lvsd_listed"), severe, distinct=True)
    conditions = conditions.filter(is_confirmed_active(conditions))
    low, _ = prevalence_interval(conditions)
    dx = conditions.select(patient_id=conditions.patient_id, finding_start=low.cast("timestamp"),
                           finding=ibis.literal("Condition/") + conditions.resource_id)
    return ibis.union(ef, dx, distinct=True)


def _latest_per_patient(encounters: ir.Table) -> ir.Table:
    """The latest-starting encounter of each patient (ties: the larger id)."""
    ranked = encounters.mutate(_rank=ibis.row_number().over(ibis.window(
        group_by=encounters.patient_id, order_by=[ibis.desc(encounters.enc_start), ibis.desc(encounters.encounter_id)])))
    return ranked.filter(ranked._rank == 0).drop("_rank")


# --- Timed criteria against the HF-LVSD encounters ----------------------------------------------------------------

def timed_events(lvsd_encounters: ir.Table, clinical: ClinicalTables, value_set_code: ir.Table,
                 criteria: tuple[Criterion, ...] | list[Criterion]) -> ir.Table:
    """(patient_id, criterion, evidence) for every resource meeting a criterion against some HF-LVSD encounter
    (`HfLvsdBase.lvsd_encounters`).
    Conditions: confirmed active, timed by their prevalence interval (DIAGNOSED_BEFORE_END: recordedDate, else the
    prevalence start). AllergyIntolerance: clinical status active and verification confirmed, timed by
    Interval[start of onset, lastOccurrence]; the clinical model has no lastOccurrence, so the interval is closed at
    the end of time (the CQL reading of a null closed end). Procedures: completed, timed by the performed interval."""
    matches = code_matches(clinical, value_set_code,
                           [(c.name, c.resource_type, "code", c.oids, c.snomed) for c in criteria])
    timing = ibis.memtable(pa.table({"_t_criterion": [c.name for c in criteria], "timing": [c.timing for c in criteria]}))
    matches = matches.join(timing, matches.criterion == timing._t_criterion).drop("_t_criterion")

    cond = clinical.condition.filter(is_confirmed_active(clinical.condition))
    c_low, c_high = prevalence_interval(cond)
    allergy = clinical.allergy_intolerance
    allergy = allergy.filter((allergy.clinical_status == "active").fill_null(False)
                             & (allergy.verification_status == "confirmed").fill_null(False))
    proc = clinical.procedure.filter(clinical.procedure.status == "completed")
    far_future = ibis.timestamp(FAR_FUTURE)
    candidates = ibis.union(
        _candidate(cond, "Condition", c_low, c_high, cond.recorded_date.cast("timestamp").fill_null(c_low)),
        _candidate(allergy, "AllergyIntolerance", allergy.onset_start.cast("timestamp").fill_null(
            ibis.timestamp(FAR_PAST)), far_future, ibis.null("timestamp")),
        _candidate(proc, "Procedure", proc.performed_start, proc.performed_end.cast("timestamp").fill_null(far_future),
                   ibis.null("timestamp")))
    events = candidates.join(matches, [candidates._c_patient == matches.patient_id,
                                       candidates._c_type == matches.resource_type,
                                       candidates._c_id == matches.resource_id])
    lvsd = lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, _e_end=lvsd.enc_end, _e_sd=lvsd.enc_start.date(),
                      _e_ed=lvsd.enc_end.date())
    low_d, high_d = events._c_low.date(), events._c_high.date()
    timed = ibis.cases(
        (events.timing == OVERLAPS, (low_d <= enc._e_ed) & (high_d >= enc._e_sd)),
        (events.timing == OVERLAPS_AFTER, (low_d <= enc._e_ed) & (high_d > enc._e_ed)),
        (events.timing == STARTS_BEFORE_END, events._c_low < enc._e_end),
        (events.timing == DIAGNOSED_BEFORE_END, events._c_diagnosed < enc._e_end),
        else_=ibis.literal(False))
    hits = events.join(enc, [events._c_patient == enc._e_patient, timed.fill_null(False)])
    return hits.select(patient_id=hits._c_patient, criterion=hits.criterion,
                       evidence=hits._c_type + "/" + hits._c_id).distinct()


def _candidate(table: ir.Table, resource_type: str, low: ir.TimestampValue, high: ir.TimestampValue,
               diagnosed: ir.TimestampValue) -> ir.Table:
    return table.select(_c_patient=table.patient_id, _c_type=ibis.literal(resource_type), _c_id=table.resource_id,
                        _c_low=low.cast("timestamp"), _c_high=high.cast("timestamp"),
                        _c_diagnosed=diagnosed.cast("timestamp"))


# --- Numerator ----------------------------------------------------------------------------------------------------

def therapy_ordered_or_active(base: HfLvsdBase, clinical: ClinicalTables, value_set_code: ir.Table,
                              oid_: str) -> ir.Table:
    """Numerator: a MedicationRequest (status active/completed, an order intent) for a medication in value set `oid_`
    either authored during day of an HF-LVSD encounter (isOrderedDuringHeartFailureOutpatientEncounter) or whose first
    collapsed dosage period overlaps after day of it (overlapsAfterHeartFailureOutpatientEncounter). A doNotPerform
    request is a negation, never a positive order. Returns (patient_id, encounter_id, evidence), one row per
    patient (the latest such encounter)."""
    mr = clinical.medication_request
    orders = mr.filter(mr.status.isin(ORDER_STATUSES) & mr.intent.isin(ORDER_INTENTS)
                       & ~mr.do_not_perform.fill_null(False))
    matches = code_matches(clinical, value_set_code, [("therapy", "MedicationRequest", "medication", (oid_,), ())])
    orders = resources_in(orders, matches)
    # Candidates: the authored day ("ordered") and the first collapsed dosage period ("active"), as date intervals.
    authored = orders.select(_o_patient=orders.patient_id, _o_id=orders.resource_id, _o_active=ibis.literal(False),
                             _o_low=orders.authored_on.date(), _o_high=orders.authored_on.date())
    doses = first_dosage_period(dosage_bounds(clinical))
    dosed = orders.join(doses, [orders.patient_id == doses._d_patient, orders.resource_id == doses._d_id])
    dosed = dosed.select(_o_patient=dosed.patient_id, _o_id=dosed.resource_id, _o_active=ibis.literal(True),
                         _o_low=dosed._d_low.date(), _o_high=dosed._d_high.date())
    candidates = ibis.union(authored, dosed, distinct=True)
    lvsd = base.lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, _e_id=lvsd.encounter_id, _e_start=lvsd.enc_start,
                      _e_sd=lvsd.enc_start.date(), _e_ed=lvsd.enc_end.date())
    ordered = (candidates._o_low >= enc._e_sd) & (candidates._o_high <= enc._e_ed)
    active = (candidates._o_low <= enc._e_ed) & (candidates._o_high > enc._e_ed)
    timed = ibis.ifelse(candidates._o_active, active, ordered)
    hits = candidates.join(enc, [candidates._o_patient == enc._e_patient, timed.fill_null(False)])
    hits = hits.select(patient_id=hits._o_patient, resource_id=hits._o_id, _e_id=hits._e_id, _e_start=hits._e_start)
    ranked = hits.mutate(_rank=ibis.row_number().over(ibis.window(
        group_by=hits.patient_id, order_by=[ibis.desc(hits._e_start), hits.resource_id])))
    first = ranked.filter(ranked._rank == 0)
    return first.select(patient_id=first.patient_id, encounter_id=first._e_id,
                        evidence=ibis.literal("Encounter/") + first._e_id + ";MedicationRequest/" + first.resource_id)


def dosage_bounds(clinical: ClinicalTables) -> ir.Table:
    """(patient_id, resource_id, bounds_start, bounds_end): the dosage timing bounds of every MedicationRequest.
    The CQL collapses the bounds of all dosageInstructions; the clinical model carries them in a per-dosage table
    `medication_request_dosage` when present, otherwise only the first dosage's bounds on `medication_request`."""
    per_dosage = getattr(clinical, "medication_request_dosage", None)
    source = per_dosage if per_dosage is not None else clinical.medication_request
    return source.select("patient_id", "resource_id", "bounds_start", "bounds_end")


def first_dosage_period(bounds: ir.Table) -> ir.Table:
    """First(collapse(dosage bounds sorted by start)) per request as (_d_patient, _d_id, _d_low, _d_high): the
    bounds are sorted by start and merged while they overlap or meet (within 1 ms); the first merged interval is
    kept. A missing end is the end of time; a missing start is unknown, so that dosage is ignored."""
    b = bounds.filter(bounds.bounds_start.notnull())
    b = b.select(_d_patient=b.patient_id, _d_id=b.resource_id, _d_low=b.bounds_start.cast("timestamp"),
                 _d_high=b.bounds_end.cast("timestamp").fill_null(ibis.timestamp(FAR_FUTURE)))
    order = [b._d_low, b._d_high]
    earlier_high = b._d_high.max().over(ibis.window(group_by=[b._d_patient, b._d_id], order_by=order,
                                                    rows=(None, -1)))
    b = b.mutate(_new=ibis.ifelse(earlier_high.isnull()
                                  | (b._d_low > earlier_high + ibis.interval(milliseconds=1)), 1, 0))
    b = b.mutate(_island=b._new.sum().over(ibis.window(group_by=[b._d_patient, b._d_id],
                                                       order_by=[b._d_low, b._d_high], rows=(None, 0))))
    first = b.filter(b._island == 1)
    return first.group_by(["_d_patient", "_d_id"]).aggregate(_d_low=first._d_low.min(), _d_high=first._d_high.max())


# --- Result ------------------------------------------------------------------------------------------------------

def lvsd_case_result(*, base: HfLvsdBase, numerator: ir.Table, exceptions: ir.Table, measure_id: str,
                     ecqm_id: str, stratum: str, gap_reason: str) -> ir.Table:
    """One row per IP patient in the result contract: DENOM = an HF-LVSD encounter, DENEX = `base.exclusions`,
    NUMER = `numerator` (patient_id, encounter_id, evidence), DENEXCEP = `exceptions` (patient_id, evidence; one row
    per patient). The case's encounter is the numerator's, else the latest HF-LVSD encounter, else the latest HF
    encounter."""
    ip = base.initial_population
    lvsd = _latest_per_patient(base.lvsd_encounters)
    denom = lvsd.select(_d_patient=lvsd.patient_id, _d_encounter=lvsd.encounter_id,
                        _d_evidence=ibis.literal("Encounter/") + lvsd.encounter_id + ";" + lvsd.lvsd_evidence)
    excl = base.exclusions.rename(_x_patient="patient_id", _x_evidence="evidence")
    numer = numerator.rename(_n_patient="patient_id", _n_encounter="encounter_id", _n_evidence="evidence")
    excep = exceptions.rename(_c_patient="patient_id", _c_evidence="evidence")
    t = (ip.left_join(denom, [("patient_id", "_d_patient")])
         .left_join(excl, [("patient_id", "_x_patient")])
         .left_join(numer, [("patient_id", "_n_patient")])
         .left_join(excep, [("patient_id", "_c_patient")]))
    cases = t.select(
        population_group=ibis.literal(1), stratum=ibis.literal(stratum), patient_id=t.patient_id,
        encounter_id=ibis.coalesce(t._n_encounter, t._d_encounter, t.ip_encounter_id),
        is_initial_population=ibis.literal(True), is_denominator=t._d_patient.notnull(),
        is_denominator_exclusion=t._x_patient.notnull(), is_numerator=t._n_patient.notnull(),
        is_denominator_exception=t._c_patient.notnull(),
        evidence=join_evidence(ibis.coalesce(t._d_evidence, t.ip_evidence), t._x_evidence, t._n_evidence,
                               t._c_evidence),
        gap_reason=ibis.literal(gap_reason))
    return finalize_case_result(cases, measure_id=measure_id, ecqm_id=ecqm_id)


def gather_evidence(parts: list[ir.Table]) -> ir.Table:
    """One row per patient from (patient_id, evidence) tables: the distinct evidence items, sorted, joined by `;`.
    (Aggregates without `order_by`, which PySpark cannot compile, and sorts afterwards.)"""
    items = ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct()
    grouped = items.group_by("patient_id").aggregate(_all=items.evidence.group_concat(";"))
    return grouped.select(patient_id=grouped.patient_id, evidence=grouped._all.split(";").unique().sort().join(";"))


def join_evidence(*parts: ir.StringValue) -> ir.StringValue:
    """The distinct `ResourceType/id` items of the non-null `;`-separated parts, sorted and joined by `;`."""
    text = ibis.literal("")
    for part in parts:
        text = text + ibis.literal(";") + part.fill_null("")
    # Empty parts (an aggregate over no rows is '' on some backends) leave runs of ';' behind.
    text = text.re_replace(";;+", ";").re_replace("^;|;$", "")
    return text.split(";").unique().sort().join(";")

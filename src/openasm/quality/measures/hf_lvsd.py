"""Shared logic of Q008/CMS144 and Q005/CMS135, heart failure with LVSD (quality.md §4.4), ported from the CQL
library `AHAOverall` 2.8.000 that both 2025 measure packages embed: the initial population, the HF outpatient
encounter with a history of moderate or severe LVSD (the denominator), the heart-transplant/LVAD exclusions, the
"ordered or active during the encounter" numerator test, and the timing functions the exceptions use.

Timing is `cql_datetime`: `day of` comparisons use the dates as written, the others instants; a Period without an
end is closed at the end of time and one without a start has an unknown start. Timed criteria (exclusions,
exceptions) are data: each `Criterion` names its resource type, codes and timing, and all criteria of a measure are
matched and joined to the HF-LVSD encounters in one pass, which keeps the query plan small.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import (
    DAY,
    Interval,
    Moment,
    before,
    contains,
    during,
    overlaps,
    overlaps_after,
)
from openasm.quality.measures.common import (
    ACTIVE_CLINICAL_STATUSES,
    SNOMED,
    age_in_years,
    collect_evidence,
    finalize_case_result,
    first_per_patient,
    join_evidence,
    oid,
    period_of,
    prevalence_interval,
    quantity_in,
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
OBSERVATION_DONE = ("final", "amended", "corrected")
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


@dataclass(frozen=True)
class HfLvsdBase:
    """The populations every AHAOverall measure shares, as Ibis tables:
    `initial_population` (patient_id, ip_encounter_id, ip_evidence) — one row per IP patient, the latest HF encounter;
    `lvsd_encounters` (patient_id, encounter_id, enc_start*, enc_end*, lvsd_evidence) — every HF outpatient
    encounter with a history of moderate or severe LVSD, its period stored as `Interval.columns("enc")` (the CQL
    does not restrict it to IP patients);
    `exclusions` (patient_id, evidence) — heart transplant or LVAD (or their complications) before such an encounter.
    """

    initial_population: ir.Table
    lvsd_encounters: ir.Table
    exclusions: ir.Table


def is_confirmed_active(condition: ir.Table) -> ir.BooleanValue:
    """AHAOverall.isConfirmedActiveDiagnosis: clinical status active/recurrence/relapse and verification confirmed."""
    return (condition.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False)
            & (condition.verification_status == "confirmed").fill_null(False))


def code_matches(clinical: ClinicalTables, value_set_code: ir.Table, criteria: list[tuple[str, str, tuple, tuple, tuple]]
                 ) -> ir.Table:
    """(patient_id, resource_type, resource_id, criterion) for every coding of the criterion's elements in its value
    sets or SNOMED codes; `criteria` rows are (criterion, resource_type, elements, oids, snomed). One join tags
    every resource with every criterion it meets."""
    by_oid = [(name, rtype, element, oid(o)) for name, rtype, elements, oids, _ in criteria for o in oids
              for element in elements]
    direct = [(name, rtype, element, SNOMED, code) for name, rtype, elements, _, codes in criteria for code in codes
              for element in elements]
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
    keys = matches.filter(matches.criterion == criterion)
    return table.semi_join(keys, [table.patient_id == keys.patient_id, table.resource_id == keys.resource_id])


# --- Initial population and denominator ---------------------------------------------------------------------------

@shared_result("hf_lvsd")
def hf_lvsd_base(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> HfLvsdBase:
    """AHAOverall: initial population (age ≥ 18 at MP start, two qualifying encounters, one HF outpatient encounter),
    HF outpatient encounters with a history of moderate or severe LVSD (a finding starting before the encounter
    ends), and the denominator exclusions."""
    matches = code_matches(clinical, value_set_code, [
        ("hf_encounter", "Encounter", ("type",), VS_HF_ENCOUNTERS, ()),
        ("qualifying_encounter", "Encounter", ("type",), (VS_PATIENT_PROVIDER_INTERACTION,), ()),
        ("heart_failure", "Condition", ("code",), (VS_HEART_FAILURE,), ()),
        ("ejection_fraction", "Observation", ("code",), (VS_EJECTION_FRACTION,), ()),
        ("lvsd_listed", "Condition", ("code",), (VS_MODERATE_OR_SEVERE_LVSD,), ()),
        ("lvsd", "Condition", ("code",), (), (LVSD_SNOMED,)),
        ("moderate_or_severe", "Condition", ("severity",), (VS_MODERATE_OR_SEVERE,), ()),
    ])
    e = clinical.encounter.filter(clinical.encounter.status == "finished")
    in_period = e.filter(during(period_of(e, "period"), period.interval, DAY, tz=period.tz))
    encounter_types = matches.filter(matches.resource_type == "Encounter")
    typed = in_period.semi_join(encounter_types, [in_period.patient_id == encounter_types.patient_id,
                                                  in_period.resource_id == encounter_types.resource_id])
    hf_typed = _with_criterion(in_period, matches, "hf_encounter")
    two = (typed.group_by("patient_id").aggregate(_n=typed.resource_id.nunique())
           .filter(lambda t: t._n >= MINIMUM_QUALIFYING_ENCOUNTERS).select(_q_patient="patient_id"))
    hf = _hf_outpatient_encounters(hf_typed, _with_criterion(clinical.condition, matches, "heart_failure"), period)

    p = clinical.patient
    adults = p.filter(age_in_years(p.birth_date, period.start_date) >= MINIMUM_AGE).select(_a_patient=p.patient_id)
    latest = first_per_patient(hf, ibis.desc(hf.enc_start), ibis.desc(hf.encounter_id))
    ip = latest.join(two, latest.patient_id == two._q_patient).join(adults, latest.patient_id == adults._a_patient)
    ip = ip.select(patient_id=ip.patient_id, ip_encounter_id=ip.encounter_id,
                   ip_evidence=ibis.literal("Encounter/") + ip.encounter_id + ";" + ip.hf_evidence)

    findings = _lvsd_findings(clinical, matches)
    joined = hf.join(findings, [hf.patient_id == findings._f_patient,
                                before(Moment.of(findings, "finding"), Interval.of(hf, "enc").end, tz=period.tz)])
    lvsd = joined.group_by(_encounter_columns(hf)).aggregate(lvsd_evidence=joined.finding_id.min())
    exclusions = timed_events(lvsd, clinical, value_set_code, EXCLUSION_CRITERIA, period)
    return HfLvsdBase(initial_population=ip, lvsd_encounters=lvsd,
                      exclusions=collect_evidence([exclusions.select("patient_id", "evidence")]))


def _encounter_columns(table: ir.Table) -> list[str]:
    return ["patient_id", "encounter_id", *[c for c in table.columns if c.startswith("enc_")]]


def _hf_outpatient_encounters(hf_typed: ir.Table, heart_failure: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """AHAOverall "Heart Failure Outpatient Encounter": an HF-type encounter during day of the MP whose period a
    confirmed active heart-failure prevalence overlaps. (patient_id, encounter_id, enc_*, hf_evidence)."""
    encounters = hf_typed.select(patient_id=hf_typed.patient_id, encounter_id=hf_typed.resource_id,
                                 **period_of(hf_typed, "period").columns("enc")).distinct()
    hf = heart_failure.filter(is_confirmed_active(heart_failure))
    hf = hf.select(_h_patient=hf.patient_id, _h_id=hf.resource_id, **prevalence_interval(hf).columns("_h"))
    joined = encounters.join(hf, [encounters.patient_id == hf._h_patient,
                                  overlaps(Interval.of(hf, "_h"), Interval.of(encounters, "enc"), tz=period.tz)])
    per_encounter = joined.group_by(_encounter_columns(encounters)).aggregate(_h_first=joined._h_id.min())
    return per_encounter.mutate(hf_evidence=ibis.literal("Condition/") + per_encounter._h_first).drop("_h_first")


def _lvsd_findings(clinical: ClinicalTables, matches: ir.Table) -> ir.Table:
    """AHAOverall "Moderate or Severe LVSD Findings" as (_f_patient, finding*, finding_id): an ejection fraction
    ≤ 40 % (final/amended/corrected; the start of its effective time), or a confirmed active moderate/severe LVSD
    diagnosis (the start of its prevalence interval; no onset = the beginning of time)."""
    obs = _with_criterion(clinical.observation, matches, "ejection_fraction")
    obs = obs.filter(obs.status.isin(OBSERVATION_DONE)
                     & (quantity_in(obs.value_quantity, obs.value_unit, "%") <= LVSD_EJECTION_FRACTION_MAX))
    ef = obs.select(_f_patient=obs.patient_id, **Moment.of(obs, "effective_start").columns("finding"),
                    finding_id=ibis.literal("Observation/") + obs.resource_id)
    c = clinical.condition
    severe = _with_criterion(_with_criterion(c, matches, "lvsd"), matches, "moderate_or_severe")
    conditions = ibis.union(_with_criterion(c, matches, "lvsd_listed"), severe, distinct=True)
    conditions = conditions.filter(is_confirmed_active(conditions))
    dx = conditions.select(_f_patient=conditions.patient_id,
                           **prevalence_interval(conditions).start.columns("finding"),
                           finding_id=ibis.literal("Condition/") + conditions.resource_id)
    return ibis.union(ef, dx, distinct=True)


# --- Timed criteria against the HF-LVSD encounters ----------------------------------------------------------------

def timed_events(lvsd_encounters: ir.Table, clinical: ClinicalTables, value_set_code: ir.Table,
                 criteria: tuple[Criterion, ...] | list[Criterion], period: MeasurementPeriod) -> ir.Table:
    """(patient_id, criterion, evidence) for every resource meeting a criterion against some HF-LVSD encounter
    (`HfLvsdBase.lvsd_encounters`).
    Conditions: confirmed active, timed by their prevalence interval (DIAGNOSED_BEFORE_END: Coalesce(recordedDate,
    prevalence start)). AllergyIntolerance: clinical status active and verification confirmed, timed by
    Interval[start of onset, lastOccurrence] (null boundaries closed: the beginning and the end of time).
    Procedures: status completed, timed by the performed interval."""
    matches = code_matches(clinical, value_set_code,
                           [(c.name, c.resource_type, ("code",), c.oids, c.snomed) for c in criteria])
    timing = ibis.memtable(pa.table({"_t_criterion": [c.name for c in criteria], "timing": [c.timing for c in criteria]}))
    matches = matches.join(timing, matches.criterion == timing._t_criterion).drop("_t_criterion")

    cond = clinical.condition.filter(is_confirmed_active(clinical.condition))
    prevalence = prevalence_interval(cond)
    allergy = clinical.allergy_intolerance
    allergy = allergy.filter((allergy.clinical_status == "active").fill_null(False)
                             & (allergy.verification_status == "confirmed").fill_null(False))
    exposure = Interval(Moment.of(allergy, "onset_start").or_beginning(),
                        Moment.of(allergy, "last_occurrence").or_end())
    proc = clinical.procedure.filter(clinical.procedure.status == "completed")
    candidates = ibis.union(
        _candidate(cond, "Condition", prevalence, Moment.of(cond, "recorded_date").or_else(prevalence.start)),
        _candidate(allergy, "AllergyIntolerance", exposure, Moment.unknown()),
        _candidate(proc, "Procedure", period_of(proc, "performed"), Moment.unknown()))
    events = candidates.join(matches, [candidates._c_patient == matches.patient_id,
                                       candidates._c_type == matches.resource_type,
                                       candidates._c_id == matches.resource_id])
    lvsd = lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, **Interval.of(lvsd, "enc").columns("_e"))
    event, encounter, tz = Interval.of(events, "_c"), Interval.of(enc, "_e"), period.tz
    timed = ibis.cases(
        (events.timing == OVERLAPS, overlaps(event, encounter, DAY, tz=tz)),
        (events.timing == OVERLAPS_AFTER, overlaps_after(event, encounter, DAY, tz=tz)),
        (events.timing == STARTS_BEFORE_END, before(event.start, encounter.end, tz=tz)),
        (events.timing == DIAGNOSED_BEFORE_END, before(Moment.of(events, "_c_diagnosed"), encounter.end, tz=tz)),
        else_=ibis.literal(False))
    hits = events.join(enc, [events._c_patient == enc._e_patient, timed])
    return hits.select(patient_id=hits._c_patient, criterion=hits.criterion,
                       evidence=hits._c_type + "/" + hits._c_id).distinct()


def _candidate(table: ir.Table, resource_type: str, interval: Interval, diagnosed: Moment) -> ir.Table:
    return table.select(_c_patient=table.patient_id, _c_type=ibis.literal(resource_type), _c_id=table.resource_id,
                        **interval.columns("_c"), **diagnosed.columns("_c_diagnosed"))


# --- Numerator ----------------------------------------------------------------------------------------------------

def therapy_ordered_or_active(base: HfLvsdBase, clinical: ClinicalTables, value_set_code: ir.Table, oid_: str,
                              period: MeasurementPeriod, *, medication: tuple[str, ...]) -> ir.Table:
    """Numerator: a MedicationRequest (status active/completed, an order intent) for a medication in value set `oid_`
    (looked for in the clinical_coding `medication` elements) either authored during day of an HF-LVSD encounter
    (isOrderedDuringHeartFailureOutpatientEncounter) or whose first collapsed dosage period overlaps after day of it
    (overlapsAfterHeartFailureOutpatientEncounter). A doNotPerform request is a negation, never a positive order.
    Returns (patient_id, encounter_id, evidence), one row per patient (the latest such encounter)."""
    mr = clinical.medication_request
    orders = mr.filter(mr.status.isin(ORDER_STATUSES) & mr.intent.isin(ORDER_INTENTS)
                       & ~mr.do_not_perform.fill_null(False))
    orders = _with_criterion(orders, code_matches(clinical, value_set_code, [
        ("therapy", "MedicationRequest", medication, (oid_,), ())]), "therapy")
    authored = orders.select(_o_patient=orders.patient_id, _o_id=orders.resource_id, _o_active=ibis.literal(False),
                             **Interval.point(Moment.of(orders, "authored_on")).columns("_o"))
    doses = first_dosage_period(dosage_bounds(clinical))
    dosed = orders.join(doses, [orders.patient_id == doses._d_patient, orders.resource_id == doses._d_id])
    dosed = dosed.select(_o_patient=dosed.patient_id, _o_id=dosed.resource_id, _o_active=ibis.literal(True),
                         **Interval.of(dosed, "_d").columns("_o"))
    candidates = ibis.union(authored, dosed, distinct=True)
    lvsd = base.lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, _e_id=lvsd.encounter_id, **Interval.of(lvsd, "enc").columns("_e"))
    candidate, encounter, tz = Interval.of(candidates, "_o"), Interval.of(enc, "_e"), period.tz
    timed = ibis.ifelse(candidates._o_active, overlaps_after(candidate, encounter, DAY, tz=tz),
                        contains(encounter, candidate.start, DAY, tz=tz))
    hits = candidates.join(enc, [candidates._o_patient == enc._e_patient, timed])
    hits = hits.select(patient_id=hits._o_patient, resource_id=hits._o_id, _e_id=hits._e_id, _e_start=hits._e_start)
    first = first_per_patient(hits, ibis.desc(hits._e_start), hits.resource_id)
    return first.select(patient_id=first.patient_id, encounter_id=first._e_id,
                        evidence=ibis.literal("Encounter/") + first._e_id + ";MedicationRequest/" + first.resource_id)


def dosage_bounds(clinical: ClinicalTables) -> ir.Table:
    """(patient_id, resource_id, bounds_start*, bounds_end*): the dosage timing bounds of every MedicationRequest, one
    row per dosageInstruction with a bounds period (`medication_request_dosage`)."""
    d = clinical.medication_request_dosage
    return d.select("patient_id", "resource_id", *[c for c in d.columns if c.startswith("bounds_")])


def first_dosage_period(bounds: ir.Table) -> ir.Table:
    """First(collapse(dosage bounds) sorted by start) per request as (_d_patient, _d_id, _d_start*, _d_end*): the
    bounds are sorted by start and merged while they overlap or meet (within 1 ms); the first merged interval is
    kept, from its earliest start to its latest end. A missing end is the end of time; a dosage without a start
    (unknown) is left out."""
    b = bounds.filter(bounds.bounds_start.notnull())
    b = b.select(_d_patient=b.patient_id, _d_id=b.resource_id,
                 **Interval.period(b, "bounds_start", "bounds_end").columns("_d"))
    keys = [b._d_patient, b._d_id]
    order = [b._d_start, b._d_end_last]
    earlier_end = b._d_end_last.max().over(ibis.window(group_by=keys, order_by=order, rows=(None, -1)))
    b = b.mutate(_new=ibis.ifelse(earlier_end.isnull() | (b._d_start > earlier_end + ibis.interval(milliseconds=1)),
                                  1, 0))
    b = b.mutate(_island=b._new.sum().over(ibis.window(group_by=keys, order_by=order, rows=(None, 0))))
    island = b.filter(b._island == 1)
    starts = first_per_patient(island, island._d_start, by=["_d_patient", "_d_id"])
    ends = first_per_patient(island, ibis.desc(island._d_end_last), by=["_d_patient", "_d_id"])
    ends = ends.select(_x_patient=ends._d_patient, _x_id=ends._d_id,
                       **{c.replace("_d_end", "_x_end"): ends[c] for c in ends.columns if c.startswith("_d_end")})
    first = starts.join(ends, [starts._d_patient == ends._x_patient, starts._d_id == ends._x_id])
    return first.select("_d_patient", "_d_id", **Moment.of(first, "_d_start").columns("_d_start"),
                        **Moment.of(first, "_x_end").columns("_d_end"))


# --- Result ------------------------------------------------------------------------------------------------------

def lvsd_case_result(*, base: HfLvsdBase, numerator: ir.Table, exceptions: ir.Table, measure_id: str,
                     ecqm_id: str, stratum: str, gap_reason: str) -> ir.Table:
    """One row per IP patient in the result contract: DENOM = an HF-LVSD encounter, DENEX = `base.exclusions`,
    NUMER = `numerator` (patient_id, encounter_id, evidence), DENEXCEP = `exceptions` (patient_id, evidence; one row
    per patient). The case's encounter is the numerator's, else the latest HF-LVSD encounter, else the latest HF
    encounter."""
    ip = base.initial_population
    lvsd = first_per_patient(base.lvsd_encounters, ibis.desc(base.lvsd_encounters.enc_start),
                             ibis.desc(base.lvsd_encounters.encounter_id))
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


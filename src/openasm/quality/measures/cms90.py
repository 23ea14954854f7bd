"""Q377 / CMS90 — Functional status assessments for heart failure (quality.md §4.6), ported from the CQL of
FunctionalStatusAssessmentsforHeartFailureFHIR 0.1.000 (2025 package, with `Status` 1.8.000 and `Hospice` 6.12.000).

IP = Denominator: age ≥ 18 at MP start, a heart-failure diagnosis whose prevalence overlaps the MP and starts before
it, and two qualifying encounters (office, telephone, virtual; performed; during the MP) the second starting at
least one day after the first ends. DENEX: hospice (shared `Hospice` port) or severe cognitive impairment overlapping
the MP. NUMER: the same instrument completed (all its items, each with a value, on one day) on or up to 14 days
before the end of a qualifying encounter that ends ≥ 180 days before the MP end, and again 30–180 days later.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import DAY, Interval, Moment, during, overlaps, overlaps_before, same_or_after, same_or_before, within_before
from openasm.quality.measures import EcqmMeasure
from openasm.quality.measures.common import (
    LOINC,
    SNOMED,
    age_in_years,
    coded,
    collect_evidence,
    evidence_of,
    finalize_case_result,
    first_per_patient,
    having_code,
    join_evidence,
    period_of,
    prevalence_interval,
)
from openasm.quality.measures.shared_exclusions import (
    assessments_performed,
    encounters_performed,
    hospice_patients,
)
from openasm.rules import RulesForYear

VS_QUALIFYING_ENCOUNTERS = ("A.101.12.1001", "A.101.12.1080", "A.101.12.1089")  # office, telephone, virtual
VS_HEART_FAILURE = "B.376"
SEVERE_COGNITIVE_IMPAIRMENT_SNOMED = "702956004"

# Constants written in the CQL.
MINIMUM_AGE = 18
SECOND_ENCOUNTER_GAP_DAYS = 1  # OfficeVisit2 starts 1 day or more after day of end of OfficeVisit1
ENCOUNTER_END_BEFORE_MP_END_DAYS = 180  # encounter ends 180 days or more before day of end of MP
INITIAL_LOOKBACK_DAYS = 14  # initial assessment 14 days or less on or before day of end of the encounter
FOLLOW_UP_DAYS = (30, 180)  # follow-up during day of [initial + 30 days, initial + 180 days]

# Functional status instruments: every LOINC item must be completed on the same day (direct-reference codes).
INSTRUMENT_ITEMS: dict[str, tuple[str, ...]] = {
    "PROMIS-10": ("71969-0", "71971-6"),
    "PROMIS-29": ("71955-9", "71957-5", "71959-1", "71961-7", "71963-3", "71965-8", "71967-4"),
    "VR-12 oblique": ("72026-8", "72025-0"),
    "VR-12 orthogonal": ("72028-4", "72027-6"),
    "VR-36 oblique": ("71990-6", "71989-8"),
    "VR-36 orthogonal": ("72008-6", "72007-8"),
    "MLHFQ": ("85618-7", "85609-6"),
    "KCCQ-12": ("86923-0", "86924-8"),
    "KCCQ domain scores": ("72189-4", "72194-4", "72190-2", "72191-0", "72195-1", "72196-9"),
    "KCCQ total score": ("71940-1",),
}

GAP_NO_ENCOUNTER = (f"no qualifying encounter ending at least {ENCOUNTER_END_BEFORE_MP_END_DAYS} days before the "
                    "end of the measurement period")
GAP_NO_INITIAL = (f"no complete functional status assessment on or up to {INITIAL_LOOKBACK_DAYS} days before a "
                  f"qualifying encounter ending at least {ENCOUNTER_END_BEFORE_MP_END_DAYS} days before period end")
GAP_NO_FOLLOW_UP = (f"no follow-up assessment with the same instrument {FOLLOW_UP_DAYS[0]}-{FOLLOW_UP_DAYS[1]} days "
                    "after the initial assessment")


def instrument_items() -> ir.Table:
    """The instrument → LOINC item table (with the item count each instrument needs), joined against observations."""
    names = [name for name, items in INSTRUMENT_ITEMS.items() for _ in items]
    codes = [code for items in INSTRUMENT_ITEMS.values() for code in items]
    counts = [float(len(INSTRUMENT_ITEMS[name])) for name in names]
    return ibis.memtable(pa.table({"instrument": names, "loinc": codes, "item_count": counts}))


def evaluate_cms90(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                   rules: RulesForYear | None = None) -> ir.Table:
    """CMS90 patient-level results (one population group) for every patient in the initial population."""
    encounters = qualifying_encounters(clinical, value_set_code, period)
    ip = _initial_population(clinical, value_set_code, period, encounters)
    excl = collect_evidence([hospice_patients(clinical=clinical, value_set_code=value_set_code, period=period),
                             _severe_cognitive_impairment(clinical, period)])
    cutoff = period.end_moment.plus(days=-ENCOUNTER_END_BEFORE_MP_END_DAYS)
    eligible = encounters.filter(same_or_before(Interval.of(encounters, "enc").end, cutoff, DAY, tz=period.tz))
    completed = completed_assessments(clinical)
    initial = _initial_assessments(eligible, completed, period)
    numer = _with_follow_up(initial, completed)

    first_eligible = first_per_patient(eligible, eligible.enc_start, eligible.encounter_id)
    first_eligible = first_eligible.select(_g_patient=first_eligible.patient_id, _g_encounter=first_eligible.encounter_id)
    has_initial = initial.select(_i_patient=initial.patient_id).distinct()
    excl = excl.rename(_x_patient="patient_id", _x_evidence="evidence")
    numer = numer.rename(_n_patient="patient_id", _n_encounter="encounter_id", _n_evidence="evidence")
    t = (ip.left_join(excl, [("patient_id", "_x_patient")])
         .left_join(numer, [("patient_id", "_n_patient")])
         .left_join(first_eligible, [("patient_id", "_g_patient")])
         .left_join(has_initial, [("patient_id", "_i_patient")]))
    gap = ibis.cases((t._g_patient.isnull(), ibis.literal(GAP_NO_ENCOUNTER)),
                     (t._i_patient.isnull(), ibis.literal(GAP_NO_INITIAL)), else_=ibis.literal(GAP_NO_FOLLOW_UP))
    cases = t.select(
        population_group=ibis.literal(1), stratum=ibis.literal(MEASURE.strata[0]), patient_id=t.patient_id,
        encounter_id=ibis.coalesce(t._n_encounter, t._g_encounter, t.ip_encounter_id),
        is_initial_population=ibis.literal(True), is_denominator=ibis.literal(True),
        is_denominator_exclusion=t._x_patient.notnull(), is_numerator=t._n_patient.notnull(),
        evidence=join_evidence(t.ip_evidence, t._x_evidence, t._n_evidence), gap_reason=gap)
    return finalize_case_result(cases, measure_id=MEASURE.measure_id, ecqm_id=MEASURE.ecqm_id)


@shared_result("cms90_qualifying_encounters")
def qualifying_encounters(clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Qualifying Encounters": performed office/telephone/virtual encounters whose period is during day of the MP.
    (patient_id, encounter_id, enc_start*, enc_end*)."""
    e = coded(encounters_performed(clinical.encounter), clinical, value_set_code, VS_QUALIFYING_ENCOUNTERS,
              resource_type="Encounter", element="type")
    e = e.filter(during(period_of(e, "period"), period.interval, DAY, tz=period.tz))
    return e.select(patient_id=e.patient_id, encounter_id=e.resource_id, **period_of(e, "period").columns("enc"))


@shared_result("cms90_initial_population")
def _initial_population(clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                        encounters: ir.Table) -> ir.Table:
    """(patient_id, ip_encounter_id, ip_evidence) for IP patients: adult, HF overlapping before the MP, two
    encounters, the second starting 1 day or more after day of the end of the first (the pair with the earliest
    first encounter is kept as evidence)."""
    later = encounters.select(_v_patient=encounters.patient_id, _v_id=encounters.encounter_id,
                              **Moment.of(encounters, "enc_start").columns("_v"))
    pairs = encounters.join(later, [
        encounters.patient_id == later._v_patient,
        same_or_after(Moment.of(later, "_v"), Interval.of(encounters, "enc").end.plus(days=SECOND_ENCOUNTER_GAP_DAYS),
                      DAY, tz=period.tz)])
    pairs = pairs.select("patient_id", "encounter_id", "enc_start", _second=pairs._v_id)
    pair = first_per_patient(pairs, pairs.enc_start, pairs.encounter_id)

    hf = coded(clinical.condition, clinical, value_set_code, VS_HEART_FAILURE, resource_type="Condition")
    # "overlaps before": starts before the MP starts and does not end before it.
    hf = hf.filter(overlaps_before(prevalence_interval(hf), period.interval, tz=period.tz))
    hf = hf.group_by("patient_id").aggregate(_hf_id=hf.resource_id.min()).rename(_c_patient="patient_id")

    p = clinical.patient
    adults = p.filter(age_in_years(p.birth_date, period.start_date) >= MINIMUM_AGE).select(_a_patient=p.patient_id)
    ip = pair.join(hf, pair.patient_id == hf._c_patient).join(adults, pair.patient_id == adults._a_patient)
    return ip.select(patient_id=ip.patient_id, ip_encounter_id=ip.encounter_id,
                     ip_evidence=ibis.literal("Condition/") + ip._hf_id + ";Encounter/" + ip.encounter_id
                     + ";Encounter/" + ip._second)


def _severe_cognitive_impairment(clinical: ClinicalTables, period: MeasurementPeriod) -> ir.Table:
    """Severe cognitive impairment (any status) whose prevalence interval overlaps the MP. (patient_id, evidence)."""
    rows = having_code(clinical.condition, clinical.clinical_coding, SNOMED, SEVERE_COGNITIVE_IMPAIRMENT_SNOMED,
                       resource_type="Condition")
    rows = rows.filter(overlaps(prevalence_interval(rows), period.interval, tz=period.tz))
    return evidence_of(rows, "Condition")


@shared_result("cms90_completed_assessments")
def completed_assessments(clinical: ClinicalTables) -> ir.Table:
    """"Date <instrument> Total Assessment Completed": (patient_id, instrument, day, observations) for each day on
    which every item of an instrument was performed (final/amended/corrected, survey category) with a value; the
    day is the date of the start of the effective time."""
    done = assessments_performed(clinical.observation, clinical.clinical_coding)
    codings = clinical.clinical_coding
    coded_value = codings.filter((codings.resource_type == "Observation") & (codings.element == "value"))
    coded_value = coded_value.select(_cv_patient=coded_value.patient_id, _cv_id=coded_value.resource_id).distinct()
    scalar = done.filter(done.value_quantity.notnull() | done.value_boolean.notnull() | done.value_datetime.notnull()
                         | done.value_string.notnull())
    coded = done.join(coded_value, [done.patient_id == coded_value._cv_patient,
                                    done.resource_id == coded_value._cv_id]).drop("_cv_patient", "_cv_id")
    valued = ibis.union(scalar, coded, distinct=True)
    day = period_of(valued, "effective").start.date()
    valued = valued.filter(day.notnull())
    valued = valued.select(_o_patient=valued.patient_id, _o_id=valued.resource_id, _o_day=day)

    items = instrument_items()
    loinc = codings.filter((codings.resource_type == "Observation") & (codings.element == "code")
                           & (codings.system == LOINC))
    loinc = loinc.join(items, loinc.code == items.loinc)
    loinc = loinc.select("instrument", "item_count", _l_patient=loinc.patient_id, _l_id=loinc.resource_id,
                         _l_code=loinc.code).distinct()
    hits = valued.join(loinc, [valued._o_patient == loinc._l_patient, valued._o_id == loinc._l_id])
    per_day = hits.group_by([hits._o_patient, hits.instrument, hits._o_day]).aggregate(
        _items=hits._l_code.nunique(), _needed=hits.item_count.max(),
        observations=(ibis.literal("Observation/") + hits._o_id).group_concat(";"))
    complete = per_day.filter(per_day._items.cast("float64") >= per_day._needed)
    return complete.select(patient_id=complete._o_patient, instrument=complete.instrument, day=complete._o_day,
                           observations=complete.observations)


def _initial_assessments(eligible: ir.Table, completed: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """Completed assessments (a date) 14 days or less on or before day of the end of an eligible encounter:
    (patient_id, encounter_id, enc_start, instrument, day, observations)."""
    enc = eligible.select(_e_patient=eligible.patient_id, _e_id=eligible.encounter_id, _e_start=eligible.enc_start,
                          **Interval.of(eligible, "enc").end.columns("_e_end"))
    joined = completed.join(enc, [completed.patient_id == enc._e_patient,
                                  within_before(Moment.of_date(completed.day), Moment.of(enc, "_e_end"),
                                                INITIAL_LOOKBACK_DAYS, tz=period.tz)])
    return joined.select("patient_id", "instrument", "day", "observations", encounter_id=joined._e_id,
                         enc_start=joined._e_start)


def _with_follow_up(initial: ir.Table, completed: ir.Table) -> ir.Table:
    """Initial assessments followed by the same instrument 30–180 days later; one row per patient (the earliest
    encounter): (patient_id, encounter_id, evidence)."""
    follow = completed.select(_f_patient=completed.patient_id, _f_instrument=completed.instrument,
                              _f_day=completed.day, _f_obs=completed.observations)
    low, high = FOLLOW_UP_DAYS
    joined = initial.join(follow, [initial.patient_id == follow._f_patient, initial.instrument == follow._f_instrument,
                                   follow._f_day >= initial.day + ibis.interval(days=low),
                                   follow._f_day <= initial.day + ibis.interval(days=high)])
    joined = joined.select("patient_id", "encounter_id", "enc_start",
                           evidence=ibis.literal("Encounter/") + joined.encounter_id + ";" + joined.observations
                           + ";" + joined._f_obs)
    first = first_per_patient(joined, joined.enc_start, joined.encounter_id, joined.evidence)
    return first.select("patient_id", "encounter_id", "evidence")


MEASURE = EcqmMeasure(
    measure_id="377", ecqm_id="CMS90", strata=("overall",), evaluate=evaluate_cms90,
    title="Functional Status Assessments for Heart Failure")

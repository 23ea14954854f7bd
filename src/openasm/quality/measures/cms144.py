"""Q008 / CMS144 — Heart failure: beta-blocker therapy for LVSD (quality.md §4.4), ported from the CQL of
HFBetaBlockerTherapyforLVSDFHIR 1.4.000 (2025 package). IP, denominator and exclusions are `hf_lvsd` (AHAOverall).

Differences from the spec text, following the embedded CQL: the medical/patient-reason exception and the arrhythmia
exception are commented out of "Denominator Exceptions" in this version, so neither is evaluated. The ELM of both
numerator retrieves follows MedicationRequest.medicationReference to the Medication's code.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.cql_datetime import Interval, Moment, before, during
from openasm.quality.measures import EcqmMeasure
from openasm.quality.measures.common import (
    ANY_MEDICATION,
    LOINC,
    collect_evidence,
    first_per_patient,
    having_code,
    join_evidence,
    period_of,
    quantity_in,
    with_profile,
)
from openasm.quality.measures.hf_lvsd import (
    OBSERVATION_DONE,
    OVERLAPS,
    OVERLAPS_AFTER,
    STARTS_BEFORE_END,
    Criterion,
    HfLvsdBase,
    hf_lvsd_base,
    lvsd_case_result,
    therapy_ordered_or_active,
    timed_events,
)
from openasm.rules import RulesForYear

VS_BETA_BLOCKER = "B.1184"
HEART_RATE_LOINC = "8867-4"  # the code the FHIR heart-rate profile ("observation-heartrate") fixes
HEART_RATE_PROFILE = "http://hl7.org/fhir/StructureDefinition/heartrate"
HEART_RATE_MAX = 50.0  # HeartRate.value < 50 '/min'

# "Denominator Exceptions" other than the heart rates. Diagnoses are confirmed active; the AllergyIntolerance is
# active and confirmed (AHAOverall) — the measure's own clinicalStatus ~ active test adds nothing to that.
DIRECT_EXCEPTIONS = (
    Criterion("hypotension", "Condition", OVERLAPS, oids=("B.370",)),
    Criterion("asthma", "Condition", OVERLAPS, oids=("B.362",)),
    Criterion("beta_blocker_allergy_or_intolerance_dx", "Condition", OVERLAPS_AFTER, oids=("B.1177", "B.1178")),
    Criterion("bradycardia", "Condition", OVERLAPS, oids=("B.412",)),
    # Beta Blocker Therapy Ingredient; SNOMED 373254001 = substance with beta adrenergic receptor antagonist action.
    Criterion("beta_blocker_allergy", "AllergyIntolerance", OVERLAPS_AFTER, oids=("B.1493",), snomed=("373254001",)),
)
# "Atrioventricular Block without Cardiac Pacer".
AV_BLOCK = Criterion("av_block", "Condition", OVERLAPS, oids=("B.367",))
PACER = (Criterion("cardiac_pacer_in_situ", "Condition", OVERLAPS_AFTER, oids=("B.368",)),
         Criterion("cardiac_pacer", "Procedure", STARTS_BEFORE_END, oids=("D.1178.53",)))

GAP_REASON = "no beta-blocker ordered or active during the HF encounter"


def evaluate_cms144(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                    rules: RulesForYear | None = None) -> ir.Table:
    """CMS144: IP/DENOM/DENEX from AHAOverall; NUMER = a beta-blocker for LVSD ordered during or active after an
    HF-LVSD encounter; DENEXCEP = consecutive heart rates < 50/min, hypotension, asthma, bradycardia, allergy or
    intolerance to beta-blockers (diagnosis or AllergyIntolerance), AV block without a cardiac pacer."""
    base = hf_lvsd_base(clinical=clinical, value_set_code=value_set_code, period=period)
    numerator = therapy_ordered_or_active(base, clinical, value_set_code, VS_BETA_BLOCKER, period,
                                          medication=ANY_MEDICATION)
    return lvsd_case_result(base=base, numerator=numerator,
                            exceptions=_exceptions(base, clinical, value_set_code, period),
                            measure_id=MEASURE.measure_id, ecqm_id=MEASURE.ecqm_id, stratum=MEASURE.strata[0],
                            gap_reason=GAP_REASON)


def _exceptions(base: HfLvsdBase, clinical: ClinicalTables, value_set_code: ir.Table,
                period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence), one row per excepted patient: a direct exception, consecutive slow heart rates, or an
    AV block with neither a pacer in situ diagnosis (overlapping after) nor a completed pacer procedure before the
    encounter ends."""
    events = timed_events(base.lvsd_encounters, clinical, value_set_code, (*DIRECT_EXCEPTIONS, AV_BLOCK, *PACER),
                          period)
    direct = [c.name for c in DIRECT_EXCEPTIONS]
    pacer = [c.name for c in PACER]
    per_patient = events.group_by("patient_id").aggregate(
        _direct=ibis.ifelse(events.criterion.isin(direct), events.evidence, ibis.null("string")).group_concat(";"),
        _av=ibis.ifelse(events.criterion == AV_BLOCK.name, events.evidence, ibis.null("string")).group_concat(";"),
        _paced=events.criterion.isin(pacer).any())
    av_only = ibis.ifelse(per_patient._paced, ibis.null("string"), per_patient._av)
    excepted = per_patient.select(patient_id=per_patient.patient_id, evidence=join_evidence(per_patient._direct, av_only))
    excepted = excepted.filter(excepted.evidence != "")
    return collect_evidence([excepted, consecutive_slow_heart_rates(base, clinical, period)])


def consecutive_slow_heart_rates(base: HfLvsdBase, clinical: ClinicalTables, period: MeasurementPeriod) -> ir.Table:
    """"Has Consecutive Heart Rates Less than 50": a heart rate (final/amended/corrected, < 50/min) during an
    HF-LVSD encounter whose most recent earlier heart rate during the same encounter (any status; the latest start
    among those ending before it starts) is also < 50/min. Returns (patient_id, evidence)."""
    rates = having_code(clinical.observation, clinical.clinical_coding, LOINC, HEART_RATE_LOINC,
                        resource_type="Observation")
    rates = with_profile(rates, clinical.clinical_coding, HEART_RATE_PROFILE, resource_type="Observation")
    rates = rates.select(patient_id=rates.patient_id, obs_id=rates.resource_id, status=rates.status,
                         slow=(quantity_in(rates.value_quantity, rates.value_unit, "/min") < HEART_RATE_MAX),
                         _order=Moment.of(rates, "effective_start").instant_span(period.tz)[0],
                         **period_of(rates, "effective").columns("_r")).view()
    lvsd = base.lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, _e_id=lvsd.encounter_id, **Interval.of(lvsd, "enc").columns("_e"))
    during_enc = rates.join(enc, [rates.patient_id == enc._e_patient,
                                  during(Interval.of(rates, "_r"), Interval.of(enc, "_e"), tz=period.tz)])
    during_enc = during_enc.select(*rates.columns, encounter_id=during_enc._e_id)
    current = during_enc.filter(during_enc.status.isin(OBSERVATION_DONE) & during_enc.slow)
    prior = during_enc.select(_p_patient=during_enc.patient_id, _p_encounter=during_enc.encounter_id,
                              _p_id=during_enc.obs_id, _p_order=during_enc._order, _p_slow=during_enc.slow,
                              **Interval.of(during_enc, "_r").columns("_p"))
    pairs = current.join(prior, [current.patient_id == prior._p_patient, current.encounter_id == prior._p_encounter,
                                 before(Interval.of(prior, "_p").closed_end(),
                                        Interval.of(current, "_r").closed_start(), tz=period.tz)])
    last = first_per_patient(pairs, ibis.desc(pairs._p_order), ibis.desc(pairs._p_id),
                             by=["patient_id", "encounter_id", "obs_id"])
    hit = last.filter(last._p_slow)
    return hit.select(patient_id=hit.patient_id,
                      evidence=ibis.literal("Observation/") + hit._p_id + ";Observation/" + hit.obs_id).distinct()


MEASURE = EcqmMeasure(
    measure_id="008", ecqm_id="CMS144", strata=("overall",), evaluate=evaluate_cms144,
    title="Heart Failure (HF): Beta-Blocker Therapy for Left Ventricular Systolic Dysfunction (LVSD)")

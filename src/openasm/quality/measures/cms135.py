"""Q005 / CMS135 — Heart failure: ACE inhibitor, ARB or ARNI therapy for LVSD (quality.md §4.4), ported from the CQL
of HFACEIorARBorARNIforLVSDFHIR 0.2.000 (2025 package). IP, denominator and exclusions are `hf_lvsd` (AHAOverall).

Difference from the spec text, following the embedded CQL: the medical/patient-reason exception (incl. decline) is
commented out of "Denominator Exceptions" in this version, so it is not evaluated.

`[MedicationRequest: medication in "ACE Inhibitor or ARB or ARNI"]` in the published ELM of this measure matches the
inline medicationCodeableConcept only (unlike CMS144's, which also follows medicationReference); rule
`quality.ecqm_cms135_resolve_medication_reference` (default false, as the ELM) lets a referenced Medication count.
"""

from __future__ import annotations

import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.cql_datetime import Interval, contains
from openasm.quality.measures import EcqmMeasure, rule_value
from openasm.quality.measures.common import (
    coded,
    collect_evidence,
    evidence_of,
    medication_elements,
    prevalence_interval,
)
from openasm.quality.measures.hf_lvsd import (
    OVERLAPS,
    OVERLAPS_AFTER,
    Criterion,
    HfLvsdBase,
    hf_lvsd_base,
    lvsd_case_result,
    therapy_ordered_or_active,
    timed_events,
)
from openasm.rules import RulesForYear

VS_ACEI_ARB_ARNI = "B.1139"
VS_PREGNANCY = "B.378"
PREGNANCY_LOOKBACK_MONTHS = 9  # prevalence starts 9 months or less before or on the encounter start

# "Denominator Exceptions" other than pregnancy (diagnoses confirmed active; allergies active and confirmed).
TIMED_EXCEPTIONS = (
    # ACE Inhibitor or ARB or ARNI Ingredient; SNOMED substances with ACE inhibitor / angiotensin II receptor
    # antagonist / neprilysin inhibitor mechanism of action.
    Criterion("acei_arb_arni_allergy", "AllergyIntolerance", OVERLAPS_AFTER, oids=("B.1489",),
              snomed=("372733002", "372913009", "786886009")),
    Criterion("acei_arb_allergy_or_intolerance_dx", "Condition", OVERLAPS_AFTER, oids=("B.1211", "B.1212")),
    # Acute renal failure caused by angiotensin-converting-enzyme inhibitor (disorder).
    Criterion("renal_failure_due_to_acei", "Condition", OVERLAPS, snomed=("422593004",)),
)

GAP_REASON = "no ACE inhibitor, ARB or ARNI ordered or active during the HF encounter"


def evaluate_cms135(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                    rules: RulesForYear | None = None) -> ir.Table:
    """CMS135: IP/DENOM/DENEX from AHAOverall; NUMER = an ACE-I/ARB/ARNI ordered during or active after an HF-LVSD
    encounter; DENEXCEP = allergy or intolerance (AllergyIntolerance or diagnosis), pregnancy, or ACE-I-induced
    acute renal failure."""
    base = hf_lvsd_base(clinical=clinical, value_set_code=value_set_code, period=period)
    resolve = bool(rule_value(rules, "quality.ecqm_cms135_resolve_medication_reference"))
    numerator = therapy_ordered_or_active(base, clinical, value_set_code, VS_ACEI_ARB_ARNI, period,
                                          medication=medication_elements(resolve))
    return lvsd_case_result(base=base, numerator=numerator,
                            exceptions=_exceptions(base, clinical, value_set_code, period),
                            measure_id=MEASURE.measure_id, ecqm_id=MEASURE.ecqm_id, stratum=MEASURE.strata[0],
                            gap_reason=GAP_REASON)


def _exceptions(base: HfLvsdBase, clinical: ClinicalTables, value_set_code: ir.Table,
                period: MeasurementPeriod) -> ir.Table:
    """(patient_id, evidence), one row per excepted patient."""
    timed = timed_events(base.lvsd_encounters, clinical, value_set_code, TIMED_EXCEPTIONS, period)
    return collect_evidence([timed.select("patient_id", "evidence"),
                             pregnancy_before_encounter(base, clinical, value_set_code, period)])


def pregnancy_before_encounter(base: HfLvsdBase, clinical: ClinicalTables, value_set_code: ir.Table,
                               period: MeasurementPeriod) -> ir.Table:
    """"Has Diagnosis of Pregnancy": a pregnancy diagnosis (any status) whose prevalence interval starts 9 months
    or less before or on the start of an HF-LVSD encounter (instants). Returns (patient_id, evidence)."""
    pregnancy = coded(clinical.condition, clinical, value_set_code, VS_PREGNANCY, resource_type="Condition")
    # A view: Ibis cannot resolve a non-equality predicate against a left table it also finds in the right's lineage.
    pregnancy = pregnancy.select("patient_id", "resource_id", **prevalence_interval(pregnancy).columns("_p")).view()
    lvsd = base.lvsd_encounters
    enc = lvsd.select(_e_patient=lvsd.patient_id, **Interval.of(lvsd, "enc").columns("_e"))
    start = Interval.of(enc, "_e").start
    window = Interval(start.plus(months=-PREGNANCY_LOOKBACK_MONTHS), start)
    joined = pregnancy.join(enc, [pregnancy.patient_id == enc._e_patient,
                                  contains(window, Interval.of(pregnancy, "_p").start, tz=period.tz)])
    return evidence_of(joined, "Condition").distinct()


MEASURE = EcqmMeasure(
    measure_id="005", ecqm_id="CMS135", strata=("overall",), evaluate=evaluate_cms135,
    title="Heart Failure (HF): ACE Inhibitor or ARB or ARNI Therapy for Left Ventricular Systolic Dysfunction (LVSD)")

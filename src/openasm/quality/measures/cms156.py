"""Q238 / CMS156 — Use of high-risk medications in older adults (quality.md §4.1), ported from the CQL of
`UseofHighRiskMedicationsintheElderlyFHIR` (2025 package, QI-Core 4.1.1) embedded in the measure definition.

Inverse measure with three population groups sharing IP, denominator and exclusions: group 1 `overall` (Numerator 1,
the scored rate), group 2 `appropriateDiagnosis` (Numerator 2), group 3 `totalRate` (Numerator 3 = N1 or N2). Being
in a numerator is the care gap, so `gap_reason` is kept for numerator members (what was ordered, in plain words) and
is empty otherwise.
"""

from __future__ import annotations

from datetime import date, datetime

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod, shared_result
from openasm.quality.cql_datetime import Interval, Moment, during, overlaps
from openasm.quality.measures import EcqmMeasure
from openasm.quality.measures.cms156_orders import (
    ANTI_INFECTIVES,
    ANTIPSYCHOTICS,
    BENZODIAZEPINES,
    DAILY_DOSE_LIMIT_MG,
    PROLONGED_DURATION_DAYS,
    SAME_CLASSES,
    average_daily_dose,
    high_risk_orders,
)
from openasm.quality.measures.common import (
    age_in_years,
    coded,
    collect_evidence,
    finalize_case_result,
    first_per_patient,
    having_code,
    period_of,
    prevalence_interval,
)
from openasm.quality.measures.shared_exclusions import (
    encounters_performed,
    hospice_patients,
    palliative_patients,
)
from openasm.rules import RulesForYear

MEASURE_ID = "238"
ECQM_ID = "CMS156"
STRATA = ("overall", "appropriateDiagnosis", "totalRate")
MIN_AGE = 65  # "Initial Population": AgeInYearsAt(date from end of "Measurement Period") >= 65
CPT = "http://www.ama-assn.org/go/cpt"

# "Qualifying Encounters": Office Visit, Ophthalmological Services, Preventive Care established/initial 18+, NF
# discharge, NF visit, long-term residential care, Annual Wellness Visit, home healthcare, telephone, virtual.
QUALIFYING_ENCOUNTER_VALUE_SETS = (
    "A.101.12.1001", "B.1285", "A.101.12.1025", "A.101.12.1013", "A.101.12.1012", "A.101.12.1014",
    "A.101.12.1023", "B.1240", "A.101.12.1016", "A.101.12.1080", "A.101.12.1089",
)
QUALIFYING_ENCOUNTER_CODES = (CPT, "99211")  # office visit that may not require a physician (direct reference)

# "Numerator 2": ≥ 2 orders of a class without a diagnosis that makes it appropriate, looked for from one year before
# the MP start through the first order of the class in the MP.
DIAGNOSIS_LOOKBACK_YEARS = 1
APPROPRIATE_DIAGNOSES = {
    ANTIPSYCHOTICS: (("A.105.12.1205", "2.16.840.1.113883.3.67.1.101.1.128"),
                     "schizophrenia or bipolar disorder"),
    BENZODIAZEPINES: (("A.105.12.1206", "A.105.12.1207", "A.105.12.1208", "A.105.12.1209", "A.105.12.1210"),
                      ("seizure disorder, REM sleep behavior disorder, benzodiazepine or alcohol withdrawal, or "
                       "generalized anxiety disorder")),
}


def evaluate_cms156(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                    rules: RulesForYear | None = None) -> ir.Table:
    """CMS156 patient-level result: one row per initial-population patient per population group (1 overall,
    2 appropriateDiagnosis, 3 totalRate). IP = DENOM: age ≥ 65 at MP end with a qualifying encounter during the MP;
    DENEX: hospice or palliative care in the MP; no exceptions. `rules` is not used (the measure has no
    configurable parameter)."""
    c = clinical
    population = initial_population(clinical=c, value_set_code=value_set_code, period=period)
    excluded = collect_evidence([hospice_patients(clinical=c, value_set_code=value_set_code, period=period),
                                 palliative_patients(clinical=c, value_set_code=value_set_code, period=period)])
    orders = high_risk_orders(clinical_coding=c.clinical_coding, medication_request=c.medication_request,
                              value_set_code=value_set_code, period=period)
    n1 = _summarize(numerator_1_findings(orders=orders, clinical_coding=c.clinical_coding), "n1")
    n2 = _summarize(numerator_2_findings(orders=orders, clinical=c, value_set_code=value_set_code, period=period),
                    "n2")
    ex = excluded.select(_x_patient=excluded.patient_id, _x_evidence=excluded.evidence)
    base = population.left_join(ex, population.patient_id == ex._x_patient)
    base = base.left_join(n1, base.patient_id == n1._n1_patient)
    base = base.left_join(n2, base.patient_id == n2._n2_patient)
    base = base.select(
        "patient_id", "encounter_id", "_x_evidence", "_n1_reason", "_n1_evidence", "_n2_reason", "_n2_evidence",
        is_excluded=base._x_patient.notnull(), in_n1=base._n1_patient.notnull(), in_n2=base._n2_patient.notnull())
    strata = ibis.memtable({"population_group": list(range(1, len(STRATA) + 1)), "stratum": list(STRATA)},
                           schema={"population_group": "int32", "stratum": "string"})
    both = base.cross_join(strata)
    stratum = both.stratum
    # Group 3, "Numerator 3": "Numerator 2" or ("Numerator 1" and not "Numerator 2").
    numer = ibis.cases((stratum == "overall", both.in_n1), (stratum == "appropriateDiagnosis", both.in_n2),
                       else_=both.in_n1 | both.in_n2)
    evidence = ibis.cases((stratum == "overall", both._n1_evidence),
                          (stratum == "appropriateDiagnosis", both._n2_evidence),
                          else_=_join_text(";", both._n1_evidence, both._n2_evidence))
    reason = ibis.cases((stratum == "overall", both._n1_reason), (stratum == "appropriateDiagnosis", both._n2_reason),
                        else_=_join_text("; ", both._n1_reason, both._n2_reason))
    cases = both.select(
        patient_id=both.patient_id, population_group=both.population_group, stratum=stratum,
        encounter_id=both.encounter_id, is_initial_population=ibis.literal(True),
        is_denominator=ibis.literal(True), is_denominator_exclusion=both.is_excluded, is_numerator=numer,
        evidence=_join_text(";", ibis.literal("Encounter/") + both.encounter_id, both._x_evidence,
                            ibis.ifelse(both.is_excluded, ibis.null("string"), evidence.cast("string"))),
        gap_reason=reason.cast("string"))
    # Inverse measure: the gap is being in the numerator, so its reason stays on numerator members only.
    return finalize_case_result(cases, measure_id=MEASURE_ID, ecqm_id=ECQM_ID, inverse=True)


@shared_result("cms156_initial_population")
def initial_population(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod) -> ir.Table:
    """"Initial Population": AgeInYearsAt(end of MP) ≥ 65 and a performed qualifying encounter whose period is
    during the MP (instants: both ends inside; a period without an end runs to the end of time, so it is not during
    the MP; a date on the first or last day is uncertain, so not during it). One row per patient: patient_id and
    encounter_id, the latest qualifying encounter (by start, then id)."""
    c = clinical
    performed = encounters_performed(c.encounter)
    encounters = ibis.union(
        coded(performed, c, value_set_code, QUALIFYING_ENCOUNTER_VALUE_SETS, resource_type="Encounter",
              element="type"),
        having_code(performed, c.clinical_coding, *QUALIFYING_ENCOUNTER_CODES, resource_type="Encounter",
                    element="type"),
        distinct=True)
    encounters = encounters.filter(during(period_of(encounters, "period"), period.interval, tz=period.tz))
    latest = first_per_patient(encounters, ibis.desc(encounters.period_start), ibis.desc(encounters.resource_id))
    latest = latest.select(_e_patient=latest.patient_id, encounter_id=latest.resource_id)
    patient = c.patient
    aged = patient.filter(age_in_years(patient.birth_date, period.end_date) >= MIN_AGE).select("patient_id").distinct()
    return aged.join(latest, aged.patient_id == latest._e_patient).select("patient_id", "encounter_id")


def numerator_1_findings(*, orders: ir.Table, clinical_coding: ir.Table) -> ir.Table:
    """"Numerator 1" as findings (patient_id, finding, evidence), one per deciding order: ≥ 2 orders of one
    high-risk class (or one order with refills); anti-infective orders whose summed days supplied exceed 90; digoxin
    or doxepin orders whose average daily dose exceeds its limit. Only orders kept by moreThanOneOrder count."""
    kept = orders.filter(orders.is_more_than_one_order)
    by_class = ibis.window(group_by=[kept.patient_id, kept.drug_class])
    kept = kept.mutate(_orders=kept.resource_id.count().over(by_class),
                       _days=kept.days_supplied.sum().over(by_class))
    kept = average_daily_dose(kept, clinical_coding)
    limit = ibis.cases(*[(kept.drug_class == name, ibis.literal(mg)) for name, mg in DAILY_DOSE_LIMIT_MG.items()],
                       else_=ibis.null("float64"))
    same_class = ibis.ifelse(
        kept._orders > 1, kept._orders.cast("string") + " orders of " + kept.drug_class + " (high-risk class)",
        "1 order with refills of " + kept.drug_class + " (high-risk class)")
    prolonged = (ibis.literal("anti-infectives ordered for ") + kept._days.round(0).cast("int64").cast("string")
                 + f" days in total (more than {PROLONGED_DURATION_DAYS})")
    high_dose = (kept.drug_class + " average daily dose " + kept.average_daily_dose_mg.round(4).cast("string")
                 + " mg/day (limit " + limit.cast("string") + " mg/day)")
    finding = ibis.cases(
        (kept.drug_class.isin(SAME_CLASSES), same_class),
        ((kept.drug_class == ANTI_INFECTIVES) & (kept._days > PROLONGED_DURATION_DAYS), prolonged),
        (kept.average_daily_dose_mg > limit, high_dose),
        else_=ibis.null("string"))
    found = kept.mutate(finding=finding)
    found = found.filter(found.finding.notnull())
    return found.select("patient_id", "finding", evidence="MedicationRequest/" + found.resource_id)


def numerator_2_findings(*, orders: ir.Table, clinical: ClinicalTables, value_set_code: ir.Table,
                         period: MeasurementPeriod) -> ir.Table:
    """"Numerator 2" as findings (patient_id, finding, evidence): antipsychotic (or benzodiazepine) orders kept by
    moreThanOneOrder, and no appropriate diagnosis whose prevalence interval overlaps [MP start − 1 year, the class's
    index prescription start] (the earliest authoredOn of a class order authored during the MP)."""
    classes = orders.filter(orders.drug_class.isin(list(APPROPRIATE_DIAGNOSES)))
    authored = classes.filter(classes.authored_in_mp)
    index = first_per_patient(authored, Moment.of(authored, "authored_on").instant_span(period.tz)[0],
                              by=["patient_id", "drug_class"])
    index = index.select(_i_patient=index.patient_id, _i_class=index.drug_class,
                         **Moment.of(index, "authored_on").columns("_i"))
    by_class = ibis.window(group_by=[classes.patient_id, classes.drug_class])
    classes = classes.mutate(_orders=classes.is_more_than_one_order.cast("int64").sum().over(by_class))
    kept = classes.filter(classes.is_more_than_one_order)
    kept = kept.left_join(index, [kept.patient_id == index._i_patient, kept.drug_class == index._i_class])
    diagnoses = ibis.union(*[
        coded(clinical.condition, clinical, value_set_code, list(oids), resource_type="Condition").mutate(
            _c_class=ibis.literal(drug_class))
        for drug_class, (oids, _) in APPROPRIATE_DIAGNOSES.items()])
    diagnoses = diagnoses.select(_c_patient=diagnoses.patient_id, _c_class=diagnoses._c_class,
                                 **prevalence_interval(diagnoses).columns("_c"))
    lookback = Moment.at(_years_before(period.start, DIAGNOSIS_LOOKBACK_YEARS), period.tz)
    window = Interval(lookback, Moment.of(kept, "_i"))
    checked = kept.left_join(diagnoses, [kept.patient_id == diagnoses._c_patient,
                                         kept.drug_class == diagnoses._c_class,
                                         overlaps(Interval.of(diagnoses, "_c"), window, tz=period.tz)])
    checked = checked.mutate(_diagnosed=checked._c_patient.notnull().any().over(ibis.window(
        group_by=[checked.patient_id, checked.drug_class])))
    checked = checked.filter(~checked._diagnosed)
    words = ibis.cases(*[(checked.drug_class == name, ibis.literal(text))
                         for name, (_, text) in APPROPRIATE_DIAGNOSES.items()])
    count = ibis.ifelse(checked._orders > 1, checked._orders.cast("string") + " orders of ",
                        "1 order with refills of ")
    return checked.select(patient_id=checked.patient_id,
                          finding=count + checked.drug_class + " without a diagnosis of " + words,
                          evidence="MedicationRequest/" + checked.resource_id).distinct()


def _summarize(findings: ir.Table, tag: str) -> ir.Table:
    """One row per patient: `_<tag>_patient`, the distinct findings sorted and joined by `; ` (`_<tag>_reason`)
    and the evidence (`_<tag>_evidence`)."""
    summary = collect_evidence([findings.select("patient_id", "evidence", "finding")], also={"finding": "; "})
    return summary.select(**{f"_{tag}_patient": summary.patient_id, f"_{tag}_reason": summary.finding,
                             f"_{tag}_evidence": summary.evidence})


def _join_text(separator: str, *values: ir.StringValue) -> ir.StringValue:
    """The non-null values joined by `separator` (null when all are null)."""
    out: ir.StringValue | None = None
    for value in values:
        piece = value.cast("string")
        out = piece if out is None else ibis.cases(
            (out.isnull(), piece), (piece.isnull(), out), else_=out + separator + piece)
    return out


def _years_before(day: date, years: int) -> datetime:
    """Midnight `years` calendar years before `day` (29 February falls back to the 28th)."""
    return datetime(day.year - years, day.month, 28 if (day.month, day.day) == (2, 29) else day.day)


MEASURE = EcqmMeasure(measure_id=MEASURE_ID, ecqm_id=ECQM_ID, strata=STRATA, evaluate=evaluate_cms156,
                      title="Use of High-Risk Medications in Older Adults")

"""Q238 / CMS156 medication orders: the high-risk drug classes, `moreThanOneOrder`, days supplied and the average
daily dose (quality.md §4.1), ported from `UseofHighRiskMedicationsintheElderlyFHIR` (2025 package, QI-Core 4.1.1)
and the `CumulativeMedicationDuration` functions it calls.

Every function is set-based: one row per (patient, order, drug class); an order coded in two classes is counted in
each. Drug classes are joined from the value-set table (plus the CQL's one direct-reference code, ergoloid); the
measure's ELM follows medicationReference, so referenced Medications' codes count too.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import MeasurementPeriod
from openasm.quality.cql_datetime import Moment, contains
from openasm.quality.measures.common import ANY_MEDICATION, RXNORM, oid
from openasm.quality.measures.medication_duration import (
    DOSAGE_NUMBERS,
    finite,
    medication_request_period,
    total_days_supplied,
)

MEDICATION_ORDER_STATUSES = ("active", "completed")  # Status.isMedicationOrder (with intent = 'order')

# "Same High Risk Medications Ordered on Different Days": drug class (plain words for gap reasons) -> value set.
SAME_CLASS_VALUE_SETS = {
    "antihistamines": "A.1043", "antiparkinsonian agents": "A.1049", "gastrointestinal antispasmodics": "A.1050",
    "dipyridamole": "A.1051", "guanfacine": "A.196.11.1252", "nifedipine": "A.1053",
    "antidepressants (tertiary TCAs, paroxetine)": "A.1054", "barbiturates": "A.1055", "meprobamate": "A.1057",
    "estrogens": "A.1058", "sulfonylureas": "A.1059", "desiccated thyroid": "A.1060",
    "nonbenzodiazepine hypnotics": "A.196.12.1480", "skeletal muscle relaxants": "A.1062",
    "pain medications (indomethacin, ketorolac)": "A.1063", "megestrol": "A.1247", "meperidine": "A.1248",
}
ERGOLOID = "ergoloid mesylates"
SAME_CLASS_DIRECT_CODES = {ERGOLOID: (RXNORM, "318179")}  # code "ergoloid mesylates, USP 1 MG Oral Tablet"
ANTI_INFECTIVES = "anti-infectives"
DIGOXIN = "digoxin"
DOXEPIN = "doxepin"
ANTIPSYCHOTICS = "antipsychotics"
BENZODIAZEPINES = "benzodiazepines"
OTHER_CLASS_VALUE_SETS = {
    ANTI_INFECTIVES: "A.196.12.1481", DIGOXIN: "A.1065", DOXEPIN: "A.1067", ANTIPSYCHOTICS: "A.196.12.1523",
    BENZODIAZEPINES: "A.196.12.1522",
}
SAME_CLASSES = (*SAME_CLASS_VALUE_SETS, *SAME_CLASS_DIRECT_CODES)

# "Two High Risk Medications with Prolonged Duration": summed days supplied of anti-infective orders must exceed this.
PROLONGED_DURATION_DAYS = 90
# "High Risk Medications with Average Daily Dose Criteria": limits in mg/day.
DAILY_DOSE_LIMIT_MG = {DIGOXIN: 0.125, DOXEPIN: 6.0}
# MedicationStrengthPerUnit: RxNorm code -> (strength, unit), in the CQL's `case` order (first match wins).
MEDICATION_STRENGTH = (
    ("393245", 0.05, "mg/mL"), ("245273", 0.0625, "mg"), ("204504", 0.1, "mg/mL"), ("197604", 0.125, "mg"),
    ("197606", 0.25, "mg"), ("104208", 0.25, "mg/mL"), ("966787", 3.0, "mg"), ("966793", 6.0, "mg"),
    ("1000048", 10.0, "mg"), ("1000054", 10.0, "mg/mL"), ("1000070", 25.0, "mg"), ("1000076", 50.0, "mg"),
    ("1000097", 75.0, "mg"), ("1000058", 100.0, "mg"), ("1000064", 150.0, "mg"),
)

def drug_class_members(value_set_code: ir.Table) -> ir.Table:
    """(drug_class, system, code) for every class the measure names: its value set, or its direct code."""
    classes = {**SAME_CLASS_VALUE_SETS, **OTHER_CLASS_VALUE_SETS}
    names = ibis.memtable({"_c_oid": [oid(v) for v in classes.values()], "drug_class": list(classes)})
    from_sets = value_set_code.join(names, value_set_code.oid == names._c_oid).select(
        "drug_class", "system", "code")
    direct = ibis.memtable({"drug_class": list(SAME_CLASS_DIRECT_CODES),
                            "system": [s for s, _ in SAME_CLASS_DIRECT_CODES.values()],
                            "code": [c for _, c in SAME_CLASS_DIRECT_CODES.values()]})
    return ibis.union(from_sets, direct, distinct=True)


def high_risk_orders(*, clinical_coding: ir.Table, medication_request: ir.Table, value_set_code: ir.Table,
                     period: MeasurementPeriod) -> ir.Table:
    """Medication orders (Status.isMedicationOrder: status active/completed, intent order; doNotPerform orders are
    not orders) of every measure drug class, one row per (order, class), with the moreThanOneOrder verdict.

    moreThanOneOrder keeps an order O1 of a class when, with O2 any order of the same class:
    (a) O1 is authored in the MP with ≥ 1 refill; or (b) O1 and O2 are authored in the MP on different days; or
    (c) they are authored the same day, O1 in the MP, and their medicationRequestPeriods start on different days,
    both in the MP. Columns: patient_id, resource_id, drug_class, authored_on, authored_in_mp, refills,
    med_period_start, days_supplied, dispense_quantity, dispense_quantity_unit, is_more_than_one_order."""
    mr = medication_request
    orders = mr.filter(mr.status.isin(MEDICATION_ORDER_STATUSES) & (mr.intent == "order")
                       & ~mr.do_not_perform.fill_null(False))
    members = drug_class_members(value_set_code)
    codings = clinical_coding.filter((clinical_coding.resource_type == "MedicationRequest")
                                     & clinical_coding.element.isin(ANY_MEDICATION))
    classed = codings.join(members, [codings.system == members.system, codings.code == members.code]).select(
        _k_patient=codings.patient_id, _k_resource=codings.resource_id, drug_class=members.drug_class).distinct()
    orders = orders.join(classed, [orders.patient_id == classed._k_patient,
                                   orders.resource_id == classed._k_resource]).drop("_k_patient", "_k_resource")
    orders = orders.mutate(**{name: finite(orders[name]) for name in DOSAGE_NUMBERS})
    orders = medication_request_period(orders)
    orders = orders.mutate(days_supplied=total_days_supplied(orders))
    # `authoredOn during "Measurement Period"` and `start of medicationRequestPeriod() during ...` compare instants:
    # a date (day precision) on the first or last day of the MP is uncertain there, so it does not count.
    authored = Moment.of(orders, "authored_on")
    in_mp = contains(period.interval, authored, tz=period.tz).fill_null(False)
    start_in_mp = contains(period.interval, Moment.of_date(orders.med_period_start), tz=period.tz).fill_null(False)
    orders = orders.mutate(authored_in_mp=in_mp, _start_in_mp=start_in_mp, _authored_day=authored.date())
    by_class = ibis.window(group_by=[orders.patient_id, orders.drug_class])
    by_day = ibis.window(group_by=[orders.patient_id, orders.drug_class, orders._authored_day])
    mp_day = ibis.ifelse(orders.authored_in_mp, orders._authored_day, ibis.null("date"))
    mp_start = ibis.ifelse(orders._start_in_mp, orders.med_period_start, ibis.null("date"))
    orders = orders.mutate(_first_day=mp_day.min().over(by_class), _last_day=mp_day.max().over(by_class),
                           _first_start=mp_start.min().over(by_day), _last_start=mp_start.max().over(by_day))
    with_refill = orders.authored_in_mp & (orders.refills.fill_null(0.0) >= 1)
    different_days = orders.authored_in_mp & (orders._first_day != orders._last_day)
    different_starts = orders.authored_in_mp & orders._start_in_mp & (orders._first_start != orders._last_start)
    verdict = (with_refill | different_days.fill_null(False) | different_starts.fill_null(False))
    return orders.select(
        "patient_id", "resource_id", "drug_class", *[c for c in orders.columns if c.startswith("authored_on")],
        "authored_in_mp", "refills", "med_period_start",
        "days_supplied", "dispense_quantity", "dispense_quantity_unit", is_more_than_one_order=verdict)


def average_daily_dose(orders: ir.Table, clinical_coding: ir.Table) -> ir.Table:
    """averageDailyDose: quantity × strength per unit ÷ days supplied, in mg/day, when the strength is in mg, or in
    mg/mL with the quantity in mL; otherwise null. Adds `average_daily_dose_mg`."""
    strengths = ibis.memtable({
        "_s_code": [c for c, _, _ in MEDICATION_STRENGTH], "_s_strength": [s for _, s, _ in MEDICATION_STRENGTH],
        "_s_unit": [u for _, _, u in MEDICATION_STRENGTH], "_s_rank": list(range(len(MEDICATION_STRENGTH)))})
    codings = clinical_coding.filter((clinical_coding.resource_type == "MedicationRequest")
                                     & clinical_coding.element.isin(ANY_MEDICATION) & (clinical_coding.system == RXNORM))
    matched = codings.join(strengths, codings.code == strengths._s_code).select(
        _d_patient=codings.patient_id, _d_resource=codings.resource_id, _s_strength=strengths._s_strength,
        _s_unit=strengths._s_unit, _s_rank=strengths._s_rank)
    first = matched.mutate(_n=ibis.row_number().over(ibis.window(
        group_by=[matched._d_patient, matched._d_resource],
        order_by=[matched._s_rank, matched._s_strength, matched._s_unit])))  # ties: the same row on every backend
    first = first.filter(first._n == 0).drop("_n", "_s_rank")
    joined = orders.left_join(first, [orders.patient_id == first._d_patient,
                                      orders.resource_id == first._d_resource]).drop("_d_patient", "_d_resource")
    unit_ok = (joined._s_unit == "mg") | ((joined._s_unit == "mg/mL") & (joined.dispense_quantity_unit == "mL"))
    dose = joined.dispense_quantity * joined._s_strength / joined.days_supplied.nullif(0.0)
    return joined.mutate(average_daily_dose_mg=ibis.ifelse(unit_ok.fill_null(False), dose,
                                                           ibis.null("float64"))).drop("_s_strength", "_s_unit")

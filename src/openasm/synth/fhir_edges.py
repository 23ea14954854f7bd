"""Timing and status edges of the synthetic FHIR export (issue 10 item 3): visits at the measurement period's edges
in offsets where the local date and the UTC date differ, date-only values on boundary days, orders one minute after
a visit ends across local midnight, several visits a day, statuses that count and those that do not, and the day
windows of each measure (14 days before, 2 days after, 30-180 days later, the first six months).

Same shape as `fhir_scenarios`: each function adds resources to one patient; shares come from `synth.fhir_care`.
"""

from __future__ import annotations

from datetime import date, timedelta

from openasm.quality.measures import cms2, cms69_followup, cms90, cms135, cms144, cms156, cms156_orders, cms165
from openasm.quality.measures.common import LOINC, RXNORM
from openasm.synth.fhir_resources import stamp
from openasm.synth.fhir_scenarios import Kit, PatientContext, Scenario

US_EVENING = -300  # 21:00 at UTC-5 is 02:00 UTC the next day
ASIA_MORNING = 300  # 01:00 at UTC+5 is 20:00 UTC the day before
BP_PANEL = (LOINC, cms165.BP_PANEL_LOINC)


def boundary_visits(ctx: PatientContext, kit: Kit) -> None:
    """Visits on the first or last day of the measurement period whose UTC instant falls outside it, or written as a
    date only (day precision: uncertain against the period's millisecond boundaries)."""
    r, pid, year = kit.res, ctx.patient_id, ctx.year
    kind = kit.choice(4)
    if kind == 0:
        start, end = stamp(date(year, 12, 31), 21, 0, US_EVENING), stamp(date(year, 12, 31), 21, 30, US_EVENING)
    elif kind == 1:
        start, end = stamp(date(year, 1, 1), 1, 0, ASIA_MORNING), stamp(date(year, 1, 1), 1, 40, ASIA_MORNING)
    else:
        day = date(year, 1, 1) if kind == 2 else date(year, 12, 31)
        start = end = day.isoformat()
    visit = r.encounter(pid, ctx.visit_code, start, end, npi=ctx.npi, tin=ctx.tin)
    ctx.visits.append((visit, date.fromisoformat(start[:10])))


def same_day_visits(ctx: PatientContext, kit: Kit) -> None:
    """A second visit on the day of the first (another id), sometimes not finished."""
    r, pid, day = kit.res, ctx.patient_id, ctx.first_visit
    status = ("finished", "in-progress", "cancelled")[kit.choice(3)]
    r.encounter(pid, ctx.visit_code, stamp(day, 14, 0, ctx.offset), stamp(day, 14, 20, ctx.offset), status=status,
                npi=ctx.npi, tin=ctx.tin)


def statuses(ctx: PatientContext, kit: Kit) -> None:
    """Resources whose status decides whether they count: visits planned or entered in error, BMIs preliminary or
    amended, orders on hold or stopped, conditions resolved or refuted."""
    r, pid, day = kit.res, ctx.patient_id, ctx.first_visit
    kind = kit.choice(4)
    if kind == 0:
        r.encounter(pid, ctx.visit_code, stamp(day, 15, 0, ctx.offset), stamp(day, 15, 30, ctx.offset),
                    status=("planned", "entered-in-error", "arrived", "triaged")[kit.choice(4)], npi=ctx.npi,
                    tin=ctx.tin)
    elif kind == 1:
        r.observation(pid, (LOINC, cms69_followup.BMI_LOINC), stamp(day, 9, 12, ctx.offset), category="vital-signs",
                      quantity=(22.0, "kg/m2"), status=("preliminary", "amended", "corrected",
                                                         "entered-in-error")[kit.choice(4)])
    elif kind == 2:
        oid_ = cms144.VS_BETA_BLOCKER if ctx.cohort == "hf" else "A.1062"
        r.medication_request(pid, kit.code(oid_), stamp(day, 10, 0, ctx.offset), by_reference=kit.by_reference(),
                             status=("on-hold", "stopped", "draft", "completed")[kit.choice(4)],
                             intent=("order", "plan", "original-order")[kit.choice(3)])
    else:
        r.condition(pid, kit.code(cms165.VS_ESSENTIAL_HYPERTENSION), stamp(day, 9, 0, ctx.offset),
                    clinical=("resolved", "inactive", "remission", "recurrence")[kit.choice(4)],
                    verification=("confirmed", "refuted", "unconfirmed")[kit.choice(3)])


def order_timing(ctx: PatientContext, kit: Kit) -> None:
    """An HF visit ending at 23:59 local with the ACE-I/ARB or beta-blocker ordered one minute later (the next day as
    written, the same day in UTC for a negative offset), or later the same day, or with dosage that starts after it."""
    r, pid = kit.res, ctx.patient_id
    day = date(ctx.year, 5 + kit.choice(6), 10 + kit.choice(10))
    visit = r.encounter(pid, ctx.visit_code, stamp(day, 23, 0, ctx.offset), stamp(day, 23, 59, ctx.offset),
                        npi=ctx.npi, tin=ctx.tin)
    ctx.visits.append((visit, day))
    oid_ = (cms135.VS_ACEI_ARB_ARNI, cms144.VS_BETA_BLOCKER)[kit.choice(2)]
    kind = kit.choice(3)
    next_day = day + timedelta(days=1)
    if kind == 0:
        r.medication_request(pid, kit.code(oid_), stamp(next_day, 0, 0, ctx.offset), by_reference=kit.by_reference())
    elif kind == 1:
        r.medication_request(pid, kit.code(oid_), stamp(day, 23, 59, ctx.offset), by_reference=kit.by_reference(),
                             status=("active", "completed")[kit.choice(2)])
    else:
        r.medication_request(pid, kit.code(oid_), stamp(day - timedelta(days=40), 10, 0, ctx.offset),
                             by_reference=kit.by_reference(), supply_days=None,
                             bounds=(stamp(next_day, 0, 0, ctx.offset), None if kit.chance(0.5)
                                     else stamp(next_day + timedelta(days=60), 0, 0, ctx.offset)))


def bmi_edges(ctx: PatientContext, kit: Kit) -> None:
    """BMIs on the band edges (18.4, 18.5, 24.9, 25.0) or in another UCUM unit, with follow-ups whose supporting
    problem started after the order, or an underweight health concern."""
    r, pid, day = kit.res, ctx.patient_id, ctx.first_visit
    value = (18.4, 18.5, 24.9, 25.0, 31.2)[kit.choice(5)]
    unit = "kg.m-2" if kit.chance(0.2) else "kg/m2"  # the same UCUM unit written two ways
    r.observation(pid, (LOINC, cms69_followup.BMI_LOINC), stamp(day, 9, 5, ctx.offset), category="vital-signs",
                  quantity=(value, unit))
    if value >= cms69_followup.HIGH_BMI_FROM and kit.chance(0.7):
        order_day = day + timedelta(days=kit.choice(3))
        r.service_request(pid, kit.code(cms69_followup.VS_FOLLOW_UP_ABOVE_NORMAL), stamp(order_day, 11, 0, ctx.offset))
        started = day + timedelta(days=(-200, 1)[kit.choice(2)])
        r.condition(pid, kit.code(cms69_followup.VS_OVERWEIGHT_OR_OBESE), stamp(started, 9, 0, ctx.offset),
                    category=("problem-list-item", "health-concern", "encounter-diagnosis")[kit.choice(3)])
    elif value < cms69_followup.LOW_BMI_BELOW:
        r.condition(pid, kit.code(cms69_followup.VS_UNDERWEIGHT), stamp(day - timedelta(days=90), 9, 0, ctx.offset),
                    category="health-concern")
        r.procedure(pid, kit.code(cms69_followup.VS_FOLLOW_UP_BELOW_NORMAL), stamp(day, 10, 0, ctx.offset))


def depression_edges(ctx: PatientContext, kit: Kit) -> None:
    """An adult depression screen 14 or 15 days before a visit, positive or negative, and a follow-up referral
    authored 2 or 3 days after the visit ends."""
    r, pid, day = kit.res, ctx.patient_id, ctx.first_visit
    before = (14, 15, 0)[kit.choice(3)]
    positive = kit.chance(0.6)
    result = cms2.POSITIVE_SCREEN if positive else cms2.NEGATIVE_SCREEN
    r.observation(pid, (LOINC, cms2.SCREENING_TOOLS["adult"].loinc), stamp(day - timedelta(days=before), 10, 0,
                                                                          ctx.offset),
                  category="survey", value=("http://snomed.info/sct", result))
    if positive:
        after = day + timedelta(days=(2, 3)[kit.choice(2)])
        r.service_request(pid, kit.code(cms2.SCREENING_TOOLS["adult"].referral), stamp(after, 16, 0, ctx.offset),
                          status=("active", "completed", "revoked")[kit.choice(3)])


def functional_status_edges(ctx: PatientContext, kit: Kit) -> None:
    """CMS90: a KCCQ total score 14 or 15 days before a visit ends and again 29, 30, 180 or 181 days later."""
    r, pid, day = kit.res, ctx.patient_id, ctx.first_visit
    loinc = cms90.INSTRUMENT_ITEMS["KCCQ total score"][0]
    initial = day - timedelta(days=(14, 15, 0)[kit.choice(3)])
    for when in (initial, initial + timedelta(days=(29, 30, 180, 181)[kit.choice(4)])):
        r.observation(pid, (LOINC, loinc), stamp(when, 10, 0, ctx.offset), category="survey",
                      quantity=(float(40 + kit.choice(50)), "{score}"))


def high_risk_medication_edges(ctx: PatientContext, kit: Kit) -> None:
    """CMS156: two antipsychotic or benzodiazepine orders with or without the diagnosis that makes them appropriate,
    long anti-infective courses, digoxin at a high daily dose, two same-day orders with different starts, or an
    order dated only 1 January (uncertain against the period's first instant)."""
    r, pid, year, off = kit.res, ctx.patient_id, ctx.year, ctx.offset
    kind = kit.choice(5)
    first = date(year, 2 + kit.choice(4), 1 + kit.choice(20))
    if kind == 0:
        drug_class = (cms156_orders.ANTIPSYCHOTICS, cms156_orders.BENZODIAZEPINES)[kit.choice(2)]
        code = kit.code(cms156_orders.OTHER_CLASS_VALUE_SETS[drug_class])
        for day in (first, first + timedelta(days=40)):
            r.medication_request(pid, code, stamp(day, 10, 0, off), by_reference=kit.by_reference())
        if kit.chance(0.5):
            oids, _ = cms156.APPROPRIATE_DIAGNOSES[drug_class]
            r.condition(pid, kit.code(oids[0]), stamp(first - timedelta(days=200), 9, 0, off))
    elif kind == 1:
        code = kit.code(cms156_orders.OTHER_CLASS_VALUE_SETS[cms156_orders.ANTI_INFECTIVES])
        for day, days in ((first, 50), (first + timedelta(days=60), 30 + 15 * kit.choice(3))):
            r.medication_request(pid, code, stamp(day, 10, 0, off), by_reference=kit.by_reference(),
                                 supply_days=days)
    elif kind == 2:
        for day in (first, first + timedelta(days=30)):
            r.medication_request(pid, (RXNORM, "197606"), stamp(day, 10, 0, off), by_reference=kit.by_reference(),
                                 supply_days=None, quantity=(float(30 * (1 + kit.choice(3))), "{tbl}"), dose=1.0,
                                 bounds=(stamp(day, 10, 0, off), None))
    elif kind == 3:
        code = kit.code(cms156_orders.SAME_CLASS_VALUE_SETS["skeletal muscle relaxants"])
        for start in (first, first + timedelta(days=(0, 10)[kit.choice(2)])):
            r.medication_request(pid, code, stamp(first, 10, 0, off), by_reference=kit.by_reference(),
                                 bounds=(stamp(start, 8, 0, off), None))
    else:
        code = kit.code(cms156_orders.SAME_CLASS_VALUE_SETS["skeletal muscle relaxants"])
        for day in (date(year, 1, 1), date(year, (1, 12)[kit.choice(2)], (2, 31)[kit.choice(2)])):
            r.medication_request(pid, code, day.isoformat(), by_reference=kit.by_reference(),
                                 refills=kit.choice(2))


def blood_pressure_edges(ctx: PatientContext, kit: Kit) -> None:
    """CMS165: several readings on the last reading day, a reading in an emergency encounter, one without a
    diastolic value, or a hypertension onset dated only 30 June."""
    r, pid, year, off = kit.res, ctx.patient_id, ctx.year, ctx.offset
    day = date(year, 10, 1) + timedelta(days=kit.choice(80))
    kind = kit.choice(4)
    systolic, diastolic = (cms165.SYSTOLIC_LOINC, cms165.DIASTOLIC_LOINC)
    if kind == 0:
        for hour, values in ((9, (150.0, 85.0)), (10, (132.0, 92.0))):
            r.observation(pid, BP_PANEL, stamp(day, hour, 0, off), category="vital-signs", components=[
                ((LOINC, systolic), values[0], "mm[Hg]"), ((LOINC, diastolic), values[1], "mm[Hg]")])
    elif kind == 1:
        emergency = r.encounter(pid, kit.code("A.101.12.1001"), stamp(day, 8, 0, off), stamp(day, 12, 0, off),
                                klass=cms165.EXCLUDED_ENCOUNTER_CLASSES[0])
        r.observation(pid, BP_PANEL, stamp(day, 9, 0, off), category="vital-signs", encounter_id=emergency,
                      components=[((LOINC, systolic), 150.0, "mm[Hg]"), ((LOINC, diastolic), 95.0, "mm[Hg]")])
    elif kind == 2:
        components = [((LOINC, systolic), 128.0, "mm[Hg]")]
        if kit.chance(0.5):
            components.append(((LOINC, diastolic), 82.0, "mm[Hg]"))
        r.observation(pid, BP_PANEL, stamp(day, 9, 0, off), category="vital-signs", components=components)
    else:
        r.condition(pid, kit.code(cms165.VS_ESSENTIAL_HYPERTENSION), date(year, 6, 30).isoformat())


EDGES: dict[str, tuple[Scenario, tuple[str, ...]]] = {
    "boundary_visits": (boundary_visits, ("hf", "lbp")),
    "same_day_visits": (same_day_visits, ("hf", "lbp")),
    "statuses": (statuses, ("hf", "lbp")),
    "order_timing": (order_timing, ("hf",)),
    "bmi_edges": (bmi_edges, ("hf", "lbp")),
    "depression_edges": (depression_edges, ("hf", "lbp")),
    "functional_status_edges": (functional_status_edges, ("hf",)),
    "high_risk_medication_edges": (high_risk_medication_edges, ("hf", "lbp")),
    "blood_pressure_edges": (blood_pressure_edges, ("hf",)),
}

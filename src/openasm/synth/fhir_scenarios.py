"""Clinical scenarios of the synthetic FHIR export that reach every population of the seven eCQMs (issue 10 item 3):
hospice, palliative care, frailty and advanced illness, nursing home, pregnancy, renal disease, the HF-LVSD
exclusions and exceptions, and negated orders, procedures and observations with medical or patient reasons.

Each scenario adds a few resources to one patient; `fhir_export` draws which scenarios a patient gets from the rule
`synth.fhir_care` (`scenarios:` shares). Codes come from the shipped value sets or the measures' own direct-reference
constants. Several scenarios also plant a near miss (a time just outside a window, a status that does not count).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from openasm.quality.measures import cms2, cms69, cms135, cms144, cms165, hf_lvsd
from openasm.quality.measures import shared_exclusions as se
from openasm.quality.measures.common import LOINC, SNOMED
from openasm.synth.fhir_resources import Code, CodePicker, Resources, stamp


@dataclass
class PatientContext:
    """One synthetic patient as the scenarios see it: ids, cohort, age facts, usual UTC offset, and the base care's
    visits (encounter id, day, type code)."""

    patient_id: str
    cohort: str
    birth_date: date
    female: bool
    offset: int
    year: int
    npi: str
    tin: str
    visits: list[tuple[str, date]] = field(default_factory=list)
    visit_code: Code = ("", "")
    scenarios: list[str] = field(default_factory=list)

    def age_at_end(self) -> int:
        end = date(self.year, 12, 31)
        return end.year - self.birth_date.year - ((end.month, end.day) < (self.birth_date.month, self.birth_date.day))

    @property
    def first_visit(self) -> date:
        return self.visits[0][1] if self.visits else date(self.year, 3, 1)


@dataclass
class Kit:
    """What a scenario builds with."""

    res: Resources
    pick: CodePicker
    rng: np.random.Generator
    by_reference_share: float

    def code(self, short_oid: str) -> Code:
        members = self.pick.any(short_oid)
        return members[int(self.rng.integers(len(members)))]

    def chance(self, share: float) -> bool:
        return bool(self.rng.random() < share)

    def choice(self, n: int) -> int:
        return int(self.rng.integers(n))

    def by_reference(self) -> bool:
        return self.chance(self.by_reference_share)


Scenario = Callable[[PatientContext, Kit], None]


def _at(ctx: PatientContext, day: date, hour: int = 9, minute: int = 0) -> str:
    return stamp(day, hour, minute, ctx.offset)


def hospice(ctx: PatientContext, kit: Kit) -> None:
    """One hospice path, or a near miss (a stay ending on 31 December of the prior year, late in the evening local
    time — the next day in UTC)."""
    r, pid, year = kit.res, ctx.patient_id, ctx.year
    kind = kit.choice(6)
    if kind == 0:
        r.encounter(pid, kit.code(se.VS_HOSPICE_ENCOUNTER), _at(ctx, date(year - 1, 12, 20)),
                    _at(ctx, date(year, 1, 2), 10))
    elif kind == 1:
        r.service_request(pid, kit.code(se.VS_HOSPICE_CARE_AMBULATORY), _at(ctx, ctx.first_visit, 10),
                          status=("active", "completed", "revoked")[kit.choice(3)])
    elif kind == 2:
        r.condition(pid, kit.code(se.VS_HOSPICE_DIAGNOSIS), _at(ctx, date(year - 1, 6, 1)))
    elif kind == 3:
        r.encounter(pid, kit.code(se.VS_ENCOUNTER_INPATIENT), _at(ctx, date(year, 12, 28)),
                    _at(ctx, date(year, 12, 31), 22, 30), klass="IMP",
                    discharge=(SNOMED, se.HOSPICE_DISCHARGE_CODES[kit.choice(2)]))
    elif kind == 4:
        r.observation(pid, (LOINC, se.HOSPICE_ASSESSMENT_LOINC), _at(ctx, ctx.first_visit), category="survey",
                      value=(SNOMED, se.YES_SNOMED))
    else:
        r.encounter(pid, kit.code(se.VS_HOSPICE_ENCOUNTER), _at(ctx, date(year - 1, 12, 1)),
                    stamp(date(year - 1, 12, 31), 21, 30, -300))


def palliative(ctx: PatientContext, kit: Kit) -> None:
    """One palliative-care path, or a near miss on 1 January of the next year shortly after midnight local time."""
    r, pid, year = kit.res, ctx.patient_id, ctx.year
    kind = kit.choice(5)
    if kind == 0:
        r.observation(pid, (LOINC, se.PALLIATIVE_ASSESSMENT_LOINC), _at(ctx, ctx.first_visit), category="survey",
                      quantity=(42.0, "{score}"))
    elif kind == 1:
        r.condition(pid, kit.code(se.VS_PALLIATIVE_DIAGNOSIS), _at(ctx, date(year - 1, 9, 1)))
    elif kind == 2:
        r.encounter(pid, kit.code(se.VS_PALLIATIVE_ENCOUNTER), _at(ctx, ctx.first_visit, 13),
                    _at(ctx, ctx.first_visit, 14))
    elif kind == 3:
        r.procedure(pid, kit.code(se.VS_PALLIATIVE_INTERVENTION), _at(ctx, ctx.first_visit, 11),
                    status=("completed", "in-progress")[kit.choice(2)])
    else:
        r.encounter(pid, kit.code(se.VS_PALLIATIVE_ENCOUNTER), stamp(date(year + 1, 1, 1), 0, 30, 300),
                    stamp(date(year + 1, 1, 1), 1, 0, 300))


def frailty(ctx: PatientContext, kit: Kit) -> None:
    """Frailty (diagnosis, device order, symptom, or equipment assessment) with, for some, an advanced illness
    diagnosis in the year before or a dementia medication (inline or by reference)."""
    r, pid, year = kit.res, ctx.patient_id, ctx.year
    kind = kit.choice(4)
    if kind == 0:
        r.condition(pid, kit.code(se.VS_FRAILTY_DIAGNOSIS), _at(ctx, date(year - 1, 5, 1)))
    elif kind == 1:
        r.device_request(pid, kit.code(se.VS_FRAILTY_DEVICE), _at(ctx, ctx.first_visit, 10),
                         do_not_perform=kit.chance(0.2))
    elif kind == 2:
        r.observation(pid, kit.code(se.VS_FRAILTY_SYMPTOM), _at(ctx, ctx.first_visit),
                      status=("final", "preliminary", "entered-in-error")[kit.choice(3)])
    else:
        r.observation(pid, (LOINC, se.MEDICAL_EQUIPMENT_USED_LOINC), _at(ctx, ctx.first_visit), category="survey",
                      value=kit.code(se.VS_FRAILTY_DEVICE))
    if kit.chance(0.5):
        r.condition(pid, kit.code(se.VS_ADVANCED_ILLNESS), _at(ctx, date(year - 1, 2 + kit.choice(10), 1)))
    elif kit.chance(0.6):
        authored = date(year - 1, 10, 15) + timedelta(days=kit.choice(120))
        r.medication_request(pid, kit.code(se.VS_DEMENTIA_MEDICATIONS), _at(ctx, authored),
                             by_reference=kit.by_reference(), supply_days=90, refills=kit.choice(3))


def nursing_home(ctx: PatientContext, kit: Kit) -> None:
    """Housing status assessments: lives in a nursing home, sometimes followed by another status later in the year."""
    r, pid = kit.res, ctx.patient_id
    r.observation(pid, (LOINC, se.HOUSING_STATUS_LOINC), _at(ctx, date(ctx.year, 2, 1)), category="survey",
                  value=(SNOMED, se.LIVES_IN_NURSING_HOME_SNOMED))
    if kit.chance(0.3):
        r.observation(pid, (LOINC, se.HOUSING_STATUS_LOINC), _at(ctx, date(ctx.year, 9, 1)), category="survey",
                      value=kit.code("B.1582"))


def pregnancy(ctx: PatientContext, kit: Kit) -> None:
    """A pregnancy (or related) diagnosis, active or resolved, starting within nine months before a visit."""
    onset = ctx.first_visit - timedelta(days=30 + kit.choice(300))
    code = kit.code(cms69.VS_PREGNANCY if kit.chance(0.5) else cms135.VS_PREGNANCY)
    clinical = "active" if kit.chance(0.7) else "resolved"
    kit.res.condition(ctx.patient_id, code, _at(ctx, onset), clinical=clinical,
                      abatement=None if clinical == "active" else _at(ctx, ctx.first_visit + timedelta(days=60)))


def renal(ctx: PatientContext, kit: Kit) -> None:
    """End-stage renal disease: a diagnosis, a dialysis or kidney-transplant procedure, or monthly ESRD services."""
    r, pid, year = kit.res, ctx.patient_id, ctx.year
    kind = kit.choice(4)
    if kind == 0:
        r.condition(pid, kit.code(cms165.VS_PREGNANCY_OR_RENAL[1 + kit.choice(3)]), _at(ctx, date(year - 2, 4, 1)))
    elif kind == 1:
        r.procedure(pid, kit.code(cms165.VS_ESRD_PROCEDURES[kit.choice(2)]),
                    (_at(ctx, date(year, 11, 1)), _at(ctx, date(year + 1, 1, 5))) if kit.chance(0.3)
                    else _at(ctx, date(year, 4, 1)))
    else:
        r.encounter(pid, kit.code(cms165.VS_ESRD_MONTHLY_SERVICES), _at(ctx, date(year, 12, 31), 22),
                    _at(ctx, date(year, 12, 31), 23), status=("finished", "cancelled")[kit.choice(2)])


def hf_exclusion(ctx: PatientContext, kit: Kit) -> None:
    """Heart transplant or LVAD (procedures before the visit ends), or their complications (recorded date or onset)."""
    r, pid, visit = kit.res, ctx.patient_id, ctx.first_visit
    criterion = hf_lvsd.EXCLUSION_CRITERIA[kit.choice(len(hf_lvsd.EXCLUSION_CRITERIA))]
    code = kit.code(criterion.oids[0])
    if criterion.resource_type == "Procedure":
        r.procedure(pid, code, _at(ctx, visit - timedelta(days=kit.choice(900)), 8), recorded=None)
    else:
        recorded = _at(ctx, visit + timedelta(days=(-20, 20)[kit.choice(2)]))
        r.condition(pid, code, None if kit.chance(0.5) else _at(ctx, visit - timedelta(days=400)), recorded=recorded)


def hf_exception(ctx: PatientContext, kit: Kit) -> None:
    """A CMS144 or CMS135 denominator exception: diagnoses overlapping the visit, allergies, AV block with or
    without a pacer, or two consecutive heart rates below 50/min during the visit."""
    r, pid, visit = kit.res, ctx.patient_id, ctx.first_visit
    criteria = (*cms144.DIRECT_EXCEPTIONS, cms144.AV_BLOCK, *cms135.TIMED_EXCEPTIONS)
    kind = kit.choice(len(criteria) + 1)
    if kind == len(criteria):
        for minute, rate in ((5, 45.0 + kit.choice(10)), (20, 44.0 + kit.choice(8))):
            r.observation(pid, (LOINC, cms144.HEART_RATE_LOINC), _at(ctx, visit, 9, minute), category="vital-signs",
                          quantity=(rate, ("/min", "{beats}/min")[kit.choice(2)]),
                          status=("final", "preliminary")[int(kit.chance(0.15))])
        return
    criterion = criteria[kind]
    code = kit.code(criterion.oids[0]) if criterion.oids else (SNOMED, criterion.snomed[0])
    if criterion.resource_type == "AllergyIntolerance":
        r.allergy(pid, code, _at(ctx, visit - timedelta(days=200)),
                  verification=("confirmed", "unconfirmed")[int(kit.chance(0.2))])
    else:
        r.condition(pid, code, _at(ctx, visit - timedelta(days=kit.choice(60))),
                    clinical=("active", "resolved")[int(kit.chance(0.15))],
                    abatement=_at(ctx, visit + timedelta(days=30)) if kit.chance(0.3) else None)
    if criterion is cms144.AV_BLOCK and kit.chance(0.5):
        pacer = cms144.PACER[kit.choice(2)]
        if pacer.resource_type == "Procedure":
            r.procedure(pid, kit.code(pacer.oids[0]), _at(ctx, visit - timedelta(days=300)))
        else:
            r.condition(pid, kit.code(pacer.oids[0]), _at(ctx, visit - timedelta(days=300)))


def bipolar(ctx: PatientContext, kit: Kit) -> None:
    """A bipolar disorder problem-list item or health concern (CMS2 exclusion), starting before the first visit or,
    for a near miss, after it; or one recorded as an encounter diagnosis only."""
    start = ctx.first_visit + timedelta(days=(-400, 20)[int(kit.chance(0.25))])
    kit.res.condition(ctx.patient_id, kit.code(cms2.BIPOLAR_DISORDER), _at(ctx, start),
                      category=("problem-list-item", "health-concern", "encounter-diagnosis")[kit.choice(3)])


def negations(ctx: PatientContext, kit: Kit) -> None:
    """Something not done, with a medical or patient reason, on a visit day: a BMI follow-up referral or medication
    not requested, a BMI or depression screening not performed, a procedure not done, an ACE-I/beta-blocker not
    ordered. Some have a reason that does not count or a day that is not a visit's."""
    r, pid, visit = kit.res, ctx.patient_id, ctx.first_visit
    medical = kit.code(cms69.VS_MEDICAL_REASON)
    day = visit if kit.chance(0.85) else visit + timedelta(days=1)
    kind = kit.choice(7)
    if kind == 0:
        r.observation(pid, (LOINC, "39156-5"), _at(ctx, visit, 9, 10), category="vital-signs",
                      quantity=((24.9, 30.0, 17.0)[kit.choice(3)], "kg/m2"))
        r.service_request(pid, kit.code(cms69.VS_FOLLOW_UP_SERVICES[0]), _at(ctx, day, 9, 30), status="completed",
                          do_not_perform=True, refused_reason=medical)
    elif kind == 1:
        r.medication_request(pid, kit.code(cms69.VS_FOLLOW_UP_MEDICATIONS[kit.choice(2)]), _at(ctx, day, 9, 40),
                             by_reference=kit.by_reference(), status="completed", do_not_perform=True, reason=medical)
    elif kind == 2:
        reason = medical if kit.chance(0.6) else kit.code(cms69.VS_PATIENT_DECLINED)
        r.observation(pid, (LOINC, "39156-5"), _at(ctx, day), status="cancelled", not_done_reason=reason)
    elif kind == 3:
        reason = (SNOMED, cms2.SCREEN_DECLINED) if kit.chance(0.5) else medical
        r.observation(pid, (LOINC, cms2.SCREENING_TOOLS["adult"].loinc), None, status="cancelled",
                      not_done_reason=reason, issued=_at(ctx, day, 9, 15))
    elif kind == 4:
        r.procedure(pid, kit.code(cms69.VS_FOLLOW_UP_SERVICES[1]), _at(ctx, visit, 10), status="not-done",
                    not_done_reason=medical)
    else:
        oid_ = cms135.VS_ACEI_ARB_ARNI if kind == 5 else cms144.VS_BETA_BLOCKER
        r.medication_request(pid, kit.code(oid_), _at(ctx, visit, 10), by_reference=kit.by_reference(),
                             status="completed", do_not_perform=True, reason=medical)


SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...]]] = {
    # name: (builder, cohorts it applies to)
    "hospice": (hospice, ("hf", "lbp")),
    "palliative": (palliative, ("hf", "lbp")),
    "frailty": (frailty, ("hf", "lbp")),
    "nursing_home": (nursing_home, ("hf", "lbp")),
    "pregnancy": (pregnancy, ("hf", "lbp")),
    "bipolar": (bipolar, ("hf", "lbp")),
    "renal": (renal, ("hf",)),
    "hf_exclusion": (hf_exclusion, ("hf",)),
    "hf_exception": (hf_exception, ("hf",)),
    "negations": (negations, ("hf", "lbp")),
}


def draw_scenarios(ctx: PatientContext, kit: Kit, shares: dict[str, float],
                   catalogue: dict[str, tuple[Scenario, tuple[str, ...]]]) -> list[str]:
    """Which scenarios one patient gets (drawn before the base care, which a scenario may change: a patient with a
    denominator exception is usually not on the drug)."""
    drawn = []
    for name, (_, cohorts) in catalogue.items():
        if kit.rng.random() < float(shares.get(name, 0.0)) and ctx.cohort in cohorts and (
                name != "pregnancy" or ctx.female):
            drawn.append(name)
    ctx.scenarios = drawn
    return drawn


def build_scenarios(ctx: PatientContext, kit: Kit, catalogue: dict[str, tuple[Scenario, tuple[str, ...]]]) -> None:
    for name in ctx.scenarios:
        catalogue[name][0](ctx, kit)

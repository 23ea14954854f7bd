"""Final score 0-100 per participant with its breakdown (42 CFR 512.745, 512.730(e), 512.780;
asm-model.md §6, §8.2).

    weighted = w_Q·Q + w_C·C                       Q, C ∈ [0, 100]: quality.weight, cost.weight (sum 1)
    raw      = weighted − D_IA − D_PI              deductions from `ia_pi_deductions`
    FS       = clamp(raw + complex + f·(raw + complex), 0, 100)

Reweighting (`scoring.reweight_policy` = shift_to_scorable_else_neutral): cost unscorable → w_Q = w_Q + w_C;
quality unscorable other than by non-submission → w_C = w_Q + w_C; neither → neutral (final_score null,
is_neutral true: no adjustment, out of pool and scaling factor). Zero score: no quality row or
min_submission_met false (quality.md §2.5) → FS = 0; a score ≤ 0 before clamping → FS = 0
(`scoring.zero_score_if_raw_nonpositive`). EUC (`operations.euc_policy` = reweight_affected_categories): an
affected quality or cost category counts as unscorable (weight 0; non-submission then does not zero the score),
an affected IA or PI category deducts nothing. Bonuses: the complex-patient bonus (input points capped at
`scoring.complex_patient_bonus_max`, default 0) is added; the practice-size bonus (`practice_size_bonus_mode` =
percent_of_score) multiplies the positive pre-clamp score by f = the larger of `scoring.solo_practice_score_bonus`
(solo TIN) and `scoring.small_practice_score_bonus` (small TIN); both default 0 (OQ-5).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesError, RulesForYear
from openasm.schema.value_ranges import range_findings
from openasm.scoring.cost_category import max_cost_points, participants_for_year, score_cost_category
from openasm.scoring.formulas import final_score_parts
from openasm.scoring.ia_pi_deductions import compute_ia_pi_deductions

EUC_CATEGORIES = ("quality", "cost", "ia", "pi")
EUC_ALL = "all"
QUALITY_SCORED, QUALITY_NO_SUBMISSION, QUALITY_NO_MEASURE, EUC = "scored", "no_submission", "no_scorable_measure", "euc"
ZERO_NO_SUBMISSION, ZERO_NONPOSITIVE = "no_quality_submission", "score_nonpositive"
MISSING_COST_ROW = "no_cost_category_row"

FINAL_SCORE_COLUMNS = (
    "performance_year", "cohort", "npi", "tin",
    "quality_score_pct", "quality_points_earned", "quality_points_available", "min_submission_met",
    "quality_status",
    "cost_score_pct", "cost_measure_id", "cost_entity_level", "cost_n_episodes", "cost_achievement_points",
    "cost_status",
    "quality_weight_used", "cost_weight_used", "weight_basis",
    "has_attestation", "ia1_met", "ia1_status", "ia2_met", "ia2_status", "ia_unmet_activities",
    "ia_deduction_points", "pi_met", "pi_status", "pi_unmet_objectives", "has_pi_special_status",
    "pi_deduction_points",
    "is_euc_quality", "is_euc_cost", "is_euc_ia", "is_euc_pi",
    "is_small_practice", "is_solo_practice", "practice_size_bonus_factor", "practice_size_bonus_points",
    "complex_patient_bonus_points", "bonus_points",
    "weighted_score", "raw_score", "final_score", "is_zero_score", "zero_score_reason",
    "is_neutral", "neutral_reason",
)


def _check_rules(rules: RulesForYear) -> tuple[float, float]:
    """The base weights, after checking the enum rules this module implements."""
    rules.require({
        "scoring.reweight_policy": "shift_to_scorable_else_neutral",
        "scoring.practice_size_bonus_mode": "percent_of_score",
        "operations.euc_policy": "reweight_affected_categories",
        "scoring.zero_score_if_raw_nonpositive": True,
    })
    w_quality, w_cost = float(rules.value("quality.weight")), float(rules.value("cost.weight"))
    if abs(w_quality + w_cost - 1.0) > 1e-9 or min(w_quality, w_cost) < 0:
        raise RulesError(f"quality.weight + cost.weight must be 1 with neither negative; got {w_quality} + {w_cost}")
    return w_quality, w_cost


def euc_flags(*, participant: ir.Table, euc: ir.Table | None, rules: RulesForYear) -> ir.Table:
    """§512.780 (asm-model §8.2): per (performance_year, npi), which categories an EUC determination covers.

    euc: performance_year, tin and/or npi (a null or absent key matches any), category (quality | cost | ia |
    pi | all). Columns: performance_year, npi, is_euc_quality, is_euc_cost, is_euc_ia, is_euc_pi.
    """
    p = participants_for_year(participant, rules)
    if euc is None:
        return p.select("performance_year", "npi", **{f"is_euc_{c}": ibis.literal(False) for c in EUC_CATEGORIES})
    e = euc
    e = e.select(
        _u_year=e.performance_year.cast("int32"),
        _u_tin=e.tin.cast("string") if "tin" in e.columns else ibis.null("string"),
        _u_npi=e.npi.cast("string") if "npi" in e.columns else ibis.null("string"),
        _u_category=e.category.cast("string").lower(),
    )
    on = ((p.performance_year == e._u_year) & (e._u_tin.notnull() | e._u_npi.notnull())
          & (e._u_tin.isnull() | (e._u_tin == p.tin)) & (e._u_npi.isnull() | (e._u_npi == p.npi)))
    j = p.join(e, on)
    hit = j.group_by(_f_year=j.performance_year, _f_npi=j.npi).agg(
        **{f"_f_{c}": j._u_category.isin([c, EUC_ALL]).any() for c in EUC_CATEGORIES})
    out = p.left_join(hit, (p.performance_year == hit._f_year) & (p.npi == hit._f_npi))
    return out.select("performance_year", "npi",
                      **{f"is_euc_{c}": out[f"_f_{c}"].fill_null(False) for c in EUC_CATEGORIES})


def euc_findings(*, euc: ir.Table) -> ir.Table:
    """EUC rows that match no participant by construction: unknown category, or neither tin nor npi given.
    Columns: the euc columns plus reason. Empty when the table is clean."""
    tin = euc.tin if "tin" in euc.columns else ibis.null("string")
    npi = euc.npi if "npi" in euc.columns else ibis.null("string")
    category = euc.category.cast("string").lower()
    reason = ibis.cases(
        (~category.isin([*EUC_CATEGORIES, EUC_ALL]).fill_null(False),
         f"category must be one of {', '.join([*EUC_CATEGORIES, EUC_ALL])}"),
        (tin.isnull() & npi.isnull(), "neither tin nor npi given"),
        else_=ibis.null("string"),
    )
    flagged = euc.mutate(reason=reason)
    return flagged.filter(flagged.reason.notnull())


def practice_size_flags(*, participant: ir.Table, practice_size: ir.Table | None, rules: RulesForYear) -> ir.Table:
    """§414.1305 via §512.705 (asm-model §1.2, §6): small and solo practice flags per participant TIN.

    practice_size: tin and either clinician_count (small ≤ `participation.small_practice_max_clinicians`, solo ≤
    `scoring.solo_practice_max_clinicians`) or is_small_practice [+ is_solo_practice]; optional performance_year.
    Without it, the participant column small_practice_flag (CMS list) is used when present (solo unknown: false).
    Columns: performance_year, tin, is_small_practice, is_solo_practice (false when the TIN is not listed).
    """
    tins = participants_for_year(participant, rules).select("performance_year", "tin").distinct()
    if practice_size is None and "small_practice_flag" in participant.columns:
        # The CMS participant list flag (ASM_CY27_SMALLPRACTICE); it says nothing about solo practices.
        year = participant.filter(participant.performance_year.cast("int32") == rules.performance_year)
        practice_size = year.select(tin=year.tin, is_small_practice=year.small_practice_flag)
    if practice_size is None:
        return tins.mutate(is_small_practice=ibis.literal(False), is_solo_practice=ibis.literal(False))
    s = practice_size
    if "performance_year" in s.columns:
        s = s.filter(s.performance_year.cast("int32") == rules.performance_year)
    if "clinician_count" in s.columns:
        count = s.clinician_count.cast("float64")
        small = count <= float(rules.value("participation.small_practice_max_clinicians"))
        solo = count <= float(rules.value("scoring.solo_practice_max_clinicians"))
    elif "is_small_practice" in s.columns:
        small = s.is_small_practice.cast("boolean")
        solo = s.is_solo_practice.cast("boolean") if "is_solo_practice" in s.columns else ibis.literal(False)
    else:
        raise ValueError("practice_size needs column tin and clinician_count, or tin and is_small_practice")
    s = s.select(_z_tin=s.tin.cast("string"), _z_small=small.fill_null(False), _z_solo=solo.fill_null(False))
    s = s.group_by("_z_tin").agg(_z_small=s._z_small.any(), _z_solo=s._z_solo.any())
    j = tins.left_join(s, tins.tin == s._z_tin)
    return j.select("performance_year", "tin", is_small_practice=j._z_small.fill_null(False),
                    is_solo_practice=j._z_solo.fill_null(False))


def compute_final_score(*, participant: ir.Table, quality_category_score: ir.Table, cost_category_score: ir.Table,
                        ia_pi_deduction: ir.Table, rules: RulesForYear, euc: ir.Table | None = None,
                        practice_size: ir.Table | None = None,
                        complex_patient_bonus: ir.Table | None = None) -> ir.Table:
    """§512.745 (asm-model §6): final score 0-100 per participant of the rules' performance year.

    participant: performance_year, npi, tin, cohort [, is_participant]. quality_category_score: performance_year,
    npi, tin, quality_score_pct (null: no scorable measure), min_submission_met [, points_earned,
    points_available]. cost_category_score: `score_cost_category`. ia_pi_deduction: `compute_ia_pi_deductions`.
    euc, practice_size: see `euc_flags`, `practice_size_flags`. complex_patient_bonus: performance_year, npi,
    complex_patient_points. Grain: (performance_year, npi). Columns: FINAL_SCORE_COLUMNS.
    Missing rows are never lenient: no quality row = no submission (FS 0); no cost row = cost unscorable
    (cost_status no_cost_category_row); no deduction row = nothing attested (`ia_pi.ia_deduction_max` and
    `ia_pi.pi_deduction` apply).
    """
    w_quality, w_cost = _check_rules(rules)
    bonus_max = float(rules.value("scoring.complex_patient_bonus_max"))
    small_bonus = float(rules.value("scoring.small_practice_score_bonus"))
    solo_bonus = float(rules.value("scoring.solo_practice_score_bonus"))

    p = participants_for_year(participant, rules)
    q = quality_category_score
    q = q.select(
        _q_year=q.performance_year.cast("int32"), _q_npi=q.npi.cast("string"), _q_tin=q.tin.cast("string"),
        _q_pct=q.quality_score_pct.cast("float64"), _q_min=q.min_submission_met.cast("boolean"),
        _q_earned=q.points_earned.cast("float64") if "points_earned" in q.columns else ibis.null("float64"),
        _q_available=q.points_available.cast("float64") if "points_available" in q.columns else ibis.null("float64"),
    )
    c = cost_category_score.drop("tin", "cohort").rename(_c_year="performance_year", _c_npi="npi")
    d = ia_pi_deduction.rename(_d_year="performance_year", _d_tin="tin")
    e = euc_flags(participant=participant, euc=euc, rules=rules).rename(_e_year="performance_year", _e_npi="npi")
    z = practice_size_flags(participant=participant, practice_size=practice_size, rules=rules)
    z = z.rename(_z_year="performance_year", _z_tin="tin")
    j = (p.left_join(q, (p.performance_year == q._q_year) & (p.npi == q._q_npi) & (p.tin == q._q_tin))
         .left_join(c, (p.performance_year == c._c_year) & (p.npi == c._c_npi))
         .left_join(d, (p.performance_year == d._d_year) & (p.tin == d._d_tin))
         .left_join(e, (p.performance_year == e._e_year) & (p.npi == e._e_npi))
         .left_join(z, (p.performance_year == z._z_year) & (p.tin == z._z_tin)))
    if complex_patient_bonus is not None:
        b = complex_patient_bonus
        b = b.filter(b.performance_year.cast("int32") == rules.performance_year)
        b = b.group_by(_b_npi=b.npi.cast("string")).agg(_b_points=b.complex_patient_points.cast("float64").max())
        j = j.left_join(b, j.npi == b._b_npi)
        complex_points = ibis.greatest(ibis.least(j._b_points.fill_null(0.0), bonus_max), 0.0)
    else:
        complex_points = ibis.literal(0.0)

    euc_q, euc_c = j.is_euc_quality.fill_null(False), j.is_euc_cost.fill_null(False)
    euc_ia, euc_pi = j.is_euc_ia.fill_null(False), j.is_euc_pi.fill_null(False)
    submitted = j._q_min.fill_null(False)
    quality_status = ibis.cases((euc_q, EUC), (~submitted, QUALITY_NO_SUBMISSION),
                                (j._q_pct.isnull(), QUALITY_NO_MEASURE), else_=QUALITY_SCORED)
    quality_ok = quality_status == QUALITY_SCORED
    cost_ok = ~euc_c & j.is_cost_scorable.fill_null(False)
    no_submission = quality_status == QUALITY_NO_SUBMISSION
    # A TIN missing from ia_pi_deduction has attested nothing: the full deductions apply.
    d_ia = ibis.ifelse(euc_ia, 0.0, j.ia_deduction_points.fill_null(float(rules.value("ia_pi.ia_deduction_max"))))
    d_pi = ibis.ifelse(euc_pi, 0.0, j.pi_deduction_points.fill_null(float(rules.value("ia_pi.pi_deduction"))))
    cost_status = ibis.ifelse(euc_c, EUC, j.cost_status.fill_null(MISSING_COST_ROW))
    factor = ibis.greatest(ibis.ifelse(j.is_solo_practice.fill_null(False), solo_bonus, 0.0),
                           ibis.ifelse(j.is_small_practice.fill_null(False), small_bonus, 0.0))
    # Non-submission is not a reason to reweight: quality keeps its weight (and the score is zeroed).
    parts = final_score_parts(
        quality_pct=j._q_pct, cost_pct=j.cost_score_pct, quality_ok=quality_ok, cost_ok=cost_ok,
        no_submission=no_submission, ia_points=d_ia, pi_points=d_pi, complex_points=complex_points,
        size_factor=factor, w_quality=w_quality, w_cost=w_cost)
    neutral, raw, weighted = parts["is_neutral"], parts["raw_score"], parts["weighted_score"]
    practice_points, final = parts["practice_size_bonus_points"], parts["final_score"]
    w_q, w_c = parts["quality_weight_used"], parts["cost_weight_used"]
    quality_in = quality_ok | no_submission
    weight_basis = ibis.cases((quality_in & cost_ok, "both_categories"), (quality_in, "quality_only"),
                              (cost_ok, "cost_only"), else_="no_scorable_category")
    zero_reason = ibis.cases((~parts["is_zero_score"], ibis.null("string")), (no_submission, ZERO_NO_SUBMISSION),
                             else_=ZERO_NONPOSITIVE)
    neutral_reason = ibis.ifelse(
        neutral, ibis.literal("no scorable category (quality: ").concat(quality_status, ", cost: ", cost_status, ")"),
        ibis.null("string"))
    return j.select(
        "performance_year", "cohort", "npi", "tin",
        quality_score_pct=j._q_pct, quality_points_earned=j._q_earned, quality_points_available=j._q_available,
        min_submission_met=submitted, quality_status=quality_status,
        cost_score_pct=j.cost_score_pct, cost_measure_id=j.cost_measure_id, cost_entity_level=j.cost_entity_level,
        cost_n_episodes=j.cost_n_episodes, cost_achievement_points=j.cost_achievement_points,
        cost_status=cost_status,
        quality_weight_used=w_q, cost_weight_used=w_c, weight_basis=weight_basis,
        has_attestation=j.has_attestation.fill_null(False), ia1_met=j.ia1_met, ia1_status=j.ia1_status,
        ia2_met=j.ia2_met, ia2_status=j.ia2_status, ia_unmet_activities=j.ia_unmet_activities,
        ia_deduction_points=d_ia, pi_met=j.pi_met, pi_status=j.pi_status,
        pi_unmet_objectives=j.pi_unmet_objectives, has_pi_special_status=j.has_pi_special_status,
        pi_deduction_points=d_pi,
        is_euc_quality=euc_q, is_euc_cost=euc_c, is_euc_ia=euc_ia, is_euc_pi=euc_pi,
        is_small_practice=j.is_small_practice.fill_null(False), is_solo_practice=j.is_solo_practice.fill_null(False),
        practice_size_bonus_factor=factor, practice_size_bonus_points=practice_points,
        complex_patient_bonus_points=complex_points, bonus_points=complex_points + practice_points,
        weighted_score=ibis.ifelse(neutral, ibis.null("float64"), weighted),
        raw_score=ibis.ifelse(neutral, ibis.null("float64"), raw),
        final_score=final, is_zero_score=zero_reason.notnull(), zero_score_reason=zero_reason,
        is_neutral=neutral, neutral_reason=neutral_reason,
    )


def invalid_score_inputs(*, quality_category_score: ir.Table, measure_score: ir.Table,
                         rules: RulesForYear) -> ir.Table:
    """§512.745 inputs that cannot be scored: a quality category score that is not a finite percentage (0-100)
    and cost achievement points outside 0 to the band table's top (so a cost category outside 0-100).
    Columns: npi, column_name, value, expected (`schema.value_ranges.range_findings`)."""
    quality = quality_category_score.select(npi=quality_category_score.npi.cast("string"),
                                            quality_score_pct=quality_category_score.quality_score_pct)
    cost = measure_score.select(npi=measure_score.rendering_npi.cast("string"),
                                achievement_points=measure_score.achievement_points)
    return ibis.union(
        range_findings(quality, key=("npi",), bounds={"quality_score_pct": (0.0, 100.0)}),
        range_findings(cost, key=("npi",), bounds={"achievement_points": (0.0, max_cost_points(rules))}),
        distinct=False)


def score_participants(*, participant: ir.Table, quality_category_score: ir.Table, measure_score: ir.Table,
                       attestation: ir.Table, attestation_item: ir.Table, rules: RulesForYear,
                       euc: ir.Table | None = None, practice_size: ir.Table | None = None,
                       complex_patient_bonus: ir.Table | None = None,
                       pi_special_status: ir.Table | None = None) -> ir.Table:
    """§512.715, §512.745: the `participant_score` table from the category inputs (composes
    `score_cost_category`, `compute_ia_pi_deductions` and `compute_final_score`)."""
    cost = score_cost_category(participant=participant, measure_score=measure_score, rules=rules)
    deductions = compute_ia_pi_deductions(participant=participant, attestation=attestation,
                                          attestation_item=attestation_item, rules=rules,
                                          pi_special_status=pi_special_status)
    return compute_final_score(participant=participant, quality_category_score=quality_category_score,
                               cost_category_score=cost, ia_pi_deduction=deductions, rules=rules, euc=euc,
                               practice_size=practice_size, complex_patient_bonus=complex_patient_bonus)

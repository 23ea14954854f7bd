"""Score and pay a subject under lever settings, for S scenarios at once (numpy, no per-participant loop).

The arithmetic is the engine's (`openasm.scoring.formulas`, `openasm.scoring.quality_points.rate_axis`,
`openasm.payment.exchange` through `decide.cohort`): measure points against the benchmark the run used, quality
and cost category scores, IA/PI deductions, final score, then the cohort's median, pool, scaling factor and AF
with the subject's new scores in place. Benchmarks are held at the run's values (one practice's move does not
shift the published MIPS deciles; with cohort-built benchmarks its own weight is 1/N, left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from openasm import array_ops as ops
from openasm.cost.points import piecewise_points
from openasm.decide.cohort import score_cohorts
from openasm.decide.levers import Lever, measure_label
from openasm.decide.subject import Subject
from openasm.payment.exchange import PaymentRules
from openasm.rules import RulesError, RulesForYear
from openasm.scoring import formulas as f
from openasm.scoring.cost_category import max_cost_points
from openasm.scoring.quality_points import rate_axis


@dataclass(frozen=True)
class Outcome:
    """Per scenario (S,) or per scenario and subject NPI (S, K)."""

    quality_pct: np.ndarray
    cost_pct: np.ndarray
    ia_deduction: np.ndarray
    pi_deduction: np.ndarray
    final_score: np.ndarray
    midpoint: np.ndarray
    transformed_final_score: np.ndarray
    scaling_factor: np.ndarray
    pool: np.ndarray
    adjustment_factor: np.ndarray
    dollars: np.ndarray  # (S, K) payment-year dollars
    measure_points: np.ndarray  # (S, R)
    measure_status: np.ndarray  # (S, R)

    @property
    def total_dollars(self) -> np.ndarray:
        return self.dollars.sum(axis=1)

    def scenario(self, s: int) -> "Outcome":
        """One scenario as a 1-row Outcome."""
        return Outcome(**{name: getattr(self, name)[s:s + 1] for name in self.__dataclass_fields__})


def _apply(current: np.ndarray, baseline: np.ndarray, mask: np.ndarray, lever: Lever | None,
           setting: np.ndarray | None, scale: float, low: float, high: float) -> np.ndarray:
    """`current` (S, n) with the masked entries set to baseline + (setting − lever baseline) × scale, clipped."""
    if lever is None or setting is None:
        return current
    shift = (setting - lever.baseline) * scale
    return np.where(mask, np.clip(baseline + shift[:, None], low, high), current)


def _flag(levers, settings, name: str, stored: np.ndarray, size: int) -> np.ndarray:
    base = np.broadcast_to(np.asarray([bool(v) for v in stored]), (size, stored.size))
    if name not in settings:
        return base
    return np.broadcast_to(np.atleast_1d(np.asarray(settings[name], dtype=float) >= 0.5)[:, None], base.shape)


def _quality(subject: Subject, levers, settings, rules: RulesForYear, size: int) -> tuple:
    q = subject.quality
    rows = q.measure_id.size
    rate, dc, cases = (np.broadcast_to(v, (size, rows)).astype(float) for v in (q.rate, q.data_completeness,
                                                                               q.case_count))
    for measure in set(q.measure_id):
        label, mine = measure_label(measure), (q.measure_id == measure) & q.is_reported
        for name, scale, high in (("rate", 100.0, 100.0), ("dc", 1.0, 1.0), ("cases", 1.0, np.inf)):
            lever = f"quality.{label}.{name}"
            current = {"rate": rate, "dc": dc, "cases": cases}[name]
            base = {"rate": q.rate, "dc": q.data_completeness, "cases": q.case_count}[name]
            updated = _apply(current, base, mine, levers.get(lever), settings.get(lever), scale, 0.0, high)
            rate, dc, cases = (updated if name == n else v for n, v in (("rate", rate), ("dc", dc), ("cases", cases)))
    threshold = float(rules.value("quality.data_completeness_threshold"))
    minimum = float(rules.value("quality.case_minimum"))
    meets_dc = q.is_admin | np.where(np.isnan(dc), q.meets_dc, dc >= threshold)
    meets_min = np.where(q.is_admin | np.isnan(cases), q.meets_case_min, (cases >= minimum) & ~np.isnan(rate))
    status = f.measure_status(meets_dc, meets_min, q.uses_cms_points, q.has_benchmark)
    x, bounds = rate_axis(q.benchmark, rate, rules)
    decile, lower, upper = f.decile_and_band(x, bounds)
    points = np.where(q.uses_cms_points, q.cms_points, f.decile_points(x, decile, lower, upper, bounds[1], bounds[2]))
    cap = rules.value("quality.topped_out_cap_points")
    if cap is not None:
        points = f.topped_out_points(points, q.cap_applies & ~q.uses_cms_points, float(cap))
    if rules.value("quality.unscorable_policy") != "asm":
        raise RulesError("what-if scoring implements quality.unscorable_policy = asm only")
    counted = f.is_counted_asm(status, rules.value("quality.below_case_minimum_policy") == "zero_in_denominator")
    points = np.where(status == f.SCORED, points, np.where(counted, 0.0, np.nan))
    counted = np.where(q.is_reported, counted, q.stored_counted)
    points = np.where(q.is_reported, points, q.stored_points)
    status = np.where(q.is_reported, status, "not_reported")
    owner = np.zeros((rows, len(subject.npis)))
    owner[np.arange(rows), q.owner] = 1.0
    earned = np.where(counted, np.nan_to_num(points), 0.0) @ owner
    available = f.MAX_MEASURE_POINTS * (counted.astype(float) @ owner)
    submits = (q.is_reported & ~q.is_admin & meets_dc).astype(float) @ owner > 0
    min_met = submits | subject.other_submission
    pct = np.where(min_met, f.quality_category_pct(earned, available), 0.0)
    return pct, min_met, available > 0, points, status


def _cost(subject: Subject, levers, settings, rules: RulesForYear, size: int) -> tuple[np.ndarray, np.ndarray]:
    k = len(subject.npis)
    oe = np.broadcast_to(subject.cost_oe, (size, k)).astype(float)
    episodes = np.broadcast_to(subject.cost_episodes, (size, k)).astype(float)
    for measure in {str(m) for m in subject.score["cost_measure_id"]}:
        mine = subject.has_cost_row & (subject.score["cost_measure_id"] == measure)
        oe = _apply(oe, subject.cost_oe, mine, levers.get(f"cost.{measure}.oe"), settings.get(f"cost.{measure}.oe"),
                    1.0, 0.0, np.inf)
        episodes = _apply(episodes, subject.cost_episodes, mine, levers.get(f"cost.{measure}.episodes"),
                          settings.get(f"cost.{measure}.episodes"), 1.0, 0.0, np.inf)
    # A service category's cost change moves observed cost, hence O/E, by the category's share of the NPI's
    # episode cost (expected cost unchanged).
    for name, setting in settings.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "cost" and parts[2] not in ("oe", "episodes"):
            share = np.asarray([s.get(parts[2], 0.0) if m == parts[1] else 0.0 for s, m in
                                zip(subject.cost_category_share, subject.score["cost_measure_id"])])
            oe = oe * (1.0 + share * (setting - levers[name].baseline)[:, None])
    score = oe * subject.cost_national_mean
    points = np.full((size, k), np.nan)
    for i, knots in enumerate(subject.cost_knots):
        if knots is not None:
            points[:, i] = piecewise_points(score[:, i], knots)
    scorable = subject.has_cost_row & (episodes >= float(rules.value("cost.case_minimum"))) & ~np.isnan(points)
    scorable &= ~np.asarray([bool(v) for v in subject.score["is_euc_cost"]])
    return np.where(scorable, f.cost_category_pct(points, max_cost_points(rules)), np.nan), scorable


@dataclass(frozen=True)
class SubjectScores:
    """The subject's scores under lever settings: (S, K), measure rows (S, R)."""

    quality_pct: np.ndarray
    cost_pct: np.ndarray
    ia_deduction: np.ndarray
    pi_deduction: np.ndarray
    final_score: np.ndarray
    is_neutral: np.ndarray
    measure_points: np.ndarray
    measure_status: np.ndarray


def score_subject(subject: Subject, levers: Mapping[str, Lever], settings: Mapping[str, np.ndarray],
                  rules: RulesForYear, size: int) -> SubjectScores:
    """§512.725–§512.745: measure points, category scores, deductions and final score of the subject for S
    scenarios of lever settings ((S,) or (1,) arrays)."""
    s = subject.score
    quality_pct, min_met, has_counted, points, status = _quality(subject, levers, settings, rules, size)
    cost_pct, cost_ok = _cost(subject, levers, settings, rules, size)
    euc = {c: np.asarray([bool(v) for v in s[f"is_euc_{c}"]]) for c in ("quality", "ia", "pi")}
    ia1, ia2 = (_flag(levers, settings, n, s[c], size) for n, c in (("ia.ia1", "ia1_met"), ("ia.ia2", "ia2_met")))
    pi = _flag(levers, settings, "pi.met", s["pi_met"], size) | np.asarray([bool(v) for v in
                                                                              s["has_pi_special_status"]])
    small = _flag(levers, settings, "practice.small", s["is_small_practice"], size)
    solo = np.asarray([bool(v) for v in s["is_solo_practice"]])
    d_ia = np.where(euc["ia"], 0.0, f.ia_deduction((~ia1).astype(float) + (~ia2).astype(float),
                                                   float(rules.value("ia_pi.ia_deduction_per_unmet_activity")),
                                                   float(rules.value("ia_pi.ia_deduction_max"))))
    d_pi = np.where(euc["pi"], 0.0, f.pi_deduction(pi, float(rules.value("ia_pi.pi_deduction"))))
    factor = ops.maximum(np.where(solo, float(rules.value("scoring.solo_practice_score_bonus")), 0.0),
                         np.where(small, float(rules.value("scoring.small_practice_score_bonus")), 0.0))
    no_submission = ~euc["quality"] & ~min_met
    quality_ok = ~euc["quality"] & min_met & has_counted
    w_quality, w_cost = float(rules.value("quality.weight")), float(rules.value("cost.weight"))
    parts = f.final_score_parts(
        quality_pct=quality_pct, cost_pct=cost_pct, quality_ok=quality_ok, cost_ok=cost_ok,
        no_submission=no_submission, ia_points=d_ia, pi_points=d_pi,
        complex_points=np.asarray([float(v or 0.0) for v in s["complex_patient_bonus_points"]]),
        size_factor=factor, w_quality=w_quality, w_cost=w_cost)
    return SubjectScores(quality_pct=quality_pct, cost_pct=cost_pct, ia_deduction=d_ia, pi_deduction=d_pi,
                         final_score=parts["final_score"], is_neutral=parts["is_neutral"], measure_points=points,
                         measure_status=status)


def evaluate(subject: Subject, levers: Mapping[str, Lever], settings: Mapping[str, object], rules: RulesForYear,
             size: int | None = None) -> Outcome:
    """Scores, AF and dollars of the subject for `settings` (lever → value or (S,) values; absent levers stay at
    baseline), paid against the run's own cohort."""
    settings = {name: np.atleast_1d(np.asarray(v, dtype=float)) for name, v in settings.items()}
    size = size or max([v.size for v in settings.values()] + [1])
    scores = score_subject(subject, levers, settings, rules, size)
    final, neutral = scores.final_score, scores.is_neutral
    pay = PaymentRules.from_rules(rules)
    k = len(subject.npis)
    part_b = np.asarray([float(v or 0.0) for v in subject.score["part_b_paid_amount"]])
    scale = np.ones((size, 1))
    if "payment.part_b" in settings and levers["payment.part_b"].baseline > 0:
        scale = (np.asarray(settings["payment.part_b"]) / levers["payment.part_b"].baseline)[:, None]
    out = {n: np.full((size, k), np.nan) for n in ("midpoint", "tfs", "sf", "pool", "af")}
    for cohort, c in subject.cohort_rows.items():
        mine = c["subject_index"] >= 0
        fs = np.broadcast_to(c["final_score"], (size, c["npi"].__len__())).copy()
        pb = np.broadcast_to(c["part_b"], fs.shape).copy()
        is_neutral = np.broadcast_to(c["is_neutral"], fs.shape).copy()
        cols = c["subject_index"][mine]
        fs[:, cols] = np.nan_to_num(final[:, mine])
        pb[:, cols] = part_b[mine] * scale
        is_neutral[:, cols] = neutral[:, mine]
        override = settings.get("cohort.median")
        midpoint = None if override is None else np.broadcast_to(override, (size,)).astype(float)
        result = score_cohorts(fs, pb, is_neutral, pay, midpoint)
        out["midpoint"][:, mine] = result.midpoint[:, None]
        out["pool"][:, mine] = result.pool[:, None]
        out["sf"][:, mine] = result.scaling_factor[:, None]
        out["tfs"][:, mine] = result.transformed_final_score[:, cols]
        out["af"][:, mine] = result.adjustment_factor[:, cols]
    dollars = out["af"] * subject.payment_year_paid * scale
    return Outcome(quality_pct=scores.quality_pct, cost_pct=scores.cost_pct, ia_deduction=scores.ia_deduction,
                   pi_deduction=scores.pi_deduction, final_score=final, midpoint=out["midpoint"],
                   transformed_final_score=out["tfs"], scaling_factor=out["sf"], pool=out["pool"],
                   adjustment_factor=out["af"], dollars=dollars, measure_points=scores.measure_points,
                   measure_status=scores.measure_status)

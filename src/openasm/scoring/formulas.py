"""The scoring formulas, element-wise, once for every caller (quality.md §2.3–§2.5; asm-model.md §3.2, §4–§6;
ebcm.md §9.1).

The engine's stages apply them to Ibis columns (`quality_points.add_decile_points`, `quality_category`,
`cost_category`, `final_score`, `ia_pi_deductions`; the cost band interpolation sits one layer down, in
`openasm.cost.points.piecewise_points`); the decision tools (`openasm.decide`) apply them to numpy
arrays of what-if levers and simulated peers. Operands are Ibis expressions or numpy arrays (`openasm.array_ops`);
rule values are passed in by the caller, so nothing here holds a regulatory number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openasm import array_ops as ops

# Achievement points run from 1 to 10, one per decile: the scale of the decile system, not a policy number.
TOP_DECILE = 10
MAX_MEASURE_POINTS = 10.0
SCORED, ZERO_DC, EXCLUDED_CASE_MIN, EXCLUDED_NO_BENCHMARK = (
    "scored", "zero_dc", "excluded_case_min", "excluded_no_benchmark")


# ------------------------------------------------------------------------------------------ quality measures
def oriented_rate_and_bounds(rate: Any, is_inverse: Any, percentile: Mapping[int, Any], floor: Any,
                             ceiling: Any) -> tuple[Any, dict[int, Any]]:
    """§2.3: a rate and its decile lower bounds L_1 … L_10 on one ascending axis. Direct: x = rate, L_1 = floor,
    L_k = P(10(k−1)). Inverse: x = −rate, L_1 = −ceiling, L_k = −P(110 − 10k) (rate ≤ U_k ⇔ −rate ≥ −U_k, with the
    same interpolation), so one decile rule serves both. `percentile` maps 10, 20 … 90 to the benchmark values."""
    x = ops.where(is_inverse, -rate, rate)
    bounds = {1: ops.where(is_inverse, -ceiling, floor)}
    for k in range(2, TOP_DECILE + 1):
        bounds[k] = ops.where(is_inverse, -percentile[110 - 10 * k], percentile[10 * (k - 1)])
    return x, bounds


def decile_and_band(x: Any, bounds: Mapping[int, Any]) -> tuple[Any, Any, Any]:
    """§2.3, 42 CFR 414.1380(b)(1)(i): the decile x reaches (the highest k with x ≥ L_k, else 1) and the bounds of
    its band [L_k, L_{k+1}). With ascending bounds {k : x ≥ L_k} is 2..k, hence k = 1 + #{k ≥ 2 : x ≥ L_k}."""
    reached = [ops.as_float(x >= bounds[k]) for k in range(2, TOP_DECILE + 1)]
    decile = 1.0 + sum(reached[1:], reached[0])
    lower = ops.select([(x >= bounds[k], bounds[k]) for k in range(TOP_DECILE - 1, 1, -1)], bounds[1])
    upper = ops.select([(x >= bounds[k], bounds[k + 1]) for k in range(TOP_DECILE - 1, 1, -1)], bounds[2])
    return decile, lower, upper


def decile_points(x: Any, decile: Any, lower: Any, upper: Any, first_bound: Any, second_bound: Any) -> Any:
    """§2.3: decile k = 2..9 earns k + (x − L_k) / (L_{k+1} − L_k); decile 10 earns 10; decile 1 interpolates from
    L_1, clamped to [1, 2) (1.0 when that band is empty)."""
    first = ops.where(second_bound <= first_bound, 1.0,
                      ops.maximum(1.0 + ops.safe_divide(x - first_bound, second_bound - first_bound), 1.0))
    partial = decile + ops.safe_divide(x - lower, upper - lower)
    return ops.select([(decile == TOP_DECILE, MAX_MEASURE_POINTS), (decile == 1, first)], partial)


def topped_out_points(points: Any, cap_applies: Any, cap: float) -> Any:
    """§2.3 7-point cap (42 CFR 414.1380(b)(1)(i)(C) analog): min(points, cap) where the cap applies."""
    return ops.where(cap_applies & (points > cap), cap, points)


def measure_status(meets_dc: Any, meets_case_min: Any, uses_cms_points: Any, has_benchmark: Any) -> Any:
    """§2.1–§2.4 (quality.md): an eligible result is zero_dc below the data completeness threshold, else
    excluded_case_min below the case minimum, else scored (CMS-supplied points or a benchmark), else
    excluded_no_benchmark."""
    return ops.select([(~meets_dc, ZERO_DC), (~meets_case_min, EXCLUDED_CASE_MIN), (uses_cms_points, SCORED),
                       (~has_benchmark, EXCLUDED_NO_BENCHMARK)], SCORED)


def is_counted_asm(status: Any, below_minimum_counts: bool) -> Any:
    """§2.4, `quality.unscorable_policy` = asm: scored and zero_dc results count in the denominator; below the
    case minimum or without a benchmark they count only when `quality.below_case_minimum_policy` is
    zero_in_denominator."""
    counted = (status == SCORED) | (status == ZERO_DC)
    if below_minimum_counts:
        counted = counted | (status == EXCLUDED_CASE_MIN) | (status == EXCLUDED_NO_BENCHMARK)
    return counted


def quality_category_pct(points_earned: Any, points_available: Any) -> Any:
    """§2.5: quality category score = min(100, 100 × Σ points / (10 × counted measures)); null when none counts."""
    return ops.minimum(100.0, 100.0 * ops.safe_divide(points_earned, points_available))


# ------------------------------------------------------------------------------------------ cost
def cost_category_pct(points: Any, top_points: float) -> Any:
    """§512.730(e), asm-model §4: cost category score = points ÷ the band table's highest points × 100."""
    return 100.0 * points / top_points


# ------------------------------------------------------------------------------------------ IA / PI
def ia_deduction(unmet_activities: Any, per_unmet: float, maximum: float) -> Any:
    """§512.735, asm-model §5.1: `ia_pi.ia_deduction_per_unmet_activity` per unmet activity, at most
    `ia_pi.ia_deduction_max`."""
    return ops.minimum(ops.as_float(unmet_activities) * per_unmet, maximum)


def pi_deduction(pi_met_or_exempt: Any, points: float) -> Any:
    """§512.740, asm-model §5.2: `ia_pi.pi_deduction` unless PI is met (or reweighted for a special status)."""
    return ops.where(pi_met_or_exempt, 0.0, points)


# ------------------------------------------------------------------------------------------ final score
def final_score_parts(*, quality_pct: Any, cost_pct: Any, quality_ok: Any, cost_ok: Any, no_submission: Any,
                      ia_points: Any, pi_points: Any, complex_points: Any, size_factor: Any, w_quality: float,
                      w_cost: float) -> dict[str, Any]:
    """§512.745 (asm-model §6): weights, weighted and raw score, practice-size bonus and final score.

    Reweighting (shift_to_scorable_else_neutral): both categories scorable → (w_Q, w_C); one → it takes w_Q + w_C;
    none → neutral (no final score). Non-submission keeps quality's weight and zeroes the score. raw = weighted −
    D_IA − D_PI; the practice-size factor multiplies the positive score before the clamp to [0, 100]; a score
    ≤ 0 becomes 0 (`scoring.zero_score_if_raw_nonpositive`).
    """
    quality_in = quality_ok | no_submission
    both = quality_in & cost_ok
    neutral = ~quality_in & ~cost_ok
    total = w_quality + w_cost
    w_q = ops.select([(both, w_quality), (quality_in, total)], 0.0)
    w_c = ops.select([(both, w_cost), (cost_ok, total)], 0.0)
    weighted = w_q * ops.where(quality_ok, quality_pct, 0.0) + w_c * ops.where(cost_ok, cost_pct, 0.0)
    raw = weighted - ia_points - pi_points
    before_practice = raw + complex_points
    practice_points = ops.where(before_practice > 0, size_factor * before_practice, 0.0)
    unclamped = before_practice + practice_points
    is_zero = ~neutral & (no_submission | (unclamped <= 0))
    final = ops.select([(neutral, ops.null_float(unclamped)), (is_zero, 0.0)], ops.minimum(unclamped, 100.0))
    return {"quality_weight_used": w_q, "cost_weight_used": w_c, "is_neutral": neutral, "weighted_score": weighted,
            "raw_score": raw, "practice_size_bonus_points": practice_points, "is_zero_score": is_zero,
            "final_score": final}

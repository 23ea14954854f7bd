"""Payment adjustment of many cohorts at once (42 CFR 512.750(c); asm-model.md §7.3–§7.4), on numpy arrays.

Row s of every (S, N) array is one cohort (a what-if scenario or a Monte Carlo draw) of N participants. The
formulas are `openasm.payment.exchange`'s, the ones `compute_payment_adjustment` applies in the engine; only the
cohort statistics differ in form (sums and the median along axis 1 instead of SQL windows).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from openasm.payment import exchange
from openasm.payment.exchange import PaymentRules


@dataclass(frozen=True)
class CohortPayment:
    """Per cohort row: midpoint, pool, scaling factor (S,); per participant: TFS and AF (S, N)."""

    midpoint: np.ndarray
    pool: np.ndarray
    scaling_factor: np.ndarray
    transformed_final_score: np.ndarray
    adjustment_factor: np.ndarray


def positive_median(final_score: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """asm-model §7.4 (`cohort_median_positive`): per row, the median of the scored participants' final scores
    (the mean of the two middle values for an even count, as SQL `median`); NaN for a row with none."""
    masked = np.where(scored, final_score, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row gives NaN, which is the answer
        return np.nanmedian(masked, axis=1)


def score_cohorts(final_score: np.ndarray, part_b_paid: np.ndarray, is_neutral: np.ndarray, rules: PaymentRules,
                  midpoint: np.ndarray | None = None) -> CohortPayment:
    """§512.750(c)(1) for each row of `final_score` (S, N): TFS against the row's midpoint (the median of positive
    scores, `payment.exchange_midpoint_rule`, unless `midpoint` (S,) overrides it where not NaN), pool over the
    pool base, scaling factor and clamped AF. `part_b_paid` and `is_neutral` broadcast against (S, N); neutral
    participants' scores are ignored."""
    final_score = np.asarray(final_score, dtype=float)
    is_neutral = np.broadcast_to(np.asarray(is_neutral, dtype=bool), final_score.shape)
    part_b_paid = np.broadcast_to(np.asarray(part_b_paid, dtype=float), final_score.shape)
    scored = exchange.is_scored(final_score, is_neutral)
    if rules.fixed_midpoint is not None:
        computed = np.full(final_score.shape[0], rules.fixed_midpoint)
    else:
        computed = positive_median(final_score, scored)
    if midpoint is not None:
        computed = np.where(np.isnan(midpoint), computed, midpoint)
    tfs = np.where(scored, exchange.transformed_final_score(final_score, computed[:, None], rules), np.nan)
    base = np.where(exchange.in_pool_base(final_score, is_neutral, rules), part_b_paid, 0.0).sum(axis=1)
    pool = exchange.pool_amount(base, rules)
    denominator = exchange.scaling_denominator_term(np.where(scored, tfs, 0.0), part_b_paid, scored, rules)
    sf = exchange.scaling_factor(pool, denominator.sum(axis=1))
    af = exchange.adjustment_factor(tfs, sf[:, None], scored, is_neutral, rules)
    return CohortPayment(midpoint=computed, pool=pool, scaling_factor=sf, transformed_final_score=tfs,
                         adjustment_factor=af)

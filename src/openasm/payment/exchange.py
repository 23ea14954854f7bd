"""The payment formulas of 42 CFR 512.750(c)(1) (asm-model.md §7.3, §7.4), element-wise, once for every caller.

`compute_payment_adjustment` applies them to Ibis columns (cohort sums as windows); the decision tools
(`openasm.decide`) apply them to numpy arrays of thousands of simulated cohorts (sums along an axis). Inputs are
Ibis expressions or numpy arrays (`openasm.array_ops`); rule values come in as floats read by the caller from
`payment.*` parameters, so nothing here holds a regulatory number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openasm import array_ops as ops
from openasm.rules import RulesForYear


@dataclass(frozen=True)
class PaymentRules:
    """The `payment.*` values the formulas need, read once (RL and retention of the payment year PY + 2)."""

    exchange_low: float
    exchange_high: float
    slope: float
    midpoint_rule: str
    risk_level: float
    retention: float
    clamp_low: float  # multiples of RL
    clamp_high: float
    zero_score_af: float  # multiple of RL
    zero_in_pool: bool

    @classmethod
    def from_rules(cls, rules: RulesForYear) -> "PaymentRules":
        """§512.750(c)(1): read and check the exchange and pool parameters."""
        if rules.value("payment.exchange_function") != "logistic":
            raise ValueError("payment.exchange_function: only logistic is implemented")
        midpoint_rule = rules.value("payment.exchange_midpoint_rule")
        if midpoint_rule not in ("cohort_median_positive", "fixed_50"):
            raise ValueError(f"payment.exchange_midpoint_rule: unsupported value {midpoint_rule!r}")
        low, high = (float(v) for v in rules.value("payment.exchange_range"))
        clamp_low, clamp_high = (float(v) for v in rules.value("payment.af_clamp"))
        return cls(
            exchange_low=low, exchange_high=high, slope=float(rules.value("payment.exchange_slope_k")),
            midpoint_rule=midpoint_rule, risk_level=float(rules.value("payment.risk_level")),
            retention=float(rules.value("payment.retention_rate")), clamp_low=clamp_low, clamp_high=clamp_high,
            zero_score_af=float(rules.value("payment.zero_score_af")),
            zero_in_pool=bool(rules.value("payment.pool_base_includes_zero_score")),
        )

    @property
    def fixed_midpoint(self) -> float | None:
        """The midpoint under `fixed_50` (asm-model §7.4), None under the cohort-median rule."""
        return 50.0 if self.midpoint_rule == "fixed_50" else None


def is_scored(final_score: Any, is_neutral: Any) -> Any:
    """§512.750(c)(1): a participant with a positive final score who is not neutral gets a TFS."""
    return ~is_neutral & (final_score > 0)


def in_pool_base(final_score: Any, is_neutral: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1)(iii), `payment.pool_base_includes_zero_score`: whose Part B amount counts in the pool."""
    return ~is_neutral if rules.zero_in_pool else is_scored(final_score, is_neutral)


def transformed_final_score(final_score: Any, midpoint: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1)(ii), asm-model §7.4: TFS = lo + (hi − lo) / (1 + exp(−k (FS − m)))."""
    span = rules.exchange_high - rules.exchange_low
    return rules.exchange_low + span / (1.0 + ops.exp(-rules.slope * (final_score - midpoint)))


def pool_amount(pool_base_paid: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1)(iii): pool = (1 − retention) × RL × Σ PB over the pool base."""
    return (1.0 - rules.retention) * rules.risk_level * pool_base_paid


def scaling_denominator_term(tfs: Any, part_b_paid: Any, scored: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1)(iv): each participant's RL × TFS × PB in the scaling factor's denominator (0 if unscored)."""
    return ops.where(scored, rules.risk_level * tfs * part_b_paid, 0.0)


def scaling_factor(pool: Any, denominator: Any) -> Any:
    """§512.750(c)(1)(iv): SF = pool / Σ_{FS>0} RL × TFS × PB; null when nobody has a positive score."""
    return ops.safe_divide(pool, denominator)


def unclamped_adjustment_factor(tfs: Any, sf: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1): AF before the clamp, RL × TFS × SF − RL."""
    return rules.risk_level * tfs * sf - rules.risk_level


def adjustment_factor(tfs: Any, sf: Any, scored: Any, is_neutral: Any, rules: PaymentRules) -> Any:
    """§512.750(c)(1): AF = clamp(RL × TFS × SF − RL, `payment.af_clamp` × RL) for FS > 0, null when SF is
    undefined (no Part B behind any FS > 0 participant: the AF is unknown, never the clamp's bound);
    `payment.zero_score_af` × RL for FS = 0; 0 for neutral participants."""
    raw = unclamped_adjustment_factor(tfs, sf, rules)
    clamped = ops.clip(raw, rules.clamp_low * rules.risk_level, rules.clamp_high * rules.risk_level)
    return ops.select([(is_neutral, 0.0), (scored & ops.is_finite(sf), clamped), (scored, ops.null_float(sf))],
                      rules.zero_score_af * rules.risk_level)

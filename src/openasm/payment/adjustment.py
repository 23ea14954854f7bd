"""Payment adjustment factors per participant and cohort (42 CFR 512.750(c); asm-model.md §7).

Input grain: participant (NPI) in a cohort for one performance year, with its final score and the Part B
covered professional services paid in the performance year. Cohorts are never mixed (§512.750(b)): every
cohort statistic (median, pool, scaling factor) is a window over the cohort.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.payment.exchange import (
    PaymentRules,
    adjustment_factor,
    in_pool_base,
    is_scored,
    pool_amount,
    scaling_denominator_term,
    scaling_factor,
    transformed_final_score,
    unclamped_adjustment_factor,
)
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum
from openasm.schema.value_ranges import range_findings

PARTICIPANT_COLUMNS = ("cohort", "npi", "final_score", "part_b_paid_amount", "is_neutral")


def transform_final_score(*, participant_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.750(c)(1)(ii), asm-model §7.4: TFS = lo + (hi − lo) / (1 + exp(−k (FS − m))) for FS > 0, with
    (lo, hi) = `payment.exchange_range`, k = `payment.exchange_slope_k` and m the cohort median of positive final
    scores (`payment.exchange_midpoint_rule` = cohort_median_positive) or 50 (fixed_50). Neutral participants
    and FS = 0 get no TFS. Adds columns exchange_midpoint, transformed_final_score."""
    pay = PaymentRules.from_rules(rules)
    p = participant_score
    if pay.fixed_midpoint is None:
        positive = p.filter(is_scored(p.final_score, p.is_neutral))
        medians = positive.group_by(_m_cohort=positive.cohort).agg(exchange_midpoint=positive.final_score.median())
        p = p.left_join(medians, p.cohort == medians._m_cohort).drop("_m_cohort")
    else:
        p = p.mutate(exchange_midpoint=ibis.literal(pay.fixed_midpoint))
    tfs = transformed_final_score(p.final_score, p.exchange_midpoint, pay)
    return p.mutate(transformed_final_score=ibis.ifelse(is_scored(p.final_score, p.is_neutral), tfs,
                                                        ibis.null("float64")))


def compute_payment_adjustment(*, participant_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.750(c)(1): per cohort, pool = (1 − retention) × RL × Σ PB (participants with a final score, FS = 0
    included when `payment.pool_base_includes_zero_score`); SF = pool / Σ_{FS>0} RL × TFS × PB;
    AF = RL × TFS × SF − RL for FS > 0, clamped to `payment.af_clamp` × RL (null when SF is undefined: no Part B
    behind any FS > 0 participant); AF = `payment.zero_score_af` × RL for FS = 0; AF = 0 for neutral participants
    (EUC, unscorable), who are left out of pool and SF. Inputs are checked first (`invalid_payment_inputs`).
    RL and retention are the payment-year values (PY + 2). The formulas are `openasm.payment.exchange`'s.

    Grain: participant. Columns: PARTICIPANT_COLUMNS, payment_year, risk_level, retention_rate,
    exchange_midpoint, transformed_final_score, pool_amount, scaling_factor, adjustment_factor, multiplier,
    adjustment_amount (AF × PB, in performance-year dollars).
    """
    pay = PaymentRules.from_rules(rules)
    p = transform_final_score(participant_score=participant_score, rules=rules)
    scored = is_scored(p.final_score, p.is_neutral)
    cohort = ibis.window(group_by="cohort")
    base = ibis.ifelse(in_pool_base(p.final_score, p.is_neutral, pay), p.part_b_paid_amount, 0.0)
    denominator = scaling_denominator_term(p.transformed_final_score, p.part_b_paid_amount, scored, pay)
    p = p.mutate(pool_amount=pool_amount(exact_sum(base).over(cohort), pay),
                 _denominator=exact_sum(denominator).over(cohort))
    p = p.mutate(scaling_factor=scaling_factor(p.pool_amount, p._denominator))
    af = adjustment_factor(p.transformed_final_score, p.scaling_factor, is_scored(p.final_score, p.is_neutral),
                           p.is_neutral, pay)
    p = p.mutate(adjustment_factor=af).drop("_denominator")
    return p.mutate(
        payment_year=ibis.literal(rules.payment_year, "int32"),
        risk_level=ibis.literal(pay.risk_level, "float64"), retention_rate=ibis.literal(pay.retention, "float64"),
        multiplier=1.0 + p.adjustment_factor,
        adjustment_amount=p.adjustment_factor * p.part_b_paid_amount,
    )


def invalid_payment_inputs(*, participant_score: ir.Table) -> ir.Table:
    """§512.750 inputs that cannot enter a pool: a final score that is not a finite number from 0 to 100, a Part B
    amount that is not finite or is negative. Columns: cohort, npi, column_name, value, expected."""
    return range_findings(participant_score, key=("cohort", "npi"),
                          bounds={"final_score": (0.0, 100.0), "part_b_paid_amount": (0.0, None)})


def check_pool_invariant(*, payment_adjustment: ir.Table) -> ir.Table:
    """asm-model §7.6: per cohort Σ AF × PB against −retention × RL × Σ PB over the pool base; holds when no
    clamp binds and FS = 0 participants are in the pool base. Grain: cohort. Columns: cohort, net_adjustment,
    expected_net_adjustment, difference, tolerance (one cent per participant), holds."""
    a = payment_adjustment.filter(~payment_adjustment.is_neutral)
    per_cohort = a.group_by("cohort").agg(
        net_adjustment=exact_sum(a.adjustment_amount),
        expected_net_adjustment=exact_sum(-a.retention_rate * a.risk_level * a.part_b_paid_amount),
        participants=a.count(),
    )
    difference = per_cohort.net_adjustment - per_cohort.expected_net_adjustment
    tolerance = 0.01 * per_cohort.participants
    return per_cohort.mutate(difference=difference, tolerance=tolerance, holds=difference.abs() <= tolerance)


class PoolInvariantError(RuntimeError):
    """The §7.6 pool invariant fails for a cohort although every condition it rests on holds."""


def check_pool_invariant_conditions(*, payment_adjustment: ir.Table, rules: RulesForYear) -> ir.Table:
    """asm-model §7.6 with the conditions it rests on, per cohort: `check_pool_invariant` plus clamp_binds (some
    FS > 0 participant's unclamped AF lies outside `payment.af_clamp`), has_positive_score, pool_amount,
    unpaid_pool_amount (the pool minus what FS > 0 participants get back, (AF + RL) × PB: what a binding clamp
    leaves undistributed), scaling_factor_defined, and applies (FS = 0 participants are in the pool base,
    FS = 0 ⇒ AF = −RL, no clamp binds, SF defined and some FS > 0). Where `applies` and not `holds`, the run is
    wrong (see `enforce_pool_invariant`). Grain: cohort."""
    clamp_low, clamp_high = (float(v) for v in rules.value("payment.af_clamp"))
    zero_in_pool = bool(rules.value("payment.pool_base_includes_zero_score"))
    zero_af_is_floor = float(rules.value("payment.zero_score_af")) == -1.0
    a = payment_adjustment.filter(~payment_adjustment.is_neutral)
    positive = a.final_score > 0
    raw = unclamped_adjustment_factor(a.transformed_final_score, a.scaling_factor, PaymentRules.from_rules(rules))
    eps = 1e-12
    binds = positive & ((raw < clamp_low * a.risk_level - eps) | (raw > clamp_high * a.risk_level + eps))
    # What the FS > 0 participants get back of the pool: (AF + RL) × PB; a binding upper clamp leaves the rest unpaid.
    returned = ibis.ifelse(positive, (a.adjustment_factor + a.risk_level) * a.part_b_paid_amount, 0.0)
    conditions = a.group_by(_c_cohort=a.cohort).agg(
        payment_year=a.payment_year.max(),
        clamp_binds=ibis.ifelse(binds, 1, 0).max() == 1,
        has_positive_score=ibis.ifelse(positive, 1, 0).max() == 1,
        pool_amount=a.pool_amount.max(),
        unpaid_pool_amount=a.pool_amount.max() - exact_sum(returned),
        scaling_factor_defined=ibis.ifelse(positive & a.adjustment_factor.isnull(), 1, 0).max() == 0,
    )
    check = check_pool_invariant(payment_adjustment=payment_adjustment)
    out = check.join(conditions, check.cohort == conditions._c_cohort).drop("_c_cohort")
    return out.mutate(
        applies=ibis.literal(zero_in_pool and zero_af_is_floor) & ~out.clamp_binds & out.has_positive_score
        & out.scaling_factor_defined
    )


def enforce_pool_invariant(check_rows: list[dict]) -> list[dict]:
    """asm-model §7.6 at run time: raise PoolInvariantError naming each cohort where the invariant applies but
    Σ AF × PB differs from −retention × RL × Σ PB by more than one cent per participant. `check_rows` are the
    fetched rows of `check_pool_invariant_conditions`. Returns the rows where the invariant does not apply
    (a clamp binds, FS = 0 outside the pool base, or no FS > 0), for the run to report."""
    failures = [r for r in check_rows if r["applies"] and not r["holds"]]
    if failures:
        lines = [
            f"cohort {r['cohort']} (payment year {r['payment_year']}): Σ AF × PB = {r['net_adjustment']:,.2f} but "
            f"−retention × RL × Σ PB = {r['expected_net_adjustment']:,.2f} (difference {r['difference']:,.2f}, "
            f"tolerance {r['tolerance']:,.2f})"
            for r in failures
        ]
        raise PoolInvariantError(
            "payment adjustment breaks the asm-model §7.6 pool invariant although no clamp binds and every "
            "final score of 0 is in the pool base: " + "; ".join(lines)
        )
    return [r for r in check_rows if not r["applies"]]


def pool_invariant_notes(not_applicable: list[dict]) -> list[str]:
    """What the user must know of each cohort where the §7.6 invariant does not apply: a binding clamp and the
    pool it leaves unpaid, an undefined scaling factor, or no positive score."""
    notes = []
    for row in not_applicable:
        where = f"cohort {row['cohort']} (payment year {row['payment_year']})"
        if not row.get("scaling_factor_defined", True):
            notes.append(f"{where}: the scaling factor is undefined (no Part B behind any participant with a final "
                         "score above 0); their adjustment factors are left empty")
        if row.get("clamp_binds"):
            notes.append(f"{where}: the ±risk-level clamp binds; ${row.get('unpaid_pool_amount') or 0:,.2f} of the "
                         f"${row.get('pool_amount') or 0:,.2f} pool is not paid out (pool_invariant_check)")
        if not row.get("has_positive_score", True):
            notes.append(f"{where}: no participant has a final score above 0, so nothing is redistributed")
    return notes

"""Payment-year dollars per participant and per TIN (42 CFR 512.750(a); asm-model.md §7.5, §7.6 item (8)).

CMS multiplies what it would otherwise pay for the participant's covered professional services furnished in the
payment year (PaY = PY + 2) by 1 + AF. The change in dollars is therefore AF × (PaY covered services paid), kept
per billing TIN because the multiplier follows the NPI across all its TINs (`payment.multiplier_tin_scope`).
When the claims hold no line in the PaY, the PaY amount is estimated from the performance-year amount grown by
`payment.part_b_growth_rate` over the lag, and the row says so (`is_estimate`, `estimate_basis`).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.payment.part_b_base import claims_cover_year, compute_part_b_base_by_tin
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum

DOLLAR_COLUMNS = (
    "performance_year", "payment_year", "cohort", "npi", "billing_tin", "adjustment_factor", "multiplier",
    "payment_year_paid_amount", "payment_year_adjustment_amount", "adjusted_paid_amount", "is_estimate",
    "estimate_basis",
)
ESTIMATE_BASES = ("payment_year_claims", "performance_year_claims", "performance_year_base")


def growth_over_lag(rules: RulesForYear) -> float:
    """Factor taking a performance-year amount to the payment year: (1 + g)^(PaY − PY)."""
    growth = float(rules.value("payment.part_b_growth_rate"))
    return (1.0 + growth) ** (rules.payment_year - rules.performance_year)


def _participants(payment_adjustment: ir.Table, rules: RulesForYear) -> ir.Table:
    p = payment_adjustment
    if "performance_year" in p.columns:
        p = p.filter(p.performance_year == rules.performance_year)
    tin = p.tin.cast("string") if "tin" in p.columns else ibis.null("string")
    return p.select(
        _npi=p.npi, cohort=p.cohort, _participant_tin=tin, adjustment_factor=p.adjustment_factor,
        _pb=p.part_b_paid_amount,
    )


def _rows(t: ir.Table, billing_tin, amount, is_estimate: bool, basis: str, rules: RulesForYear) -> ir.Table:
    """One output row shape for every branch (same columns, same order, so the branches union)."""
    return t.select(
        performance_year=ibis.literal(rules.performance_year, "int32"),
        payment_year=ibis.literal(rules.payment_year, "int32"),
        cohort=t.cohort, npi=t._npi, billing_tin=billing_tin, adjustment_factor=t.adjustment_factor,
        multiplier=1.0 + t.adjustment_factor, payment_year_paid_amount=amount,
        payment_year_adjustment_amount=t.adjustment_factor * amount,
        adjusted_paid_amount=amount * (1.0 + t.adjustment_factor),
        is_estimate=ibis.literal(is_estimate), estimate_basis=ibis.literal(basis),
    )


def compute_adjustment_dollars(
    *, payment_adjustment: ir.Table, rules: RulesForYear, claim_line_status: ir.Table | None = None
) -> ir.Table:
    """§512.750(a): dollars = AF × Medicare paid on the participant's covered professional services in the
    payment year, per billing TIN.

    Input: `payment_adjustment` (from `compute_payment_adjustment`; columns npi, cohort, adjustment_factor,
    part_b_paid_amount, optional tin and performance_year), `claim_line_status` (claim lines with final-action
    status; optional). With claims covering the PaY (any final-action line dated in it), amounts come from PaY
    claims (a participant without PaY lines gets one row of $0 at its own TIN). Otherwise each TIN's
    performance-year amount (split of PB by its PY claims) is grown by (1 + `payment.part_b_growth_rate`)^lag,
    or PB itself at the participant's TIN without PY claims; these rows have is_estimate = true.
    Grain: (npi, billing_tin). Columns: DOLLAR_COLUMNS.
    """
    p = _participants(payment_adjustment, rules)
    growth = growth_over_lag(rules)
    if claim_line_status is None:
        return _rows(p, p._participant_tin, p._pb * growth, True, "performance_year_base", rules)

    participant = p.select(npi=p._npi)
    paid = compute_part_b_base_by_tin(
        claim_line_status=claim_line_status, participant=participant, rules=rules, service_year="payment_year"
    ).select(_pay_npi="npi", _pay_tin="billing_tin", _pay_amount="part_b_paid_amount")
    prior = compute_part_b_base_by_tin(
        claim_line_status=claim_line_status, participant=participant, rules=rules, service_year="performance_year"
    ).select(_py_npi="npi", _py_tin="billing_tin", _py_amount="part_b_paid_amount")
    prior = prior.mutate(_py_total=exact_sum(prior._py_amount).over(ibis.window(group_by=prior._py_npi)))
    prior = prior.filter(prior._py_total > 0)

    actual = p.join(paid, p._npi == paid._pay_npi)
    actual = _rows(actual, actual._pay_tin, actual._pay_amount, False, "payment_year_claims", rules)
    no_lines = p.anti_join(paid, p._npi == paid._pay_npi)
    no_lines = _rows(no_lines, no_lines._participant_tin, ibis.literal(0.0), False, "payment_year_claims", rules)

    split = p.join(prior, p._npi == prior._py_npi)
    share = split._py_amount / split._py_total
    split = _rows(split, split._py_tin, split._pb * share * growth, True, "performance_year_claims", rules)
    base_only = p.anti_join(prior, p._npi == prior._py_npi)
    base_only = _rows(base_only, base_only._participant_tin, base_only._pb * growth, True,
                      "performance_year_base", rules)

    cover = claims_cover_year(claim_line_status=claim_line_status, year=rules.payment_year)
    known = ibis.union(actual, no_lines).cross_join(cover)
    known = known.filter(known.has_claims_in_year).drop("has_claims_in_year")
    estimated = ibis.union(split, base_only).cross_join(cover)
    estimated = estimated.filter(~estimated.has_claims_in_year).drop("has_claims_in_year")
    return ibis.union(known, estimated)


def roll_up_dollars_by_participant(*, adjustment_dollars: ir.Table) -> ir.Table:
    """Dollars per participant NPI over all its TINs (§512.750(a)). Grain: (performance_year, payment_year,
    cohort, npi). Columns: adjustment_factor, tin_count, payment_year_paid_amount,
    payment_year_adjustment_amount, has_estimate."""
    d = adjustment_dollars
    return d.group_by("performance_year", "payment_year", "cohort", "npi").agg(
        adjustment_factor=d.adjustment_factor.max(),
        tin_count=d.billing_tin.nunique(),
        payment_year_paid_amount=exact_sum(d.payment_year_paid_amount),
        payment_year_adjustment_amount=exact_sum(d.payment_year_adjustment_amount),
        has_estimate=ibis.ifelse(d.is_estimate, 1, 0).max() == 1,
    )


def roll_up_dollars_by_tin(*, adjustment_dollars: ir.Table) -> ir.Table:
    """Dollars per billing TIN: the sum over its participants' (npi, tin) rows; participants of both cohorts
    add up here because dollars, unlike pools, are not a cohort statistic. Grain: (performance_year,
    payment_year, billing_tin). Columns: participant_count, payment_year_paid_amount,
    payment_year_adjustment_amount, effective_adjustment_rate (dollars / paid), has_estimate."""
    d = adjustment_dollars
    out = d.group_by("performance_year", "payment_year", "billing_tin").agg(
        participant_count=d.npi.nunique(),
        payment_year_paid_amount=exact_sum(d.payment_year_paid_amount),
        payment_year_adjustment_amount=exact_sum(d.payment_year_adjustment_amount),
        has_estimate=ibis.ifelse(d.is_estimate, 1, 0).max() == 1,
    )
    return out.mutate(
        effective_adjustment_rate=out.payment_year_adjustment_amount / out.payment_year_paid_amount.nullif(0.0)
    )

"""Multi-year projection of a practice's payment adjustments, PY2027–PY2031 → PaY 2029–2033 (42 CFR
512.710(a)(1) lock-in, 512.750(c); asm-model.md §1.1, §7).

A participant, once selected, stays in the model for every remaining performance year (lock-in), and the risk
level rises with the payment year (`payment.risk_level`, looked up at PaY = PY + 2). For each performance year and
each scenario of `payment.projection_scenarios` (worst: final score 0; expected: the practice's own estimate,
moved by `payment.projection_score_trend` per year; best: the top of the scale), the subject is scored against
its cohort's distribution of final scores with the same functions as a real run (`compute_payment_adjustment`),
so the cohort median, pool, scaling factor and clamp all apply. Each subject is placed in its own copy of the
cohort ("world"): subjects never influence one another and cohorts are never mixed. Dollars are AF × the
payment-year covered professional services, grown from the subject's base year by `payment.part_b_growth_rate`;
every projected dollar is an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import NormalDist

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.payment.adjustment import compute_payment_adjustment
from openasm.rules import RulesForYear, load_rules
from openasm.schema.sums import exact_sum

SUBJECT_COLUMNS = ("subject_level", "subject_id", "tin", "cohort", "final_score", "part_b_paid_amount", "base_year")
PEER_COLUMNS = ("cohort", "npi", "final_score", "part_b_paid_amount")
PROJECTION_COLUMNS = (
    "subject_level", "subject_id", "tin", "cohort", "scenario", "performance_year", "payment_year", "final_score",
    "risk_level", "exchange_midpoint", "transformed_final_score", "scaling_factor", "adjustment_factor",
    "multiplier", "part_b_paid_amount", "payment_year_paid_amount", "payment_year_adjustment_amount",
    "is_estimate", "base_year",
)
SUBJECT_LEVELS = ("npi", "tin")


def projection_rules(
    performance_years: Iterable[int] | None = None, overrides: Mapping | None = None
) -> dict[int, RulesForYear]:
    """Rules for each projected performance year (default `model.performance_years`), with the same overrides
    in every year. A helper for the runners; stages get the mapping passed in."""
    years = list(performance_years) if performance_years is not None else None
    if years is None:
        years = [int(y) for y in load_rules(2027).value("model.performance_years")]
    return {year: load_rules(year, overrides) for year in years}


def synthetic_cohort(*, rules: RulesForYear) -> ir.Table:
    """`payment.projection_synthetic_cohort`: per cohort, a share of final scores of 0 and the rest at evenly
    spaced quantiles of a normal distribution, clipped to `final_score_range`; equal Part B amounts.
    Deterministic. Grain: (cohort, npi). Columns: PEER_COLUMNS, is_neutral."""
    spec = rules.value("payment.projection_synthetic_cohort")
    low, high = (float(v) for v in rules.value("payment.projection_scenarios")["final_score_range"])
    rows: dict[str, list] = {"cohort": [], "npi": [], "final_score": [], "part_b_paid_amount": []}
    for cohort, shape in sorted(spec.items()):
        size = int(shape["participants"])
        zeros = round(size * float(shape["zero_score_share"]))
        positive = size - zeros
        curve = NormalDist(float(shape["final_score_mean"]), float(shape["final_score_sd"]))
        scores = [0.0] * zeros + [
            min(max(curve.inv_cdf((i + 0.5) / positive), low), high) for i in range(positive)
        ]
        for i, score in enumerate(scores):
            rows["cohort"].append(cohort)
            rows["npi"].append(f"synthetic-{cohort}-{i:05d}")
            rows["final_score"].append(score)
            rows["part_b_paid_amount"].append(float(shape["part_b_paid_amount"]))
    table = pa.table(rows).append_column("is_neutral", pa.array([False] * len(rows["npi"])))
    return ibis.memtable(table)


def _scenario_table(rules: RulesForYear) -> ir.Table:
    scenarios = rules.value("payment.projection_scenarios")["scenarios"]
    for s in scenarios:
        if s["final_score_basis"] not in ("fixed", "estimate"):
            raise ValueError(f"payment.projection_scenarios: scenario {s['scenario']!r} has final_score_basis "
                             f"{s['final_score_basis']!r}; expected fixed or estimate")
        if s["final_score_basis"] == "fixed" and s.get("final_score") is None:
            raise ValueError(f"payment.projection_scenarios: fixed scenario {s['scenario']!r} needs a final_score")
    return ibis.memtable(pa.table({
        "scenario": [str(s["scenario"]) for s in scenarios],
        "_uses_estimate": [s["final_score_basis"] == "estimate" for s in scenarios],
        "_fixed_score": [float(s["final_score"] or 0.0) for s in scenarios],
    }))


def _peers(cohort_scores: ir.Table) -> ir.Table:
    missing = [c for c in PEER_COLUMNS if c not in cohort_scores.columns]
    if missing:
        raise ValueError(f"cohort_scores lacks column(s) {', '.join(missing)}; needs {', '.join(PEER_COLUMNS)}")
    neutral = cohort_scores.is_neutral if "is_neutral" in cohort_scores.columns else ibis.literal(False)
    c = cohort_scores
    return c.select(_peer_cohort=c.cohort, _peer_npi=c.npi.cast("string"),
                    _peer_score=c.final_score.cast("float64"),
                    _peer_pb=c.part_b_paid_amount.cast("float64"), _peer_neutral=neutral)


def _project_year(subject: ir.Table, peers: ir.Table, rules: RulesForYear, score_shift: float) -> ir.Table:
    """One performance year: every (subject, scenario) world scored with `compute_payment_adjustment`."""
    low, high = (float(v) for v in rules.value("payment.projection_scenarios")["final_score_range"])
    growth = 1.0 + float(rules.value("payment.part_b_growth_rate"))
    s = subject.cross_join(_scenario_table(rules))
    estimate = ibis.greatest(ibis.least(s.final_score + score_shift, high), low)
    s = s.mutate(
        _score=ibis.ifelse(s._uses_estimate, estimate, s._fixed_score),
        _world=s.scenario.concat("|", s.subject_level, "|", s.subject_id),
    )
    keep = dict(_subject_level=s.subject_level, _subject_id=s.subject_id, _tin=s.tin, _cohort=s.cohort,
                _scenario=s.scenario, _base_year=s.base_year, _subject_pb=s.part_b_paid_amount)
    subject_rows = s.select(
        cohort=s._world, npi=s.subject_id, final_score=s._score, part_b_paid_amount=s.part_b_paid_amount,
        is_neutral=ibis.literal(False), _is_subject=ibis.literal(True), **keep,
    )
    # The subject's own row replaces it in the cohort when it is a participant NPI already listed there.
    joined = s.join(peers, [s.cohort == peers._peer_cohort,
                            ~((s.subject_level == "npi") & (s.subject_id == peers._peer_npi))])
    peer_rows = joined.select(
        cohort=joined._world, npi=joined._peer_npi, final_score=joined._peer_score,
        part_b_paid_amount=joined._peer_pb, is_neutral=joined._peer_neutral, _is_subject=ibis.literal(False),
        **{name: ibis.null(expr.type()) for name, expr in keep.items()},
    )
    scored = compute_payment_adjustment(participant_score=ibis.union(subject_rows, peer_rows), rules=rules)
    mine = scored.filter(scored._is_subject)
    py_factor = ibis.literal(growth) ** (ibis.literal(rules.performance_year) - mine._base_year).cast("float64")
    pay_factor = ibis.literal(growth) ** (ibis.literal(rules.payment_year) - mine._base_year).cast("float64")
    pay_amount = mine._subject_pb * pay_factor
    return mine.select(
        subject_level=mine._subject_level, subject_id=mine._subject_id, tin=mine._tin, cohort=mine._cohort,
        scenario=mine._scenario, performance_year=ibis.literal(rules.performance_year, "int32"),
        payment_year=mine.payment_year, final_score=mine.final_score, risk_level=mine.risk_level,
        exchange_midpoint=mine.exchange_midpoint, transformed_final_score=mine.transformed_final_score,
        scaling_factor=mine.scaling_factor, adjustment_factor=mine.adjustment_factor,
        multiplier=mine.multiplier, part_b_paid_amount=mine._subject_pb * py_factor,
        payment_year_paid_amount=pay_amount, payment_year_adjustment_amount=mine.adjustment_factor * pay_amount,
        is_estimate=ibis.literal(True), base_year=mine._base_year.cast("int32"),
    )


def project_adjustments(
    *, subject: ir.Table, rules_by_year: Mapping[int, RulesForYear], cohort_scores: ir.Table | None = None
) -> ir.Table:
    """§512.710(a)(1), §512.750(c): worst / expected / best payment adjustments and dollars for each subject in
    every performance year of `rules_by_year` (each year's own rules: RL of PaY = PY + 2, retention, scenarios,
    growth). The expected final score moves by the running sum of `payment.projection_score_trend` over the
    years after the first.

    Input: `subject` (SUBJECT_COLUMNS: subject_level npi | tin — a TIN is scored as one unit —, subject_id, tin,
    cohort, final_score estimate, part_b_paid_amount in base_year, base_year), `cohort_scores` (PEER_COLUMNS,
    optional is_neutral: the cohort's distribution of final scores; default `synthetic_cohort` of the first
    year). Grain: (subject_level, subject_id, scenario, performance_year). Columns: PROJECTION_COLUMNS, where
    base_year is the subject's (the performance year whose score and Part B the projection starts from).
    """
    missing = [c for c in SUBJECT_COLUMNS if c not in subject.columns]
    if missing:
        raise ValueError(f"subject lacks column(s) {', '.join(missing)}; needs {', '.join(SUBJECT_COLUMNS)}")
    if not rules_by_year:
        raise ValueError("rules_by_year is empty: pass the rules of each performance year to project")
    years = sorted(rules_by_year)
    for year in years:
        if rules_by_year[year].performance_year != year:
            raise ValueError(f"rules_by_year[{year}] holds the rules of performance year "
                             f"{rules_by_year[year].performance_year}")
    subj = subject.select(
        subject_level=subject.subject_level.cast("string"), subject_id=subject.subject_id.cast("string"),
        tin=subject.tin.cast("string"), cohort=subject.cohort.cast("string"),
        final_score=subject.final_score.cast("float64"),
        part_b_paid_amount=subject.part_b_paid_amount.cast("float64"), base_year=subject.base_year.cast("int64"),
    )
    peers = _peers(cohort_scores if cohort_scores is not None else synthetic_cohort(rules=rules_by_year[years[0]]))
    parts, shift = [], 0.0
    for position, year in enumerate(years):
        if position:  # the trend accumulates from the first projected year on
            shift += float(rules_by_year[year].value("payment.projection_score_trend"))
        parts.append(_project_year(subj, peers, rules_by_year[year], shift))
    return ibis.union(*parts)


def projection_of_year(rows: Iterable[Mapping], performance_year: int) -> list[Mapping]:
    """The `payment_projection` rows projected from `performance_year`'s scores: a run folder scored for several
    years holds one projection per base_year (a row written before base_year existed counts as the year's)."""
    return [r for r in rows if r.get("base_year", performance_year) == performance_year]


def roll_up_projection_by_tin(*, projection: ir.Table) -> ir.Table:
    """Per TIN, the sum of its participant NPIs' projected amounts and dollars for each (performance year,
    scenario); the adjustment factor shown is the dollar-weighted one (dollars / payment-year paid). Cohorts
    stay separate in every pool; only dollars add up here. Grain: (tin, scenario, performance_year).
    Columns: PROJECTION_COLUMNS (subject_level = tin; score, TFS and scaling factor null)."""
    p = projection.filter(projection.subject_level == "npi")
    out = p.group_by("tin", "scenario", "performance_year", "payment_year", "base_year").agg(
        _cohorts=p.cohort.nunique(), _cohort=p.cohort.max(), risk_level=p.risk_level.max(),
        part_b_paid_amount=exact_sum(p.part_b_paid_amount),
        payment_year_paid_amount=exact_sum(p.payment_year_paid_amount),
        payment_year_adjustment_amount=exact_sum(p.payment_year_adjustment_amount),
    )
    factor = out.payment_year_adjustment_amount / out.payment_year_paid_amount.nullif(0.0)
    return out.select(
        subject_level=ibis.literal("tin"), subject_id=out.tin, tin=out.tin,
        cohort=ibis.ifelse(out._cohorts == 1, out._cohort, "multiple"), scenario=out.scenario,
        performance_year=out.performance_year, payment_year=out.payment_year,
        final_score=ibis.null("float64"), risk_level=out.risk_level, exchange_midpoint=ibis.null("float64"),
        transformed_final_score=ibis.null("float64"), scaling_factor=ibis.null("float64"),
        adjustment_factor=factor, multiplier=1.0 + factor, part_b_paid_amount=out.part_b_paid_amount,
        payment_year_paid_amount=out.payment_year_paid_amount,
        payment_year_adjustment_amount=out.payment_year_adjustment_amount, is_estimate=ibis.literal(True),
        base_year=out.base_year,
    )

"""The chain from measures to dollars for one participant (42 CFR 512.725–512.750; asm-model.md §3–§7, §9).

`explain_participant` takes the finished rows of one NPI and the rules of the performance year and returns an
`Explanation`: an ordered list of steps (quality measures → quality category; cost measure → cost category;
IA/PI deductions; bonuses; final score; cohort median; TFS; risk level; pool; scaling factor; AF; multiplier;
dollars). Each step carries its value, the formula with the numbers filled in, every rules parameter it uses
(value, evidence, citations), and two flags: `own_non_reg` (one of its own parameters is not regulation text:
evidence `secondary`, `default`, or a user override) and `rests_on_non_reg` (that, or any step it depends on).
Pure: no I/O; values are read from the tables, not recomputed, and where a value can be recomputed from its
inputs a mismatch is reported in the step's `check`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from openasm.explain.formatting import check_recomputed, fmt, minus_points, num, pct, rows_for, rows_of, usd
from openasm.rules import RulesForYear
from openasm.rules.resolve import format_value

REG = "reg"
QUALITY_MEASURE_PARAMS = (
    "quality.measures", "quality.benchmark_population", "quality.benchmark_min_reporters",
    "quality.data_completeness_threshold", "quality.case_minimum", "quality.missing_measure_policy",
    "quality.below_case_minimum_policy", "quality.topped_out_cap_points",
)
COST_MEASURE_PARAMS = (
    "cost.measures", "cost.case_minimum", "cost.benchmark_population", "cost.points_method", "cost.band_table",
    "cost.points_interpolation", "cost.score_formula",
)


class ExplainError(ValueError):
    """The rows needed to explain a participant are missing or ambiguous."""


@dataclass(frozen=True)
class ParameterUse:
    """One rules value a step rests on."""

    name: str
    value: str
    unit: str
    evidence: str  # reg | secondary | default | override
    citations: tuple[str, ...]
    lookup_year: int

    @property
    def is_non_reg(self) -> bool:
        return self.evidence != REG


@dataclass(frozen=True)
class Step:
    """One number of the chain."""

    key: str
    label: str
    value: float | None
    display: str
    formula: str
    parameters: tuple[ParameterUse, ...] = ()
    depends_on: tuple[str, ...] = ()
    note: str = ""
    check: str = ""
    own_non_reg: bool = False
    rests_on_non_reg: bool = False


@dataclass(frozen=True)
class Explanation:
    npi: str
    performance_year: int
    payment_year: int
    cohort: str
    tin: str | None
    steps: tuple[Step, ...]

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def parameters(self) -> list[ParameterUse]:
        """Every parameter used by some step, once, by name."""
        seen: dict[str, ParameterUse] = {}
        for s in self.steps:
            for p in s.parameters:
                seen.setdefault(p.name, p)
        return [seen[name] for name in sorted(seen)]

    def flagged_steps(self) -> list[Step]:
        return [s for s in self.steps if s.rests_on_non_reg]


# ----------------------------------------------------------------------------------------------- helpers
def _param(rules: RulesForYear, name: str) -> ParameterUse:
    rules.value(name)  # recorded as used, like any stage read
    r = rules.resolved(name)
    return ParameterUse(name=name, value=format_value(r.value), unit=r.unit,
                        evidence="override" if r.overridden else r.evidence, citations=r.citations,
                        lookup_year=r.lookup_year)


class _Chain:
    """Collects steps and propagates the non-regulation flag along dependencies."""

    def __init__(self, rules: RulesForYear) -> None:
        self.rules = rules
        self.steps: list[Step] = []

    def add(self, key: str, label: str, value: float | None, display: str, formula: str,
            params: Iterable[str] = (), depends_on: Iterable[str] = (), note: str = "", check: str = "") -> str:
        uses = tuple(_param(self.rules, name) for name in params)
        deps = tuple(depends_on)
        own = any(p.is_non_reg for p in uses)
        inherited = any(s.rests_on_non_reg for s in self.steps if s.key in deps)
        self.steps.append(Step(key, label, value, display, formula, uses, deps, note, check, own, own or inherited))
        return key


# ----------------------------------------------------------------------------------------------- chain
def explain_participant(
    *, npi: str, rules: RulesForYear, participant_score, quality_measure_score=None, quality_category_score=None,
    measure_score=None, payment_adjustment=None, adjustment_dollars=None, pool_invariant_check=None,
) -> Explanation:
    """§512.725–§512.750: the explanation of one NPI's final score, adjustment factor and dollars for
    `rules.performance_year`. Tables may hold other NPIs and years; only this NPI's rows are read."""
    npi = str(npi)
    py = rules.performance_year
    score_rows = rows_for(rows_of(participant_score), npi, py)
    if not score_rows:
        raise ExplainError(f"NPI {npi} has no participant_score row for performance year {py}")
    if len(score_rows) > 1:
        raise ExplainError(f"NPI {npi} has {len(score_rows)} participant_score rows for performance year {py}; "
                           "expected one (one cohort per NPI per PY, §512.750(b))")
    ps = score_rows[0]
    chain = _Chain(rules)
    quality = _quality_steps(chain, npi, py, ps, rows_of(quality_measure_score), rows_of(quality_category_score))
    cost = _cost_steps(chain, npi, ps, rows_of(measure_score))
    final = _final_score_steps(chain, ps, quality, cost)
    pay_rows = [r for r in rows_of(payment_adjustment) if str(r.get("npi")) == npi
                and r.get("payment_year", rules.payment_year) == rules.payment_year]
    if payment_adjustment is not None and not pay_rows:
        raise ExplainError(f"NPI {npi} has no payment_adjustment row for payment year {rules.payment_year}")
    if pay_rows:
        pool_rows = [r for r in rows_of(pool_invariant_check) if r.get("cohort") == pay_rows[0].get("cohort")
                     and r.get("payment_year", rules.payment_year) == rules.payment_year]
        _payment_steps(chain, npi, pay_rows[0], final, rows_of(adjustment_dollars), pool_rows[0] if pool_rows else {})
    return Explanation(npi=npi, performance_year=py, payment_year=rules.payment_year, cohort=str(ps.get("cohort")),
                       tin=ps.get("tin"), steps=tuple(chain.steps))


def _quality_steps(chain: _Chain, npi: str, py: int, ps: dict, measures: list[dict], categories: list[dict]) -> str:
    threshold = chain.rules.value("quality.data_completeness_threshold")
    minimum = chain.rules.value("quality.case_minimum")
    keys = []
    for m in sorted(rows_for(measures, npi, py), key=lambda r: (str(r.get("measure_id")), str(r.get("collection_type")))):
        points = num(m.get("achievement_points"))
        counted = bool(m.get("is_counted"))
        key = f"quality_measure:{m.get('measure_id')}:{m.get('collection_type')}"
        formula = (f"rate {fmt(num(m.get('performance_rate')), 4)} in decile {m.get('decile')} of the "
                   f"{m.get('benchmark_source')} benchmark: d + (rate − L) / (U − L), reversed for inverse "
                   f"measures; 0 if not reported or data completeness < {threshold}; left out below {minimum} "
                   "cases or without a benchmark")
        note = (f"status {m.get('status')}; completeness {fmt(num(m.get('data_completeness')), 3)}; "
                f"{m.get('case_count')} cases; {'counted' if counted else 'not counted'}"
                + ("; not the collection type that counts" if m.get("is_winner") is False else ""))
        keys.append(chain.add(key, f"Quality {m.get('measure_id')} ({m.get('collection_type')})", points,
                              f"{fmt(points)} points", formula, QUALITY_MEASURE_PARAMS, note=note))
    cat = rows_for(categories, npi, py)
    source = cat[0] if cat else ps
    pct = num(ps.get("quality_score_pct"))
    earned = num(source.get("points_earned", source.get("quality_points_earned")))
    available = num(source.get("points_available", source.get("quality_points_available")))
    recomputed = None if not available else min(100.0, 100.0 * (earned or 0.0) / available)
    formula = f"min(100, Σ points / (10 × counted measures) × 100) = {fmt(earned)} / {fmt(available)} × 100"
    submitted = ps.get("min_submission_met", source.get("min_submission_met", True))
    note = "" if submitted else "no valid quality submission: final score 0 (asm-model §3.2 item 7)"
    if ps.get("quality_status") not in (None, "scored"):
        note = f"quality status {ps.get('quality_status')}" + (f"; {note}" if note else "")
    return chain.add("quality_category", "Quality category score", pct, f"{fmt(pct, 1)} / 100", formula,
                     ("quality.measures",), keys, note=note,
                     check=check_recomputed("quality score", recomputed, pct, 1e-6) if submitted else "")


def _cost_row(npi: str, ps: dict, measure_rows: list[dict]) -> dict | None:
    """The measure_score row the cost category used: TIN level (`cost_entity_level` = tin) or TIN/NPI."""
    level = ps.get("cost_entity_level") or "tin_npi"
    measure = ps.get("cost_measure_id")
    rows = [r for r in measure_rows if r.get("entity_level", "tin_npi") == level
            and (measure is None or r.get("measure_id") == measure)
            and (level == "tin" or str(r.get("rendering_npi")) == npi)]
    same_tin = [r for r in rows if r.get("billing_tin") == ps.get("tin")]
    if level == "tin":
        return same_tin[0] if same_tin else None
    return (same_tin or rows or [None])[0]


def _cost_steps(chain: _Chain, npi: str, ps: dict, measure_rows: list[dict]) -> str:
    m = _cost_row(npi, ps, measure_rows)
    deps = []
    points = None
    if m is not None:
        points = num(m.get("achievement_points"))
        formula = (f"{m.get('n_episodes')} episodes at {m.get('entity_level')} level, score "
                   f"{usd(num(m.get('score_amount')))} (observed {usd(num(m.get('mean_observed_cost')))} / "
                   f"expected {usd(num(m.get('mean_expected_cost')))}) placed on the cohort band table; lower "
                   "cost earns more points")
        note = "" if m.get("meets_case_minimum") else "below the case minimum: not scored"
        params = COST_MEASURE_PARAMS + (("scoring.cost_entity_level",) if "scoring.cost_entity_level"
                                        in chain.rules.values else ())
        deps.append(chain.add(f"cost_measure:{m.get('measure_id')}", f"Cost {m.get('measure_id')}", points,
                              f"{fmt(points)} points", formula, params, note=note))
    pct = num(ps.get("cost_score_pct"))
    recomputed = None if points is None or not m.get("meets_case_minimum") else points * 10.0
    status = ps.get("cost_status")
    note = "" if m is not None else "no cost measure row for this NPI"
    if status not in (None, "scored"):
        note = f"cost status {status}" + (f"; {note}" if note else "")
    return chain.add("cost_category", "Cost category score", pct, f"{fmt(pct, 1)} / 100",
                     "points × 10 (one cost measure per cohort)", ("cost.measures",), deps, note=note,
                     check=check_recomputed("cost score", recomputed, pct, 1e-6))


def _final_score_steps(chain: _Chain, ps: dict, quality: str, cost: str) -> str:
    ia, pi, bonus = (num(ps.get(c)) or 0.0 for c in ("ia_deduction_points", "pi_deduction_points", "bonus_points"))
    unmet = ps.get("ia_unmet_activities")
    chain.add("ia_deduction", "Improvement activities deduction", ia, minus_points(ia),
              "10 points per unmet required activity (IA-1, IA-2), at most 20",
              ("ia_pi.ia_deduction_per_unmet_activity", "ia_pi.ia_deduction_max", "ia_pi.ia_min_period_days"),
              note="" if unmet is None else f"unmet activities: {unmet}")
    unmet = ps.get("pi_unmet_objectives")
    chain.add("pi_deduction", "Promoting interoperability deduction", pi, minus_points(pi),
              "PI requirements not met → deduction", ("ia_pi.pi_deduction", "ia_pi.pi_min_period_days",
                                                     "ia_pi.pi_special_status_reweighting"),
              note="" if unmet is None else f"unmet objectives: {unmet}")
    wq, wc = num(ps.get("quality_weight_used")), num(ps.get("cost_weight_used"))
    q, c = num(ps.get("quality_score_pct")), num(ps.get("cost_score_pct"))
    raw = num(ps.get("raw_score"))
    recomputed = None
    if wq is not None and wc is not None and not ps.get("is_neutral"):
        recomputed = wq * (q or 0.0) + wc * (c or 0.0) - ia - pi
    formula = (f"w_Q × Q + w_C × C − D_IA − D_PI = {fmt(wq)} × {fmt(q)} + {fmt(wc)} × {fmt(c)} "
               f"− {fmt(ia, 0)} − {fmt(pi, 0)}")
    basis = ps.get("weight_basis")
    chain.add("raw_score", "Raw final score", raw, fmt(raw), formula,
              ("quality.weight", "cost.weight", "scoring.reweight_policy"),
              (quality, cost, "ia_deduction", "pi_deduction"), note="" if basis is None else f"weights: {basis}",
              check=check_recomputed("raw score", recomputed, raw, 1e-6))
    bonus_params = ("scoring.small_practice_score_bonus", "scoring.solo_practice_score_bonus",
                    "scoring.practice_size_bonus_mode")
    if "scoring.complex_patient_bonus_max" in chain.rules.values:
        bonus_params += ("scoring.complex_patient_bonus_max",)
    chain.add("bonus", "Bonuses (complex patients, practice size)", bonus, f"+{fmt(bonus)} points",
              "complex-patient points + practice-size factor × (raw + complex-patient points)", bonus_params,
              ("raw_score",))
    fs = num(ps.get("final_score"))
    zero_reason = ps.get("zero_score_reason")
    if ps.get("is_neutral"):
        note, recomputed = f"neutral ({ps.get('neutral_reason')}): adjustment 0, outside pool and scaling", None
    elif zero_reason or not ps.get("min_submission_met", True):
        note, recomputed = f"final score 0: {zero_reason or 'no valid quality submission'}", 0.0
    else:
        note = ""
        recomputed = None if raw is None else min(max(raw + bonus, 0.0), 100.0)
    return chain.add("final_score", "Final score", fs, fmt(fs), "clamp(raw + bonuses, 0, 100); ≤ 0 → 0",
                     ("scoring.zero_score_if_raw_nonpositive",), ("raw_score", "bonus"), note=note,
                     check=check_recomputed("final score", recomputed, fs, 1e-6))


def _clamp_note(raw: float, clamped: float, digits: int, pool_row: dict) -> str:
    """When the ±RL clamp binds for this participant: its unclamped AF and what the cohort leaves unpaid."""
    if abs(raw - clamped) <= 1e-12:
        return ""
    unpaid = num(pool_row.get("unpaid_pool_amount"))
    return (f"the clamp binds: unclamped AF {pct(raw, digits)}"
            + (f"; the cohort's pool leaves {usd(unpaid)} unpaid" if unpaid is not None else ""))


def _payment_steps(chain: _Chain, npi: str, pa_row: dict, final: str, dollar_rows: list[dict],
                   pool_row: dict) -> None:
    rules = chain.rules
    digits = int(rules.value("payment.af_display_decimals"))
    fs, pb = num(pa_row.get("final_score")), num(pa_row.get("part_b_paid_amount"))
    rl, ret = num(pa_row.get("risk_level")), num(pa_row.get("retention_rate"))
    m, tfs = num(pa_row.get("exchange_midpoint")), num(pa_row.get("transformed_final_score"))
    pool, sf = num(pa_row.get("pool_amount")), num(pa_row.get("scaling_factor"))
    af = num(pa_row.get("adjustment_factor"))
    neutral, positive = bool(pa_row.get("is_neutral")), (fs or 0.0) > 0 and not pa_row.get("is_neutral")
    chain.add("part_b_base", "Part B covered professional services paid in the PY (PB)", pb, usd(pb),
              "Σ Medicare paid on final-action carrier lines the NPI rendered in the PY (all TINs), outside "
              "non-PFS HCPCS ranges, processed within the run-out",
              ("payment.adjusted_claims_scope", "payment.covered_services_claim_types",
               "payment.non_pfs_hcpcs_ranges", "payment.claims_runout_days", "payment.multiplier_tin_scope"))
    rule = rules.value("payment.exchange_midpoint_rule")
    chain.add("cohort_median", "Cohort midpoint m", m, fmt(m, 4),
              f"median of final scores > 0 in cohort {pa_row.get('cohort')}" if rule == "cohort_median_positive"
              else "fixed midpoint 50", ("payment.exchange_midpoint_rule",))
    low, high = (float(v) for v in rules.value("payment.exchange_range"))
    k = float(rules.value("payment.exchange_slope_k"))
    recomputed = None
    if positive and m is not None:
        recomputed = low + (high - low) / (1.0 + math.exp(-k * (fs - m)))
    chain.add("transformed_final_score", "Transformed final score (TFS)", tfs, fmt(tfs, 6),
              f"{low:g} + ({high:g} − {low:g}) / (1 + exp(−{k:g} × ({fmt(fs)} − {fmt(m, 4)})))" if positive
              else "not applicable: final score 0 or neutral",
              ("payment.exchange_function", "payment.exchange_slope_k", "payment.exchange_range"),
              (final, "cohort_median"), check=check_recomputed("TFS", recomputed, tfs, 1e-9))
    chain.add("risk_level", f"Risk level RL (payment year {rules.payment_year})", rl,
              pct(rl, digits, signed=False),
              f"risk level of payment year {rules.payment_year} = PY {rules.performance_year} + lag",
              ("payment.risk_level", "model.payment_year_lag"))
    base = None if not pool or not rl or ret is None else pool / ((1.0 - ret) * rl)
    chain.add("pool", "Cohort incentive pool", pool, usd(pool),
              f"(1 − {ret}) × RL {rl} × Σ PB of cohort {usd(base)}",
              ("payment.retention_rate", "payment.pool_base_includes_zero_score"), ("risk_level", "part_b_base"))
    chain.add("scaling_factor", "Scaling factor SF", sf, fmt(sf, 6),
              "pool / Σ over FS > 0 of RL × TFS × PB (cohort)", (), ("pool", "transformed_final_score"))
    clamp = rules.value("payment.af_clamp")
    zero = float(rules.value("payment.zero_score_af"))
    note = ""
    if neutral:
        formula, recomputed = "neutral participant: AF = 0", 0.0
    elif positive and tfs is not None and sf is not None and rl is not None:
        raw = rl * tfs * sf - rl
        recomputed = min(max(raw, float(clamp[0]) * rl), float(clamp[1]) * rl)
        formula = (f"RL × TFS × SF − RL = {rl} × {fmt(tfs, 6)} × {fmt(sf, 6)} − {rl} = {pct(raw, digits)}, "
                   f"clamped to [{clamp[0]}·RL, {clamp[1]}·RL]")
        note = _clamp_note(raw, recomputed, digits, pool_row)
    elif positive:
        formula, recomputed = "scaling factor undefined (no Part B behind any FS > 0 participant): AF unknown", None
    else:
        recomputed = None if rl is None else zero * rl
        formula = f"final score 0: AF = {zero:g} × RL"
    chain.add("adjustment_factor", "Payment adjustment factor AF", af, pct(af, digits), formula,
              ("payment.af_clamp", "payment.zero_score_af"),
              ("risk_level", "scaling_factor", "transformed_final_score", final), note=note,
              check=check_recomputed("AF", recomputed, af, 1e-9))
    mult = num(pa_row.get("multiplier"))
    chain.add("multiplier", f"Multiplier for payment year {rules.payment_year}", mult, fmt(mult, digits),
              "1 + AF", (), ("adjustment_factor",),
              check=check_recomputed("multiplier", None if af is None else 1.0 + af, mult, 1e-12))
    py_dollars = num(pa_row.get("adjustment_amount"))
    chain.add("performance_year_dollars", "AF × PB (performance-year dollars, the pool's terms)", py_dollars,
              usd(py_dollars), f"{pct(af, digits)} × {usd(pb)}", (), ("adjustment_factor", "part_b_base"),
              check=check_recomputed("AF × PB", None if af is None or pb is None else af * pb, py_dollars, 0.005))
    _dollar_step(chain, npi, af, pb, digits, dollar_rows)


def _dollar_step(chain: _Chain, npi: str, af: float | None, pb: float | None, digits: int, rows: list[dict]) -> None:
    rules = chain.rules
    mine = [r for r in rows if str(r.get("npi")) == npi and r.get("payment_year") == rules.payment_year]
    if mine:
        total = sum(num(r.get("payment_year_adjustment_amount")) or 0.0 for r in mine)
        estimate = any(r.get("is_estimate") for r in mine)
        parts = "; ".join(f"TIN {r.get('billing_tin')}: {pct(af, digits)} × "
                          f"{usd(num(r.get('payment_year_paid_amount')))}"
                          f" = {usd(num(r.get('payment_year_adjustment_amount')))}"
                          + (f" (estimate: {r.get('estimate_basis')})" if r.get("is_estimate") else "")
                          for r in sorted(mine, key=lambda r: str(r.get("billing_tin"))))
        params = ("payment.multiplier_tin_scope", "payment.part_b_growth_rate") if estimate else (
            "payment.multiplier_tin_scope",)
    else:
        growth = float(rules.value("payment.part_b_growth_rate"))
        lag = rules.payment_year - rules.performance_year
        total = None if af is None or pb is None else af * pb * (1.0 + growth) ** lag
        estimate = True
        parts = f"estimate: AF × PB × (1 + {growth:g})^{lag} (no adjustment_dollars rows)"
        params = ("payment.multiplier_tin_scope", "payment.part_b_growth_rate")
    label = f"Dollars in payment year {rules.payment_year}" + (" (estimate)" if estimate else "")
    chain.add("payment_year_dollars", label, total, usd(total),
              "AF × covered professional services paid in the payment year: " + parts, params,
              ("adjustment_factor", "part_b_base") if estimate else ("adjustment_factor",),
              note="is_estimate" if estimate else "")

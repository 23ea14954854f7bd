"""Monte Carlo over unknown peers (issue 13 item 2; 42 CFR 512.750(b)-(c), asm-model.md §7).

Each draw builds a full peer cohort (`priors.draw_peers`), places the practice in it with its own measures
redrawn for sampling uncertainty (`decide.own_rate_uncertainty`, `decide.own_cost_ratio_cv`) and scored by
`evaluate.score_subject`, and pays the cohort with `cohort.score_cohorts` (the engine's payment formulas): the
cohort median, pool, scaling factor and the practice's AF and dollars. Draws run in fixed chunks, each with its own
random stream spawned from the seed, so a seed gives the same result on any number of threads.

`peers="run"` fixes the peer draw to the run's own cohort and turns the own-measure uncertainty off: every draw
then reproduces the run's deterministic payment result.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from openasm.decide.cohort import score_cohorts
from openasm.decide.evaluate import evaluate, score_subject
from openasm.decide.levers import measure_label
from openasm.decide.priors import draw_peers, peer_priors
from openasm.decide.whatif import Decision
from openasm.payment.exchange import PaymentRules

CHUNK = 250
PERCENTILES = (5, 25, 50, 75, 95)
BATCHES = 20


@dataclass
class Simulation:
    """Per-draw results and their summary."""

    draws: int
    seed: int
    peers: str
    dollars: np.ndarray  # (draws,) total payment-year dollars of the subject
    adjustment_factor: np.ndarray  # (draws,) dollar-weighted AF of the subject
    final_score: np.ndarray  # (draws,) mean final score of the subject NPIs
    midpoint: np.ndarray  # (draws,) cohort median
    pool: np.ndarray  # (draws,) incentive pool of the practice's cohort
    scaling_factor: np.ndarray  # (draws,)
    seconds: float
    levers: list[dict] = field(default_factory=list)

    def percentiles(self, values: np.ndarray) -> dict[str, float]:
        return {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}

    def standard_error_p50(self) -> float:
        """Monte Carlo standard error of the P50 of dollars: the spread of the P50 over BATCHES equal batches."""
        batches = np.array_split(self.dollars, BATCHES)
        medians = [np.percentile(b, 50) for b in batches if b.size]
        return float(np.std(medians, ddof=1) / np.sqrt(len(medians))) if len(medians) > 1 else float("nan")

    def convergence(self) -> list[dict]:
        """The running P50 of dollars and its standard error as draws accumulate (the convergence figure)."""
        out, n = [], 100
        while n < self.draws:
            out.append({"draws": n, "p50_dollars": float(np.percentile(self.dollars[:n], 50)),
                        "mean_dollars": float(self.dollars[:n].mean())})
            n *= 2
        out.append({"draws": self.draws, "p50_dollars": float(np.percentile(self.dollars, 50)),
                    "mean_dollars": float(self.dollars.mean())})
        return out

    def summary(self) -> dict:
        return {
            "draws": self.draws, "seed": self.seed, "peers": self.peers, "seconds": self.seconds,
            "draws_per_second": self.draws / self.seconds if self.seconds else float("inf"),
            "dollars": self.percentiles(self.dollars), "adjustment_factor": self.percentiles(self.adjustment_factor),
            "final_score": self.percentiles(self.final_score), "cohort_median": self.percentiles(self.midpoint),
            "pool": self.percentiles(self.pool), "scaling_factor": self.percentiles(self.scaling_factor),
            "probability_af_negative": float(np.mean(self.adjustment_factor < 0)),
            "mean_dollars": float(self.dollars.mean()),
            "standard_error_mean_dollars": float(self.dollars.std(ddof=1) / np.sqrt(self.draws)) if self.draws > 1
            else float("nan"),
            "standard_error_p50_dollars": self.standard_error_p50(),
            "convergence": self.convergence(), "levers": self.levers,
        }


def own_draws(decision: Decision, rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """Lever settings (size,) for the practice's own measures redrawn for sampling uncertainty: each rate from
    Beta(met + 1, not met + 1) on its case count, each cost O/E ratio from Normal(oe, oe × cv / √episodes)."""
    rules, subject, levers = decision.run.rules, decision.subject, decision.levers
    settings: dict[str, np.ndarray] = {}
    if rules.value("decide.own_rate_uncertainty") == "beta_posterior":
        q = subject.quality
        for name, lever in levers.items():
            if not (name.startswith("quality.") and name.endswith(".rate")):
                continue
            mine = np.flatnonzero([measure_label(m) == name.split(".")[1] for m in q.measure_id] & q.is_reported)
            cases = float(np.nansum(q.case_count[mine]))
            if cases <= 0:
                continue
            met = lever.baseline * cases
            settings[name] = rng.beta(met + 1.0, cases - met + 1.0, size)
        cv = float(rules.value("decide.own_cost_ratio_cv"))
        for name, lever in levers.items():
            if name.startswith("cost.") and name.endswith(".oe"):
                episodes = max(float(levers[name.replace(".oe", ".episodes")].baseline), 1.0)
                sd = lever.baseline * cv / np.sqrt(episodes)
                settings[name] = np.clip(rng.normal(lever.baseline, sd, size), lever.low, lever.high)
    return settings


def _chunk(decision: Decision, priors: dict, seed: np.random.SeedSequence, size: int, peers: str) -> tuple:
    rng = np.random.default_rng(seed)
    subject, rules = decision.subject, decision.run.rules
    pay = PaymentRules.from_rules(rules)
    settings = own_draws(decision, rng, size) if peers == "drawn" else {}
    scores = score_subject(subject, decision.levers, settings, rules, size)
    k = len(subject.npis)
    af = np.full((size, k), np.nan)
    midpoint, pool, sf = (np.full(size, np.nan) for _ in range(3))
    part_b = np.asarray([float(v or 0.0) for v in subject.score["part_b_paid_amount"]])
    for cohort, c in subject.cohort_rows.items():
        mine = c["subject_index"] >= 0
        if peers == "drawn":
            prior = priors[cohort]
            peer_fs, peer_pb = draw_peers(prior, rng, size, max(prior.size - int(mine.sum()), 0), rules)
            peer_neutral = np.zeros_like(peer_fs, dtype=bool)
        else:
            others = np.setdiff1d(np.arange(len(c["npi"])), c["subject_index"][mine])
            peer_fs = np.broadcast_to(np.nan_to_num(c["final_score"][others]), (size, others.size))
            peer_pb = np.broadcast_to(c["part_b"][others], peer_fs.shape)
            peer_neutral = np.broadcast_to(c["is_neutral"][others], peer_fs.shape)
        fs = np.concatenate([peer_fs, np.nan_to_num(scores.final_score[:, mine])], axis=1)
        pb = np.concatenate([peer_pb, np.broadcast_to(part_b[mine], (size, int(mine.sum())))], axis=1)
        neutral = np.concatenate([peer_neutral, scores.is_neutral[:, mine]], axis=1)
        result = score_cohorts(fs, pb, neutral, pay)
        af[:, mine] = result.adjustment_factor[:, peer_fs.shape[1]:]
        midpoint, pool, sf = result.midpoint, result.pool, result.scaling_factor
    dollars = af * subject.payment_year_paid
    return dollars.sum(axis=1), np.nanmean(scores.final_score, axis=1), midpoint, pool, sf


def simulate(decision: Decision, draws: int = 10_000, seed: int = 0, peers: str = "drawn",
             threads: int = 2) -> Simulation:
    """`draws` Monte Carlo draws for the decision's subject; `peers` is drawn (priors) or run (the run's cohort)."""
    if peers not in ("drawn", "run"):
        raise ValueError(f"peers={peers!r}: expected drawn or run")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    started = time.perf_counter()
    cohorts = sorted(decision.subject.cohort_rows)
    priors = {c: peer_priors(decision.run, c) for c in cohorts} if peers == "drawn" else {}
    sizes = [min(CHUNK, draws - start) for start in range(0, draws, CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        parts = list(pool.map(lambda job: _chunk(decision, priors, job[0], job[1], peers), zip(seeds, sizes)))
    dollars = np.concatenate([p[0] for p in parts])
    paid = float(decision.subject.payment_year_paid.sum())
    sim = Simulation(draws=draws, seed=seed, peers=peers, dollars=dollars,
                     adjustment_factor=dollars / paid if paid else np.zeros_like(dollars),
                     final_score=np.concatenate([p[1] for p in parts]),
                     midpoint=np.concatenate([p[2] for p in parts]), pool=np.concatenate([p[3] for p in parts]),
                     scaling_factor=np.concatenate([p[4] for p in parts]), seconds=0.0)
    sim.levers = rank_levers(decision, float(np.percentile(sim.midpoint, 50)))
    sim.seconds = time.perf_counter() - started
    return sim


def standard_move(name: str, lever) -> float | None:
    """The move each lever is ranked by: a rate 10 points better, data completeness +10 points, cost O/E 5% lower,
    a service category's cost 10% lower, an unmet IA/PI requirement met; None for levers that do not move the
    score one way."""
    if lever.favourable == 0 or name == "cohort.median" or name == "practice.small":
        return None
    if lever.kind == "flag":
        return 1.0 if lever.baseline < 1.0 else None
    if name.endswith(".oe"):
        return lever.baseline * 0.95
    return float(np.clip(lever.baseline + 0.10 * lever.favourable, lever.low, lever.high))


def rank_levers(decision: Decision, midpoint: float) -> list[dict]:
    """Levers ranked by the payment-year dollars their standard move is worth at the simulated median cohort
    (the exchange midpoint held at the draws' P50)."""
    at_median = {"cohort.median": midpoint}
    base = float(evaluate(decision.subject, decision.levers, at_median, decision.run.rules).total_dollars[0])
    ranked = []
    for name, lever in decision.levers.items():
        move = standard_move(name, lever)
        if move is None or move == lever.baseline:
            continue
        moved = float(evaluate(decision.subject, decision.levers, {**at_median, name: move},
                               decision.run.rules).total_dollars[0])
        ranked.append({"lever": name, "label": lever.label, "from": lever.baseline, "to": move,
                       "dollars": moved - base})
    return sorted(ranked, key=lambda r: -abs(r["dollars"]))


def simulate_years(decision: Decision, draws: int = 1000, seed: int = 0, threads: int = 2) -> dict[int, dict]:
    """The Monte Carlo of every performance year from the run's on (`model.performance_years`), each with its own
    rules (risk level of PaY = PY + 2), the practice's measures held at the run's values and its payment-year
    volume grown by `payment.part_b_growth_rate`: {payment year: dollar percentiles} for the fan chart."""
    from dataclasses import replace

    from openasm.decide.run_tables import run_overrides
    from openasm.rules import load_rules

    rules = decision.run.rules
    overrides = run_overrides(decision.run.manifest)
    growth = 1.0 + float(rules.value("payment.part_b_growth_rate"))
    out = {}
    for year in [int(y) for y in rules.value("model.performance_years") if int(y) >= rules.performance_year]:
        year_rules = load_rules(year, overrides)
        scaled = replace(decision.subject, payment_year_paid=decision.subject.payment_year_paid
                         * growth ** (year - rules.performance_year))
        shifted = Decision(run=replace(decision.run, rules=year_rules), subject=scaled, levers=decision.levers)
        sim = simulate(shifted, draws=draws, seed=seed + year, threads=threads)
        out[year_rules.payment_year] = sim.percentiles(sim.dollars)
    return out

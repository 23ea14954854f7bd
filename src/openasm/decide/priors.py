"""Priors over unknown peers for the Monte Carlo (issue 13 item 2), from the rules (`decide.*`) and the run.

CMS publishes no ASM benchmark before the PY is scored, so a practice's payment depends on how its ~2,600 (HF)
or ~4,000 (LBP) peers will score. A peer's measure performance is drawn from the MIPS benchmark deciles of the
measure (collection types in `decide.peer_quality_collection_types` order) and scored against the benchmark the
run used; its cost score from the normal distribution whose median and SD the run's cost knots imply (recovered as
the cost stage recovers them, `recover_band_parameters`); IA/PI attainment, submission failure, cost
scorability, small-practice share, cohort size and Part B volume from `decide.*` parameters.

Draws are quantised to `LEVELS` equally likely values per quantity: each quantity's table of values is computed
once per run with the engine's formulas (a measure's 65,536 possible rates → their points), and a draw is a
16-bit index into it. Every drawn value is scored exactly; the quantisation changes the sampled distribution by
less than 1/65,536 in probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from openasm.cost.benchmarks import band_knots, recover_band_parameters
from openasm.cost.points import has_knot_values, knot_pairs, piecewise_points
from openasm.decide.run_tables import RunTables
from openasm.rules import RulesError
from openasm.scoring import formulas as f
from openasm.scoring.cost_category import max_cost_points
from openasm.scoring.quality_points import PERCENTILE_KEYS, pcol, rate_axis

LEVELS = 65536
# Probability of each level's midpoint: (i + 0.5) / LEVELS.
_U = (np.arange(LEVELS) + 0.5) / LEVELS
_Z = np.asarray([NormalDist().inv_cdf(u) for u in _U])


@dataclass(frozen=True)
class PeerPriors:
    """Value tables (LEVELS,) and probabilities of one cohort's peers."""

    cohort: str
    size: int
    measure_ids: tuple[str, ...]
    measure_points: np.ndarray  # (M, LEVELS) points of each measure's rate levels
    cost_pct: np.ndarray  # (LEVELS,) cost category score of each cost-score level
    part_b: np.ndarray  # (LEVELS,) Part B paid levels
    submission_failure: float
    cost_scorable: float
    ia_met: float
    pi_met: float
    small_practice: float


def benchmark_row(run: RunTables, measure_id: str) -> dict:
    """The benchmark the run scored a measure against (its own PY, also when later years are simulated), in the
    preferred collection-type order."""
    rows = {(r["measure_id"], r["collection_type"]): r for r in run.rows("quality_benchmark")
            if r["performance_year"] == int(run.manifest["performance_year"]) and r.get("exclusion_reason") is None
            and r.get("p10") is not None and r.get("p90") is not None}
    for kind in run.rules.value("decide.peer_quality_collection_types"):
        if (measure_id, kind) in rows:
            return rows[(measure_id, kind)]
    raise RulesError(f"measure {measure_id}: the run has no usable benchmark for any collection type in "
                     "decide.peer_quality_collection_types")


def rate_levels(row: dict) -> np.ndarray:
    """A measure's rate at each probability level: piecewise linear through the benchmark's percentiles."""
    keys = [k for k in PERCENTILE_KEYS if row.get(pcol(k)) is not None]
    return np.interp(_U, [k / 100 for k in keys], [float(row[pcol(k)]) for k in keys])


def measure_point_levels(run: RunTables, row: dict) -> np.ndarray:
    """Points (quality.md §2.3, the engine's formulas) of every rate level against the benchmark row."""
    rate = rate_levels(row)
    columns = {"is_inverse": np.full(LEVELS, bool(row["is_inverse"])),
               **{pcol(k): np.full(LEVELS, np.nan if row.get(pcol(k)) is None else float(row[pcol(k)]))
                  for k in PERCENTILE_KEYS}}
    x, bounds = rate_axis(columns, rate, run.rules)
    decile, lower, upper = f.decile_and_band(x, bounds)
    return f.decile_points(x, decile, lower, upper, bounds[1], bounds[2])


def cost_pct_levels(run: RunTables, cohort: str) -> np.ndarray:
    """Cost category score of each cost-score level: score ~ Normal(M, s) with M and s recovered from the run's
    knots (ebcm.md §9.3), mapped through the knots (§9.1) and scaled to 0-100 (§512.730(e))."""
    measure = run.rules.value("cost.measures")[cohort]
    knot_rows = {r["measure_id"]: r for r in run.rows("cost_benchmark_knots")}
    if measure not in knot_rows:
        raise RulesError(f"the run has no cost benchmark knots for {measure}: run `openasm cost` first")
    row = {k: v for k, v in knot_rows[measure].items() if k != "measure_id"}
    if not has_knot_values(row, run.rules):
        raise RulesError(f"the run has no cost benchmark for {measure}: too few entities met the case minimum")
    knots = band_knots(run.rules)
    cut_points = {k.percentile_key: float(row[k.column]) for k in knots if k.percentile_key is not None}
    band = recover_band_parameters(cut_points, knots)
    score = band.median + band.sd * _Z
    return f.cost_category_pct(piecewise_points(score, knot_pairs(row, run.rules)), max_cost_points(run.rules))


def peer_priors(run: RunTables, cohort: str) -> PeerPriors:
    """The priors of one cohort's peers."""
    rules = run.rules
    measures = tuple(str(m) for m in rules.value("quality.measures")[cohort])
    points = np.vstack([measure_point_levels(run, benchmark_row(run, m)) for m in measures])
    part_b = rules.value("decide.peer_part_b_paid")[cohort]
    return PeerPriors(
        cohort=cohort, size=int(rules.value("decide.peer_cohort_size")[cohort]), measure_ids=measures,
        # Peers are many: float32 tables halve the memory traffic of every draw (scores are 0-100, dollars
        # relative to the median; the practice and the cohort sums stay float64).
        measure_points=points.astype(np.float32), cost_pct=cost_pct_levels(run, cohort).astype(np.float32),
        part_b=(float(part_b["median_usd"]) * np.exp(float(part_b["sigma_log"]) * _Z)).astype(np.float32),
        submission_failure=float(rules.value("decide.peer_submission_failure_rate")),
        cost_scorable=float(rules.value("decide.peer_cost_scorable_rate")),
        ia_met=float(rules.value("decide.peer_ia_met_rate")), pi_met=float(rules.value("decide.peer_pi_met_rate")),
        small_practice=float(rules.value("decide.peer_small_practice_share")[cohort]),
    )


def draw_peers(priors: PeerPriors, rng: np.random.Generator, draws: int, peers: int, rules) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """Final scores and Part B paid of `peers` peers in each of `draws` cohorts: (draws, peers) arrays.

    Each peer takes 16-bit fields of random words: one per measure, the cost score, Part B, and six attainment
    flags (submission failure, cost scorable, IA-1, IA-2, PI, small practice), each compared with its probability.
    The scores go through `formulas.final_score_parts` like a participant's in the engine.
    """
    measures = priors.measure_ids
    fields = len(measures) + 2 + 6
    words = -(-fields // 4)
    bits = rng.integers(0, np.iinfo(np.uint64).max, size=(draws, peers, words), dtype=np.uint64,
                        endpoint=True).view(np.uint16)
    earned = np.zeros((draws, peers), dtype=np.float32)
    for m in range(len(measures)):
        earned += priors.measure_points[m][bits[..., m]]
    base = len(measures)
    cost_pct = priors.cost_pct[bits[..., base]]
    part_b = priors.part_b[bits[..., base + 1]]

    def chance(offset: int, probability: float) -> np.ndarray:
        return bits[..., base + 2 + offset] < probability * LEVELS

    failed, cost_ok = chance(0, priors.submission_failure), chance(1, priors.cost_scorable)
    unmet = (~chance(2, priors.ia_met)).astype(float) + (~chance(3, priors.ia_met)).astype(float)
    pi_met, small = chance(4, priors.pi_met), chance(5, priors.small_practice)
    quality_pct = f.quality_category_pct(earned, f.MAX_MEASURE_POINTS * len(measures))
    parts = f.final_score_parts(
        quality_pct=quality_pct, cost_pct=cost_pct, quality_ok=~failed, cost_ok=cost_ok, no_submission=failed,
        ia_points=f.ia_deduction(unmet, float(rules.value("ia_pi.ia_deduction_per_unmet_activity")),
                                 float(rules.value("ia_pi.ia_deduction_max"))),
        pi_points=f.pi_deduction(pi_met, float(rules.value("ia_pi.pi_deduction"))), complex_points=0.0,
        size_factor=np.where(small, float(rules.value("scoring.small_practice_score_bonus")), 0.0),
        w_quality=float(rules.value("quality.weight")), w_cost=float(rules.value("cost.weight")))
    return parts["final_score"], part_b

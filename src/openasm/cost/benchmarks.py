"""Cost benchmarks: the knots of the 1-10 achievement-points scale (ebcm.md §9.1-§9.3, §9.5, §12 step 14).

A **knot table** has one row per measure (`measure_id`) and one float column per knot of `cost.band_table`, named
`knot_p10`, `knot_p20`, `knot_p30`, `knot_median`, `knot_p40`, … `knot_p99` (percentile key of the published
MIPS cut-point, or `median`). Knot values ascend in the band-table order; each knot earns its row's points
(10 … 1, the median 7.5). A decile knot table has no `knot_median` column. The knots come from:
- `published` (`cost.benchmark_source`): the MIPS cut-points shipped in `codes/cost__published_benchmarks.csv`
  (S4, PY2023-2025) are the knots; under the median/SD method the median knot is M recovered per §9.3;
- `computed`, `cost.points_method` = `median_sd`: M and s of the scored population (`compute_cost_benchmark`),
  knots at M + `offset_sd` × s;
- `computed`, `decile`: empirical percentiles of the scored population (`compute_decile_knots`).

The scored population is every entity row of `measure_score` (TINs and TIN-NPIs pooled, `cost.benchmark_pool`)
with `n_episodes` ≥ `cost.case_minimum` and a non-null `score_amount`. Scalar helpers work on one published
benchmark (about ten numbers): recover (d, M, s) from cut-points (§9.3), fit (M, s) to all cut-points, and place
knots from (M, s).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.rules import RulesError, RulesForYear
from openasm.schema.sums import exact_std

MEASURE = "measure_id"
SCORE = "score_amount"
EPISODES = "n_episodes"
MEDIAN_KNOT = "knot_median"
PUBLISHED_BENCHMARKS = "cost__published_benchmarks"
# Published cut-points are rounded to the cent: a band fit that leaves more than half a cent is not the band shape.
CENT = 0.01


@dataclass(frozen=True)
class Knot:
    """One row of `cost.band_table`: where the knot sits (percentile key, SD offset) and the points it earns."""

    column: str
    percentile_key: int | None
    offset_sd: float
    points: float


@dataclass(frozen=True)
class BandParameters:
    """Median M and SD s behind a set of cut-points; `step` is d, the distance between the first two knots."""

    step: float
    median: float
    sd: float


@dataclass(frozen=True)
class BandFit:
    """(M, s) whose knots come closest to every cut-point; `max_residual` is the largest |knot − cut-point|."""

    median: float
    sd: float
    max_residual: float


def band_knots(rules: RulesForYear, *, with_median: bool = True) -> tuple[Knot, ...]:
    """The knots of `cost.band_table` in ascending order (ebcm.md §9.2); `with_median=False` drops the 7.5 knot."""
    rows = rules.value("cost.band_table")
    knots = tuple(
        Knot(
            column=MEDIAN_KNOT if row["percentile_key"] is None else f"knot_p{int(row['percentile_key'])}",
            percentile_key=None if row["percentile_key"] is None else int(row["percentile_key"]),
            offset_sd=float(row["offset_sd"]),
            points=float(row["points"]),
        )
        for row in sorted(rows, key=lambda r: r["offset_sd"])
    )
    if any(a.points <= b.points for a, b in itertools.pairwise(knots)):
        raise RulesError("cost.band_table: points must fall as offset_sd rises (lower cost earns more points)")
    return tuple(k for k in knots if with_median or k.percentile_key is not None)


def knots_for_method(rules: RulesForYear) -> tuple[Knot, ...]:
    """Knots of the year's `cost.points_method`: all band rows (median_sd) or the percentile rows (decile)."""
    return band_knots(rules, with_median=rules.value("cost.points_method") == "median_sd")


def place_knots(median: Any, sd: Any, knots: Sequence[Knot]) -> dict[str, Any]:
    """§9.2: knot = M + offset_sd × s, by knot column. Works on floats and on Ibis columns alike."""
    return {k.column: median + k.offset_sd * sd for k in knots}


def recover_band_parameters(cut_points: Mapping[int, float], knots: Sequence[Knot]) -> BandParameters:
    """§9.3: d = p20 − p10, s = 2d, M = p30 + d, written for any band table.

    s = (p_b − p_a) / (offset_b − offset_a) for the first two percentile knots a, b, and M = p_c − offset_c × s for
    the third (with the shipped table: s = (p20 − p10) / 0.5 and M = p30 + 0.5 s).
    """
    first, second, third = [k for k in knots if k.percentile_key is not None][:3]
    step = cut_points[second.percentile_key] - cut_points[first.percentile_key]
    sd = step / (second.offset_sd - first.offset_sd)
    return BandParameters(step=step, median=cut_points[third.percentile_key] - third.offset_sd * sd, sd=sd)


def fit_band_parameters(cut_points: Mapping[int, float], knots: Sequence[Knot]) -> BandFit:
    """(M, s) minimising the largest |M + offset × s − cut-point| over every published key (Chebyshev fit).

    The best straight line through points (offset, cut-point) touches three of them with alternating residuals,
    so trying every ordered triple finds it. When `max_residual` < half a cent, rounding the rebuilt knots to the
    cent reproduces every published cut-point exactly.
    """
    pairs = sorted((k.offset_sd, cut_points[k.percentile_key]) for k in knots if k.percentile_key is not None)
    best: BandFit | None = None
    for (x1, y1), (x2, y2), (x3, y3) in itertools.combinations(pairs, 3):
        sd = (y3 - y1) / (x3 - x1)
        median = ((y1 - sd * x1) + (y2 - sd * x2)) / 2
        residual = max(abs(median + sd * x - y) for x, y in pairs)
        if best is None or residual < best.max_residual:
            best = BandFit(median=median, sd=sd, max_residual=residual)
    if best is None:
        raise ValueError("fitting M and s needs at least three cut-points")
    return best


# ------------------------------------------------------------------------------------------ published (S4)
def published_cut_points(*, rules: RulesForYear, performance_year: int) -> dict[str, dict[int, float]]:
    """Published cut-points of one performance year by measure: {measure_id: {percentile key: dollars}} (S4)."""
    rows = rules.code_list(PUBLISHED_BENCHMARKS).to_pylist()
    by_measure: dict[str, dict[int, float]] = {}
    for row in rows:
        if int(row["performance_year"]) == performance_year:
            by_measure.setdefault(row[MEASURE], {})[int(row["percentile_key"])] = float(row["cut_point_amount"])
    if not by_measure:
        years = sorted({int(row["performance_year"]) for row in rows})
        raise RulesError(
            f"no published cost benchmarks for performance year {performance_year} "
            f"(codes/{PUBLISHED_BENCHMARKS}.csv holds {years}); use cost.benchmark_source=computed"
        )
    return by_measure


def published_cost_knots(*, rules: RulesForYear, performance_year: int | None = None) -> ir.Table:
    """§9.3, `benchmark_source` = published: the MIPS cut-points of `performance_year` (default: the rules' PY)
    are the knots; under `median_sd` the median knot is M recovered per §9.3.

    Output grain: measure_id; columns measure_id + the knot columns of the year's points method.
    Raises RulesError when the cut-points do not follow the band table within half a cent (e.g. PY2023 data,
    which are empirical percentiles, read with the median/SD method).
    """
    year = rules.performance_year if performance_year is None else performance_year
    knots = knots_for_method(rules)
    records = []
    for measure, cut_points in sorted(published_cut_points(rules=rules, performance_year=year).items()):
        record: dict[str, Any] = {MEASURE: measure}
        for knot in knots:
            if knot.percentile_key is not None:
                record[knot.column] = cut_points[knot.percentile_key]
        if any(k.percentile_key is None for k in knots):
            fit = fit_band_parameters(cut_points, knots)
            if fit.max_residual > CENT / 2 + 1e-9:
                raise RulesError(
                    f"published PY{year} cut-points of {measure} miss the cost.band_table shape by "
                    f"${fit.max_residual:.3f}; the median/SD method cannot use them"
                )
            record[MEDIAN_KNOT] = recover_band_parameters(cut_points, knots).median
        records.append(record)
    schema = pa.schema([(MEASURE, pa.string())] + [(k.column, pa.float64()) for k in knots])
    return ibis.memtable(pa.Table.from_pylist(records, schema=schema))


# ------------------------------------------------------------------------------------------ computed
def scored_population(*, measure_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§9.2, §9.5: entity rows meeting the case minimum with a score, TINs and TIN-NPIs pooled, trimmed to the
    percentiles of `cost.benchmark_trim` when set. Same columns as `measure_score`."""
    pool = rules.value("cost.benchmark_pool")
    if pool != "pooled_tin_and_tin_npi":
        raise RulesError(f"cost.benchmark_pool={pool!r} is not implemented")
    eligible = measure_score.filter(
        (measure_score[EPISODES] >= rules.value("cost.case_minimum")) & measure_score[SCORE].notnull()
    )
    trim = rules.value("cost.benchmark_trim")
    if trim is None:
        return eligible
    low, high = trim
    bounds = eligible.group_by(_trim_measure=eligible[MEASURE]).agg(
        _trim_low=eligible[SCORE].quantile(low / 100), _trim_high=eligible[SCORE].quantile(high / 100)
    )
    joined = eligible.join(bounds, eligible[MEASURE] == bounds._trim_measure)
    kept = joined.filter((joined[SCORE] >= joined._trim_low) & (joined[SCORE] <= joined._trim_high))
    return kept.select(*eligible.columns)


def compute_cost_benchmark(*, measure_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§9.2 (ebcm.md), 42 CFR 512.730(e)(2)(i): median M and standard deviation s of the scored population.

    Input columns: measure_id, n_episodes, score_amount (one row per entity and measure).
    Output grain: measure_id; columns measure_id, entity_count, median, sd. The SD divides by
    n − `cost.sd_ddof` (1 = sample SD) and is null when n ≤ sd_ddof; the median interpolates between the two
    middle scores when n is even.
    """
    population = scored_population(measure_score=measure_score, rules=rules)
    ddof = int(rules.value("cost.sd_ddof"))
    score = population[SCORE]
    n = population.count()
    sd = exact_std(score, ddof=ddof)
    return population.group_by(MEASURE).agg(
        entity_count=n,
        median=score.median(),
        sd=ibis.ifelse(n > ddof, sd, ibis.null("float64")),
    )


def build_band_knots(*, cost_benchmark: ir.Table, rules: RulesForYear) -> ir.Table:
    """§9.2: knots at M + `offset_sd` × s for every row of `cost.band_table`.

    Input: the `compute_cost_benchmark` table (measure_id, median, sd). Output grain: measure_id; columns
    measure_id + every knot column (null where s is null).
    """
    knots = band_knots(rules)
    placed = place_knots(cost_benchmark.median, cost_benchmark.sd, knots)
    return cost_benchmark.select(MEASURE, **{name: value.cast("float64") for name, value in placed.items()})


def compute_decile_knots(*, measure_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§9.1 `decile` (MIPS PY2017-2023): knots at the empirical percentiles of the scored population, one per
    percentile key of `cost.band_table` (10 … 90, 99), interpolated linearly between order statistics.

    Input columns: measure_id, n_episodes, score_amount. Output grain: measure_id; columns measure_id +
    knot_p10 … knot_p99 (no median knot).
    """
    population = scored_population(measure_score=measure_score, rules=rules)
    score = population[SCORE]
    return population.group_by(MEASURE).agg(
        **{k.column: score.quantile(k.percentile_key / 100) for k in band_knots(rules, with_median=False)}
    )


def build_cost_knots(*, measure_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§12 step 14 (ebcm.md): the knot table of the rules' year, by `cost.benchmark_source` and `cost.points_method`.

    published → the shipped MIPS cut-points of the PY; computed → M and s (median_sd) or empirical percentiles
    (decile) of `measure_score`. Output grain: measure_id; columns measure_id + knot columns.
    """
    source = rules.value("cost.benchmark_source")
    if source == "published":
        return published_cost_knots(rules=rules)
    if rules.value("cost.points_method") == "decile":
        return compute_decile_knots(measure_score=measure_score, rules=rules)
    return build_band_knots(cost_benchmark=compute_cost_benchmark(measure_score=measure_score, rules=rules),
                            rules=rules)

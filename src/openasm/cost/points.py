"""Cost achievement points: a measure score mapped onto the knots of its benchmark (ebcm.md §9.1; asm-model.md §4).

The mapping is piecewise linear (`cost.points_interpolation` = linear): a score at or below the first knot earns
that knot's points (10.0), a score between two consecutive knots is interpolated between their points, and a
score at or above the last knot earns 1.0. Lower cost earns more points; a score equal to the median knot earns
7.5. `score_cost_points` builds this as one Ibis CASE expression over the knot columns; `points_for_score` is
an independent scalar version (numpy interpolation) for tests and worked examples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from openasm import array_ops as ops
from openasm.cost.benchmarks import EPISODES, MEASURE, SCORE, Knot, band_knots
from openasm.rules import RulesError, RulesForYear

POINTS = "achievement_points"
_KNOT_PREFIX = "_knots__"


def knots_in_table(columns: Sequence[str], rules: RulesForYear) -> tuple[Knot, ...]:
    """The band-table knots a knot table carries, in ascending order (a decile table has no median knot)."""
    present = tuple(k for k in band_knots(rules) if k.column in columns)
    if len(present) < 2:
        raise RulesError(f"a knot table needs at least two knot columns of cost.band_table; got {list(columns)}")
    return present


def piecewise_points(score: Any, knots: Sequence[tuple[Any, float]]) -> Any:
    """§9.1: points of a cost score on ascending (knot value, points) pairs: flat at both ends, linear in between
    (lower cost earns more points). One text for Ibis columns and numpy arrays (`openasm.array_ops`): the engine's
    stage and the decision tools run it alike. A zero-width band is never the matching branch; null when the score
    or any knot is null."""
    (first_x, first_p), (_, last_p) = knots[0], knots[-1]
    branches = [(score <= first_x, first_p)]
    for (x0, p0), (x1, p1) in itertools.pairwise(knots):
        branches.append((score <= x1, p0 + (p1 - p0) * ops.safe_divide(score - x0, x1 - x0)))
    mapped = ops.select(branches, last_p)
    defined = ops.notnull(score)
    for x, _ in knots:
        defined = defined & ops.notnull(x)
    return ops.where(defined, mapped, ops.null_float(mapped))


def points_expression(score: ir.NumericValue, knots: Sequence[tuple[ir.NumericValue, float]]) -> ir.FloatingValue:
    """§9.1: `piecewise_points` on Ibis columns (a CASE over the knots)."""
    return piecewise_points(score, knots)


def score_cost_points(*, measure_score: ir.Table, knots: ir.Table, rules: RulesForYear) -> ir.Table:
    """§9.1 (ebcm.md), 42 CFR 512.730(d)(2), (e)(1): achievement points (1-10, partial points) per entity row.

    Input: `measure_score` with measure_id, n_episodes, score_amount (one row per entity and measure; other
    columns pass through) and a knot table (grain measure_id; see `openasm.cost.benchmarks`). Output: the
    `measure_score` rows, same grain, plus `achievement_points` (float64). Points are null when the entity has
    fewer than `cost.case_minimum` episodes (the measure is not scored), when its score is null, or when its
    measure has no knots. MIPS cost improvement scoring is not added (`cost.improvement_scoring` false).
    """
    rules.require({"cost.improvement_scoring": False})
    method = rules.value("cost.points_interpolation")
    if method != "linear":
        raise RulesError(f"cost.points_interpolation={method!r} is not implemented")
    present = knots_in_table(knots.columns, rules)
    renamed = knots.select(
        **{f"{_KNOT_PREFIX}{MEASURE}": knots[MEASURE]},
        **{f"{_KNOT_PREFIX}{k.column}": knots[k.column].cast("float64") for k in present},
    )
    joined = measure_score.left_join(renamed, measure_score[MEASURE] == renamed[f"{_KNOT_PREFIX}{MEASURE}"])
    score = joined[SCORE].cast("float64")
    points = points_expression(score, [(joined[f"{_KNOT_PREFIX}{k.column}"], k.points) for k in present])
    scored = joined[EPISODES] >= rules.value("cost.case_minimum")
    return joined.select(
        *measure_score.columns, **{POINTS: ibis.ifelse(scored, points, ibis.null("float64"))}
    )


def has_knot_values(knot_row: Mapping[str, Any], rules: RulesForYear) -> bool:
    """Every knot of the row has a value: a measure with too few entities at the case minimum gets null knots
    (no benchmark), and then no points (`achievement_points`)."""
    values = [knot_row[k.column] for k in knots_in_table(list(knot_row), rules)]
    return bool(values) and all(v is not None and math.isfinite(float(v)) for v in values)


def knot_pairs(knot_row: Mapping[str, Any], rules: RulesForYear) -> list[tuple[float, float]]:
    """(knot value, points) pairs of one knot-table row (or a {column: value} mapping), ascending."""
    return [(float(knot_row[k.column]), k.points) for k in knots_in_table(list(knot_row), rules)]


def points_for_score(score: float, knots: Sequence[tuple[float, float]]) -> float:
    """Scalar §9.1 mapping: points of `score` on ascending (knot value, points) pairs (numpy interpolation,
    which is flat beyond both end knots)."""
    xs = [x for x, _ in knots]
    if any(b < a for a, b in itertools.pairwise(xs)):
        raise ValueError(f"knots must ascend: {xs}")
    return float(np.interp(score, xs, [p for _, p in knots]))

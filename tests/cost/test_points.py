"""Cost achievement points (ebcm.md §9.1, §9.4; 42 CFR 512.730(d)(2), (e)(1)): the Ibis stage on both backends
against the §9.4 vectors and the scalar reference; properties of the mapping; the case minimum."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openasm.cost.benchmarks import (
    EPISODES,
    MEASURE,
    MEDIAN_KNOT,
    SCORE,
    band_knots,
    place_knots,
    published_cost_knots,
)
from openasm.cost.points import POINTS, knot_pairs, points_for_score, score_cost_points
from openasm.engine import connect
from openasm.rules import RulesError

from .conftest import run
from .ebcm_9_4 import CUT_POINTS, KEYS, VECTORS

BAND_POINTS = (10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0)


def _published_knots(rules, year):
    return published_cost_knots(rules=rules, performance_year=year)


def _measure_score(rows):
    """rows: (measure_id, entity_id, n_episodes, score).

    A null episode count enters as -1 and becomes null in the expression: Ibis 12 hands a PySpark memtable over
    through pandas, where an int64 column with nulls turns float and Spark then reads the whole column as null.
    """
    table = ibis.memtable(pa.table({
        MEASURE: [r[0] for r in rows], "entity_id": [r[1] for r in rows],
        EPISODES: pa.array([-1 if r[2] is None else r[2] for r in rows], pa.int64()),
        SCORE: pa.array([r[3] for r in rows], pa.float64()),
    }))
    return table.mutate(**{EPISODES: ibis.ifelse(table[EPISODES] < 0, ibis.null("int64"), table[EPISODES])})


def _points_by_entity(engine, rows, knots, rules):
    result = run(engine, score_cost_points(measure_score=_measure_score(rows), knots=knots, rules=rules))
    assert len(result) == len(rows)
    return {r["entity_id"]: r[POINTS] for r in result}


# ------------------------------------------------------------------------------------------ §9.4 conformance
@pytest.mark.parametrize("year", [2024, 2025])
def test_ebcm_9_4_vectors_through_the_stage(backend, engine_for, rules, year) -> None:
    engine = engine_for(backend)
    knots = _published_knots(rules, year)
    cases = [(m, f"{m}|{score}", 20, float(score), points)
             for (m, y), vector in VECTORS.items() if y == year for score, points in vector]
    got = _points_by_entity(engine, [c[:4] for c in cases], knots, rules)
    knot_rows = {r[MEASURE]: r for r in knots.to_pyarrow().to_pylist()}
    for measure, entity, _, score, expected in cases:
        assert round(got[entity], 4) == expected, (entity, got[entity])
        reference = points_for_score(score, knot_pairs(knot_rows[measure], rules))
        assert got[entity] == pytest.approx(reference, abs=1e-12)


def test_national_average_score_points(rules) -> None:
    """§9.4 scores the national average cost per episode (the cost.national_average_cost_per_episode values)."""
    average = rules.value("cost.national_average_cost_per_episode")  # PY2025 value at PY2027 (holds forward)
    knots = {r[MEASURE]: r for r in _published_knots(rules, 2025).to_pyarrow().to_pylist()}
    assert average["COST_HF_1"] == 14994.38 and average["COST_LBP_1"] == 1930.26
    assert round(points_for_score(average["COST_HF_1"], knot_pairs(knots["COST_HF_1"], rules)), 4) == 7.3545
    assert round(points_for_score(average["COST_LBP_1"], knot_pairs(knots["COST_LBP_1"], rules)), 4) == 7.5274


@pytest.mark.parametrize("year", [2024, 2025])
def test_cut_points_earn_band_points_and_the_median_earns_7_5(backend, engine_for, rules, year) -> None:
    engine = engine_for(backend)
    knots = _published_knots(rules, year)
    knot_rows = {r[MEASURE]: r for r in knots.to_pyarrow().to_pylist()}
    rows, expected = [], {}
    for measure in ("COST_HF_1", "COST_LBP_1"):
        published = CUT_POINTS[measure, year]
        for key, cut_point, points in zip(KEYS, published, BAND_POINTS):
            rows.append((measure, f"{measure}|p{key}", 20, cut_point))
            expected[f"{measure}|p{key}"] = points
        rows.append((measure, f"{measure}|median", 20, knot_rows[measure][MEDIAN_KNOT]))
        expected[f"{measure}|median"] = 7.5
    got = _points_by_entity(engine, rows, knots, rules)
    assert got == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------ case minimum
def test_case_minimum_and_missing_inputs_get_no_points(backend, engine_for, rules) -> None:
    engine = engine_for(backend)
    assert rules.value("cost.case_minimum") == 20
    rows = [
        ("COST_HF_1", "nineteen_episodes", 19, 10000.0),
        ("COST_HF_1", "twenty_episodes", 20, 10000.0),
        ("COST_HF_1", "no_episode_count", None, 10000.0),
        ("COST_HF_1", "no_score", 40, None),
        ("COST_UNKNOWN_1", "measure_without_knots", 40, 10000.0),
    ]
    got = _points_by_entity(engine, rows, _published_knots(rules, 2024), rules)
    assert got["twenty_episodes"] == pytest.approx(8.9364, abs=5e-5)
    assert got["nineteen_episodes"] is None
    assert got["no_episode_count"] is None
    assert got["no_score"] is None
    assert got["measure_without_knots"] is None

    lower = rules.with_overrides({"cost.case_minimum": 19})
    assert _points_by_entity(engine, rows[:1], _published_knots(rules, 2024), lower)["nineteen_episodes"] == (
        pytest.approx(8.9364, abs=5e-5)
    )


def test_stage_keeps_input_columns_and_rows(rules) -> None:
    measure_score = _measure_score([("COST_HF_1", "a", 20, 1.0)]).mutate(tin=ibis.literal("123456789"))
    result = score_cost_points(measure_score=measure_score, knots=_published_knots(rules, 2024), rules=rules)
    assert result.columns == (*measure_score.columns, POINTS)


def test_degenerate_band_does_not_divide_by_zero(backend, engine_for, rules) -> None:
    """s = 0 (every entity has the same score): all knots coincide; below earns 10, above earns 1, no error
    (Spark 4 runs ANSI mode, where a division by zero raises)."""
    engine = engine_for(backend)
    knots = ibis.memtable({MEASURE: ["COST_LBP_1"], **{c: [1500.0] for c in place_knots(0, 0, band_knots(rules))}})
    rows = [("COST_LBP_1", "below", 20, 1499.0), ("COST_LBP_1", "at", 20, 1500.0), ("COST_LBP_1", "above", 20, 1501.0)]
    assert _points_by_entity(engine, rows, knots, rules) == {"below": 10.0, "at": 10.0, "above": 1.0}


def test_decile_knot_table_has_no_median_knot(engine_for, rules) -> None:
    """Decile knots (no 7.5 knot): p30 earns 8, p40 earns 7, their midpoint 7.5 by interpolation."""
    engine = engine_for("duckdb")
    columns = [f"knot_p{k}" for k in KEYS]
    knots = ibis.memtable({MEASURE: ["COST_HF_1"], **{c: [1000.0 * (i + 1)] for i, c in enumerate(columns)}})
    rows = [("COST_HF_1", "p30", 20, 3000.0), ("COST_HF_1", "mid", 20, 3500.0), ("COST_HF_1", "p40", 20, 4000.0),
            ("COST_HF_1", "top", 20, 99999.0)]
    assert _points_by_entity(engine, rows, knots, rules) == {"p30": 8.0, "mid": 7.5, "p40": 7.0, "top": 1.0}


def test_knot_table_without_knots_is_refused(rules) -> None:
    knots = ibis.memtable({MEASURE: ["COST_HF_1"], "median": [1.0]})
    with pytest.raises(RulesError, match="at least two knot columns"):
        score_cost_points(measure_score=_measure_score([("COST_HF_1", "a", 20, 1.0)]), knots=knots, rules=rules)


def test_points_for_score_needs_ascending_knots() -> None:
    with pytest.raises(ValueError, match="knots must ascend"):
        points_for_score(5.0, [(10.0, 10.0), (5.0, 1.0)])


# ------------------------------------------------------------------------------------------ properties
medians = st.floats(min_value=100.0, max_value=100_000.0, allow_nan=False)
relative_sds = st.floats(min_value=0.01, max_value=0.5, allow_nan=False)
scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _band_pairs(rules, median, sd):
    knots = band_knots(rules)
    placed = place_knots(median, sd, knots)
    return [(placed[k.column], k.points) for k in knots]


@settings(max_examples=300, deadline=None)
@given(median=medians, relative_sd=relative_sds, a=scores, b=scores)
def test_points_are_bounded_and_non_increasing(rules, median, relative_sd, a, b) -> None:
    pairs = _band_pairs(rules, median, median * relative_sd)
    low, high = sorted((a, b))
    p_low, p_high = points_for_score(low, pairs), points_for_score(high, pairs)
    assert 1.0 <= p_high <= p_low <= 10.0
    assert points_for_score(median, pairs) == pytest.approx(7.5, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(median=medians, relative_sd=relative_sds)
def test_points_are_continuous_at_knots(rules, median, relative_sd) -> None:
    pairs = _band_pairs(rules, median, median * relative_sd)
    steepest = max(abs(p1 - p0) / (x1 - x0) for (x0, p0), (x1, p1) in zip(pairs, pairs[1:]))
    eps = 1e-6 * median
    for x, points in pairs:
        assert points_for_score(x, pairs) == pytest.approx(points, abs=1e-9)
        for near in (x - eps, x + eps):
            assert abs(points_for_score(near, pairs) - points) <= steepest * eps * 1.01 + 1e-9


@pytest.fixture(scope="module")
def duckdb_engine():
    engine = connect("duckdb")
    yield engine
    engine.close()


@settings(max_examples=60, deadline=None)
@given(
    median=medians, relative_sd=relative_sds,
    offsets=st.lists(st.floats(min_value=-4.0, max_value=4.0, allow_nan=False), min_size=1, max_size=25),
)
def test_stage_equals_scalar_reference(duckdb_engine, rules, median, relative_sd, offsets) -> None:
    """The CASE expression and numpy interpolation agree on random scores, knots themselves included."""
    sd = median * relative_sd
    pairs = _band_pairs(rules, median, sd)
    values = [median + o * sd for o in offsets] + [x for x, _ in pairs]
    knots = ibis.memtable({MEASURE: ["COST_HF_1"], **{c: [v] for c, v in
                                                     place_knots(median, sd, band_knots(rules)).items()}})
    rows = [("COST_HF_1", f"e{i}", 20, v) for i, v in enumerate(values)]
    got = _points_by_entity(duckdb_engine, rows, knots, rules)
    for i, value in enumerate(values):
        assert got[f"e{i}"] == pytest.approx(points_for_score(value, pairs), abs=1e-9)
        assert 1.0 <= got[f"e{i}"] <= 10.0

"""Decile and partial points (quality.md §2.3, §2.6; 42 CFR 414.1380(b)(1)) on the real PY2026 MIPS benchmark rows:
Q134 eCQM, Q238 eCQM (inverse, three equal percentiles at 0), Q236 MIPS CQM (flat), Q134 MIPS CQM (topped out,
7-point cap), at and between cut points, on both backends; the §2.6 vectors; a property test against a scalar
reading of the spec on random benchmarks."""

from __future__ import annotations

import itertools

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.rules import load_rules
from openasm.scoring.quality_benchmarks import (
    arrow_memtable,
    measure_spec_table,
    shipped_mips_benchmarks,
)
from openasm.scoring.quality_points import (
    DECILE_KEYS,
    PERCENTILE_KEYS,
    add_decile_points,
    apply_topped_out_cap,
    pcol,
    round_half_up,
)

from .test_quality_support import mips_rules, run

EHR, CQM = "electronicHealthRecord", "registry"


def _points(engine, rules, measure_id, collection_type, rates, performance_year=2026):
    """(decile, points_before_cap, achievement_points, capped_flag) per rate against the shipped benchmark row."""
    return _points_of(engine, rules, [(measure_id, collection_type, rate) for rate in rates], performance_year)


def _points_of(engine, rules, items, performance_year=2026):
    """As `_points` for (measure_id, collection_type, rate) items, in one query."""
    bench = arrow_memtable(shipped_mips_benchmarks(rules))
    bench = bench.filter(bench.performance_year == performance_year)
    spec = arrow_memtable(measure_spec_table(rules))
    spec = spec.filter(spec.performance_year == max(performance_year, 2026)).select(
        "is_seven_point_cap_removed", _s_measure_id="measure_id", _s_collection_type="collection_type")
    rate_table = ibis.memtable(pa.table({
        "rate_id": list(range(len(items))), "_r_measure_id": [i[0] for i in items],
        "_r_collection_type": [i[1] for i in items], "scoring_rate": pa.array([i[2] for i in items], pa.float64()),
    }))
    t = rate_table.join(bench, [rate_table._r_measure_id == bench.measure_id,
                                rate_table._r_collection_type == bench.collection_type])
    t = t.join(spec, [t.measure_id == spec._s_measure_id, t.collection_type == spec._s_collection_type])
    t = t.mutate(benchmark_source=t.source)
    t = apply_topped_out_cap(add_decile_points(t, rules=rules), rules=rules)
    rows = sorted(run(engine, t.select("rate_id", "decile", "points_before_cap", "achievement_points",
                                       "capped_flag")), key=lambda r: r["rate_id"])
    assert len(rows) == len(items)
    return [(r["decile"], r["points_before_cap"], r["achievement_points"], r["capped_flag"]) for r in rows]


def _check(got, expected):
    for (rate, decile, before, final), (g_decile, g_before, g_final, g_capped) in zip(expected, got):
        assert g_decile == decile, (rate, g_decile, decile)
        assert g_before == pytest.approx(before, abs=1e-9), (rate, g_before, before)
        assert g_final == pytest.approx(final, abs=1e-9), (rate, g_final, final)
        assert g_capped == (final < before), rate


# ------------------------------------------------------------------------------------------ Q134 eCQM (direct)
# PY2026 p10..p90: 2.7 11.42 21.65 31.79 42.685 53.935 67.48 80.72 93.44 (not topped out: never capped)
Q134_EHR = [
    (0.0, 1, 1.0, 1.0),                     # L_1 = 0 → 1 + 0/2.7
    (1.35, 1, 1.5, 1.5),                    # 1 + 1.35/2.7
    (2.7, 2, 2.0, 2.0),                     # at p10: lower bound of decile 2
    (7.06, 2, 2.5, 2.5),                    # midpoint of p10, p20
    (11.42, 3, 3.0, 3.0),
    (31.79, 5, 5.0, 5.0),
    (50.0, 6, 6 + 7.315 / 11.25, 6 + 7.315 / 11.25),   # §2.6: 6.6502
    (53.935, 7, 7.0, 7.0),
    (87.08, 9, 9.5, 9.5),                   # midpoint of p80 80.72 and p90 93.44
    (93.44, 10, 10.0, 10.0),                # at p90 → decile 10
    (100.0, 10, 10.0, 10.0),
]


def test_q134_ecqm_at_and_between_cut_points(backend, engine_for) -> None:
    got = _points(engine_for(backend), mips_rules(), "134", EHR, [r[0] for r in Q134_EHR])
    _check(got, Q134_EHR)


# ------------------------------------------------------------------------------------------ Q238 eCQM (inverse)
# PY2026 p10..p90: 0 0 0 0.14 0.66 2.02 5.23 10.16 15.85; U_10 = p10 … U_2 = p90, U_1 = 100. Topped out by program.
Q238_EHR = [
    (0.0, 10, 10.0, 7.0),                   # U_10 = U_9 = U_8 = 0: 0 reaches decile 10; capped at 7 (§2.6)
    (0.07, 7, 7.5, 7.0),                    # decile 7 = (0, 0.14]: 7 + (0.14 - 0.07)/0.14 = 7.5 → cap 7
    (0.14, 7, 7.0, 7.0),                    # at U_7 = p40: 7 + 0
    (0.4, 6, 6.5, 6.5),                     # midpoint of p40 0.14 and p50 0.66
    (0.66, 6, 6.0, 6.0),
    (3.0, 4, 4 + 2.23 / 3.21, 4 + 2.23 / 3.21),         # §2.6: 4.6947
    (5.23, 4, 4.0, 4.0),
    (13.005, 2, 2.5, 2.5),                  # midpoint of p80 10.16 and p90 15.85
    (15.85, 2, 2.0, 2.0),                   # at U_2 = p90
    (20.0, 1, 1 + 80 / 84.15, 1 + 80 / 84.15),          # §2.6: 1.9507
    (57.925, 1, 1.5, 1.5),                  # midpoint of p90 and U_1 = 100
    (100.0, 1, 1.0, 1.0),
]


def test_q238_ecqm_inverse_at_and_between_cut_points(backend, engine_for) -> None:
    got = _points(engine_for(backend), mips_rules(), "238", EHR, [r[0] for r in Q238_EHR])
    _check(got, Q238_EHR)


# ------------------------------------------------------------------------------------------ Q236 MIPS CQM (flat)
Q236_CQM = [
    (0.0, 1, 1.0, 1.0), (5.0, 1, 1.5, 1.5), (10.0, 2, 2.0, 2.0), (55.0, 6, 6.5, 6.5),
    (72.5, 8, 8.25, 8.25),                  # §2.6: 8 + 2.5/10
    (89.99, 9, 9.999, 9.999), (90.0, 10, 10.0, 10.0), (100.0, 10, 10.0, 10.0),
]


def test_q236_registry_flat_benchmark(backend, engine_for) -> None:
    got = _points(engine_for(backend), mips_rules(), "236", CQM, [r[0] for r in Q236_CQM])
    _check(got, Q236_CQM)


# ------------------------------------------------------------------------------------------ Q134 MIPS CQM (topped out)
# PY2026 p10..p90: 40.34 76.3 94.01 98.97 99.82 100 100 100 100; isToppedOutByProgram → cap 7 under MIPS.
Q134_CQM = [
    (20.17, 1, 1.5, 1.5), (40.34, 2, 2.0, 2.0), (58.32, 2, 2.5, 2.5), (76.3, 3, 3.0, 3.0),
    (94.01, 4, 4.0, 4.0), (98.97, 5, 5.0, 5.0), (99.82, 6, 6.0, 6.0),
    (99.91, 6, 6.5, 6.5),                   # deciles 7-9 are empty (p60 = … = p90 = 100): 6 + 0.09/0.18
    (100.0, 10, 10.0, 7.0),                 # §2.6: 10 → 7 (cap)
]


def test_q134_registry_topped_out_with_and_without_cap(backend, engine_for) -> None:
    engine = engine_for(backend)
    rates = [r[0] for r in Q134_CQM]
    _check(_points(engine, mips_rules(), "134", CQM, rates), Q134_CQM)
    uncapped = [(rate, d, before, before) for rate, d, before, _ in Q134_CQM]
    _check(_points(engine, load_rules(2027), "134", CQM, rates), uncapped)   # ASM default: no cap


def test_normative_vectors_of_quality_md_2_6(backend, engine_for) -> None:
    engine = engine_for(backend)
    vectors = [  # measure, collection type, rate, decile, points before cap, final (topped_out_cap_points = 7)
        ("134", EHR, 50.0, 6, 6 + 7.315 / 11.25, 6 + 7.315 / 11.25),
        ("134", CQM, 100.0, 10, 10.0, 7.0),
        ("008", CQM, 99.0, 2, 2 + 3.21 / 4.21, 2 + 3.21 / 4.21),
        ("238", EHR, 3.0, 4, 4 + 2.23 / 3.21, 4 + 2.23 / 3.21),
        ("238", EHR, 0.0, 10, 10.0, 7.0),
        ("238", EHR, 20.0, 1, 1 + 80 / 84.15, 1 + 80 / 84.15),
        ("238", CQM, 0.01, 2, 2.5, 2.5),    # U_2 = p90 = 0.02, U_3 = p80 = 0: 2 + 0.01/0.02
        ("236", CQM, 72.5, 8, 8.25, 8.25),
        ("377", EHR, 0.1, 1, 1 + 0.1 / 0.17, 1 + 0.1 / 0.17),
    ]
    got = _points_of(engine, mips_rules(), [v[:3] for v in vectors])
    _check(got, [v[2:] for v in vectors])
    # The table's rounded figures: 6.6502, 2.7625, 4.6947, 1.9507, 1.5882.
    assert [round(v[4], 4) for v in vectors if v[0] != "236" and v[4] % 1] == [6.6502, 2.7625, 4.6947, 1.9507, 2.5,
                                                                              1.5882]


def test_decile1_anchors_p1_and_p99(backend, engine_for) -> None:
    engine = engine_for(backend)
    rules = mips_rules(**{"quality.decile1_floor_direct": "p1", "quality.decile1_ceiling_inverse": "p99"})
    # Q134 eCQM p1 = 0.07, p10 = 2.7: rate 1.385 → 1 + (1.385 − 0.07)/2.63 = 1.5; below p1 clamps to 1.
    _check(_points(engine, rules, "134", EHR, [1.385, 0.01]), [(1.385, 1, 1.5, 1.5), (0.01, 1, 1.0, 1.0)])
    # Q238 eCQM p99 = 30.71, p90 = 15.85: rate 23.28 → 1 + (30.71 − 23.28)/14.86 = 1.5; above p99 → 1.
    _check(_points(engine, rules, "238", EHR, [23.28, 50.0]), [(23.28, 1, 1.5, 1.5), (50.0, 1, 1.0, 1.0)])


def test_round_half_up_for_display(backend, engine_for) -> None:
    engine = engine_for(backend)
    values = [66.505, 66.504999, 35.20141, 0.0, 100.0, 12.345]
    t = ibis.memtable({"i": list(range(len(values))), "v": values})
    got = {r["i"]: r["d"] for r in run(engine, t.select("i", d=round_half_up(t.v, 2)))}
    assert [got[i] for i in range(len(values))] == [66.51, 66.5, 35.2, 0.0, 100.0, 12.35]


# ------------------------------------------------------------------------------------------ properties
def _reference(rate: float, cuts: dict[int, float], inverse: bool) -> tuple[int, float]:
    """quality.md §2.3 read literally, with anchors 0 / 100."""
    if not inverse:
        low = {1: 0.0, **{k: cuts[10 * (k - 1)] for k in range(2, 11)}}
        k = max([k for k in range(2, 11) if rate >= low[k]], default=1)
        if k == 10:
            return 10, 10.0
        if k >= 2:
            return k, k + (rate - low[k]) / (low[k + 1] - low[k])
        return 1, 1.0 if low[2] <= low[1] else max(1.0, 1 + (rate - low[1]) / (low[2] - low[1]))
    high = {1: 100.0, **{k: cuts[110 - 10 * k] for k in range(2, 11)}}
    k = max([k for k in range(2, 11) if rate <= high[k]], default=1)
    if k == 10:
        return 10, 10.0
    if k >= 2:
        return k, k + (high[k] - rate) / (high[k] - high[k + 1])
    return 1, 1.0 if high[1] <= high[2] else max(1.0, 1 + (high[1] - rate) / (high[1] - high[2]))


@pytest.fixture(scope="module")
def duckdb_engine():
    engine = connect("duckdb")
    yield engine
    engine.close()


cut_values = st.lists(st.sampled_from([0.0, 0.5, 2.0, 10.0, 33.3, 50.0, 71.25, 99.0, 100.0])
                      | st.floats(0, 100, allow_nan=False), min_size=9, max_size=9).map(sorted)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=cut_values, inverse=st.booleans(),
       rates=st.lists(st.floats(0, 100, allow_nan=False) | st.sampled_from([0.0, 100.0]), min_size=1, max_size=12))
def test_points_match_the_spec_and_are_monotone(duckdb_engine, cuts, inverse, rates) -> None:
    cut = dict(zip(DECILE_KEYS, cuts))
    rates = sorted(set(rates + cuts))                  # every cut point is also tested exactly
    table = pa.table({"rate_id": list(range(len(rates))), "scoring_rate": rates, "is_inverse": [inverse] * len(rates),
                      **{pcol(k): [cut.get(k, 0.0 if k == 1 else 100.0)] * len(rates) for k in PERCENTILE_KEYS}})
    t = add_decile_points(ibis.memtable(table), rules=load_rules(2027))
    got = sorted(run(duckdb_engine, t), key=lambda r: r["rate_id"])
    points = []
    for rate, row in zip(rates, got):
        decile, expected = _reference(rate, cut, inverse)
        assert row["decile"] == decile, (rate, cut)
        assert row["points_before_cap"] == pytest.approx(expected, abs=1e-9)
        assert 1.0 <= row["points_before_cap"] <= 10.0
        assert decile - 1e-9 <= row["points_before_cap"] <= decile + 1 + 1e-9   # partial points stay in the decile
        points.append(row["points_before_cap"])
    ordered = points if not inverse else points[::-1]  # direct: rises with the rate; inverse: falls
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(ordered))

"""Cost benchmarks (ebcm.md §9.1-§9.4): shipped cut-points, recovery of M and s, knot tables on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pytest

from openasm.cost.benchmarks import (
    EPISODES,
    MEASURE,
    MEDIAN_KNOT,
    PUBLISHED_BENCHMARKS,
    SCORE,
    band_knots,
    build_band_knots,
    build_cost_knots,
    compute_cost_benchmark,
    compute_decile_knots,
    fit_band_parameters,
    place_knots,
    published_cost_knots,
    published_cut_points,
    recover_band_parameters,
)
from openasm.rules import RulesError

from .conftest import run
from .ebcm_9_4 import CUT_POINTS, KEYS, RECOVERED

SHARED_BENCHMARKS = Path(__file__).resolve().parents[3] / "shared" / "data" / "qpp-measures-data" / "benchmarks"
COST_PREFIXES = ("COST_", "MSPB_", "TPCC_")
HALF_CENT = 0.005 + 1e-9


def _csv_rows(rules):
    return rules.code_list(PUBLISHED_BENCHMARKS).to_pylist()


def _all_measure_years(rules):
    return sorted({(r[MEASURE], int(r["performance_year"])) for r in _csv_rows(rules)
                   if int(r["performance_year"]) in (2024, 2025)})


# ------------------------------------------------------------------------------------------ shipped data
def test_shipped_benchmarks_are_the_qpp_measures_data_cost_records(rules) -> None:
    """Provenance: the CSV holds every cost record of benchmarks/2023-2025.json exactly (S4), and no 2026."""
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip("shared qpp-measures-data not present")
    shipped = {(int(r["performance_year"]), r[MEASURE], int(r["percentile_key"])): r for r in _csv_rows(rules)}
    expected = {}
    for year in (2023, 2024, 2025):
        records = [r for r in json.loads((SHARED_BENCHMARKS / f"{year}.json").read_text(encoding="utf-8"))
                   if r["measureId"].startswith(COST_PREFIXES)]
        assert len(records) == {2023: 24, 2024: 28, 2025: 33}[year]
        for record in records:
            for key, value in record["percentiles"].items():
                expected[(year, record["measureId"], int(key))] = (record, value)
    assert set(shipped) == set(expected)
    for key, (record, value) in expected.items():
        row = shipped[key]
        assert float(row["cut_point_amount"]) == value
        assert float(row["average_performance_rate"]) == record["averagePerformanceRate"]
        assert int(row["benchmark_year"]) == record["benchmarkYear"]
        assert row["submission_method"] == record["submissionMethod"] == "administrativeClaims"
        assert row["is_inverse"] == "true" and record["isInverse"] is True


def test_no_mock_2026_benchmarks_are_shipped(rules) -> None:
    years = {int(r["performance_year"]) for r in _csv_rows(rules)}
    assert years == {2023, 2024, 2025}
    with pytest.raises(RulesError, match="no published cost benchmarks for performance year 2026"):
        published_cut_points(rules=rules, performance_year=2026)


@pytest.mark.parametrize(("measure", "year"), sorted(CUT_POINTS))
def test_shipped_cut_points_are_ebcm_9_4(rules, measure, year) -> None:
    cut_points = published_cut_points(rules=rules, performance_year=year)[measure]
    assert cut_points[1] == 0  # key "1" = 0, not a knot
    assert [cut_points[k] for k in KEYS] == list(CUT_POINTS[measure, year][:10])
    averages = {float(r["average_performance_rate"]) for r in _csv_rows(rules)
                if r[MEASURE] == measure and int(r["performance_year"]) == year}
    assert averages == {CUT_POINTS[measure, year][10]}


# ------------------------------------------------------------------------------------------ §9.3 recovery
# Largest |rebuilt knot − published cut-point| of the §9.3 recipe (knots M + offset × s, unrounded). The recipe
# takes s = 2(p20 − p10) from two cut-points rounded to the cent, so s carries up to $0.02 of rounding, which the
# outer knots multiply by their offset: LBP 2024 has s = 570.58 against a best fit of 570.5857, and its p80 and p99
# rebuild to 3150.475 and 3435.765 against 3150.49 and 3435.78 ($0.015).
RECIPE_MAX_DIFF = {
    ("COST_HF_1", 2024): 0.01, ("COST_HF_1", 2025): 0.01, ("COST_LBP_1", 2024): 0.015, ("COST_LBP_1", 2025): 0.01,
}


@pytest.mark.parametrize(("measure", "year"), sorted(RECOVERED))
def test_band_method_recovers_d_m_s_of_ebcm_9_4(rules, measure, year) -> None:
    cut_points = published_cut_points(rules=rules, performance_year=year)[measure]
    recovered = recover_band_parameters(cut_points, band_knots(rules))
    step, median, sd = RECOVERED[measure, year]
    assert abs(recovered.step - step) < HALF_CENT
    assert abs(recovered.median - median) < HALF_CENT
    assert abs(recovered.sd - sd) < HALF_CENT
    # equivalently M = (p30 + p40) / 2 and s = p40 − p30, within the cent
    assert abs(recovered.median - (cut_points[30] + cut_points[40]) / 2) <= 0.005 + 1e-9
    assert abs(recovered.sd - (cut_points[40] - cut_points[30])) <= 0.01 + 1e-9


@pytest.mark.parametrize(("measure", "year"), sorted(RECIPE_MAX_DIFF))
def test_knots_rebuilt_from_recovered_m_s_regenerate_every_cut_point(rules, measure, year) -> None:
    knots = band_knots(rules)
    cut_points = published_cut_points(rules=rules, performance_year=year)[measure]
    recovered = recover_band_parameters(cut_points, knots)
    rebuilt = place_knots(recovered.median, recovered.sd, knots)
    diffs = [abs(rebuilt[k.column] - cut_points[k.percentile_key]) for k in knots if k.percentile_key]
    assert len(diffs) == 10
    assert max(diffs) == pytest.approx(RECIPE_MAX_DIFF[measure, year], abs=1e-6)
    assert rebuilt[MEDIAN_KNOT] == pytest.approx(RECOVERED[measure, year][1], abs=1e-6)


def test_every_cost_measure_has_the_band_shape(rules) -> None:
    """§9.2: for all 28 PY2024 and 33 PY2025 cost measures one (M, s) puts every knot within half a cent of its
    cut-point, so rebuilt knots rounded to the cent are the published cut-points exactly. The §9.3 recipe stays
    within its rounding bound |e30 − e_o + (1 + 2 × offset)(e20 − e10)| ≤ 0.01 + 0.01 × |1 + 2 × offset|."""
    knots = band_knots(rules)
    measure_years = _all_measure_years(rules)
    assert sum(1 for _, y in measure_years if y == 2024) == 28
    assert sum(1 for _, y in measure_years if y == 2025) == 33
    for measure, year in measure_years:
        cut_points = published_cut_points(rules=rules, performance_year=year)[measure]
        fit = fit_band_parameters(cut_points, knots)
        assert fit.max_residual < HALF_CENT, (measure, year, fit)
        fitted = place_knots(fit.median, fit.sd, knots)
        recovered = recover_band_parameters(cut_points, knots)
        recipe = place_knots(recovered.median, recovered.sd, knots)
        for knot in knots:
            if knot.percentile_key is None:
                continue
            published = cut_points[knot.percentile_key]
            assert abs(round(fitted[knot.column], 2) - published) < 1e-6, (measure, year, knot.column)
            bound = 0.01 + 0.01 * abs(1 + 2 * knot.offset_sd) + 1e-6
            assert abs(recipe[knot.column] - published) <= bound, (measure, year, knot.column)


def test_pre_2024_cut_points_do_not_have_the_band_shape(rules) -> None:
    """PY2023 (decile method, empirical percentiles): no (M, s) fits; the median/SD reading is refused."""
    knots = band_knots(rules)
    for cut_points in published_cut_points(rules=rules, performance_year=2023).values():
        assert fit_band_parameters(cut_points, knots).max_residual > 1.0
    with pytest.raises(RulesError, match="miss the cost.band_table shape"):
        published_cost_knots(rules=rules, performance_year=2023)


# ------------------------------------------------------------------------------------------ knot tables
def test_published_knot_table_is_cut_points_plus_median(rules) -> None:
    table = published_cost_knots(rules=rules, performance_year=2024).to_pyarrow()
    assert table.column_names == [MEASURE, "knot_p10", "knot_p20", "knot_p30", MEDIAN_KNOT, "knot_p40",
                                  "knot_p50", "knot_p60", "knot_p70", "knot_p80", "knot_p90", "knot_p99"]
    rows = {r[MEASURE]: r for r in table.to_pylist()}
    assert len(rows) == 28
    hf = rows["COST_HF_1"]
    assert [hf[f"knot_p{k}"] for k in KEYS] == list(CUT_POINTS["COST_HF_1", 2024][:10])
    assert hf[MEDIAN_KNOT] == pytest.approx(13637.80, abs=1e-6)
    for row in rows.values():
        values = [row[c] for c in table.column_names[1:]]
        assert values == sorted(values)


def test_published_decile_knots_of_2023(rules) -> None:
    decile = rules.with_overrides({"cost.points_method": "decile"})
    table = published_cost_knots(rules=decile, performance_year=2023).to_pyarrow()
    assert MEDIAN_KNOT not in table.column_names and len(table.column_names) == 11
    rows = {r[MEASURE]: r for r in table.to_pylist()}
    assert len(rows) == 24
    assert rows["COST_ACOPD_1"]["knot_p10"] == 3005.73 and rows["COST_ACOPD_1"]["knot_p99"] == 8213.59


def _population():
    # Two measures. HF: seven scored entities plus one below the case minimum (19) and one with no score;
    # LBP: one scored entity only (no SD with ddof = 1).
    rows = [
        ("COST_HF_1", "t1", 20, 9000.0), ("COST_HF_1", "t2", 25, 12000.0), ("COST_HF_1", "t3", 40, 13000.0),
        ("COST_HF_1", "t4", 21, 14500.0), ("COST_HF_1", "t5", 60, 15000.0), ("COST_HF_1", "t6", 20, 18000.0),
        ("COST_HF_1", "t7", 33, 26000.0),
        ("COST_HF_1", "below_case_minimum", 19, 1.0), ("COST_HF_1", "no_score", 30, None),
        ("COST_LBP_1", "only_one", 22, 1500.0),
    ]
    return rows, ibis.memtable(pa.table({
        MEASURE: [r[0] for r in rows], "entity_id": [r[1] for r in rows],
        EPISODES: pa.array([r[2] for r in rows], pa.int64()), SCORE: pa.array([r[3] for r in rows], pa.float64()),
    }))


HF_SCORES = [9000.0, 12000.0, 13000.0, 14500.0, 15000.0, 18000.0, 26000.0]


def test_compute_cost_benchmark_matches_numpy(backend, engine_for, rules) -> None:
    engine = engine_for(backend)
    _, measure_score = _population()
    got = {r[MEASURE]: r for r in run(engine, compute_cost_benchmark(measure_score=measure_score, rules=rules))}
    assert got["COST_HF_1"]["entity_count"] == 7
    assert got["COST_HF_1"]["median"] == pytest.approx(float(np.median(HF_SCORES)), rel=1e-12)
    assert got["COST_HF_1"]["sd"] == pytest.approx(float(np.std(HF_SCORES, ddof=1)), rel=1e-12)
    assert got["COST_LBP_1"]["entity_count"] == 1 and got["COST_LBP_1"]["median"] == 1500.0
    assert got["COST_LBP_1"]["sd"] is None

    pop_rules = rules.with_overrides({"cost.sd_ddof": 0})
    pop = {r[MEASURE]: r for r in run(engine, compute_cost_benchmark(measure_score=measure_score, rules=pop_rules))}
    assert pop["COST_HF_1"]["sd"] == pytest.approx(float(np.std(HF_SCORES, ddof=0)), rel=1e-12)
    assert pop["COST_LBP_1"]["sd"] == 0.0


def test_even_population_median_interpolates(backend, engine_for, rules) -> None:
    engine = engine_for(backend)
    scores = [100.0, 250.0, 400.0, 1000.0]
    measure_score = ibis.memtable({MEASURE: ["COST_LBP_1"] * 4, EPISODES: [20] * 4, SCORE: scores})
    (row,) = run(engine, compute_cost_benchmark(measure_score=measure_score, rules=rules))
    assert row["median"] == 325.0 == float(np.median(scores))


def test_benchmark_trim_drops_scores_outside_the_percentiles(engine_for, rules) -> None:
    engine = engine_for("duckdb")
    _, measure_score = _population()
    trimmed = rules.with_overrides({"cost.benchmark_trim": [10, 90]})
    low, high = np.percentile(HF_SCORES, [10, 90])
    kept = [s for s in HF_SCORES if low <= s <= high]
    assert len(kept) == 5
    got = {r[MEASURE]: r for r in run(engine, compute_cost_benchmark(measure_score=measure_score, rules=trimmed))}
    assert got["COST_HF_1"]["entity_count"] == 5
    assert got["COST_HF_1"]["median"] == pytest.approx(float(np.median(kept)))
    assert got["COST_HF_1"]["sd"] == pytest.approx(float(np.std(kept, ddof=1)))


def test_band_knots_from_computed_benchmark(backend, engine_for, rules) -> None:
    engine = engine_for(backend)
    _, measure_score = _population()
    knots = build_cost_knots(measure_score=measure_score, rules=rules)  # PY2027: computed, median_sd
    rows = {r[MEASURE]: r for r in run(engine, knots)}
    median, sd = float(np.median(HF_SCORES)), float(np.std(HF_SCORES, ddof=1))
    expected = {k.column: median + k.offset_sd * sd for k in band_knots(rules)}
    assert set(rows["COST_HF_1"]) == {MEASURE, *expected}
    for column, value in expected.items():
        assert rows["COST_HF_1"][column] == pytest.approx(value, rel=1e-12)
    assert rows["COST_HF_1"][MEDIAN_KNOT] == pytest.approx(median)
    assert rows["COST_HF_1"]["knot_p10"] == pytest.approx(median - 1.5 * sd)
    assert rows["COST_HF_1"]["knot_p99"] == pytest.approx(median + 2.75 * sd)
    assert all(rows["COST_LBP_1"][column] is None for column in expected)  # no SD from one entity


def test_build_band_knots_regenerates_published_cut_points(backend, engine_for, rules) -> None:
    """The Ibis knot builder on the recovered (M, s) of §9.4 gives the published cut-points (LBP 2024 ±$0.015)."""
    engine = engine_for(backend)
    benchmark = ibis.memtable({
        MEASURE: [f"{m}|{y}" for m, y in RECOVERED], "median": [v[1] for v in RECOVERED.values()],
        "sd": [v[2] for v in RECOVERED.values()],
    })
    rows = {r[MEASURE]: r for r in run(engine, build_band_knots(cost_benchmark=benchmark, rules=rules))}
    for (measure, year), published in CUT_POINTS.items():
        row = rows[f"{measure}|{year}"]
        worst = max(abs(row[f"knot_p{k}"] - value) for k, value in zip(KEYS, published))
        assert worst == pytest.approx(RECIPE_MAX_DIFF[measure, year], abs=1e-6)


def test_decile_knots_are_empirical_percentiles(backend, engine_for, rules) -> None:
    engine = engine_for(backend)
    _, measure_score = _population()
    decile = rules.with_overrides({"cost.points_method": "decile"})
    rows = {r[MEASURE]: r for r in run(engine, build_cost_knots(measure_score=measure_score, rules=decile))}
    assert MEDIAN_KNOT not in rows["COST_HF_1"]
    expected = np.percentile(HF_SCORES, KEYS)
    for key, value in zip(KEYS, expected):
        assert rows["COST_HF_1"][f"knot_p{key}"] == pytest.approx(float(value), rel=1e-12)
    assert rows["COST_LBP_1"]["knot_p10"] == rows["COST_LBP_1"]["knot_p99"] == 1500.0
    assert compute_decile_knots(measure_score=measure_score, rules=decile).columns == (
        MEASURE, *(f"knot_p{k}" for k in KEYS)
    )


def test_published_source_needs_published_cut_points_for_the_year(rules) -> None:
    published = rules.with_overrides({"cost.benchmark_source": "published"})
    _, measure_score = _population()
    with pytest.raises(RulesError, match="performance year 2027"):
        build_cost_knots(measure_score=measure_score, rules=published)

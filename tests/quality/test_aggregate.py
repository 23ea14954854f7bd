"""Golden tests for the measure aggregates (quality.md §2.1): counts, performance rate, data completeness with
exclusions, exceptions and unreported cases, case count, entity levels, cohorts, and the §2.1 rejection rule."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.quality.aggregate import (
    AGGREGATE_COLUMNS,
    MEASURE_AGGREGATE_SCHEMA,
    aggregate_measure_results,
    check_measure_aggregate,
    finish_measure_aggregate,
)
from openasm.rules import load_rules
from tests.conftest import assert_tables_equal

TIN_A, NPI_A, NPI_B, TIN_B = "111111111", "1000000001", "1000000002", "222222222"
# Population outcome of one case → (denom, denex, numer, denexcep)
OUTCOME = {
    "met": (True, False, True, False), "not_met": (True, False, False, False),
    "excluded": (True, True, False, False), "excepted": (True, False, False, True),
    "ip_only": (False, False, False, False),
}


def cases(rows, measure="008", collection="electronicHealthRecord", performance_year=2027):
    """rows: (tin, npi, outcome, reported[, stratum]) → a measure_case_result memtable."""
    flags = [OUTCOME[r[2]] for r in rows]
    return ibis.memtable(pa.table({
        "performance_year": pa.array([performance_year] * len(rows), pa.int32()),
        "measure_id": [measure] * len(rows), "collection_type": [collection] * len(rows),
        "tin": pa.array([r[0] for r in rows], pa.string()), "npi": pa.array([r[1] for r in rows], pa.string()),
        "stratum": [r[4] if len(r) > 4 else "overall" for r in rows],
        "patient_id": [f"p{i}" for i in range(len(rows))],
        "is_initial_population": [True] * len(rows),
        "is_denominator": [f[0] for f in flags], "is_denominator_exclusion": [f[1] for f in flags],
        "is_numerator": [f[2] for f in flags], "is_denominator_exception": [f[3] for f in flags],
        "reported_flag": [r[3] for r in rows],
    }))


# Clinician A: 6 met, 2 not met, 1 excluded, 1 excepted, 2 unreported (one would be met), 1 IP-only case.
GOLDEN = ([(TIN_A, NPI_A, "met", True)] * 6 + [(TIN_A, NPI_A, "not_met", True)] * 2
          + [(TIN_A, NPI_A, "excluded", True), (TIN_A, NPI_A, "excepted", True)]
          + [(TIN_A, NPI_A, "met", False), (TIN_A, NPI_A, "not_met", False), (TIN_A, NPI_A, "ip_only", True)])


def expected_row(**kw):
    base = {"performance_year": 2027, "measure_id": "008", "collection_type": "electronicHealthRecord",
            "tin": TIN_A, "npi": NPI_A, "entity_level": "tin_npi", "cohort": "hf", "stratum": "overall",
            "is_proxy": False, "source": "engine", "cms_achievement_points": None, "cms_scored_flag": None}
    return {**base, **kw}


def test_golden_rate_and_completeness_on_both_backends(backend, engine_for):
    engine = engine_for(backend)
    out = aggregate_measure_results(measure_case_result=cases(GOLDEN), rules=load_rules(2027))
    got = engine.fetch(out)
    assert got.column_names == list(AGGREGATE_COLUMNS)
    # EP = 12 denominator cases (the IP-only case is not eligible); reported: PM 6, PNM 2, DENEX 1, DENEXCEP 1.
    # rate = 100 × 6 / (6 + 2) = 75.0; DC = (6 + 2 + 1 + 1) / 12 = 0.833333; case count = PM + PNM = 8.
    expected = pa.Table.from_pylist([expected_row(
        eligible_population=12, performance_met=6, performance_not_met=2, exclusions=1, exceptions=1,
        performance_rate=75.0, data_completeness=10 / 12, case_count=8)], schema=MEASURE_AGGREGATE_SCHEMA)
    assert_tables_equal(got.cast(MEASURE_AGGREGATE_SCHEMA), expected, float_tol=1e-12)


def test_entities_unattributed_and_tin_level_for_electing_practices():
    engine = connect("duckdb")
    rows = ([(TIN_A, NPI_A, "met", True)] * 3 + [(TIN_A, NPI_B, "not_met", True)]
            + [(TIN_B, NPI_A, "met", True)] + [(None, None, "not_met", True)] * 2)
    electing = ibis.memtable({"tin": [TIN_A]})
    got = engine.fetch(aggregate_measure_results(measure_case_result=cases(rows), rules=load_rules(2027),
                                                 group_reporting_tin=electing)).to_pylist()
    by_key = {(r["entity_level"], r["tin"], r["npi"]): r for r in got}
    assert set(by_key) == {("tin_npi", TIN_A, NPI_A), ("tin_npi", TIN_A, NPI_B), ("tin_npi", TIN_B, NPI_A),
                           ("tin_npi", None, None), ("tin", TIN_A, None)}
    # Unattributed cases are kept under a null TIN/NPI: 2 not met → rate 0.
    assert by_key[("tin_npi", None, None)]["performance_not_met"] == 2
    assert by_key[("tin_npi", None, None)]["performance_rate"] == 0.0
    # TIN A as a group: 3 met + 1 not met → 100 × 3 / 4 = 75.
    group = by_key[("tin", TIN_A, None)]
    assert (group["eligible_population"], group["performance_met"], group["performance_rate"]) == (4, 3, 75.0)
    # Without small-practice TIN reporting, no TIN-level row is built for electing practices.
    rules = load_rules(2027, overrides={"quality.small_practice_tin_reporting": False})
    got = engine.fetch(aggregate_measure_results(measure_case_result=cases(rows), rules=rules,
                                                 group_reporting_tin=electing))
    assert set(got.column("entity_level").to_pylist()) == {"tin_npi"}
    engine.close()


@pytest.mark.parametrize("level, expected_levels", [("tin", {"tin"}), ("tin_npi_and_tin", {"tin", "tin_npi"})])
def test_reporting_level(level, expected_levels):
    engine = connect("duckdb")
    rows = [(TIN_A, NPI_A, "met", True), (TIN_A, NPI_B, "not_met", True)]
    rules = load_rules(2027, overrides={"quality.reporting_level": level})
    got = engine.fetch(aggregate_measure_results(measure_case_result=cases(rows), rules=rules)).to_pylist()
    assert {r["entity_level"] for r in got} == expected_levels
    tin_row = next(r for r in got if r["entity_level"] == "tin")
    assert tin_row["npi"] is None and tin_row["performance_rate"] == 50.0  # 100 × 1 / (1 + 1)
    engine.close()


def test_no_scored_cases_gives_null_rate_and_zero_ep_gives_null_completeness():
    engine = connect("duckdb")
    rows = [(TIN_A, NPI_A, "excluded", True), (TIN_A, NPI_A, "excepted", True), (TIN_B, NPI_A, "ip_only", True)]
    got = {r["tin"]: r for r in engine.fetch(
        aggregate_measure_results(measure_case_result=cases(rows), rules=load_rules(2027))).to_pylist()}
    # A: PM + PNM = 0 → rate null; DC = (0 + 0 + 1 + 1) / 2 = 1.0; case count 0.
    assert got[TIN_A]["performance_rate"] is None and got[TIN_A]["data_completeness"] == 1.0
    assert got[TIN_A]["case_count"] == 0
    # B: only an IP case → EP = 0 → DC null, rate null.
    assert got[TIN_B]["eligible_population"] == 0 and got[TIN_B]["data_completeness"] is None
    engine.close()


def test_case_count_basis_and_cohorts_and_strata():
    engine = connect("duckdb")
    rows = [(TIN_A, NPI_A, "met", True, "overall"), (TIN_A, NPI_A, "excluded", True, "overall"),
            (TIN_A, NPI_A, "not_met", True, "appropriateDiagnosis")]
    rules = load_rules(2027, overrides={"quality.case_count_basis": "eligible_population"})
    got = engine.fetch(aggregate_measure_results(measure_case_result=cases(rows, measure="238"),
                                                 rules=rules)).to_pylist()
    by_stratum = {r["stratum"]: r for r in got}
    assert by_stratum["overall"]["case_count"] == 2  # EP basis: 2 eligible (1 met + 1 excluded)
    assert by_stratum["appropriateDiagnosis"]["case_count"] == 1
    assert {r["cohort"] for r in got} == {"lbp"}
    unknown = engine.fetch(aggregate_measure_results(measure_case_result=cases(rows[:1], measure="999"),
                                                     rules=load_rules(2027))).to_pylist()
    assert unknown[0]["cohort"] is None
    engine.close()


def test_proportion_semantics_are_reapplied():
    """A case flagged both excluded and met counts as an exclusion only; met and excepted counts as met."""
    engine = connect("duckdb")
    table = ibis.memtable(pa.table({
        "performance_year": pa.array([2027, 2027], pa.int32()), "measure_id": ["005", "005"],
        "collection_type": ["electronicHealthRecord"] * 2, "tin": [TIN_A] * 2, "npi": [NPI_A] * 2,
        "stratum": ["overall"] * 2, "is_initial_population": [True, True], "is_denominator": [True, True],
        "is_denominator_exclusion": [True, False], "is_numerator": [True, True],
        "is_denominator_exception": [False, True]}))
    (row,) = engine.fetch(aggregate_measure_results(measure_case_result=table, rules=load_rules(2027))).to_pylist()
    assert (row["exclusions"], row["performance_met"], row["exceptions"], row["performance_not_met"]) == (1, 1, 0, 0)
    engine.close()


def test_check_measure_aggregate_rejects_counts_above_the_eligible_population():
    engine = connect("duckdb")
    counts = ibis.memtable(pa.table({
        "performance_year": pa.array([2027, 2027, 2027], pa.int32()), "measure_id": ["134"] * 3,
        "collection_type": ["registry"] * 3, "tin": [TIN_A] * 3, "npi": [NPI_A, NPI_B, "1000000003"],
        "entity_level": ["tin_npi"] * 3, "stratum": ["overall"] * 3,
        "eligible_population": [10, 10, 10], "performance_met": [5, 6, -1], "performance_not_met": [3, 3, 0],
        "exclusions": [1, 1, 0], "exceptions": [1, 1, 0], "source": ["qpp_json"] * 3}))
    finished = finish_measure_aggregate(counts=counts, rules=load_rules(2027))
    got = {r["npi"]: r["reject_reason"] for r in engine.fetch(check_measure_aggregate(
        measure_aggregate=finished)).to_pylist()}
    assert got[NPI_A] is None  # 5 + 3 + 1 + 1 = 10 = EP
    assert "exceed the eligible population" in got[NPI_B]  # 6 + 3 + 1 + 1 = 11 > 10
    assert got["1000000003"] == "negative count"
    engine.close()


@pytest.fixture(scope="module")
def duck():
    engine = connect("duckdb")
    yield engine
    engine.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(list(OUTCOME)), st.booleans()), min_size=1, max_size=30))
def test_properties_hold_for_any_case_mix(duck, outcomes):
    rows = [(TIN_A, NPI_A, outcome, reported) for outcome, reported in outcomes]
    (row,) = duck.fetch(aggregate_measure_results(measure_case_result=cases(rows),
                                                  rules=load_rules(2027))).to_pylist()
    reported = row["performance_met"] + row["performance_not_met"] + row["exclusions"] + row["exceptions"]
    assert reported <= row["eligible_population"]
    assert row["eligible_population"] == sum(1 for o, _ in outcomes if o != "ip_only")
    if row["performance_rate"] is not None:
        assert 0.0 <= row["performance_rate"] <= 100.0
        assert row["performance_rate"] == pytest.approx(
            100.0 * row["performance_met"] / (row["performance_met"] + row["performance_not_met"]))
    if row["data_completeness"] is not None:
        assert 0.0 <= row["data_completeness"] <= 1.0
        assert row["data_completeness"] == pytest.approx(reported / row["eligible_population"])

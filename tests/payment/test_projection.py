"""Multi-year projection PY2027–PY2031 → PaY 2029–2033 (42 CFR 512.710(a)(1), 512.750(c); asm-model.md §7, §9):
golden worst / expected / best cases for participant A of the §9 worked example, risk levels following the payment
year, growth and trend assumptions, TIN roll-up, and hypothesis properties."""

from __future__ import annotations

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.payment.projection import (
    PROJECTION_COLUMNS,
    project_adjustments,
    projection_rules,
    roll_up_projection_by_tin,
    synthetic_cohort,
)
from openasm.rules import load_rules

PEERS = [("B", 82.0, 450_000.0), ("C", 47.5, 250_000.0), ("D", 65.0, 500_000.0), ("E", 30.0, 200_000.0),
         ("F", 0.0, 150_000.0)]  # the rest of the §9 HF cohort
RL_BY_PY = {2027: 0.09, 2028: 0.09, 2029: 0.10, 2030: 0.11, 2031: 0.12}  # payment.risk_level at PaY = PY + 2


def _cohort(rows=PEERS, cohort="hf"):
    return ibis.memtable({"cohort": [cohort] * len(rows), "npi": [r[0] for r in rows],
                          "final_score": [r[1] for r in rows], "part_b_paid_amount": [r[2] for r in rows]})


def _subject(rows):
    """rows: (level, id, tin, cohort, final score, Part B base, base year)."""
    names = ("subject_level", "subject_id", "tin", "cohort", "final_score", "part_b_paid_amount", "base_year")
    return ibis.memtable({name: [r[i] for r in rows] for i, name in enumerate(names)})


A = ("npi", "A", "T1", "hf", 54.1, 300_000.0, 2027)


@pytest.fixture(scope="module")
def engine():
    opened = connect("duckdb")
    yield opened
    opened.close()


def _fetch(engine, expr):
    return {(r["subject_id"], r["performance_year"], r["scenario"]): r for r in engine.fetch(expr).to_pylist()}


def test_worked_example_participant_over_five_years(engine):
    got = _fetch(engine, project_adjustments(subject=_subject([A]), cohort_scores=_cohort(),
                                             rules_by_year=projection_rules()))
    assert len(got) == 5 * 3
    first = got[("A", 2027, "expected")]
    # Expected = the §9 result: TFS 1, SF 0.748939, AF −2.2595%, × $300,000 = −$6,778.64 (growth 0)
    assert first["adjustment_factor"] == pytest.approx(-0.022595, abs=5e-7)
    assert round(first["payment_year_adjustment_amount"], 2) == pytest.approx(-6_778.64, abs=0.001)
    assert got[("A", 2027, "worst")]["adjustment_factor"] == pytest.approx(-0.09)  # FS 0 → −RL
    best = got[("A", 2027, "best")]
    # Best: A at 100 → positive scores {100, 82, 65, 47.5, 30}, median 65; TFS_A = 2/(1+e^(−3.5)) = 1.941376;
    # pool 0.85 × 0.09 × 1,850,000 = 141,525.00; Σ RL·TFS·PB = 173,622.82; SF = 0.815129;
    # AF = 0.09 × 1.941376 × 0.815129 − 0.09 = +5.2422%; × 300,000 = +$15,726.73
    assert best["exchange_midpoint"] == pytest.approx(65.0)
    assert best["transformed_final_score"] == pytest.approx(1.941376, abs=5e-7)
    assert best["scaling_factor"] == pytest.approx(0.815129, abs=5e-7)
    assert round(best["payment_year_adjustment_amount"], 2) == pytest.approx(15_726.73, abs=0.001)
    for py, rl in RL_BY_PY.items():  # same cohort every year: AF = RL × (TFS × SF − 1) scales with RL
        for scenario, af_2027 in (("worst", -0.09), ("expected", -0.022595), ("best", 0.0524224)):
            row = got[("A", py, scenario)]
            assert (row["payment_year"], row["risk_level"]) == (py + 2, rl)
            assert row["adjustment_factor"] == pytest.approx(af_2027 / 0.09 * rl, abs=1e-6)
            assert row["is_estimate"]


def test_subject_replaces_its_own_row_in_the_cohort(engine):
    listed = _cohort(PEERS + [("A", 10.0, 1.0)])  # A's stale row in the distribution is not counted twice
    got = _fetch(engine, project_adjustments(subject=_subject([A]), cohort_scores=listed,
                                             rules_by_year={2027: load_rules(2027)}))
    assert got[("A", 2027, "expected")]["adjustment_factor"] == pytest.approx(-0.022595, abs=5e-7)


def test_growth_and_trend_are_rules(engine):
    overrides = {"payment.part_b_growth_rate": 0.03, "payment.projection_score_trend": 20.0}
    rules = projection_rules([2027, 2028, 2029], overrides)
    subject = _subject([("npi", "A", "T1", "hf", 54.1, 300_000.0, 2025)])
    got = _fetch(engine, project_adjustments(subject=subject, cohort_scores=_cohort(), rules_by_year=rules))
    # Expected score: 54.1, 74.1, 94.1 (+20 a year after the first); clipped at 100 beyond
    assert [got[("A", py, "expected")]["final_score"] for py in (2027, 2028, 2029)] == pytest.approx([54.1, 74.1, 94.1])
    row = got[("A", 2028, "expected")]
    assert row["part_b_paid_amount"] == pytest.approx(300_000.0 * 1.03 ** 3)  # 2025 → 2028
    assert row["payment_year_paid_amount"] == pytest.approx(300_000.0 * 1.03 ** 5)  # 2025 → PaY 2030
    assert row["payment_year_adjustment_amount"] == pytest.approx(row["adjustment_factor"] * 300_000.0 * 1.03 ** 5)


def test_tin_roll_up_sums_its_participants(engine):
    subject = _subject([A, ("npi", "G", "T1", "lbp", 70.0, 200_000.0, 2027), ("npi", "H", "T2", "hf", 40.0, 1.0, 2027)])
    cohort = ibis.union(_cohort(), _cohort([("L1", 60.0, 100_000.0), ("L2", 0.0, 50_000.0)], "lbp"))
    projection = project_adjustments(subject=subject, cohort_scores=cohort, rules_by_year=projection_rules())
    npis = engine.fetch(projection).to_pylist()
    tins = engine.fetch(roll_up_projection_by_tin(projection=projection)).to_pylist()
    assert tuple(engine.fetch(roll_up_projection_by_tin(projection=projection)).column_names) == PROJECTION_COLUMNS
    assert len(tins) == 2 * 5 * 3
    for t in tins:
        mine = [r for r in npis if r["tin"] == t["subject_id"] and r["performance_year"] == t["performance_year"]
                and r["scenario"] == t["scenario"]]
        total = sum(r["payment_year_adjustment_amount"] for r in mine)
        assert t["payment_year_adjustment_amount"] == pytest.approx(total)
        assert t["cohort"] == ("multiple" if t["subject_id"] == "T1" else "hf")


def test_synthetic_cohort_is_deterministic_and_shaped_by_its_rule(engine):
    rules = load_rules(2027, {"payment.projection_synthetic_cohort.hf": {
        "participants": 40, "zero_score_share": 0.1, "final_score_mean": 60.0, "final_score_sd": 15.0,
        "part_b_paid_amount": 1000.0}})
    rows = engine.fetch(synthetic_cohort(rules=rules)).to_pylist()
    hf = [r for r in rows if r["cohort"] == "hf"]
    assert len(hf) == 40 and sum(r["final_score"] == 0.0 for r in hf) == 4
    ordered = sorted(r["final_score"] for r in hf)  # 4 zeros, then 36 symmetric quantiles around the mean 60
    assert (ordered[21] + ordered[22]) / 2 == pytest.approx(60.0)
    assert rows == engine.fetch(synthetic_cohort(rules=rules)).to_pylist()
    got = _fetch(engine, project_adjustments(subject=_subject([A]), rules_by_year={2027: rules}))
    assert got[("A", 2027, "worst")]["adjustment_factor"] == pytest.approx(-0.09)


def test_bad_input_is_named(engine):
    with pytest.raises(ValueError, match="base_year"):
        project_adjustments(subject=ibis.memtable({"subject_id": ["A"]}), rules_by_year=projection_rules())
    with pytest.raises(ValueError, match="performance year 2028"):
        project_adjustments(subject=_subject([A]), rules_by_year={2027: load_rules(2028)})


def test_projection_on_each_backend(backend, engine_for):
    engine = engine_for(backend)
    cohort = engine.save("cohort_scores", _cohort())
    got = _fetch(engine, project_adjustments(subject=_subject([A]), cohort_scores=cohort,
                                             rules_by_year={2027: load_rules(2027), 2031: load_rules(2031)}))
    expected = got[("A", 2027, "expected")]["payment_year_adjustment_amount"]
    assert round(expected, 2) == pytest.approx(-6_778.64, abs=0.001)
    assert got[("A", 2031, "worst")]["risk_level"] == 0.12 and got[("A", 2031, "worst")]["payment_year"] == 2033


peers_strategy = st.lists(st.tuples(st.sampled_from([0.0]) | st.floats(0.5, 100.0), st.floats(1_000.0, 2_000_000.0)),
                          min_size=0, max_size=10)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Part B bases are dollars and cents (sums are exact to 1e-10, `openasm.schema.sums`).
@given(peers=peers_strategy, score=st.floats(0.0, 100.0),
       base=st.floats(0.0, 3_000_000.0).map(lambda v: round(v, 2)), trend=st.floats(-10.0, 10.0))
def test_properties(engine, peers, score, base, trend):
    """Every year: worst ≤ expected ≤ best (factor and dollars); |AF| ≤ RL; RL is the payment year's."""
    rules = projection_rules(overrides={"payment.projection_score_trend": trend})
    cohort = _cohort([(f"P{i}", s, pb) for i, (s, pb) in enumerate(peers)] or [("P0", 50.0, 1_000.0)])
    got = _fetch(engine, project_adjustments(subject=_subject([("npi", "S", "T", "hf", score, base, 2027)]),
                                             cohort_scores=cohort, rules_by_year=rules))
    for py, rl in RL_BY_PY.items():
        worst, expected, best = (got[("S", py, s)] for s in ("worst", "expected", "best"))
        if best["adjustment_factor"] is None or expected["adjustment_factor"] is None:
            # No Part B behind any FS > 0 participant: the scaling factor is undefined and so is AF (never +RL).
            assert base == 0.0 and all(s == 0.0 or pb == 0.0 for s, pb in peers)
            assert (best if best["adjustment_factor"] is None else expected)["scaling_factor"] is None
            continue
        assert worst["adjustment_factor"] <= expected["adjustment_factor"] + 1e-12
        assert expected["adjustment_factor"] <= best["adjustment_factor"] + 1e-12
        assert worst["payment_year_adjustment_amount"] <= expected["payment_year_adjustment_amount"] + 1e-6
        assert expected["payment_year_adjustment_amount"] <= best["payment_year_adjustment_amount"] + 1e-6
        for row in (worst, expected, best):
            assert abs(row["adjustment_factor"]) <= rl + 1e-12
            assert row["risk_level"] == rl == load_rules(py).value("payment.risk_level")
            assert row["payment_year"] == py + 2
        assert worst["adjustment_factor"] == pytest.approx(-rl)

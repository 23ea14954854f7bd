"""Golden cases for the payment adjustment: the worked six-participant example of asm-model.md §9 (PY2027 →
PaY 2029, HF cohort, RL = 9%) to the cent, its two sensitivity cases, the final rule's $1B illustration, and
property tests of the §7.6 invariant, monotonicity, bounds and cohort independence."""

from __future__ import annotations

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.payment.adjustment import check_pool_invariant, compute_payment_adjustment
from openasm.rules import load_rules

WORKED = [  # participant, final score, Part B paid in PY2027
    ("A", 54.1, 300_000.0), ("B", 82.0, 450_000.0), ("C", 47.5, 250_000.0),
    ("D", 65.0, 500_000.0), ("E", 30.0, 200_000.0), ("F", 0.0, 150_000.0),
]


def _participants(rows, cohort="hf", neutral=()):
    return ibis.memtable({
        "cohort": [r[3] if len(r) > 3 else cohort for r in rows], "npi": [r[0] for r in rows],
        "final_score": [float(r[1]) for r in rows], "part_b_paid_amount": [float(r[2]) for r in rows],
        "is_neutral": [r[0] in neutral for r in rows],
    })


@pytest.fixture(scope="module")
def engine():
    opened = connect("duckdb")
    yield opened
    opened.close()


def _run(engine, rows, rules=None, **kw):
    out = compute_payment_adjustment(participant_score=_participants(rows, **kw), rules=rules or load_rules(2027))
    return {r["npi"]: r for r in engine.fetch(out).to_pylist()}


def test_worked_example_to_the_cent(engine):
    got = _run(engine, WORKED)
    a = got["A"]
    assert (a["payment_year"], a["risk_level"], a["retention_rate"]) == (2029, 0.09, 0.15)
    assert a["exchange_midpoint"] == pytest.approx(54.1)                    # median of positive scores
    assert a["pool_amount"] == pytest.approx(141_525.00, abs=0.005)         # 0.85 x 0.09 x 1,850,000
    assert a["scaling_factor"] == pytest.approx(0.748939, abs=5e-7)         # 141,525.00 / 188,967.29
    expected = {  # TFS, AF (6 decimals of a percent as in §9), AF x PB to the cent
        "A": (1.000000, -0.022595, -6_778.64), "B": (1.884266, 0.037008, 16_653.62),
        "C": (0.681479, -0.044065, -11_016.30), "D": (1.496763, 0.010889, 5_444.31),
        "E": (0.164827, -0.078890, -15_777.99), "F": (None, -0.09, -13_500.00),
    }
    for npi, (tfs, af, dollars) in expected.items():
        row = got[npi]
        if tfs is None:
            assert row["transformed_final_score"] is None
        else:
            assert row["transformed_final_score"] == pytest.approx(tfs, abs=5e-7)
        assert row["adjustment_factor"] == pytest.approx(af, abs=5e-7)
        assert round(row["adjustment_amount"], 2) == pytest.approx(dollars, abs=0.001)
        assert row["multiplier"] == pytest.approx(1 + row["adjustment_factor"])
    assert round(sum(r["adjustment_amount"] for r in got.values()), 2) == pytest.approx(-24_975.00, abs=0.001)
    # Denominator Σ RL x TFS x PB = pool / SF = 188,967.29
    assert a["pool_amount"] / a["scaling_factor"] == pytest.approx(188_967.29, abs=0.01)


def test_payment_year_dollars_apply_the_multiplier(engine):
    # §9 step 5: A's PaY 2029 covered services of $320,000 → −$7,230.55; B $480,000 → +$17,763.87; F → −$12,600.
    got = _run(engine, WORKED)
    for npi, paid, change in (("A", 320_000, -7_230.55), ("B", 480_000, 17_763.87), ("F", 140_000, -12_600.00)):
        assert round(got[npi]["adjustment_factor"] * paid, 2) == pytest.approx(change, abs=0.011)


def test_invariant_holds_for_the_worked_example(engine):
    out = compute_payment_adjustment(participant_score=_participants(WORKED), rules=load_rules(2027))
    (row,) = engine.fetch(check_pool_invariant(payment_adjustment=out)).to_pylist()
    assert row["holds"] and row["expected_net_adjustment"] == pytest.approx(-24_975.00)


def test_fixed_midpoint_sensitivity(engine):
    got = _run(engine, WORKED, load_rules(2027, {"payment.exchange_midpoint_rule": "fixed_50"}))
    assert got["A"]["transformed_final_score"] == pytest.approx(1.202176, abs=5e-7)
    assert got["A"]["scaling_factor"] == pytest.approx(0.680862, abs=5e-7)
    assert got["A"]["adjustment_factor"] == pytest.approx(-0.016334, abs=5e-7)


def test_pool_base_without_zero_scores_breaks_the_invariant_as_expected(engine):
    rules = load_rules(2027, {"payment.pool_base_includes_zero_score": False})
    out = compute_payment_adjustment(participant_score=_participants(WORKED), rules=rules)
    got = {r["npi"]: r for r in engine.fetch(out).to_pylist()}
    assert got["A"]["pool_amount"] == pytest.approx(130_050.00, abs=0.005)
    assert got["A"]["scaling_factor"] == pytest.approx(0.688214, abs=5e-7)
    assert got["A"]["adjustment_factor"] == pytest.approx(-0.028061, abs=5e-7)
    assert round(sum(r["adjustment_amount"] for r in got.values()), 2) == pytest.approx(-36_450.00, abs=0.001)
    (check,) = engine.fetch(check_pool_invariant(payment_adjustment=out)).to_pylist()
    assert not check["holds"]


def test_final_rule_illustration_one_billion(engine):
    # $1B pool base x 9% x 85% = $76.5M redistributed.
    got = _run(engine, [("X", 70.0, 600_000_000.0), ("Y", 40.0, 400_000_000.0)])
    assert got["X"]["pool_amount"] == pytest.approx(76_500_000.00, abs=0.005)


def test_neutral_participants_are_outside_pool_and_scaling(engine):
    got = _run(engine, WORKED + [("N", 90.0, 10_000_000.0)], neutral=("N",))
    assert got["N"]["adjustment_factor"] == 0.0 and got["N"]["transformed_final_score"] is None
    assert got["A"]["scaling_factor"] == pytest.approx(0.748939, abs=5e-7)


def test_risk_level_follows_the_payment_year(engine):
    got = _run(engine, WORKED, load_rules(2030))  # PaY 2032: 11% by default (asm-model.md §7.2)
    assert got["F"]["adjustment_factor"] == pytest.approx(-0.11)
    assert got["A"]["payment_year"] == 2032


cohort_rows = st.lists(
    st.tuples(st.sampled_from([0.0]) | st.floats(1.0, 100.0), st.floats(1_000.0, 2_000_000.0)),
    min_size=2, max_size=12,
).filter(lambda rows: any(score > 0 for score, _ in rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hf=cohort_rows, lbp=cohort_rows)
def test_properties(engine, hf, lbp):
    rules = load_rules(2027)
    rl = 0.09
    rows = [(f"H{i}", s, pb, "hf") for i, (s, pb) in enumerate(hf)] + [(f"L{i}", s, pb, "lbp") for i, (s, pb) in enumerate(lbp)]
    both = _run(engine, rows, rules)
    alone = _run(engine, [r for r in rows if r[3] == "hf"], rules)
    for npi, row in alone.items():  # cohorts are independent
        assert row["adjustment_factor"] == pytest.approx(both[npi]["adjustment_factor"], abs=1e-12)
    for cohort in ("hf", "lbp"):
        mine = sorted((r for r in both.values() if r["cohort"] == cohort), key=lambda r: r["final_score"])
        for r in mine:  # every factor within ±RL
            assert -rl - 1e-12 <= r["adjustment_factor"] <= rl + 1e-12
        for low, high in zip(mine, mine[1:]):  # monotone in final score
            assert low["adjustment_factor"] <= high["adjustment_factor"] + 1e-12
        raw = [rl * r["transformed_final_score"] * r["scaling_factor"] - rl for r in mine if r["final_score"] > 0]
        if all(-rl <= x <= rl for x in raw):  # §7.6: holds whenever no clamp binds
            net = sum(r["adjustment_amount"] for r in mine)
            assert net == pytest.approx(-0.15 * rl * sum(r["part_b_paid_amount"] for r in mine), abs=0.01 * len(mine))


def test_worked_example_on_each_backend(backend, engine_for):
    engine = engine_for(backend)
    stored = engine.save("participant_score", _participants(WORKED + [("Q", 61.0, 90_000.0, "lbp"),
                                                                      ("R", 0.0, 80_000.0, "lbp")]))
    got = {r["npi"]: r for r in engine.fetch(compute_payment_adjustment(participant_score=stored,
                                                                         rules=load_rules(2027))).to_pylist()}
    assert round(got["B"]["adjustment_amount"], 2) == pytest.approx(16_653.62, abs=0.001)
    assert got["Q"]["exchange_midpoint"] == pytest.approx(61.0) and got["R"]["adjustment_factor"] == pytest.approx(-0.09)

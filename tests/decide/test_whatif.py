"""What-if levers, break-even solver and Monte Carlo on a small demo run: with every lever at its baseline the
run's stored scores, AF and dollars come back; a favourable move never lowers the final score (hypothesis); the
Monte Carlo with the peer draw fixed to the run's cohort reproduces the deterministic payment result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.app.scenario_chain import explain_scenario
from openasm.decide.levers import LeverError, parse_setting
from openasm.decide.montecarlo import simulate
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import break_even, decision_for, parse_target, what_if


@pytest.fixture(scope="module")
def run(demo_output):
    return load_run_tables(demo_output / "run")


@pytest.fixture(scope="module")
def participants(run):
    rows = [r for r in run.rows("payment_adjustment") if not r["is_neutral"]]
    assert rows, "the demo run has no scored participant"
    return rows


@pytest.fixture(scope="module")
def decisions(run, participants):
    return {str(r["npi"]): decision_for(run, npi=str(r["npi"])) for r in participants}


def _close(a, b, tol=1e-9):
    if b is None:
        return np.isnan(a)
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def test_every_lever_at_baseline_reproduces_the_run(run, participants, decisions):
    stored_scores = {str(r["npi"]): r for r in run.rows("participant_score")}
    dollars = {}
    for d in run.rows("adjustment_dollars"):
        dollars[str(d["npi"])] = dollars.get(str(d["npi"]), 0.0) + d["payment_year_adjustment_amount"]
    for row in participants:
        npi = str(row["npi"])
        decision = decisions[npi]
        baseline = {name: lever.baseline for name, lever in decision.levers.items()}
        out = decision.evaluate(baseline)
        score = stored_scores[npi]
        assert _close(out.final_score[0, 0], score["final_score"]), npi
        assert _close(out.quality_pct[0, 0], score["quality_score_pct"]), npi
        assert _close(out.cost_pct[0, 0], score["cost_score_pct"]), npi
        assert _close(out.midpoint[0, 0], row["exchange_midpoint"]), npi
        assert _close(out.scaling_factor[0, 0], row["scaling_factor"]), npi
        assert _close(out.adjustment_factor[0, 0], row["adjustment_factor"], 1e-12), npi
        assert abs(out.dollars[0, 0] - dollars[npi]) < 0.005, npi


def test_a_tin_at_baseline_reproduces_its_dollars(run, participants):
    tin = str(participants[0]["tin"])
    decision = decision_for(run, tin=tin)
    out = decision.evaluate({})
    stored = sum(d["payment_year_adjustment_amount"] for d in run.rows("adjustment_dollars")
                 if str(d["npi"]) in decision.subject.npis)
    assert len(decision.subject.npis) == sum(1 for r in run.rows("payment_adjustment") if str(r["tin"]) == tin)
    assert abs(out.total_dollars[0] - stored) < 0.01


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          print_blob=False)
@given(data=st.data())
def test_a_favourable_move_never_lowers_the_final_score(decisions, data):
    npi = data.draw(st.sampled_from(sorted(decisions)))
    decision = decisions[npi]
    movable = sorted(n for n, lever in decision.levers.items() if lever.favourable)
    name = data.draw(st.sampled_from(movable))
    lever = decision.levers[name]
    a, b = sorted(data.draw(st.floats(lever.low, lever.high), label="value") for _ in range(2))
    # Another lever held anywhere in its range: monotonicity must hold away from the baseline too.
    other = data.draw(st.sampled_from(sorted(decision.levers)))
    held = {other: data.draw(st.floats(decision.levers[other].low, decision.levers[other].high))} \
        if other != name else {}
    low, high = (decision.evaluate({**held, name: v}) for v in (a, b))
    worse, better = (low, high) if lever.favourable > 0 else (high, low)
    if lever.moves_score:
        assert better.final_score[0, 0] >= worse.final_score[0, 0] - 1e-9
    assert better.adjustment_factor[0, 0] >= worse.adjustment_factor[0, 0] - 1e-12


def test_what_if_reports_differences_and_the_explain_chain(decisions):
    npi, decision = next(iter(decisions.items()))
    name = next(n for n in decision.levers if n.endswith(".rate"))
    lever = decision.levers[name]
    target = lever.high if lever.favourable > 0 else lever.low
    result = what_if(decision, {name: target})
    rows = {r["metric"]: r for r in result.rows(decision.subject.npis)}
    assert rows["final_score"]["difference"] >= 0
    assert rows["dollars"]["difference"] == pytest.approx(rows["dollars"]["scenario"] - rows["dollars"]["baseline"])
    chain = explain_scenario(decision, result.scenario)
    assert chain.step("final_score").value == pytest.approx(rows["final_score"]["scenario"])
    assert chain.step("adjustment_factor").value == pytest.approx(rows["adjustment_factor"]["scenario"])
    assert not [s.check for s in chain.steps if s.check and s.key in ("transformed_final_score", "adjustment_factor")]


def test_break_even_reaches_the_target_and_no_earlier_value_does(decisions):
    checked = 0
    for decision in decisions.values():
        base = float(decision.evaluate({}).total_dollars[0])
        for name, lever in decision.levers.items():
            if lever.favourable == 0 or lever.kind == "flag":
                continue
            best = float(decision.evaluate({name: lever.high if lever.favourable > 0 else lever.low}).total_dollars[0])
            if best - base < 1.0:
                continue
            # A target halfway to what the lever can reach alone: the solver must find it, and nothing earlier.
            target = parse_target(f"dollars>={base + (best - base) / 2:.2f}")
            result = next(r for r in break_even(decision, target) if r.lever == name)
            assert result.value is not None and not result.already_met, name
            assert target.reached(decision.evaluate({name: result.value}))[0]
            before = result.value - lever.favourable * (lever.high - lever.low) / 1000
            assert not target.reached(decision.evaluate({name: before}))[0]
            checked += 1
    assert checked, "no lever moves any demo participant's dollars"
    af_target = parse_target("af>=0")
    for decision in decisions.values():
        for result in break_even(decision, af_target):
            if result.value is not None:
                assert af_target.reached(decision.evaluate({result.lever: result.value}))[0]


def test_settings_and_targets_are_checked(decisions):
    decision = next(iter(decisions.values()))
    assert parse_setting("quality.q134.RATE=0.62") == ("quality.Q134.rate", 0.62)
    with pytest.raises(LeverError, match="unknown lever"):
        decision.evaluate({"quality.Q999.rate": 0.5})
    with pytest.raises(LeverError, match="outside"):
        decision.evaluate({next(n for n in decision.levers if n.endswith(".rate")): 1.5})
    with pytest.raises(LeverError, match="expected"):
        parse_target("af>0")
    assert parse_target("fs>=median").threshold is None


def test_monte_carlo_with_the_runs_cohort_reproduces_the_payment(run, decisions):
    for npi, decision in decisions.items():
        sim = simulate(decision, draws=40, seed=5, peers="run")
        stored = float(decision.subject.stored_dollars.sum())
        assert np.allclose(sim.dollars, stored, rtol=0, atol=0.005), npi
        row = next(r for r in run.rows("payment_adjustment") if str(r["npi"]) == npi)
        assert np.allclose(sim.adjustment_factor, row["adjustment_factor"], atol=1e-12)
        assert np.allclose(sim.midpoint, row["exchange_midpoint"], rtol=1e-12)


def test_monte_carlo_is_reproducible_for_a_seed_and_summarised(decisions):
    decision = next(iter(decisions.values()))
    one = simulate(decision, draws=600, seed=11, threads=1)
    two = simulate(decision, draws=600, seed=11, threads=2)
    assert np.array_equal(one.dollars, two.dollars)
    assert not np.array_equal(one.dollars, simulate(decision, draws=600, seed=12).dollars)
    summary = one.summary()
    p = summary["dollars"]
    assert p["p5"] <= p["p25"] <= p["p50"] <= p["p75"] <= p["p95"]
    assert 0.0 <= summary["probability_af_negative"] <= 1.0
    assert summary["standard_error_p50_dollars"] > 0 and summary["standard_error_mean_dollars"] > 0
    assert summary["convergence"][-1]["draws"] == 600
    assert summary["levers"] == sorted(summary["levers"], key=lambda r: -abs(r["dollars"]))

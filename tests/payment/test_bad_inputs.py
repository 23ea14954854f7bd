"""Issue 9, scoring and payment: inputs that once flowed through silently. A NaN Part B amount made pool and
scaling factor NaN and handed every FS > 0 participant AF = +RL; an undefined scaling factor (no Part B behind any
FS > 0 participant) was clamped to +RL too; category scores outside 0-100 were accepted; a binding clamp was
visible only in pool_invariant_check. Each case below failed before the fix."""

from __future__ import annotations

import math

import ibis
import pyarrow as pa
import pytest

from openasm.explain.chain import explain_participant
from openasm.payment.adjustment import (
    check_pool_invariant_conditions,
    compute_payment_adjustment,
    invalid_payment_inputs,
    pool_invariant_notes,
)
from openasm.rules import load_rules
from openasm.runs.stage import InputError, refuse_invalid
from openasm.scoring.final_score import invalid_score_inputs

RULES = load_rules(2027)


def _scores(rows: list[tuple[str, float, float]], cohort: str = "hf") -> ibis.Table:
    # Arrow keeps NaN as NaN (a dict goes through pandas, which would turn it into null).
    return ibis.memtable(pa.table({"cohort": [cohort] * len(rows), "npi": [r[0] for r in rows],
                                   "final_score": [r[1] for r in rows], "part_b_paid_amount": [r[2] for r in rows],
                                   "is_neutral": [False] * len(rows)}))


def test_non_finite_and_negative_payment_inputs_are_refused_naming_the_participant(backend, engine_for) -> None:
    engine = engine_for(backend)
    scores = _scores([("1000000001", 60.0, float("nan")), ("1000000002", float("inf"), 1000.0),
                      ("1000000003", 70.0, -5.0), ("1000000004", 101.0, 10.0), ("1000000005", 50.0, 2000.0)])
    found = engine.fetch(invalid_payment_inputs(participant_score=scores)).to_pylist()
    assert sorted((r["npi"], r["column_name"]) for r in found) == [
        ("1000000001", "part_b_paid_amount"), ("1000000002", "final_score"), ("1000000003", "part_b_paid_amount"),
        ("1000000004", "final_score")]
    with pytest.raises(InputError) as err:
        refuse_invalid(engine, invalid_payment_inputs(participant_score=scores), "payment inputs")
    assert "4 invalid value(s)" in str(err.value) and "npi 1000000001" in str(err.value)
    assert "part_b_paid_amount" in str(err.value) and "1000000005" not in str(err.value)


def test_an_undefined_scaling_factor_leaves_af_empty_not_plus_rl(engine_for) -> None:
    engine = engine_for("duckdb")
    rows = [("1000000001", 60.0, 0.0), ("1000000002", 80.0, 0.0), ("1000000003", 0.0, 5000.0)]
    adjusted = engine.save("adj", compute_payment_adjustment(participant_score=_scores(rows), rules=RULES))
    got = {r["npi"]: r for r in engine.fetch(adjusted).to_pylist()}
    assert got["1000000001"]["scaling_factor"] is None
    assert got["1000000001"]["adjustment_factor"] is None and got["1000000002"]["adjustment_factor"] is None
    assert got["1000000003"]["adjustment_factor"] == pytest.approx(-0.09)  # FS = 0 keeps -RL
    check = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjusted, rules=RULES)).to_pylist()[0]
    assert check["scaling_factor_defined"] is False and check["applies"] is False
    assert any("scaling factor is undefined" in note for note in pool_invariant_notes([check]))


def test_a_binding_clamp_reports_the_unpaid_pool(engine_for) -> None:
    engine = engine_for("duckdb")
    # One FS > 0 participant with little Part B beside a large FS = 0 base: SF = 0.85 x 1,001,000 / 1,000 = 850.85,
    # so the unclamped AF is far above +RL.
    rows = [("1000000001", 90.0, 1_000.0), ("1000000002", 0.0, 1_000_000.0)]
    adjusted = engine.save("adj", compute_payment_adjustment(participant_score=_scores(rows), rules=RULES))
    got = {r["npi"]: r for r in engine.fetch(adjusted).to_pylist()}
    assert got["1000000001"]["adjustment_factor"] == pytest.approx(0.09)
    check = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjusted, rules=RULES)).to_pylist()[0]
    pool = 0.85 * 0.09 * 1_001_000.0
    assert check["clamp_binds"] and check["pool_amount"] == pytest.approx(pool)
    assert check["unpaid_pool_amount"] == pytest.approx(pool - 0.18 * 1_000.0)  # paid back: (AF + RL) x PB
    notes = pool_invariant_notes([check])
    assert any("clamp binds" in n and f"${pool - 180.0:,.2f}" in n for n in notes)
    score = {"performance_year": 2027, "npi": "1000000001", "tin": "123456789", "cohort": "hf", "final_score": 90.0,
             "quality_score_pct": 90.0, "cost_score_pct": 90.0, "min_submission_met": True}
    expl = explain_participant(npi="1000000001", rules=RULES, participant_score=[score],
                               payment_adjustment=[got["1000000001"]], pool_invariant_check=[check])
    step = next(s for s in expl.steps if s.key == "adjustment_factor")
    assert "the clamp binds" in step.note and f"${pool - 180.0:,.2f}" in step.note


def test_category_scores_outside_0_100_are_refused(backend, engine_for) -> None:
    engine = engine_for(backend)
    quality = ibis.memtable(pa.table({"npi": ["1000000001", "1000000002", "1000000003"],
                                      "quality_score_pct": [105.0, 55.0, float("nan")]}))
    cost = ibis.memtable(pa.table({"rendering_npi": ["1000000002", "1000000004"], "achievement_points": [12.0, 7.5]}))
    found = engine.fetch(invalid_score_inputs(quality_category_score=quality, measure_score=cost,
                                              rules=RULES)).to_pylist()
    assert sorted((r["npi"], r["column_name"]) for r in found) == [
        ("1000000001", "quality_score_pct"), ("1000000002", "achievement_points"),
        ("1000000003", "quality_score_pct")]
    assert all(r["value"] is None or math.isnan(r["value"]) or r["value"] > 10 for r in found)

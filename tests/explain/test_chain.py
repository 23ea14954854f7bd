"""The explanation chain for participant A of asm-model.md §9: each number from measures to dollars, its formula
and parameters, and the flags on numbers that rest on secondary or default values."""

from __future__ import annotations

import pyarrow as pa
import pytest

from openasm.explain.chain import ExplainError, explain_participant
from openasm.rules import load_rules

from .fixtures import A, F, tables

ORDER = [
    "quality_measure:005:mips_cqm", "quality_measure:008:mips_cqm", "quality_measure:236:mips_cqm",
    "quality_measure:377:mips_cqm", "quality_measure:492:administrative_claims", "quality_category",
    "cost_measure:COST_HF_1", "cost_category", "ia_deduction", "pi_deduction", "raw_score", "bonus",
    "final_score", "part_b_base", "cohort_median", "transformed_final_score", "risk_level", "pool",
    "scaling_factor", "adjustment_factor", "multiplier", "performance_year_dollars", "payment_year_dollars",
]


def _explain(npi=A, rules=None, **changes):
    data = {**tables(), **changes}
    return explain_participant(npi=npi, rules=rules or load_rules(2027), **data)


def test_chain_from_measures_to_dollars():
    expl = _explain()
    assert [s.key for s in expl.steps] == ORDER
    assert (expl.performance_year, expl.payment_year, expl.cohort) == (2027, 2029, "hf")
    value = {s.key: s.value for s in expl.steps}
    assert value["quality_measure:008:mips_cqm"] == pytest.approx(8.46)
    assert value["quality_category"] == pytest.approx(60.2)     # 30.10 / 50 × 100
    assert value["cost_category"] == pytest.approx(68.0)        # 6.80 points × 10
    assert value["raw_score"] == pytest.approx(54.1)            # 0.5 × 60.2 + 0.5 × 68.0 − 0 − 10
    assert value["cohort_median"] == pytest.approx(54.1)
    assert value["transformed_final_score"] == pytest.approx(1.0)
    assert value["pool"] == pytest.approx(141_525.00)           # 0.85 × 0.09 × 1,850,000
    assert value["scaling_factor"] == pytest.approx(0.748939, abs=5e-7)
    assert value["adjustment_factor"] == pytest.approx(-0.022595, abs=5e-7)
    assert round(value["performance_year_dollars"], 2) == pytest.approx(-6_778.64, abs=0.001)
    assert round(value["payment_year_dollars"], 2) == pytest.approx(-7_230.55, abs=0.001)  # × $320,000
    assert all(not s.check for s in expl.steps), [s.check for s in expl.steps if s.check]
    assert "0.50 × 60.20 + 0.50 × 68.00 − 0 − 10" in expl.step("raw_score").formula
    assert expl.step("cost_measure:COST_HF_1").value == pytest.approx(6.8)  # the TIN/NPI row, not the TIN row
    assert expl.step("payment_year_dollars").display == "-$7,230.55"
    assert "estimate" not in expl.step("payment_year_dollars").label


def test_parameters_carry_value_evidence_and_citation():
    expl = _explain()
    (rl,) = expl.step("risk_level").parameters[:1]
    assert (rl.name, rl.value, rl.evidence, rl.lookup_year) == ("payment.risk_level", "0.09", "secondary", 2029)
    assert "42 CFR 512.750(c)(1)(i)" in rl.citations
    names = {p.name for p in expl.parameters()}
    assert {"quality.weight", "cost.weight", "payment.retention_rate", "payment.exchange_slope_k",
            "payment.af_clamp", "ia_pi.pi_deduction", "payment.adjusted_claims_scope"} <= names
    scope = next(p for p in expl.parameters() if p.name == "payment.adjusted_claims_scope")
    assert scope.evidence == "reg" and not scope.is_non_reg


def test_flags_follow_secondary_and_default_values():
    expl = _explain()
    assert expl.step("risk_level").own_non_reg             # RL 9% for PaY 2029 is secondary
    assert expl.step("transformed_final_score").own_non_reg  # k = 0.1 is a default
    multiplier = expl.step("multiplier")
    assert not multiplier.parameters and not multiplier.own_non_reg and multiplier.rests_on_non_reg  # inherited
    assert expl.flagged_steps() == list(expl.steps)
    # Without a cost measure row, the cost category uses only cost.measures (reg) and depends on nothing
    bare = _explain(measure_score=[])
    cost = bare.step("cost_category")
    assert not cost.own_non_reg and not cost.rests_on_non_reg and "no cost measure row" in cost.note
    # An override is not regulation text either
    overridden = _explain(rules=load_rules(2027, {"payment.adjusted_claims_scope": "covered_professional_services"}))
    assert overridden.step("part_b_base").own_non_reg


def _with_a(rows, **values):
    return [{**r, **values} if r["npi"] == A else r for r in rows]


def test_tin_level_cost_and_neutral_participant():
    scores = _with_a(tables()["participant_score"], cost_entity_level="tin", cost_measure_id="COST_HF_1",
                     cost_score_pct=60.0, raw_score=50.1, final_score=50.1)  # 0.5 × 60.2 + 0.5 × 60 − 10
    expl = _explain(participant_score=scores)
    assert expl.step("cost_measure:COST_HF_1").value == pytest.approx(6.0)  # the TIN row
    assert not expl.step("cost_category").check and not expl.step("raw_score").check
    neutral = _with_a(tables()["participant_score"], is_neutral=True, final_score=None, raw_score=None,
                      neutral_reason="no scorable category")
    adjustments = _with_a(tables()["payment_adjustment"], is_neutral=True, adjustment_factor=0.0, multiplier=1.0,
                          transformed_final_score=None, adjustment_amount=0.0)
    expl = _explain(participant_score=neutral, payment_adjustment=adjustments, adjustment_dollars=[])
    assert "neutral (no scorable category)" in expl.step("final_score").note
    assert expl.step("adjustment_factor").formula == "neutral participant: AF = 0"
    assert expl.step("payment_year_dollars").value == 0.0
    assert all(not s.check for s in expl.steps), [s.check for s in expl.steps if s.check]


def test_zero_score_participant():
    expl = _explain(npi=F)
    assert expl.step("transformed_final_score").formula.startswith("not applicable")
    assert expl.step("adjustment_factor").value == pytest.approx(-0.09)
    assert "AF = -1 × RL" in expl.step("adjustment_factor").formula
    dollars = expl.step("payment_year_dollars")  # no adjustment_dollars row for F: estimate, labelled
    assert dollars.value == pytest.approx(-0.09 * 150_000.0) and "estimate" in dollars.label
    assert dollars.note == "is_estimate" and "payment.part_b_growth_rate" in {p.name for p in dollars.parameters}


def test_mismatch_between_stored_and_recomputed_values_is_reported():
    rows = tables()["participant_score"]
    rows[0] = {**rows[0], "raw_score": 60.0}
    check = _explain(participant_score=rows).step("raw_score").check
    assert "recomputed 54.1" in check and "60" in check


def test_arrow_tables_are_accepted():
    arrow = {name: pa.Table.from_pylist(rows) for name, rows in tables().items()}
    expl = explain_participant(npi=A, rules=load_rules(2027), **arrow)
    assert expl.step("final_score").value == pytest.approx(54.1)


def test_missing_rows_are_named():
    with pytest.raises(ExplainError, match="no participant_score row for performance year 2028"):
        _explain(rules=load_rules(2028))
    with pytest.raises(ExplainError, match="no payment_adjustment row"):
        _explain(payment_adjustment=[r for r in tables()["payment_adjustment"] if r["npi"] != A])
    twice = tables()["participant_score"]
    with pytest.raises(ExplainError, match="2 participant_score rows"):
        _explain(participant_score=twice + twice[:1])

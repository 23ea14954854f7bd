"""Run payment (§512.750): Part B base of the PY, transformed scores, pool, scaling factor, adjustment factors
(invariant checked), dollars on the PaY's covered services per participant and TIN, and the 2027–2031
projection."""

from __future__ import annotations

from pathlib import Path

import ibis

from openasm.engine import Engine
from openasm.payment.adjustment import (
    check_pool_invariant_conditions,
    compute_payment_adjustment,
    enforce_pool_invariant,
    invalid_payment_inputs,
    pool_invariant_notes,
)
from openasm.payment.dollars import compute_adjustment_dollars, roll_up_dollars_by_tin
from openasm.payment.part_b_base import compute_part_b_base
from openasm.payment.projection import (
    SUBJECT_COLUMNS,
    project_adjustments,
    projection_rules,
)
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, no_step, publish, refuse_invalid


def run_payment(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: None = None,
                step: Step | None = None) -> StageResult:
    """§512.750: Part B base of the PY, transformed scores, pool, scaling factor, adjustment factors (invariant
    checked), dollars on the PaY's covered services per participant and TIN, and the 2027–2031 projection."""
    say = step or no_step
    result = StageResult()
    if not engine.has_table("participant_score"):
        raise ValueError("no participant_score table in this run: run `openasm score` first")
    score = engine.table("participant_score")
    score = score.filter(score.performance_year == rules.performance_year)
    status = engine.table("claim_line_status")
    say("Part B base")
    based = engine.save("payment__int_part_b_base", compute_part_b_base(
        claim_line_status=status, participant=score, rules=rules))
    say("adjustment factors")
    scored = based.mutate(final_score=based.final_score.fill_null(0.0))
    refuse_invalid(engine, invalid_payment_inputs(participant_score=scored), "payment inputs")
    adjusted = compute_payment_adjustment(participant_score=scored, rules=rules)
    # Spark reads rule literals as DECIMAL: the published table keeps one type on every backend.
    adjustment = publish(engine, run_dir, result, "payment_adjustment",
                         adjusted.cast({"risk_level": "float64", "retention_rate": "float64"}))
    conditions = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjustment, rules=rules))
    not_applicable = enforce_pool_invariant(conditions.to_pylist())
    publish(engine, run_dir, result, "pool_invariant_check", ibis.memtable(conditions))
    result.notes.extend(pool_invariant_notes(not_applicable))
    say("dollars")
    dollars = publish(engine, run_dir, result, "adjustment_dollars", compute_adjustment_dollars(
        payment_adjustment=adjustment, rules=rules, claim_line_status=status))
    publish(engine, run_dir, result, "adjustment_dollars_by_tin", roll_up_dollars_by_tin(adjustment_dollars=dollars))
    say("2027-2031 projection")
    subject = adjustment.filter(~adjustment.is_neutral).select(
        subject_level=ibis.literal("npi"), subject_id=adjustment.npi, tin=adjustment.tin, cohort=adjustment.cohort,
        final_score=adjustment.final_score, part_b_paid_amount=adjustment.part_b_paid_amount,
        base_year=ibis.literal(rules.performance_year).cast("int32"))
    peers = adjustment.select("cohort", "npi", "final_score", "part_b_paid_amount", "is_neutral")
    # The run's overrides (`--set`) hold in every projected year.
    overrides = {v.name: v.value for v in rules.all() if v.overridden}
    years = projection_rules(overrides=overrides or None)
    publish(engine, run_dir, result, "payment_projection", project_adjustments(
        subject=subject.select(*SUBJECT_COLUMNS), rules_by_year=years, cohort_scores=peers))
    return result

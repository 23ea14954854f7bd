"""Run payment (§512.750): Part B base of the PY, transformed scores, pool, scaling factor, adjustment factors
(invariant checked), dollars on the PaY's covered services per participant and TIN, and the 2027–2031
projection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir

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
from openasm.payment.remittance_base import CLAIMS, REMITTANCES, use_remittance_base
from openasm.rules import RulesForYear
from openasm.runs.remittance import REMITTANCE_BASE
from openasm.runs.stage import StageResult, Step, no_step, publish, refuse_invalid

PART_B_BASES = ("auto", CLAIMS, REMITTANCES)


@dataclass(frozen=True)
class PaymentInputs:
    """Which Part B base the pool uses: `claims` (final-action claims), `remittances` (the run's
    `remittance_part_b_base` from `openasm ingest-835`, for the NPIs it covers; the claims base for the others),
    or `auto` (remittances when the run holds them for the performance year, else claims)."""

    part_b_base: str = "auto"


def _remittance_base(engine: Engine, rules: RulesForYear, choice: str) -> ir.Table | None:
    """The run's remittance base for the performance year when `choice` asks for it (None: claims only)."""
    if choice not in PART_B_BASES:
        raise ValueError(f"--part-b-base {choice!r}: choose one of {', '.join(PART_B_BASES)}")
    if choice == CLAIMS:
        return None
    table = engine.table(REMITTANCE_BASE) if engine.has_table(REMITTANCE_BASE) else None
    if table is not None and engine.fetch(table.filter(table.service_year == rules.performance_year).limit(1)
                                          ).num_rows == 0:
        table = None
    if table is None and choice == REMITTANCES:
        raise ValueError(f"--part-b-base remittances: the run holds no {REMITTANCE_BASE} for performance year "
                         f"{rules.performance_year}: run `openasm ingest-835 FILES --py {rules.performance_year}` "
                         "first")
    return table


def run_payment(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: PaymentInputs | None = None,
                step: Step | None = None) -> StageResult:
    """§512.750: Part B base of the PY, transformed scores, pool, scaling factor, adjustment factors (invariant
    checked), dollars on the PaY's covered services per participant and TIN, and the 2027–2031 projection."""
    say = step or no_step
    result = StageResult()
    choice = (inputs or PaymentInputs()).part_b_base
    if not engine.has_table("participant_score"):
        raise ValueError("no participant_score table in this run: run `openasm score` first")
    score = engine.table("participant_score")
    score = score.filter(score.performance_year == rules.performance_year)
    status = engine.table("claim_line_status")
    say("Part B base")
    remittance_base = _remittance_base(engine, rules, choice)
    based = engine.save("payment__int_part_b_base", use_remittance_base(
        participant_base=compute_part_b_base(claim_line_status=status, participant=score, rules=rules),
        remittance_base=remittance_base, year=rules.performance_year))
    sources = {row["part_b_base_source"]: row["n"] for row in engine.fetch(
        based.group_by("part_b_base_source").agg(n=based.count())).to_pylist()}
    result.notes.append("Part B base: " + ", ".join(f"{source} for {n:,} participant(s)" for source, n in
                                                     sorted(sources.items())) + (
        f" (remittances: {REMITTANCE_BASE} from `openasm ingest-835`)" if REMITTANCES in sources else ""))
    result.entries["payment"] = {"part_b_base": choice, "participants_by_part_b_base": sources}
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
    # Its rows describe later years too: the run that wrote a row is its base_year.
    publish(engine, run_dir, result, "payment_projection", project_adjustments(
        subject=subject.select(*SUBJECT_COLUMNS), rules_by_year=years, cohort_scores=peers), run_year="base_year")
    return result

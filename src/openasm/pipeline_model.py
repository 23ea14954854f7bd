"""Compose the model stages over a run folder: quality and final scores (`run_score`), then payment adjustments,
dollars and the 2027–2031 projection (`run_payment`). Executes and writes; the stages stay pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.engine import Engine
from openasm.pipeline import StageResult, Step, publish
from openasm.payment.adjustment import (
    check_pool_invariant_conditions,
    compute_payment_adjustment,
    enforce_pool_invariant,
)
from openasm.payment.dollars import compute_adjustment_dollars, roll_up_dollars_by_tin
from openasm.payment.part_b_base import compute_part_b_base
from openasm.payment.projection import SUBJECT_COLUMNS, project_adjustments, projection_rules
from openasm.quality.aggregate import MEASURE_AGGREGATE_SCHEMA
from openasm.rules import RulesForYear
from openasm.scoring.final_score import score_participants
from openasm.scoring.ia_pi_attestation import read_attestation
from openasm.scoring.quality_benchmarks import read_mips_benchmark_file
from openasm.scoring.quality_category import score_quality


@dataclass
class ScoreInputs:
    """Files the scoring stage reads besides the run's tables; each is optional."""

    attestation: Path | None = None
    euc: Path | None = None
    practice_size: Path | None = None
    mips_benchmark: Path | None = None


def _csv_table(path: Path, text_columns: tuple[str, ...]) -> ir.Table:
    present = pacsv.read_csv(path, read_options=pacsv.ReadOptions(), convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in text_columns}))
    return ibis.memtable(present)


def _participants_of_year(engine: Engine, rules: RulesForYear) -> ir.Table:
    if not engine.has_table("participant"):
        raise ValueError("no participant table in this run: run `openasm participate` first")
    participant = engine.table("participant")
    return participant.filter(participant.performance_year == rules.performance_year)


def run_participant_list_comparison(engine: Engine, rules: RulesForYear, out_dir: Path, list_path: Path,
                                    step: Step | None = None) -> StageResult:
    """§512.710: the run's participant table against a CMS ASM participant list (`participant_list_comparison`)."""
    from openasm.participation.participant_list import (
        comparable_list,
        compare_with_participant_list,
        read_participant_list,
    )

    result = StageResult()
    listed = ibis.memtable(comparable_list(read_participant_list(list_path)))
    publish(engine, out_dir, result, "participant_list_comparison", compare_with_participant_list(
        participant=engine.table("participant"), participant_list=listed, performance_year=rules.performance_year))
    return result


def run_score(engine: Engine, rules: RulesForYear, out_dir: Path, inputs: ScoreInputs | None = None,
              step: Step | None = None) -> StageResult:
    """§512.725–§512.745: quality benchmarks, measure points and category score; cost category; IA/PI
    deductions; final score per participant (`participant_score`)."""
    inputs = inputs or ScoreInputs()
    say = step or (lambda _text: None)
    result = StageResult()
    participant = _participants_of_year(engine, rules)
    if engine.has_table("measure_aggregate"):
        aggregate = engine.table("measure_aggregate")
    else:
        say("no quality results in this run (run `openasm quality`): every participant misses the minimum "
            "submission")
        aggregate = ibis.memtable(MEASURE_AGGREGATE_SCHEMA.empty_table())
    if not engine.has_table("measure_score"):
        raise ValueError("no cost measure scores in this run: run `openasm cost` first")
    say("quality category")
    mips = ibis.memtable(read_mips_benchmark_file(inputs.mips_benchmark)) if inputs.mips_benchmark else None
    quality = score_quality(measure_aggregate=aggregate, participant=participant, rules=rules, mips_benchmark=mips,
                            materialize=lambda name, expr: publish(engine, out_dir, result, name, expr))
    say("IA/PI attestations")
    if inputs.attestation is not None:
        intake = read_attestation(inputs.attestation, rules)
        publish(engine, out_dir, result, "attestation_quarantine", ibis.memtable(intake.quarantine))
        attestation, items = intake.attestation, intake.attestation_item
    else:
        say("no IA/PI attestation file: every participant takes the full IA and PI deductions")
        attestation, items = read_attestation_schema(rules)
    euc = _csv_table(inputs.euc, ("tin", "npi")) if inputs.euc else None
    size = _csv_table(inputs.practice_size, ("tin",)) if inputs.practice_size else None
    say("final scores")
    publish(engine, out_dir, result, "participant_score", score_participants(
        participant=participant, quality_category_score=quality["quality_category_score"],
        measure_score=engine.table("measure_score"), attestation=ibis.memtable(attestation),
        attestation_item=ibis.memtable(items), rules=rules, euc=euc, practice_size=size))
    return result


def read_attestation_schema(rules: RulesForYear) -> tuple[pa.Table, pa.Table]:
    """Empty attestation tables in the intake's schema (no file: nothing attested)."""
    from openasm.scoring.ia_pi_attestation import ATTESTATION_SCHEMA, ITEM_SCHEMA

    return ATTESTATION_SCHEMA.empty_table(), ITEM_SCHEMA.empty_table()


def run_payment(engine: Engine, rules: RulesForYear, out_dir: Path, step: Step | None = None) -> StageResult:
    """§512.750: Part B base of the PY, transformed scores, pool, scaling factor, adjustment factors (invariant
    checked), dollars on the PaY's covered services per participant and TIN, and the 2027–2031 projection."""
    say = step or (lambda _text: None)
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
    adjusted = compute_payment_adjustment(
        participant_score=based.mutate(final_score=based.final_score.fill_null(0.0)), rules=rules)
    # Spark reads rule literals as DECIMAL: the published table keeps one type on every backend.
    adjustment = publish(engine, out_dir, result, "payment_adjustment",
                         adjusted.cast({"risk_level": "float64", "retention_rate": "float64"}))
    conditions = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjustment, rules=rules))
    not_applicable = enforce_pool_invariant(conditions.to_pylist())
    publish(engine, out_dir, result, "pool_invariant_check", ibis.memtable(conditions))
    for row in not_applicable:
        say(f"cohort {row['cohort']}: the pool invariant does not apply this year (clamp binds or no positive "
            f"score); see pool_invariant_check")
    say("dollars")
    dollars = publish(engine, out_dir, result, "adjustment_dollars", compute_adjustment_dollars(
        payment_adjustment=adjustment, rules=rules, claim_line_status=status))
    publish(engine, out_dir, result, "adjustment_dollars_by_tin", roll_up_dollars_by_tin(adjustment_dollars=dollars))
    say("2027-2031 projection")
    subject = adjustment.filter(~adjustment.is_neutral).select(
        subject_level=ibis.literal("npi"), subject_id=adjustment.npi, tin=adjustment.tin, cohort=adjustment.cohort,
        final_score=adjustment.final_score, part_b_paid_amount=adjustment.part_b_paid_amount,
        base_year=ibis.literal(rules.performance_year).cast("int32"))
    peers = adjustment.select("cohort", "npi", "final_score", "part_b_paid_amount", "is_neutral")
    # The run's overrides (`--set`) hold in every projected year.
    overrides = {v.name: v.value for v in rules.all() if v.overridden}
    years = projection_rules(overrides=overrides or None)
    publish(engine, out_dir, result, "payment_projection", project_adjustments(
        subject=subject.select(*SUBJECT_COLUMNS), rules_by_year=years, cohort_scores=peers))
    return result


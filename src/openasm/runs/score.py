"""Run scoring (§512.725–§512.745): quality benchmarks, measure points and category score; cost category; IA/PI
deductions; the final score per participant (`participant_score`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.engine import Engine
from openasm.quality.aggregate import MEASURE_AGGREGATE_SCHEMA
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, no_step, publish, refuse_invalid, year_rows
from openasm.scoring.benchmark_file import read_mips_benchmark_file
from openasm.scoring.final_score import invalid_score_inputs, score_participants
from openasm.scoring.ia_pi_attestation import (
    ATTESTATION_SCHEMA,
    ITEM_SCHEMA,
    read_attestation,
)
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


def run_score(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: ScoreInputs | None = None,
              step: Step | None = None) -> StageResult:
    """§512.725–§512.745: quality benchmarks, measure points and category score; cost category; IA/PI
    deductions; final score per participant (`participant_score`)."""
    inputs = inputs or ScoreInputs()
    say = step or no_step
    result = StageResult()
    participant = _participants_of_year(engine, rules)
    if engine.has_table("measure_aggregate"):
        aggregate = year_rows(engine, "measure_aggregate", rules.performance_year)
    else:
        say("no quality results in this run (run `openasm quality`): every participant misses the minimum "
            "submission")
        aggregate = ibis.memtable(MEASURE_AGGREGATE_SCHEMA.empty_table())
    if not engine.has_table("measure_score"):
        raise ValueError("no cost measure scores in this run: run `openasm cost` first")
    say("quality category")
    mips = ibis.memtable(read_mips_benchmark_file(inputs.mips_benchmark)) if inputs.mips_benchmark else None
    quality = score_quality(measure_aggregate=aggregate, participant=participant, rules=rules, mips_benchmark=mips,
                            materialize=lambda name, expr: publish(engine, run_dir, result, name, expr))
    say("IA/PI attestations")
    if inputs.attestation is not None:
        intake = read_attestation(inputs.attestation, rules)
        publish(engine, run_dir, result, "attestation_quarantine", ibis.memtable(intake.quarantine))
        attestation, items = intake.attestation, intake.attestation_item
    else:
        say("no IA/PI attestation file: every participant takes the full IA and PI deductions")
        attestation, items = ATTESTATION_SCHEMA.empty_table(), ITEM_SCHEMA.empty_table()
    euc = _csv_table(inputs.euc, ("tin", "npi")) if inputs.euc else None
    size = _csv_table(inputs.practice_size, ("tin",)) if inputs.practice_size else None
    say("final scores")
    measure_score = year_rows(engine, "measure_score", rules.performance_year)
    refuse_invalid(engine, invalid_score_inputs(quality_category_score=quality["quality_category_score"],
                                                measure_score=measure_score, rules=rules),
                   "category scores")
    publish(engine, run_dir, result, "participant_score", score_participants(
        participant=participant, quality_category_score=quality["quality_category_score"],
        measure_score=measure_score, attestation=ibis.memtable(attestation),
        attestation_item=ibis.memtable(items), rules=rules, euc=euc, practice_size=size))
    return result

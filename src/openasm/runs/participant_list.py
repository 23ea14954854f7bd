"""Compare the run's participant table with a CMS ASM participant list (§512.710)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis

from openasm.engine import Engine
from openasm.participation.participant_list import (
    comparable_list,
    compare_with_participant_list,
    read_participant_list,
)
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, publish


@dataclass(frozen=True)
class ParticipantListInputs:
    """The CMS ASM participant list file (CSV or Parquet)."""

    list_path: Path


def run_participant_list_comparison(engine: Engine, rules: RulesForYear, run_dir: Path,
                                    inputs: ParticipantListInputs, step: Step | None = None) -> StageResult:
    """§512.710: the run's participant table against a CMS ASM participant list (`participant_list_comparison`)."""
    result = StageResult()
    listed = ibis.memtable(comparable_list(read_participant_list(inputs.list_path)))
    publish(engine, run_dir, result, "participant_list_comparison", compare_with_participant_list(
        participant=engine.table("participant"), participant_list=listed, performance_year=rules.performance_year))
    return result

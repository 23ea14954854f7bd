"""Run the claims summary: final action resolved, spend by setting and specialty, claim versions, quarantine
reasons (the run summary page's tables)."""

from __future__ import annotations

from pathlib import Path

import ibis

from openasm.engine import Engine
from openasm.rules import RulesForYear
from openasm.runs.final_action import ensure_final_action
from openasm.runs.stage import StageResult, Step, publish
from openasm.summary.claim_spend import (
    count_claim_versions,
    summarize_spend_by_setting,
    summarize_spend_by_specialty,
)
from openasm.summary.quarantine import count_quarantine_reasons


def run_summary(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: None = None,
                step: Step | None = None) -> StageResult:
    """Resolve final action on claims and fills, then publish spend summaries and quarantine reasons."""
    claim_status, fill_status = ensure_final_action(engine)
    specialty_codes = ibis.memtable(rules.code_list("reference__medicare_specialty_codes"))
    result = StageResult()
    publish(engine, run_dir, result, "spend_by_setting",
            summarize_spend_by_setting(claim_line=claim_status, pharmacy_claim=fill_status))
    publish(engine, run_dir, result, "spend_by_specialty",
            summarize_spend_by_specialty(claim_line=claim_status, specialty_names=specialty_codes))
    publish(engine, run_dir, result, "claim_versions",
            count_claim_versions(claim_line=claim_status, pharmacy_claim=fill_status))
    publish(engine, run_dir, result, "quarantine_reasons", count_quarantine_reasons(quarantine=engine.table("quarantine")))
    return result

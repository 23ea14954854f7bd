"""Compose the grouper for both cost measures: qualifying services → trigger events → windows → episodes."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.codes import condition_dx_codes, measure_for_cohort
from openasm.episodes.qualifying import select_qualifying_services
from openasm.episodes.segments import segment_episodes
from openasm.episodes.triggers import confirm_trigger_events
from openasm.episodes.windows import build_attribution_windows
from openasm.rules import RulesForYear

COHORTS = ("hf", "lbp")


def group_episodes(
    *, claim_line: ir.Table, claim_diagnosis: ir.Table, beneficiary: ir.Table, enrollment: ir.Table,
    rules: RulesForYear, cohorts: tuple[str, ...] = COHORTS,
) -> dict[str, ir.Table]:
    """ebcm §3 for each cohort's measure. Returns tables `qualifying_service`, `trigger_event`,
    `attribution_window` and `episode` (all measures stacked, `measure_id` first)."""
    parts: dict[str, list[ir.Table]] = {"qualifying_service": [], "trigger_event": [], "attribution_window": [],
                                        "episode": []}
    for cohort in cohorts:
        measure_id = measure_for_cohort(rules, cohort)
        qualifying = select_qualifying_services(
            claim_line=claim_line, claim_diagnosis=claim_diagnosis,
            dx_codes=condition_dx_codes(rules, measure_id), measure_id=measure_id, rules=rules,
        )
        triggers = confirm_trigger_events(qualifying=qualifying, cohort=cohort, rules=rules)
        windows = build_attribution_windows(
            qualifying=qualifying, triggers=triggers, beneficiary=beneficiary, enrollment=enrollment, rules=rules
        )
        episodes = segment_episodes(attribution_window=windows, rules=rules)
        for name, table in (("qualifying_service", qualifying), ("trigger_event", triggers),
                            ("attribution_window", windows), ("episode", episodes)):
            parts[name].append(table)
    return {name: ibis.union(*tables) if len(tables) > 1 else tables[0] for name, tables in parts.items()}

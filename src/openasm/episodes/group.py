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


def _stacked(tables: list[ir.Table]) -> ir.Table:
    return ibis.union(*tables) if len(tables) > 1 else tables[0]


def select_cohort_qualifying_services(
    *, claim_line: ir.Table, claim_diagnosis: ir.Table, rules: RulesForYear, cohorts: tuple[str, ...] = COHORTS,
) -> ir.Table:
    """ebcm §3.1 for each cohort's measure: qualifying services, all measures stacked (`measure_id` first)."""
    measures = [measure_for_cohort(rules, cohort) for cohort in cohorts]
    return _stacked([
        select_qualifying_services(claim_line=claim_line, claim_diagnosis=claim_diagnosis,
                                   dx_codes=condition_dx_codes(rules, measure_id), measure_id=measure_id, rules=rules)
        for measure_id in measures])


def build_cohort_windows(
    *, qualifying_service: ir.Table, beneficiary: ir.Table, enrollment: ir.Table, rules: RulesForYear,
    cohorts: tuple[str, ...] = COHORTS,
) -> dict[str, ir.Table]:
    """ebcm §3.2 (trigger events) and §3.4 (attribution windows) for each cohort's measure from the stacked
    qualifying services (a stored table: a runner computes them once). Returns `trigger_event` and
    `attribution_window`, all measures stacked."""
    triggers, windows = [], []
    for cohort in cohorts:
        measure_id = measure_for_cohort(rules, cohort)
        qualifying = qualifying_service.filter(qualifying_service.measure_id == measure_id)
        measure_triggers = confirm_trigger_events(qualifying=qualifying, cohort=cohort, rules=rules)
        triggers.append(measure_triggers)
        windows.append(build_attribution_windows(qualifying=qualifying, triggers=measure_triggers,
                                                 beneficiary=beneficiary, enrollment=enrollment, rules=rules))
    return {"trigger_event": _stacked(triggers), "attribution_window": _stacked(windows)}


def group_episodes(
    *, claim_line: ir.Table, claim_diagnosis: ir.Table, beneficiary: ir.Table, enrollment: ir.Table,
    rules: RulesForYear, cohorts: tuple[str, ...] = COHORTS,
) -> dict[str, ir.Table]:
    """ebcm §3 for each cohort's measure. Returns tables `qualifying_service`, `trigger_event`,
    `attribution_window` and `episode` (all measures stacked, `measure_id` first). A runner storing each step
    calls the three steps itself, so that later steps read the stored tables."""
    qualifying = select_cohort_qualifying_services(claim_line=claim_line, claim_diagnosis=claim_diagnosis,
                                                   rules=rules, cohorts=cohorts)
    windows = build_cohort_windows(qualifying_service=qualifying, beneficiary=beneficiary, enrollment=enrollment,
                                   rules=rules, cohorts=cohorts)
    return {"qualifying_service": qualifying, **windows,
            "episode": segment_episodes(attribution_window=windows["attribution_window"], rules=rules)}

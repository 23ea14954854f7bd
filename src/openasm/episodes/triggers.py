"""Trigger events: a trigger claim confirmed by a second claim of the same practice (ebcm.md §3.1)."""

from __future__ import annotations

import ibis.expr.types as ir

from openasm.rules import RulesForYear

PAIR_LEVELS = ("tin", "npi")


def confirm_trigger_events(*, qualifying: ir.Table, cohort: str, rules: RulesForYear) -> ir.Table:
    """ebcm §3.1: each trigger line paired with a confirming line of the same beneficiary, on a different
    claim, billed by the same TIN (`episodes.trigger_pair_level` = tin; or the same NPI under that TIN = npi),
    dated `confirm_min_gap_days` to `confirm_window_days` (by cohort) after the trigger.

    Grain: measure x bene x TIN x trigger date. Columns: measure_id, bene_id, billing_tin, trigger_date,
    confirm_date (the earliest confirming date).
    """
    window_days = int(rules.cohort_value("episodes.confirm_window_days", cohort))
    min_gap_days = int(rules.value("episodes.confirm_min_gap_days"))
    level = rules.value("episodes.trigger_pair_level")
    if level not in PAIR_LEVELS:
        raise ValueError(f"episodes.trigger_pair_level: unsupported value {level!r}")
    triggers = qualifying.filter(qualifying.is_trigger).select(
        "measure_id", "bene_id", "billing_tin", "rendering_npi", "claim_id", trigger_date=qualifying.service_date
    )
    confirms = qualifying.filter(qualifying.is_confirm).select(
        c_bene_id=qualifying.bene_id, c_tin=qualifying.billing_tin, c_npi=qualifying.rendering_npi,
        c_claim_id=qualifying.claim_id, confirm_date=qualifying.service_date,
    )
    conditions = [
        triggers.bene_id == confirms.c_bene_id,
        triggers.billing_tin == confirms.c_tin,
        triggers.claim_id != confirms.c_claim_id,
    ]
    if level == "npi":
        conditions.append(triggers.rendering_npi == confirms.c_npi)
    pairs = triggers.join(confirms, conditions)
    gap = pairs.confirm_date.delta(pairs.trigger_date, unit="day")
    pairs = pairs.filter((gap >= min_gap_days) & (gap <= window_days))
    return pairs.group_by("measure_id", "bene_id", "billing_tin", "trigger_date").agg(
        confirm_date=pairs.confirm_date.min()
    )

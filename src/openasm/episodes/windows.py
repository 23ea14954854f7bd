"""Total attribution windows (TAWs): bene x TIN spans opened by a confirmed trigger (ebcm.md §3.2)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesForYear
from openasm.schema.months import year_month_start

DEATH_POLICIES = ("truncate", "exclude")


def _chain_events(qualifying: ir.Table, triggers: ir.Table) -> ir.Table:
    """Distinct service dates per measure x bene x TIN that can open (confirmed trigger) or extend a TAW."""
    reaffirm = qualifying.filter(qualifying.is_reaffirm).select(
        "measure_id", "bene_id", "billing_tin", event_date=qualifying.service_date,
        is_confirmed_trigger=ibis.literal(False),
    )
    opened = triggers.select(
        "measure_id", "bene_id", "billing_tin", event_date=triggers.trigger_date,
        is_confirmed_trigger=ibis.literal(True),
    )
    events = reaffirm.union(opened)
    return events.group_by("measure_id", "bene_id", "billing_tin", "event_date").agg(
        is_confirmed_trigger=events.is_confirmed_trigger.max()
    )


def _extending_windows(events: ir.Table, window_days: int) -> ir.Table:
    """§3.2 with `reaffirm_extends_window`: each reaffirming service inside the window moves its end to
    service date + window - 1, so a window is a chain of services no more than window - 1 days apart that
    starts at a confirmed trigger; it ends window - 1 days after the chain's last service."""
    keys = ["measure_id", "bene_id", "billing_tin"]
    ordered = ibis.window(group_by=keys, order_by="event_date")
    previous = events.event_date.lag().over(ordered)
    gap = events.event_date.delta(previous, unit="day")
    starts_chain = previous.isnull() | (gap > window_days - 1)
    events = events.mutate(_starts_chain=starts_chain.cast("int64"))
    chain_id = events._starts_chain.sum().over(ibis.cumulative_window(group_by=keys, order_by="event_date"))
    events = events.mutate(_chain=chain_id)
    opening = ibis.ifelse(events.is_confirmed_trigger, events.event_date, ibis.null("date"))
    chains = events.group_by(*keys, "_chain").agg(
        taw_start_date=opening.min(), last_service_date=events.event_date.max()
    )
    chains = chains.filter(chains.taw_start_date.notnull())
    return chains.select(
        *keys, "taw_start_date", "last_service_date",
        window_end_date=chains.last_service_date + ibis.interval(days=window_days - 1),
    )


def _fixed_windows(events: ir.Table, window_days: int, max_windows: int) -> ir.Table:
    """§3.2 without extension: a window lasts `window_days` from its trigger; the next confirmed trigger
    after it closes opens the next one. Resolved in at most `max_windows` passes (bounded by history)."""
    keys = ["measure_id", "bene_id", "billing_tin"]
    triggers = events.filter(events.is_confirmed_trigger).select(*keys, "event_date")
    found: list[ir.Table] = []
    remaining = triggers
    for _ in range(max_windows):
        first = remaining.group_by(*keys).agg(taw_start_date=remaining.event_date.min())
        first = first.mutate(window_end_date=first.taw_start_date + ibis.interval(days=window_days - 1))
        found.append(first)
        joined = remaining.join(first, keys)
        remaining = joined.filter(joined.event_date > joined.window_end_date).select(*keys, "event_date")
    windows = ibis.union(*found) if len(found) > 1 else found[0]
    return windows.mutate(last_service_date=windows.taw_start_date)


def build_attribution_windows(
    *, qualifying: ir.Table, triggers: ir.Table, beneficiary: ir.Table, enrollment: ir.Table, rules: RulesForYear
) -> ir.Table:
    """ebcm §3.2: open a TAW at each confirmed trigger outside a live window of the same bene x TIN, extend
    it by reaffirming services (`episodes.reaffirm_extends_window`), and truncate it at death
    (`episodes.death_policy` = truncate) and at the first month without Part A + Part B fee-for-service
    coverage after it opens (§6 eligibility). `qualifying` starts at the claims-history start (§3.2,
    `qualifying.history_start_date`), so a window that began earlier opens at its first confirmed trigger there.

    Grain: measure x bene x TIN x window start. Columns: taw_id, measure_id, bene_id, billing_tin,
    taw_start_date, taw_end_date, taw_end_reason (window | death | eligibility), last_service_date.
    """
    window_days = int(rules.value("episodes.attribution_window_days"))
    events = _chain_events(qualifying, triggers)
    if rules.value("episodes.reaffirm_extends_window"):
        windows = _extending_windows(events, window_days)
    else:
        history_years = int(rules.value("episodes.history_lookback_days")) // 365
        windows = _fixed_windows(events, window_days, max_windows=history_years + 3)
    death_policy = rules.value("episodes.death_policy")
    if death_policy not in DEATH_POLICIES:
        raise ValueError(f"episodes.death_policy: unsupported value {death_policy!r}")

    deaths = beneficiary.select(_death_bene_id=beneficiary.bene_id, _death_date=beneficiary.death_date)
    windows = windows.left_join(deaths, windows.bene_id == deaths._death_bene_id).drop("_death_bene_id")

    ineligible = enrollment.filter(
        ~(enrollment.has_part_a & enrollment.has_part_b & ~enrollment.is_medicare_advantage)
    )
    ineligible = ineligible.select(_gap_bene_id=ineligible.bene_id,
                                   _gap_month_start=year_month_start(ineligible.year_month))
    joined = windows.left_join(
        ineligible,
        (windows.bene_id == ineligible._gap_bene_id)
        & (ineligible._gap_month_start > windows.taw_start_date)
        & (ineligible._gap_month_start <= windows.window_end_date),
    )
    keys = ["measure_id", "bene_id", "billing_tin", "taw_start_date", "window_end_date", "last_service_date",
            "_death_date"]
    windows = joined.group_by(keys).agg(_first_gap=joined._gap_month_start.min())
    eligibility_end = windows._first_gap - ibis.interval(days=1)

    end = windows.window_end_date
    reason = ibis.literal("window")
    if death_policy == "truncate":
        died = windows._death_date.notnull() & (windows._death_date < end)
        reason = ibis.ifelse(died, "death", reason)
        end = ibis.ifelse(died, windows._death_date, end)
    lost = windows._first_gap.notnull() & (eligibility_end < end)
    reason = ibis.ifelse(lost, "eligibility", reason)
    end = ibis.ifelse(lost, eligibility_end, end)
    windows = windows.mutate(taw_end_date=end, taw_end_reason=reason)
    windows = windows.filter(windows.taw_end_date >= windows.taw_start_date)
    return windows.select(
        taw_id=ibis.literal("|").join([
            windows.measure_id, windows.bene_id, windows.billing_tin, windows.taw_start_date.cast("string")
        ]),
        measure_id=windows.measure_id, bene_id=windows.bene_id, billing_tin=windows.billing_tin,
        taw_start_date=windows.taw_start_date, taw_end_date=windows.taw_end_date,
        taw_end_reason=windows.taw_end_reason, last_service_date=windows.last_service_date,
    )

"""Cut total attribution windows into one-year episodes and assign them to a performance year (ebcm §3.3)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesForYear

# Upper bound on one-year segments in a window; windows are bounded by the claims history, far below this.
MAX_SEGMENTS_PER_WINDOW = 60


def segment_episodes(*, attribution_window: ir.Table, rules: RulesForYear) -> ir.Table:
    """ebcm §3.3: consecutive `episodes.episode_length_days` segments from the window start; the last (or a
    death/eligibility-cut) segment is shorter. Keeps segments that end in the performance year
    (`episodes.py_assignment` = episode_end); one shorter than `episodes.min_episode_days` is kept with its
    exclusion reason, so it stays visible in drill-down but is not scored.

    Grain: episode. Columns: episode_id, taw_id, measure_id, bene_id, billing_tin, taw_start_date,
    episode_start_date, episode_end_date, episode_days, segment_index, performance_year, episode_end_reason,
    exclusion_reason.
    """
    length = int(rules.value("episodes.episode_length_days"))
    min_days = int(rules.value("episodes.min_episode_days"))
    assignment = rules.value("episodes.py_assignment")
    if assignment != "episode_end":
        raise ValueError(f"episodes.py_assignment: unsupported value {assignment!r}")
    year = rules.performance_year
    segment = ibis.memtable({"segment_index": list(range(MAX_SEGMENTS_PER_WINDOW))})
    cut = attribution_window.cross_join(segment)
    start = cut.taw_start_date + (cut.segment_index * length).as_interval("D")
    cut = cut.mutate(episode_start_date=start).filter(start <= cut.taw_end_date)
    natural_end = cut.episode_start_date + ibis.interval(days=length - 1)
    truncated = cut.taw_end_date < natural_end
    cut = cut.mutate(
        episode_end_date=ibis.ifelse(truncated, cut.taw_end_date, natural_end),
        episode_end_reason=ibis.ifelse(truncated, cut.taw_end_reason, "episode_length"),
    )
    cut = cut.mutate(episode_days=cut.episode_end_date.delta(cut.episode_start_date, unit="day") + 1)
    in_year = (cut.episode_end_date >= ibis.date(year, 1, 1)) & (cut.episode_end_date <= ibis.date(year, 12, 31))
    kept = cut.filter(in_year)
    short = kept.episode_days < min_days
    return kept.select(
        episode_id=ibis.literal("|").join([kept.taw_id, kept.segment_index.cast("string")]),
        taw_id=kept.taw_id, measure_id=kept.measure_id, bene_id=kept.bene_id, billing_tin=kept.billing_tin,
        taw_start_date=kept.taw_start_date, episode_start_date=kept.episode_start_date,
        episode_end_date=kept.episode_end_date, episode_days=kept.episode_days.cast("int32"),
        segment_index=kept.segment_index.cast("int32"), performance_year=ibis.literal(year, "int32"),
        episode_end_reason=kept.episode_end_reason,
        exclusion_reason=ibis.ifelse(short, f"episode shorter than {min_days} days", ibis.null("string")),
    )

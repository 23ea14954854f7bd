"""Cost measure score per TIN and per TIN-NPI (ebcm.md §8; §512.730(d) case minimum)."""

from __future__ import annotations

import ibis.expr.types as ir

from openasm.rules import RulesForYear
from openasm.schema.sums import exact_mean

ENTITY_KEYS = ("measure_id", "entity_level", "billing_tin", "rendering_npi")


def compute_measure_scores(*, episode_entity_expected: ir.Table, episode_expected: ir.Table,
                           rules: RulesForYear) -> ir.Table:
    """ebcm §8: score = mean over the entity's episodes of O_i / E_i, times the national mean of O in the
    entity's attribution universe (`cost.national_mean_universe` = by_attribution_level: TIN rows and TIN-NPI
    rows each form a universe of distinct episodes). O is the winsorized scaled observed cost when
    `cost.ratio_uses_winsorized_observed`, else the scaled observed cost; E is the specialty-adjusted expected
    cost. Outlier episodes (§7.3) do not count. Unweighted mean (`cost.episode_weighting`). An entity below
    `cost.case_minimum` episodes keeps its row with `meets_case_minimum` false (not scored, §512.730(d)(2)).

    episode_entity_expected: `adjust_for_specialty` output (entity_level, billing_tin, rendering_npi,
    episode_id, measure_id, expected_cost_adjusted, winsorized_cost, is_outlier); episode_expected: episode_id,
    observed_cost. Grain: measure x entity. Columns: ENTITY_KEYS, n_episodes, mean_observed_cost,
    mean_expected_cost, mean_oe_ratio, national_mean_observed_cost, score_amount, meets_case_minimum.
    """
    if rules.value("cost.score_formula") != "mean_ratio_x_national_mean":
        raise ValueError("cost.score_formula: only mean_ratio_x_national_mean is implemented")
    if rules.value("cost.episode_weighting") != "unweighted":
        raise ValueError("cost.episode_weighting: only unweighted is implemented")
    if rules.value("cost.national_mean_universe") != "by_attribution_level":
        raise ValueError("cost.national_mean_universe: only by_attribution_level is implemented")
    case_minimum = int(rules.value("cost.case_minimum"))
    observed = episode_expected.select(_o_episode=episode_expected.episode_id, _observed=episode_expected.observed_cost)
    rows = episode_entity_expected.filter(~episode_entity_expected.is_outlier)
    rows = rows.join(observed, rows.episode_id == observed._o_episode).drop("_o_episode")
    o = rows.winsorized_cost if rules.value("cost.ratio_uses_winsorized_observed") else rows._observed
    rows = rows.mutate(_o=o, _ratio=o / rows.expected_cost_adjusted)

    universe = rows.select("measure_id", "entity_level", "episode_id", "_o").distinct()
    national = universe.group_by(_n_measure=universe.measure_id, _n_level=universe.entity_level).agg(
        national_mean_observed_cost=exact_mean(universe._o)
    )
    entity = rows.group_by(*ENTITY_KEYS).agg(
        n_episodes=rows.episode_id.nunique(),
        mean_observed_cost=exact_mean(rows._o),
        mean_expected_cost=exact_mean(rows.expected_cost_adjusted),
        mean_oe_ratio=exact_mean(rows._ratio),
    )
    scored = entity.join(national, (entity.measure_id == national._n_measure)
                         & (entity.entity_level == national._n_level)).drop("_n_measure", "_n_level")
    return scored.mutate(
        n_episodes=scored.n_episodes.cast("int64"),
        score_amount=scored.mean_oe_ratio * scored.national_mean_observed_cost,
        meets_case_minimum=scored.n_episodes >= case_minimum,
    )

"""The eCQMs of a performance year (quality.md §4): the measures of every cohort's set that are computed from
EHR data here (evaluated by `runs.quality.evaluate_ecqms`)."""

from __future__ import annotations

from openasm.quality.measures import all_measures
from openasm.rules import RulesForYear


def ecqm_measures_for_year(rules: RulesForYear) -> list:
    """The eCQMs whose QPP id is in a cohort's measure set for the year (`quality.measures`); Q220 and Q492 are
    not eCQMs and come from their own feeds."""
    wanted = {m for ids in rules.value("quality.measures").values() for m in ids}
    return [m for m in all_measures() if m.measure_id in wanted]

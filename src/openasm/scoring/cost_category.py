"""Cost category score per participant (42 CFR 512.730(d)-(e); asm-model.md §4).

The cost stage (`openasm.cost.points.score_cost_points`, table `measure_score`) gives achievement points
(1-10, partial points) per cost measure and entity (`entity_level` tin or tin_npi). A participant is scored on
its cohort's measure (`cost.measures`: hf → COST_HF_1, lbp → COST_LBP_1) at the level
`scoring.cost_entity_level` (TIN/NPI, §512.730(d)(1)). Cost category score = points ÷ the band table's
highest points × 100 (= points × 10 with one measure per cohort). Below `cost.case_minimum` episodes, or with no
benchmark, the measure is not scored (§512.730(d)(2)) and the final score reweights (asm-model.md §6).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.cost.benchmarks import band_knots
from openasm.rules import RulesError, RulesForYear
from openasm.scoring.formulas import cost_category_pct

# cost_status values: why the cost category is or is not scorable.
COST_SCORED = "scored"
COST_NO_EPISODES = "no_attributed_episodes"
COST_BELOW_CASE_MINIMUM = "below_case_minimum"
COST_NO_BENCHMARK = "no_benchmark"
COST_UNKNOWN_COHORT = "unknown_cohort"

COST_CATEGORY_COLUMNS = (
    "performance_year", "npi", "tin", "cohort", "cost_measure_id", "cost_entity_level", "cost_n_episodes",
    "cost_achievement_points", "cost_score_pct", "is_cost_scorable", "cost_status",
)


def participants_for_year(participant: ir.Table, rules: RulesForYear) -> ir.Table:
    """Participants of the rules' performance year (`is_participant` true when that column is present), with
    performance_year as int32, npi and tin as strings and cohort lower-cased."""
    p = participant
    keep = p.performance_year.cast("int32") == rules.performance_year
    if "is_participant" in p.columns:
        keep &= p.is_participant.fill_null(False)
    p = p.filter(keep)
    return p.select(
        performance_year=p.performance_year.cast("int32"), npi=p.npi.cast("string"), tin=p.tin.cast("string"),
        cohort=p.cohort.cast("string").lower(),
    )


def cohort_measures(rules: RulesForYear) -> ir.Table:
    """`cost.measures` as a table (cohort, cost_measure_id): one row per cohort, for joins."""
    mapping = rules.value("cost.measures")
    if not isinstance(mapping, dict) or not mapping:
        raise RulesError("cost.measures must map each cohort to its cost measure id")
    cohorts = sorted(mapping)
    return ibis.memtable({"_cm_cohort": cohorts, "cost_measure_id": [str(mapping[c]) for c in cohorts]})


def max_cost_points(rules: RulesForYear) -> float:
    """§512.730(e)(1): the highest achievement points on the band table (10)."""
    return max(knot.points for knot in band_knots(rules))


def score_cost_category(*, participant: ir.Table, measure_score: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.730(d)-(e): cost category score (0-100) per participant of the rules' performance year.

    participant: performance_year, npi, tin, cohort (optional is_participant). measure_score: the cost stage
    output (measure_id, entity_level, billing_tin, rendering_npi, n_episodes, meets_case_minimum,
    achievement_points), for the same performance year. Grain: (performance_year, npi). Columns:
    COST_CATEGORY_COLUMNS. cost_score_pct is null and is_cost_scorable false when the participant's cohort
    has no measure in `cost.measures` (cost_status unknown_cohort), when it has no
    episodes of its cohort's measure at `scoring.cost_entity_level` (cost_status no_attributed_episodes), fewer
    than the case minimum (below_case_minimum), or no points (no_benchmark).
    """
    level = rules.value("scoring.cost_entity_level")
    if level not in ("tin_npi", "tin"):
        raise RulesError(f"scoring.cost_entity_level={level!r} is not implemented")
    top_points = max_cost_points(rules)
    p = participants_for_year(participant, rules)
    measures = cohort_measures(rules)
    p = p.left_join(measures, p.cohort == measures._cm_cohort).drop("_cm_cohort")

    m = measure_score.filter(measure_score.entity_level == level)
    m = m.select(
        _m_measure=m.measure_id, _m_tin=m.billing_tin.cast("string"), _m_npi=m.rendering_npi.cast("string"),
        _m_episodes=m.n_episodes.cast("int64"), _m_meets=m.meets_case_minimum,
        _m_points=m.achievement_points.cast("float64"),
    )
    on = (p.cost_measure_id == m._m_measure) & (p.tin == m._m_tin)
    if level == "tin_npi":
        on &= p.npi == m._m_npi
    j = p.left_join(m, on)
    has_row = j._m_measure.notnull()
    meets = has_row & j._m_meets.fill_null(False)
    scorable = meets & j._m_points.notnull()
    status = ibis.cases(
        (j.cost_measure_id.isnull(), COST_UNKNOWN_COHORT), (~has_row, COST_NO_EPISODES),
        (~meets, COST_BELOW_CASE_MINIMUM), (~scorable, COST_NO_BENCHMARK),
        else_=COST_SCORED,
    )
    return j.select(
        "performance_year", "npi", "tin", "cohort", "cost_measure_id",
        cost_entity_level=ibis.literal(level, "string"),
        cost_n_episodes=j._m_episodes.fill_null(0),
        cost_achievement_points=j._m_points,
        cost_score_pct=ibis.ifelse(scorable, cost_category_pct(j._m_points, top_points), ibis.null("float64")),
        is_cost_scorable=scorable,
        cost_status=status,
    )

"""Episode volume for eligibility: attributed episodes of the cohort's cost measure (§512.710(b)).

asm-model.md §2.2 item 4: at least `participation.episode_volume_threshold` (20) attributed episodes of the
cohort's EBCM (HF → COST_HF_1, LBP → COST_LBP_1, `cost.measures`) in the eligibility year, counted in episodes
or distinct beneficiaries (`participation.volume_count_unit`). Episodes are counted as the cost measure
counts them for its case minimum (§512.730(d)): episodes ending in the year (`episode.performance_year`,
ebcm §3.3) that survive the exclusions, attributed to the NPI under any TIN (ebcm §4).
"""

from __future__ import annotations

import ibis.expr.types as ir
import pyarrow as pa

from openasm.episodes.codes import measure_for_cohort
from openasm.participation.cohort import COHORTS
from openasm.participation.eligibility import eligibility_year
from openasm.rules import RulesForYear

VOLUME_UNITS = ("episode", "beneficiary")


def volume_unit(rules: RulesForYear) -> str:
    """`participation.volume_count_unit`, checked."""
    unit = rules.value("participation.volume_count_unit")
    if unit not in VOLUME_UNITS:
        raise ValueError(f"participation.volume_count_unit: unsupported value {unit!r}")
    return unit


def cohort_measure_table(rules: RulesForYear) -> pa.Table:
    """Cohort → cost measure (§512.730(b)–(c)). Columns: cohort, measure_id."""
    return pa.table({
        "cohort": pa.array(list(COHORTS), pa.string()),
        "measure_id": pa.array([measure_for_cohort(rules, c) for c in COHORTS], pa.string()),
    })


def count_attributed_episodes(
    *, episode: ir.Table, episode_attribution: ir.Table, cohort_measure: ir.Table, rules: RulesForYear
) -> ir.Table:
    """§512.710(b), asm-model §2.2 item 4: per NPI and cohort, the distinct scored episodes
    (`exclusion_reason` null) of the cohort's measure ending in the eligibility year to which the NPI is
    attributed (`is_attributed`), and their distinct beneficiaries.

    Grain: NPI × cohort (only pairs with at least one episode). Columns: npi, cohort, attributed_episode_count,
    attributed_beneficiary_count.
    """
    year = eligibility_year(rules)
    scored = episode.filter(episode.performance_year == year)
    if "exclusion_reason" in scored.columns:
        scored = scored.filter(scored.exclusion_reason.isnull())
    scored = scored.select(_e_episode=scored.episode_id, _e_measure=scored.measure_id, _e_bene=scored.bene_id)
    attributed = episode_attribution.filter(episode_attribution.is_attributed)
    attributed = attributed.select(_a_episode=attributed.episode_id, _a_npi=attributed.rendering_npi)
    measures = cohort_measure.select(_m_cohort=cohort_measure.cohort, _m_measure=cohort_measure.measure_id)
    joined = attributed.join(scored, attributed._a_episode == scored._e_episode)
    joined = joined.join(measures, joined._e_measure == measures._m_measure)
    counts = joined.group_by(npi=joined._a_npi, cohort=joined._m_cohort).agg(
        attributed_episode_count=joined._a_episode.nunique().cast("int64"),
        attributed_beneficiary_count=joined._e_bene.nunique().cast("int64"),
    )
    return counts

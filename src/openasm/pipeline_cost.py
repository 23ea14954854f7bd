"""Compose the episode grouper and the cost-measure scorer into runs (executes and writes; stages stay pure).

`run_episodes`: final-action claims → episodes (both measures) → exclusions → cost assignment → attribution.
`run_cost`: HCC flags → risk features → national OLS → specialty adjustment → measure scores → points, plus
drill-down tables. Both write their published tables to `outputs/` and record the rules they used.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.cost.assign import assign_episode_costs, select_assigned_services, summarize_observed_cost
from openasm.cost.benchmarks import build_cost_knots
from openasm.cost.drilldown import (
    categorize_cost_lines,
    summarize_cost_by_category,
    summarize_cost_by_provider,
    summarize_cost_drivers,
)
from openasm.cost.exclusions import apply_exclusions, find_episode_exclusions
from openasm.cost.hcc import compute_hcc_flags, load_hcc_reference
from openasm.cost.measure_score import compute_measure_scores
from openasm.cost.points import score_cost_points
from openasm.cost.risk_adjust import build_risk_features, fit_expected_cost
from openasm.cost.specialty_adjust import adjust_for_specialty
from openasm.engine import Engine
from openasm.episodes.attribution import assign_clinician_specialty, attribute_clinicians
from openasm.episodes.codes import condition_dx_codes, measure_for_cohort
from openasm.episodes.group import COHORTS, group_episodes
from openasm.pipeline import StageResult, Step, ensure_final_action
from openasm.pipeline import publish as _publish
from openasm.rules import RulesForYear

NDC_CLASS_LIST = "cost__ndc_drug_class"
SERVICE_CATEGORY_LIST = "cost__service_categories"


def read_ndc_class_map(path: Path | None, rules: RulesForYear) -> pa.Table:
    """A user NDC → drug class CSV (columns ndc_code, drug_class), else the shipped list."""
    if path is None:
        return rules.code_list(NDC_CLASS_LIST).select(["ndc_code", "drug_class"])
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"ndc_code": pa.string(), "drug_class": pa.string()}))
    missing = {"ndc_code", "drug_class"} - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (need ndc_code, drug_class)")
    return table.select(["ndc_code", "drug_class"])


def run_episodes(engine: Engine, rules: RulesForYear, out_dir: Path, ndc_class_map: Path | None = None,
                 step: Step | None = None) -> StageResult:
    """Group episodes, find exclusions, assign cost and attribute clinicians for the rules' performance year."""
    say = step or (lambda _: None)
    result = StageResult()
    claim_line, pharmacy_claim = ensure_final_action(engine)
    base = {name: engine.table(name) for name in ("claim_diagnosis", "beneficiary", "enrollment", "clinician")}

    say("grouping episodes")
    grouped = group_episodes(claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"],
                             beneficiary=base["beneficiary"], enrollment=base["enrollment"], rules=rules)
    qualifying = engine.save("qualifying_service", grouped["qualifying_service"])
    _publish(engine, out_dir, result, "attribution_window", grouped["attribution_window"])
    episode = engine.save("episodes__int_episode", grouped["episode"])

    say("finding exclusions")
    exclusion = _publish(engine, out_dir, result, "episode_exclusion", find_episode_exclusions(
        episode=episode, beneficiary=base["beneficiary"], enrollment=base["enrollment"], claim_line=claim_line,
        claim_diagnosis=base["claim_diagnosis"], rules=rules))
    episode = engine.save("episode", apply_exclusions(episode=episode, episode_exclusion=exclusion))

    say("assigning cost")
    ndc_class = ibis.memtable(read_ndc_class_map(ndc_class_map, rules))
    assigned_parts = []
    for cohort in COHORTS:
        measure_id = measure_for_cohort(rules, cohort)
        assigned_parts.append(select_assigned_services(
            claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], pharmacy_claim=pharmacy_claim,
            ndc_class=ndc_class, dx_codes=condition_dx_codes(rules, measure_id), measure_id=measure_id, rules=rules))
    assigned = engine.save("cost__int_assigned_service", ibis.union(*assigned_parts))
    categories = rules.code_list(SERVICE_CATEGORY_LIST)
    cost_line = _publish(engine, out_dir, result, "episode_cost_line", categorize_cost_lines(
        episode_cost_line=assign_episode_costs(episode=episode, assigned_service=assigned, rules=rules),
        categories=categories))
    observed = engine.save("episode_observed", summarize_observed_cost(episode=episode, episode_cost_line=cost_line,
                                                                        rules=rules))

    say("attributing clinicians")
    attribution = _publish(engine, out_dir, result, "episode_attribution", attribute_clinicians(
        episode=episode, qualifying=qualifying, claim_line=claim_line, rules=rules))
    _publish(engine, out_dir, result, "clinician_specialty", assign_clinician_specialty(
        claim_line=claim_line, clinician=base["clinician"], rules=rules))

    attributed = attribution.filter(attribution.is_attributed).group_by(_a_episode=attribution.episode_id).agg(
        attributed_npi_count=attribution.rendering_npi.nunique())
    with_cost = episode.join(observed.drop("measure_id"), "episode_id")
    with_cost = with_cost.left_join(attributed, with_cost.episode_id == attributed._a_episode).drop("_a_episode")
    _publish(engine, out_dir, result, "episode_detail", with_cost.mutate(
        attributed_npi_count=with_cost.attributed_npi_count.fill_null(0).cast("int64")))
    _publish(engine, out_dir, result, "episode_cost_by_category", summarize_cost_by_category(
        categorized_cost_line=cost_line))
    _publish(engine, out_dir, result, "episode_cost_by_provider", summarize_cost_by_provider(
        categorized_cost_line=cost_line))
    _publish(engine, out_dir, result, "cost_drivers", summarize_cost_drivers(
        categorized_cost_line=cost_line, scored_episode=episode.filter(episode.exclusion_reason.isnull())))
    return result


def run_cost(engine: Engine, rules: RulesForYear, out_dir: Path, step: Step | None = None) -> StageResult:
    """Risk-adjust scored episodes, compute measure scores per TIN and TIN-NPI, and their achievement points."""
    say = step or (lambda _: None)
    result = StageResult()
    claim_line, _ = ensure_final_action(engine)
    episode = engine.table("episode")
    scored = engine.save("cost__int_scored_episode", episode.filter(episode.exclusion_reason.isnull()))
    base = {name: engine.table(name) for name in ("claim_diagnosis", "beneficiary", "enrollment")}

    say("flagging HCCs")
    hcc = engine.save("episode_hcc", compute_hcc_flags(
        episode=scored, claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"],
        beneficiary=base["beneficiary"], hcc_reference=load_hcc_reference(rules), rules=rules))
    features = engine.save("episode_risk_feature", build_risk_features(
        episode=scored, hcc_flags=hcc, beneficiary=base["beneficiary"], enrollment=base["enrollment"],
        claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=rules))

    say("fitting the risk model")
    observed = engine.table("episode_observed").semi_join(scored, "episode_id")
    observed = engine.save("cost__int_observed_scored", observed.select("episode_id", "measure_id", "observed_cost"))
    expected, coefficient = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules,
                                              execute=engine.fetch)
    expected = _publish(engine, out_dir, result, "episode_expected", expected)
    _publish(engine, out_dir, result, "risk_model_coefficient", coefficient)

    say("scoring entities")
    entity_expected = engine.save("episode_entity_expected", adjust_for_specialty(
        episode_expected=expected, episode_attribution=engine.table("episode_attribution"),
        clinician_specialty=engine.table("clinician_specialty"), rules=rules))
    scores = engine.save("cost__int_measure_score", compute_measure_scores(
        episode_entity_expected=entity_expected, episode_expected=expected, rules=rules))
    knots = _publish(engine, out_dir, result, "cost_benchmark_knots", build_cost_knots(measure_score=scores,
                                                                                      rules=rules))
    _publish(engine, out_dir, result, "measure_score", score_cost_points(measure_score=scores, knots=knots,
                                                                        rules=rules))
    return result

"""Run the episode grouper (ebcm §3–§6): final-action claims → episodes of both cost measures → exclusions →
cost assignment → attribution, with the drill-down tables (episode detail, cost lines, cost by category and
provider, cost drivers) and the Part D drug-class gap published to `outputs/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.cost.assign import (
    assign_episode_costs,
    select_assigned_services,
    summarize_observed_cost,
)
from openasm.cost.drilldown import (
    categorize_cost_lines,
    summarize_cost_by_category,
    summarize_cost_by_provider,
    summarize_cost_drivers,
)
from openasm.cost.exclusions import apply_exclusions, exclusion_diagnosis_hits, find_episode_exclusions
from openasm.cost.part_d import summarize_part_d_class_gap
from openasm.engine import Engine
from openasm.episodes.attribution import attribute_clinicians
from openasm.episodes.codes import condition_dx_codes, measure_for_cohort
from openasm.episodes.group import COHORTS, build_cohort_windows, select_cohort_qualifying_services
from openasm.episodes.segments import segment_episodes
from openasm.episodes.specialty import assign_clinician_specialty
from openasm.rules import RulesForYear
from openasm.runs.final_action import ensure_final_action
from openasm.runs.stage import StageResult, Step, no_step, publish

NDC_CLASS_LIST = "cost__ndc_drug_class"
SERVICE_CATEGORY_LIST = "cost__service_categories"


@dataclass(frozen=True)
class EpisodeInputs:
    """Files besides the run's tables: a user NDC → drug class map (else the shipped list)."""

    ndc_class_map: Path | None = None


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


def report_part_d_class_gap(result: StageResult, gap_rows: list[dict]) -> None:
    """Record the Part D drug-class gap per measure in the manifest, with a note for each measure where fills
    have an NDC the drug-class map does not hold (they cannot be assigned)."""
    result.entries["episodes"]["part_d_drug_class_gap"] = sorted(gap_rows, key=lambda r: r["measure_id"])
    for row in result.entries["episodes"]["part_d_drug_class_gap"]:
        if row["unmapped_fill_count"]:
            share = "n/a" if row["unmapped_share"] is None else f"{row['unmapped_share']:.1%}"
            result.notes.append(
                f"{row['measure_id']}: {share} of Part D dollars in its episodes "
                f"({row['unmapped_fill_count']:,} of {row['part_d_fill_count']:,} fills, {row['unmapped_ndc_count']:,} "
                "NDCs) have an NDC not in the drug-class map and cannot be assigned; supply a fuller map with "
                "--ndc-class-map (outputs/part_d_drug_class_gap.csv)")


def run_episodes(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: EpisodeInputs | None = None,
                 step: Step | None = None) -> StageResult:
    """Group episodes, find exclusions, assign cost and attribute clinicians for the rules' performance year."""
    say = step or no_step
    inputs = inputs or EpisodeInputs()
    result = StageResult(entries={"episodes": {
        "performance_year": rules.performance_year,
        "code_list_version": rules.value("episodes.code_list_version"),
        "ndc_class_map": str(inputs.ndc_class_map) if inputs.ndc_class_map else f"codes/{NDC_CLASS_LIST}.csv"}})
    claim_line, pharmacy_claim = ensure_final_action(engine)
    base = {name: engine.table(name) for name in ("claim_diagnosis", "beneficiary", "enrollment", "clinician")}

    say("grouping episodes")
    # Intermediates of this stage only: temporary tables, not written into the run's database file (qualifying
    # services: 5.2M rows, 80 MB of it at 1.5M beneficiaries).
    qualifying = engine.save("episodes__int_qualifying_service", select_cohort_qualifying_services(
        claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=rules), scratch=True)
    windows = publish(engine, run_dir, result, "attribution_window", build_cohort_windows(
        qualifying_service=qualifying, beneficiary=base["beneficiary"], enrollment=base["enrollment"],
        rules=rules)["attribution_window"])
    episode = engine.save("episodes__int_episode", segment_episodes(attribution_window=windows, rules=rules),
                          scratch=True)

    say("finding exclusions")
    hits = engine.for_one_reader("episodes__int_exclusion_dx", exclusion_diagnosis_hits(
        episode=episode, claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=rules))
    exclusion = publish(engine, run_dir, result, "episode_exclusion", find_episode_exclusions(
        episode=episode, beneficiary=base["beneficiary"], enrollment=base["enrollment"], claim_line=claim_line,
        claim_diagnosis=base["claim_diagnosis"], rules=rules, diagnosis_hits=hits))
    engine.drop("episodes__int_exclusion_dx")
    episode = engine.save("episode", apply_exclusions(episode=episode, episode_exclusion=exclusion))
    engine.drop("episodes__int_episode")

    say("assigning cost")
    ndc_class = ibis.memtable(read_ndc_class_map(inputs.ndc_class_map, rules))
    assigned_parts = []
    for cohort in COHORTS:
        measure_id = measure_for_cohort(rules, cohort)
        assigned_parts.append(select_assigned_services(
            claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], pharmacy_claim=pharmacy_claim,
            ndc_class=ndc_class, dx_codes=condition_dx_codes(rules, measure_id), measure_id=measure_id, rules=rules))
    # Read by the next query only (11M rows at 1.5M beneficiaries).
    assigned = engine.save("cost__int_assigned_service", ibis.union(*assigned_parts), scratch=True)
    categories = rules.code_list(SERVICE_CATEGORY_LIST)
    cost_line = publish(engine, run_dir, result, "episode_cost_line", categorize_cost_lines(
        episode_cost_line=assign_episode_costs(episode=episode, assigned_service=assigned, rules=rules),
        categories=categories))
    engine.drop(assigned.get_name())
    observed = engine.save("episode_observed", summarize_observed_cost(episode=episode, episode_cost_line=cost_line,
                                                                        rules=rules))
    gap = publish(engine, run_dir, result, "part_d_drug_class_gap", summarize_part_d_class_gap(
        episode=episode, pharmacy_claim=pharmacy_claim, ndc_class=ndc_class, rules=rules))
    report_part_d_class_gap(result, engine.fetch(gap).to_pylist())

    say("attributing clinicians")
    attribution = publish(engine, run_dir, result, "episode_attribution", attribute_clinicians(
        episode=episode, qualifying=qualifying, claim_line=claim_line, rules=rules))
    engine.drop(qualifying.get_name())
    publish(engine, run_dir, result, "clinician_specialty", assign_clinician_specialty(
        claim_line=claim_line, clinician=base["clinician"], rules=rules))

    attributed = attribution.filter(attribution.is_attributed).group_by(_a_episode=attribution.episode_id).agg(
        attributed_npi_count=attribution.rendering_npi.nunique())
    with_cost = episode.join(observed.drop("measure_id"), "episode_id")
    with_cost = with_cost.left_join(attributed, with_cost.episode_id == attributed._a_episode).drop("_a_episode")
    publish(engine, run_dir, result, "episode_detail", with_cost.mutate(
        attributed_npi_count=with_cost.attributed_npi_count.fill_null(0).cast("int64")))
    publish(engine, run_dir, result, "episode_cost_by_category", summarize_cost_by_category(
        categorized_cost_line=cost_line))
    publish(engine, run_dir, result, "episode_cost_by_provider", summarize_cost_by_provider(
        categorized_cost_line=cost_line))
    publish(engine, run_dir, result, "cost_drivers", summarize_cost_drivers(
        categorized_cost_line=cost_line, scored_episode=episode.filter(episode.exclusion_reason.isnull())))
    return result

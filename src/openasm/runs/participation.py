"""Run participation (§512.710) over a run folder.

For each performance year, in order: find the eligibility year's episodes (the run's `episode` table when it
holds that year, else the grouper is run for that calendar year into `participation__int_*` tables), judge
every clinician, apply lock-in against the earlier years' participants (this run's, the run folder's
`participant` table, and an optional prior file), and publish `participant` (all years) to `outputs/`.
Optionally compare with the CMS participant list (`participant_list_comparison`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from openasm.cost.exclusions import apply_exclusions, exclusion_diagnosis_hits, find_episode_exclusions
from openasm.engine import Engine
from openasm.episodes.attribution import attribute_clinicians
from openasm.episodes.group import build_cohort_windows, select_cohort_qualifying_services
from openasm.episodes.segments import segment_episodes
from openasm.participation.cohort import cohort_specialty_table
from openasm.participation.eligibility import check_performance_year, eligibility_year
from openasm.participation.episode_volume import cohort_measure_table
from openasm.participation.lock_in import empty_prior_participant, prior_participants
from openasm.participation.participant_list import (
    comparable_list,
    compare_with_participant_list,
)
from openasm.participation.participants import PARTICIPANT_COLUMNS, select_participants
from openasm.participation.selected_area import SelectedAreas
from openasm.participation.specialty_plurality import select_part_b_lines
from openasm.participation.zip_cbsa import hud_crosswalk, locate_by_zip, place_zips, zip_placement_report
from openasm.rules import RulesForYear
from openasm.runs.final_action import ensure_final_action
from openasm.runs.stage import (
    StageResult,
    Step,
    count_rows,
    no_step,
    rules_rows,
    write_output,
)

PARTICIPANT_TABLE = "participant"
COMPARISON_TABLE = "participant_list_comparison"


@dataclass(frozen=True)
class ParticipationInputs:
    """The selected areas, an optional prior participant table (lock-in) and an optional CMS participant list
    to compare with."""

    selected_areas: SelectedAreas
    prior_participant: pa.Table | None = None
    participant_list: pa.Table | None = None


@dataclass
class ParticipationResult(StageResult):
    """The participant table's reasons and, with a CMS list, the agreement counts; the rules of every year."""

    performance_years: list[int] = field(default_factory=list)
    selected_areas: dict[str, Any] = field(default_factory=dict)
    episode_sources: dict[int, str] = field(default_factory=dict)
    reason_counts: list[dict] = field(default_factory=list)
    agreement_counts: list[dict] = field(default_factory=list)
    rules_by_year: list[RulesForYear] = field(default_factory=list, repr=False)

    def manifest_entries(self) -> dict[str, Any]:
        # The rules record the values they served, so their rows are read after the run.
        return {"participation": {
            "performance_years": self.performance_years, "selected_areas": self.selected_areas,
            "episode_sources": {str(k): v for k, v in self.episode_sources.items()},
            **rules_rows(self.rules_by_year)}}


def eligibility_episodes(engine: Engine, rules: RulesForYear, claim_line: ir.Table,
                         say: Step) -> tuple[ir.Table, ir.Table, str]:
    """The episodes and attribution of the eligibility year: the run's tables when they hold that year,
    else the grouper (ebcm §3–§4, exclusions §6) run for that calendar year with the rules of the PY."""
    year = eligibility_year(rules)
    if engine.has_table("episode") and engine.has_table("episode_attribution"):
        episode = engine.table("episode")
        if count_rows(episode.filter(episode.performance_year == year)) > 0:
            return episode, engine.table("episode_attribution"), "run tables episode, episode_attribution"
    say(f"grouping CY{year} episodes")
    year_rules = dataclasses.replace(rules, performance_year=year)
    base = {name: engine.table(name) for name in ("claim_diagnosis", "beneficiary", "enrollment")}
    qualifying = engine.save(f"participation__int_qualifying_{year}", select_cohort_qualifying_services(
        claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=year_rules), scratch=True)
    windows = build_cohort_windows(qualifying_service=qualifying, beneficiary=base["beneficiary"],
                                   enrollment=base["enrollment"], rules=year_rules)["attribution_window"]
    episode = engine.save(f"participation__int_grouped_{year}", segment_episodes(attribution_window=windows,
                                                                                   rules=year_rules), scratch=True)
    hits = engine.for_one_reader(f"participation__int_exclusion_dx_{year}", exclusion_diagnosis_hits(
        episode=episode, claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=year_rules))
    exclusion = engine.save(f"participation__int_exclusion_{year}", find_episode_exclusions(
        episode=episode, claim_line=claim_line, rules=year_rules, diagnosis_hits=hits, **base), scratch=True)
    engine.drop(f"participation__int_exclusion_dx_{year}")
    episode = engine.save(f"participation__int_episode_{year}", apply_exclusions(episode=episode,
                                                                                  episode_exclusion=exclusion))
    attribution = engine.save(f"participation__int_episode_attribution_{year}", attribute_clinicians(
        episode=episode, qualifying=qualifying, claim_line=claim_line, rules=year_rules))
    for name in (f"participation__int_qualifying_{year}", f"participation__int_grouped_{year}",
                 f"participation__int_exclusion_{year}"):
        engine.drop(name)
    return episode, attribution, f"grouped for CY{year} (participation__int_episode_{year})"


def _existing_participants(engine: Engine, result: ParticipationResult) -> ir.Table | None:
    if not engine.has_table(PARTICIPANT_TABLE):
        return None
    table = engine.table(PARTICIPANT_TABLE)
    if list(table.columns) != list(PARTICIPANT_COLUMNS):
        result.notes.append(f"run table {PARTICIPANT_TABLE} has other columns (older openasm); replaced")
        return None
    return table


def _place_practices(engine: Engine, rules: RulesForYear, run_dir: Path, result: ParticipationResult) -> ir.Table:
    """The run's clinician table with ZIP-placed CBSAs (`locate_by_zip`), stored as `practice_location`; the
    ZIPs placed or left unplaced are published as `practice_zip_placement` and counted in the notes."""
    placed = place_zips(crosswalk=ibis.memtable(hud_crosswalk()), rules=rules)
    located = engine.save("practice_location", locate_by_zip(clinician=engine.table("clinician"), zip_cbsa=placed))
    report = engine.save("practice_zip_placement", zip_placement_report(located=located))
    result.outputs["practice_zip_placement"] = write_output(engine, report, run_dir, "practice_zip_placement")
    result.row_counts["practice_zip_placement"] = count_rows(report)
    by_status = {row["zip_cbsa_status"]: row["n"] for row in engine.fetch(
        report.group_by("zip_cbsa_status").agg(n=report.clinician_rows.sum())).to_pylist()}
    if by_status:
        result.notes.append("practice CBSA from ZIP (HUD crosswalk, " + rules.value("participation.zip_cbsa_method")
                            + "): " + ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))
                            + " clinician rows; see practice_zip_placement")
    return located


def run_participation(
    engine: Engine, rules: RulesForYear | Sequence[RulesForYear], run_dir: Path, inputs: ParticipationInputs,
    step: Step | None = None,
) -> ParticipationResult:
    """Compute the participant table for each performance year of `rules` (one year's rules or several), in
    ascending order so lock-in sees the earlier years."""
    say = step or no_step
    rules_by_year = sorted([rules] if isinstance(rules, RulesForYear) else list(rules),
                           key=lambda r: r.performance_year)
    years = [r.performance_year for r in rules_by_year]
    areas = inputs.selected_areas
    prior_file, participant_list = inputs.prior_participant, inputs.participant_list
    result = ParticipationResult(performance_years=years, rules_by_year=rules_by_year, selected_areas={
        "source": areas.source, "evidence": areas.evidence, "area_count": areas.table.num_rows})
    for rules in rules_by_year:
        check_performance_year(rules)
    claim_line, _ = ensure_final_action(engine)
    # Practice rows with a ZIP and no CBSA are placed through the HUD ZIP-CBSA crosswalk (participation.zip_cbsa).
    clinician = _place_practices(engine, rules_by_year[-1], run_dir, result)
    selected = ibis.memtable(areas.table)
    existing = _existing_participants(engine, result)
    kept = existing.filter(~existing.performance_year.isin(years)) if existing is not None else None
    if kept is not None and count_rows(kept.filter(kept.performance_year > min(years))) > 0:
        result.notes.append("the run holds participant rows of later performance years than those computed now; "
                            "recompute them so their lock-in reflects these results")
    prior_parts = [ibis.memtable(prior_file)] if prior_file is not None and prior_file.num_rows else []
    computed: list[ir.Table] = []
    for rules in rules_by_year:
        year = rules.performance_year
        ey = eligibility_year(rules)
        lines = select_part_b_lines(claim_line=claim_line, rules=rules)
        if count_rows(lines) == 0:
            raise ValueError(f"performance year {year}: the claims hold no Part B lines in CY{ey}, the eligibility "
                             f"year (model.eligibility_lookback_years); participation cannot be judged")
        say(f"PY{year}: episodes of CY{ey}")
        episode, attribution, source = eligibility_episodes(engine, rules, claim_line, say)
        result.episode_sources[year] = source
        earlier = [prior_participants(participant=t, rules=rules) for t in
                   ([kept] if kept is not None else []) + computed]
        prior = ibis.union(*(prior_parts + earlier)) if prior_parts or earlier else empty_prior_participant()
        say(f"PY{year}: judging eligibility")
        table = select_participants(
            claim_line=claim_line, clinician=clinician, episode=episode, episode_attribution=attribution,
            selected_area=selected, cohort_specialty=ibis.memtable(cohort_specialty_table(rules)),
            cohort_measure=ibis.memtable(cohort_measure_table(rules)), prior_participant=prior, rules=rules)
        computed.append(engine.save(f"participation__int_participant_{year}", table))
    parts = ([kept] if kept is not None else []) + computed
    stored = engine.save(PARTICIPANT_TABLE + "__new", ibis.union(*parts) if len(parts) > 1 else parts[0])
    stored = engine.save(PARTICIPANT_TABLE, stored)
    engine.drop(PARTICIPANT_TABLE + "__new")
    for year in years:
        engine.drop(f"participation__int_participant_{year}")
    result.outputs[PARTICIPANT_TABLE] = write_output(engine, stored, run_dir, PARTICIPANT_TABLE)
    result.row_counts[PARTICIPANT_TABLE] = count_rows(stored)
    now = stored.filter(stored.performance_year.isin(years))
    counts = now.group_by("performance_year", "reason", "cohort").agg(clinicians=now.count())
    result.reason_counts = engine.fetch(counts.order_by("performance_year", "reason", "cohort")).to_pylist()
    if participant_list is not None:
        listed = ibis.memtable(comparable_list(participant_list))
        parts = [compare_with_participant_list(participant=stored, participant_list=listed, performance_year=y)
                 for y in years]
        compared = engine.save(COMPARISON_TABLE, ibis.union(*parts) if len(parts) > 1 else parts[0])
        result.outputs[COMPARISON_TABLE] = write_output(engine, compared, run_dir, COMPARISON_TABLE)
        result.row_counts[COMPARISON_TABLE] = count_rows(compared)
        agreement = compared.group_by("performance_year", "agreement").agg(clinicians=compared.count())
        result.agreement_counts = engine.fetch(agreement.order_by("performance_year", "agreement")).to_pylist()
        flagged = set(pc.unique(participant_list.filter(pc.is_valid(participant_list["is_participant"]))
                                ["performance_year"]).to_pylist())
        for year in years:
            if year not in flagged:
                result.notes.append(f"the CMS list has no participant flags for PY{year}: every computed "
                                    "participant shows as computed_only")
    return result

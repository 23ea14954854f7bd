"""Run the quality stage (§512.725): the eCQMs on the run's clinical tables, attribution to TIN/NPI, the Q220 and
Q492 feeds, imported aggregates, `measure_aggregate`, gap lists and the Q492 claims proxy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.engine import Engine
from openasm.quality.aggregate import aggregate_measure_results, check_measure_aggregate
from openasm.quality.attribution import attribute_cases, unattributed_cases
from openasm.quality.clinical import ClinicalTables
from openasm.quality.evaluate import evaluate_measures
from openasm.quality.gaps import list_measure_gaps
from openasm.quality.pro_assessment import derive_pro_assessment
from openasm.quality.q220 import (
    aggregate_q220_results,
    evaluate_q220_episodes,
    read_q220_file,
)
from openasm.quality.q492 import (
    aggregate_q492_results,
    compute_q492_proxy,
    read_q492_file,
)
from openasm.quality.qpp_json import read_qpp_json
from openasm.quality.qrda3 import read_qrda3
from openasm.quality.value_sets import value_set_codes
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, no_step, publish


@dataclass
class QualityFeeds:
    """Files besides the EHR data: the Q220 FOTO episode file, the CMS Q492 file, and already-computed
    aggregates (QPP JSON measurement sets, QRDA Category III) for measures not computed here."""

    q220: Path | None = None
    q492: Path | None = None
    qpp_json: tuple[Path, ...] = ()
    qrda3: tuple[Path, ...] = ()
    group_reporting_tins: Path | None = None
    with_claims_proxy: bool = True


def _feed_quarantine(name: str, read) -> pa.Table:
    table = read.quarantine
    return table.append_column("feed", pa.array([name] * table.num_rows, pa.string()))


def evaluate_ecqms(engine: Engine, rules: RulesForYear, clinical: ClinicalTables) -> ir.Table:
    """§512.725(b)-(c): every eCQM of the run's measure package for the year's measurement period, stored as
    `quality__int_case_result` (columns per `measures.common.CASE_RESULT_COLUMNS`). Each measure's result and the
    results several measures share are materialised on the engine (small query plans; see `evaluate_measures`)."""
    value_set_code = engine.save("value_set_code", ibis.memtable(value_set_codes(rules)))
    return engine.save("quality__int_case_result", evaluate_measures(
        clinical=clinical, value_set_code=value_set_code, rules=rules, materialise=engine.save))


def run_quality(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: QualityFeeds | None = None,
                step: Step | None = None) -> StageResult:
    """§512.725: the eCQMs on the run's clinical tables for the performance year, attributed to TIN/NPI; the Q220
    and Q492 feeds; imported aggregates; then `measure_aggregate`, gap lists and the unattributed cases.
    The Q492 claims proxy (monitoring only, `is_proxy`) is published separately and never enters the aggregate."""
    feeds = inputs or QualityFeeds()
    say = step or no_step
    result = StageResult()
    if not engine.has_table("encounter"):
        raise ValueError("no clinical tables in this run: run `openasm ingest-fhir` first")
    clinical = ClinicalTables.from_backend(engine.table)
    say("evaluating eCQMs")
    cases = evaluate_ecqms(engine, rules, clinical)
    say("attributing cases")
    attributed = publish(engine, run_dir, result, "measure_case_result", attribute_cases(
        measure_case_result=cases, encounter=clinical.encounter, practitioner=clinical.practitioner,
        organization=clinical.organization, rules=rules))
    publish(engine, run_dir, result, "unattributed_case", unattributed_cases(attributed_case_result=attributed))
    group_tins = None
    if feeds.group_reporting_tins is not None:
        group_tins = ibis.memtable(pacsv.read_csv(feeds.group_reporting_tins,
                                                  convert_options=pacsv.ConvertOptions(
                                                      column_types={"tin": pa.string()})))
    parts = [aggregate_measure_results(measure_case_result=attributed, rules=rules, group_reporting_tin=group_tins)]
    quarantines = []
    if feeds.q220 is not None:
        say("Q220 episodes")
        read = read_q220_file(feeds.q220)
        quarantines.append(_feed_quarantine("q220", read))
        episodes = publish(engine, run_dir, result, "q220_episode_result", evaluate_q220_episodes(
            treatment_episode=ibis.memtable(read.rows), rules=rules))
        parts.append(aggregate_q220_results(q220_episode_result=episodes, rules=rules))
    if feeds.q492 is not None:
        say("Q492 CMS results")
        read = read_q492_file(feeds.q492)
        quarantines.append(_feed_quarantine("q492", read))
        parts.append(aggregate_q492_results(q492_result=ibis.memtable(read.rows), rules=rules))
    for path in feeds.qpp_json:
        parts.append(ibis.memtable(read_qpp_json(path)))
    for path in feeds.qrda3:
        parts.append(ibis.memtable(read_qrda3(path, rules=rules)))
    say("aggregating")
    checked = engine.save("quality__int_aggregate_checked",
                          check_measure_aggregate(measure_aggregate=ibis.union(*parts) if len(parts) > 1
                                                  else parts[0]))
    # Rejected aggregates (quality.md §2.1) are kept with their reason, never scored.
    publish(engine, run_dir, result, "measure_aggregate_rejected", checked.filter(checked.reject_reason.notnull()))
    publish(engine, run_dir, result, "measure_aggregate",
            checked.filter(checked.reject_reason.isnull()).drop("reject_reason"))
    say("gap lists")
    publish(engine, run_dir, result, "measure_gap", list_measure_gaps(
        measure_case_result=attributed, patient=clinical.patient, rules=rules))
    publish(engine, run_dir, result, "pro_assessment", derive_pro_assessment(
        observation=clinical.observation, observation_component=clinical.observation_component,
        clinical_coding=clinical.clinical_coding, rules=rules))
    if quarantines:
        publish(engine, run_dir, result, "quality_feed_quarantine", ibis.memtable(pa.concat_tables(
            quarantines, promote_options="permissive")))
    if feeds.with_claims_proxy and engine.has_table("claim_line") and engine.has_table("claim_diagnosis"):
        say("Q492 claims proxy (monitoring only)")
        publish(engine, run_dir, result, "q492_proxy", compute_q492_proxy(
            claim_line=engine.table("claim_line"), claim_diagnosis=engine.table("claim_diagnosis"),
            beneficiary=engine.table("beneficiary"), rules=rules))
    return result

"""Compose the quality stage: FHIR ingest into clinical tables, then (in `run_quality`) the eCQMs, attribution,
aggregates and gap lists. The only quality module that executes or writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.engine import Engine
from openasm.pipeline import StageResult, Step, publish, write_output
from openasm.quality.aggregate import aggregate_measure_results, check_measure_aggregate
from openasm.quality.attribution import attribute_cases, unattributed_cases
from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.evaluate import ecqm_measures_for_year
from openasm.quality.fhir_read import FhirReadResult, read_fhir
from openasm.quality.gaps import list_measure_gaps
from openasm.quality.pro_assessment import derive_pro_assessment
from openasm.quality.q220 import aggregate_q220_results, evaluate_q220_episodes, read_q220_file
from openasm.quality.q492 import aggregate_q492_results, compute_q492_proxy, read_q492_file
from openasm.quality.qpp_json import read_qpp_json
from openasm.quality.qrda3 import read_qrda3
from openasm.quality.value_sets import value_set_codes
from openasm.rules import RulesForYear

FHIR_QUARANTINE = "fhir_quarantine"
FHIR_INGEST_SUMMARY = "fhir_ingest_summary"


@dataclass
class FhirIngestResult:
    """Row accounting of one FHIR ingest: resources read = accepted + quarantined."""

    paths: list[str]
    resources_read: int
    resources_accepted: int
    resources_quarantined: int
    warnings: int
    table_rows: dict[str, int] = field(default_factory=dict)
    accepted_by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.resources_read == self.resources_accepted + self.resources_quarantined


def fhir_ingest_summary(read: FhirReadResult) -> pa.Table:
    """One row per resource type: read, accepted, quarantined (quarantine counted by its own resource type)."""
    quarantined: dict[str, int] = {}
    for resource_type, action in zip(read.quarantine.column("resource_type").to_pylist(),
                                     read.quarantine.column("action").to_pylist()):
        if action == "quarantined":
            key = resource_type or "(unknown)"
            quarantined[key] = quarantined.get(key, 0) + 1
    types = sorted(set(read.accepted_by_type) | set(quarantined))
    return pa.table({
        "resource_type": pa.array(types, pa.string()),
        "accepted": pa.array([read.accepted_by_type.get(t, 0) for t in types], pa.int64()),
        "quarantined": pa.array([quarantined.get(t, 0) for t in types], pa.int64()),
    })


def run_fhir_ingest(engine: Engine, paths: Iterable[Path], out_dir: Path,
                    progress: Callable[[int], None] | None = None) -> FhirIngestResult:
    """Read FHIR JSON/NDJSON into the clinical tables of the run (replacing earlier ones), with the quarantine
    and a per-type summary published to `outputs/`."""
    import time

    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    read = read_fhir(paths, progress=progress)
    table_rows = {}
    for name in CLINICAL_SCHEMAS:
        engine.save(name, ibis.memtable(read.tables[name]))
        table_rows[name] = read.tables[name].num_rows
    write_output(engine, engine.save(FHIR_QUARANTINE, ibis.memtable(read.quarantine)), out_dir, FHIR_QUARANTINE)
    write_output(engine, engine.save(FHIR_INGEST_SUMMARY, ibis.memtable(fhir_ingest_summary(read))), out_dir,
                 FHIR_INGEST_SUMMARY)
    warnings = sum(1 for action in read.quarantine.column("action").to_pylist() if action != "quarantined")
    return FhirIngestResult([str(p) for p in paths], read.resources_read, read.resources_accepted,
                            read.resources_quarantined, warnings, table_rows, dict(read.accepted_by_type),
                            time.perf_counter() - started)


@dataclass
class QualityFeeds:
    """Files besides the EHR data: the Q220 FOTO episode file, the CMS Q492 file, and already-computed
    aggregates (QPP JSON measurement sets, QRDA Category III) for measures not computed here."""

    q220: Path | None = None
    q492: Path | None = None
    qpp_json: tuple[Path, ...] = ()
    qrda3: tuple[Path, ...] = ()
    group_reporting_tins: Path | None = None


def _feed_quarantine(name: str, read) -> pa.Table:
    table = read.quarantine
    return table.append_column("feed", pa.array([name] * table.num_rows, pa.string()))


def run_quality(engine: Engine, rules: RulesForYear, out_dir: Path, feeds: QualityFeeds | None = None,
                step: Step | None = None, with_claims_proxy: bool = True) -> StageResult:
    """§512.725: the eCQMs on the run's clinical tables for the performance year, attributed to TIN/NPI; the Q220
    and Q492 feeds; imported aggregates; then `measure_aggregate`, gap lists and the unattributed cases.
    The Q492 claims proxy (monitoring only, `is_proxy`) is published separately and never enters the aggregate."""
    feeds = feeds or QualityFeeds()
    say = step or (lambda _text: None)
    result = StageResult()
    if not engine.has_table("encounter"):
        raise ValueError("no clinical tables in this run: run `openasm ingest-fhir` first")
    clinical = ClinicalTables.from_backend(engine.table)
    value_set_code = engine.save("value_set_code", ibis.memtable(value_set_codes(rules)))
    say("evaluating eCQMs")
    period = MeasurementPeriod.calendar_year(rules.performance_year)
    # One table per measure keeps each query plan small (Spark plans a union of seven eCQMs very slowly).
    per_measure = [engine.save(f"quality__int_case_result_{m.ecqm_id.lower()}", m.evaluate(
        clinical=clinical, value_set_code=value_set_code, period=period, rules=rules))
        for m in ecqm_measures_for_year(rules)]
    cases = engine.save("quality__int_case_result", ibis.union(*per_measure))
    say("attributing cases")
    attributed = publish(engine, out_dir, result, "measure_case_result", attribute_cases(
        measure_case_result=cases, encounter=clinical.encounter, practitioner=clinical.practitioner,
        organization=clinical.organization, rules=rules))
    publish(engine, out_dir, result, "unattributed_case", unattributed_cases(attributed_case_result=attributed))
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
        episodes = publish(engine, out_dir, result, "q220_episode_result", evaluate_q220_episodes(
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
    publish(engine, out_dir, result, "measure_aggregate_rejected", checked.filter(checked.reject_reason.notnull()))
    publish(engine, out_dir, result, "measure_aggregate",
            checked.filter(checked.reject_reason.isnull()).drop("reject_reason"))
    say("gap lists")
    publish(engine, out_dir, result, "measure_gap", list_measure_gaps(
        measure_case_result=attributed, patient=clinical.patient, rules=rules))
    publish(engine, out_dir, result, "pro_assessment", derive_pro_assessment(
        observation=clinical.observation, observation_component=clinical.observation_component,
        clinical_coding=clinical.clinical_coding, rules=rules))
    if quarantines:
        publish(engine, out_dir, result, "quality_feed_quarantine", ibis.memtable(pa.concat_tables(
            quarantines, promote_options="permissive")))
    if with_claims_proxy and engine.has_table("claim_line") and engine.has_table("claim_diagnosis"):
        say("Q492 claims proxy (monitoring only)")
        publish(engine, out_dir, result, "q492_proxy", compute_q492_proxy(
            claim_line=engine.table("claim_line"), claim_diagnosis=engine.table("claim_diagnosis"),
            beneficiary=engine.table("beneficiary"), rules=rules))
    return result

"""Run FHIR ingest: FHIR R4 JSON/NDJSON into the run's clinical tables (replacing earlier ones), every resource
accepted or quarantined, with the quarantine and a per-type summary published to `outputs/`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from openasm.engine import Engine
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.fhir_read import FhirReadResult, discover_fhir_files, read_fhir
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, no_step, publish

FHIR_QUARANTINE = "fhir_quarantine"
FHIR_INGEST_SUMMARY = "fhir_ingest_summary"


@dataclass(frozen=True)
class FhirInputs:
    """FHIR JSON/NDJSON files or folders (Bundles, single resources, bulk-export NDJSON, .gz allowed)."""

    paths: tuple[Path, ...]


@dataclass
class FhirIngestResult(StageResult):
    """Row accounting of one FHIR ingest: resources read = accepted + quarantined."""

    paths: list[str] = field(default_factory=list)
    resources_read: int = 0
    resources_accepted: int = 0
    resources_quarantined: int = 0
    warnings: int = 0
    table_rows: dict[str, int] = field(default_factory=dict)
    accepted_by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.resources_read == self.resources_accepted + self.resources_quarantined

    def manifest_entries(self) -> dict[str, Any]:
        return {"fhir_ingest": {
            "paths": self.paths, "resources_read": self.resources_read,
            "resources_accepted": self.resources_accepted, "resources_quarantined": self.resources_quarantined,
            "warnings": self.warnings, "table_rows": self.table_rows}}


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


def run_fhir_ingest(engine: Engine, rules: RulesForYear | None, run_dir: Path, inputs: FhirInputs,
                    step: Step | None = None) -> FhirIngestResult:
    """Read FHIR JSON/NDJSON into the clinical tables of the run (replacing earlier ones), with the quarantine
    and a per-type summary published to `outputs/`. Raises FhirInputError when a path cannot be read."""
    say = step or no_step
    started = time.perf_counter()
    paths = [Path(p) for p in inputs.paths]
    total = len(discover_fhir_files(paths))
    done = [0]

    def advance(_count: int) -> None:
        done[0] += 1
        say(f"file {done[0]} of {total}")

    read = read_fhir(paths, progress=advance)
    result = FhirIngestResult(paths=[str(p) for p in paths], resources_read=read.resources_read,
                              resources_accepted=read.resources_accepted,
                              resources_quarantined=read.resources_quarantined,
                              accepted_by_type=dict(read.accepted_by_type))
    for name in CLINICAL_SCHEMAS:
        engine.save(name, ibis.memtable(read.tables[name]))
        result.table_rows[name] = read.tables[name].num_rows
    publish(engine, run_dir, result, FHIR_QUARANTINE, ibis.memtable(read.quarantine))
    publish(engine, run_dir, result, FHIR_INGEST_SUMMARY, ibis.memtable(fhir_ingest_summary(read)))
    result.warnings = sum(1 for action in read.quarantine.column("action").to_pylist() if action != "quarantined")
    result.seconds = time.perf_counter() - started
    return result

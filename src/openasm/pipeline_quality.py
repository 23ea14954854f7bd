"""Compose the quality stage: FHIR ingest into clinical tables, then (in `run_quality`) the eCQMs, attribution,
aggregates and gap lists. The only quality module that executes or writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pyarrow as pa

from openasm.engine import Engine
from openasm.pipeline import write_output
from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.fhir_read import FhirReadResult, read_fhir

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

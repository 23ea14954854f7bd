"""The run folder's layout, the contract between the runners that write it and the readers of finished tables
(report, explain, decide, the dashboard).

A run folder holds the engine's tables (`openasm.duckdb`, or Parquet under `spark-tables/`), `outputs/` (Parquet
and CSV of each published table) and `manifest.json` (what was read, row-count reconciliation, rules used).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
OUTPUTS = "outputs"


def output_path(run_dir: Path, name: str, suffix: str = ".parquet") -> Path:
    """Where the published table `name` of a run lives."""
    return Path(run_dir) / OUTPUTS / f"{name}{suffix}"


def read_output(run_dir: Path, name: str) -> pa.Table | None:
    """A published table of the run, or None when the stage that writes it has not run."""
    path = output_path(run_dir, name)
    return pq.read_table(path) if path.exists() else None


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest; FileNotFoundError (naming the folder and the remedy) when there is none."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {MANIFEST}; run `openasm ingest` into this folder first")
    return json.loads(path.read_text())


def read_manifest_if_any(run_dir: Path) -> dict[str, Any]:
    """The run's manifest, or an empty one (readers that work on partial runs)."""
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}

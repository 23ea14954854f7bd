"""`ingest DIR --format cclf|bcda|bluebutton|rif|canonical|auto`: recognise a folder's format and ingest it.

Recognition looks at names and headers only: CCLF file names (CCLF packet §4.2), NDJSON files (BCDA bulk
export), JSON Bundles / resources (Blue Button, DPC), delimited or Parquet files whose columns are CCW research
file variables, or the canonical tables. One format found is used; several, or none, stop with a message that
lists what was found, so the user can pass `--format`.
"""

from __future__ import annotations

import json
from pathlib import Path

from openasm.connectors.base import ConnectorError, SourceTables, ingest_source_tables
from openasm.connectors.cclf_files import is_cclf_file
from openasm.engine import Engine
from openasm.ingest.sources import scan_input_folder
from openasm.pipeline import REQUIRED_TABLES, IngestResult, Progress, run_ingest
from openasm.schema.canonical import CANONICAL_TABLES

FORMATS = ("canonical", "cclf", "bcda", "bluebutton", "rif")


def _json_kind(path: Path) -> str:
    """bcda for NDJSON, bluebutton for a JSON Bundle or resource."""
    if path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
        return "bcda"
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(4096)
    except OSError:
        return ""
    return "bluebutton" if '"resourceType"' in head else ""


def find_formats(folder: Path) -> dict[str, list[str]]:
    """Every format with at least one of its files in `folder`, with up to three example names each."""
    from openasm.connectors.rif_files import classify, header_columns, sniff_delimiter

    folder = Path(folder)
    if not folder.is_dir():
        raise ConnectorError(f"{folder}: input folder does not exist")
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        in_canonical = path.stem in CANONICAL_TABLES or path.parent.name in CANONICAL_TABLES
        kind = ""
        if is_cclf_file(path):
            kind = "cclf"
        elif path.name.endswith((".ndjson", ".json", ".ndjson.gz", ".json.gz", ".jsonl")):
            kind = _json_kind(path)
        elif path.suffix.lower() in (".csv", ".txt", ".psv") and not in_canonical:
            delimiter = sniff_delimiter(path)
            kind = "rif" if classify(tuple(header_columns(path, delimiter or ","))) else ""
        elif path.suffix.lower() == ".parquet" and not in_canonical:
            import pyarrow.parquet as pq

            kind = "rif" if classify(tuple(pq.read_schema(path).names)) else ""
        if kind:
            found.setdefault(kind, []).append(path.name)
    scan = scan_input_folder(folder, CANONICAL_TABLES)
    if all(t in scan.tables for t in REQUIRED_TABLES):
        found["canonical"] = sorted(scan.tables)
    return found


def detect_format(folder: Path) -> str:
    """The one format of `folder`, or a ConnectorError listing what was found."""
    found = find_formats(folder)
    if len(found) == 1:
        return next(iter(found))
    listing = "; ".join(f"{kind}: {', '.join(names[:3])}{' …' if len(names) > 3 else ''}"
                        for kind, names in sorted(found.items())) or "no files of a known format"
    if not found:
        raise ConnectorError(f"{folder}: cannot tell the input format ({listing}); expected CCLF files, BCDA "
                             "NDJSON, Blue Button JSON, CCW research files or the canonical tables")
    raise ConnectorError(f"{folder}: more than one input format found ({listing}); pass --format with one of "
                         f"{', '.join(FORMATS)}")


def read_source_tables(engine: Engine, folder: Path, source_format: str) -> SourceTables:
    if source_format == "cclf":
        from openasm.connectors.cclf import read_cclf

        return read_cclf(engine, folder)
    if source_format in ("bcda", "bluebutton"):
        from openasm.connectors.bcda import read_fhir_claims

        return read_fhir_claims(engine, folder, source_format)
    if source_format == "rif":
        from openasm.connectors.rif import read_rif

        return read_rif(engine, folder)
    raise ConnectorError(f"unknown format {source_format!r}; choose one of {', '.join(FORMATS)} or auto")


def ingest_folder(engine: Engine, folder: Path, source_format: str = "auto",
                  progress: Progress | None = None) -> IngestResult:
    """Ingest `folder` in `source_format` (`auto`: recognised, see the module docstring)."""
    chosen = detect_format(folder) if source_format == "auto" else source_format
    if chosen == "canonical":
        return run_ingest(engine, Path(folder), progress)
    return ingest_source_tables(engine, read_source_tables(engine, Path(folder), chosen), str(folder), progress)

"""`ingest DIR --format cclf|bcda|bluebutton|rif|canonical|auto`: recognise a folder's format and read it into raw
canonical tables (`SourceTables`) for the ingest checks; the canonical tables themselves are one such format.

Recognition looks at names and headers only: CCLF file names (CCLF packet §4.2), NDJSON files (BCDA bulk
export), JSON Bundles / resources (Blue Button, DPC), delimited or Parquet files whose columns are CCW research
file variables, or the canonical tables. One format found is used; several, or none, stop with a message that
lists what was found, so the user can pass `--format`.
"""

from __future__ import annotations

from pathlib import Path

from openasm.connectors.base import ConnectorError, SourceTables
from openasm.connectors.cclf_files import is_cclf_file
from openasm.engine import Engine
from openasm.engine_csv import CsvDialect
from openasm.ingest.raw import REQUIRED_TABLES, read_canonical_files
from openasm.ingest.sources import IngestFileError, scan_input_folder
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
    # Canonical tables beside another format's files are its side tables (e.g. the clinician roster); alone,
    # or with every required table, they are the canonical format (a missing table is then reported by name).
    scan = scan_input_folder(folder, CANONICAL_TABLES)
    if all(t in scan.tables for t in REQUIRED_TABLES) or (scan.tables and not found):
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


def read_canonical(engine: Engine, folder: Path, dialect: CsvDialect | None = None) -> SourceTables:
    """The canonical tables of `folder` (`<table>.csv|.parquet` or a `<table>/` folder of parts), each file's
    columns checked against its contract, delimited files read with `dialect`. Raises IngestFileError when a
    required table is absent."""
    scan = scan_input_folder(folder, CANONICAL_TABLES)
    missing = [t for t in REQUIRED_TABLES if t not in scan.tables]
    if missing:
        raise IngestFileError(
            f"{folder}: required table(s) missing: {', '.join(missing)} "
            f"(expected <table>.csv, <table>.parquet or a <table>/ folder of parts)"
        )
    tables = SourceTables("canonical", not_read=list(scan.ignored))
    tables.raw = {name: read_canonical_files(engine, name, source.files, dialect)
                  for name, source in scan.tables.items()}
    return tables


def read_source_tables(engine: Engine, folder: Path, source_format: str = "auto",
                       dialect: CsvDialect | None = None) -> SourceTables:
    """`folder` read in `source_format` (`auto`: recognised, see the module docstring) as raw canonical tables;
    `dialect` applies to the canonical tables' delimited files."""
    folder = Path(folder)
    chosen = detect_format(folder) if source_format == "auto" else source_format
    if chosen == "canonical":
        return read_canonical(engine, folder, dialect)
    if chosen == "cclf":
        from openasm.connectors.cclf import read_cclf

        return read_cclf(engine, folder)
    if chosen in ("bcda", "bluebutton"):
        from openasm.connectors.bcda import read_fhir_claims

        return read_fhir_claims(engine, folder, chosen)
    if chosen == "rif":
        from openasm.connectors.rif import read_rif

        return read_rif(engine, folder)
    raise ConnectorError(f"unknown format {source_format!r}; choose one of {', '.join(FORMATS)} or auto")

"""Find the canonical tables in an input folder and check each file's columns before reading rows.

A table is either one file `<table>.csv|.parquet` or a folder `<table>/` of part files. Anything else in the
folder is listed as ignored, so the user sees it was not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from openasm.schema.contract import TableContract

SOURCE_SUFFIXES = (".csv", ".parquet")


class IngestFileError(ValueError):
    """A source file cannot be ingested at all (missing required column, unreadable, empty folder)."""


@dataclass(frozen=True)
class TableSource:
    """The files found for one canonical table."""

    table: str
    files: tuple[Path, ...]


@dataclass
class SourceScan:
    """What an input folder holds: files per canonical table, and what was not recognised."""

    tables: dict[str, TableSource] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def scan_input_folder(folder: Path, contracts: dict[str, TableContract]) -> SourceScan:
    """Map canonical table names to their files; list every other entry as ignored."""
    if not folder.is_dir():
        raise IngestFileError(f"{folder}: input folder does not exist")
    scan = SourceScan()
    for entry in sorted(folder.iterdir()):
        name = entry.stem if entry.is_file() else entry.name
        if entry.name.startswith("."):
            continue
        if name not in contracts or (entry.is_file() and entry.suffix.lower() not in SOURCE_SUFFIXES):
            scan.ignored.append(entry.name)
            continue
        files = _table_files(entry)
        if name in scan.tables:
            raise IngestFileError(f"{entry}: table '{name}' is given twice ({scan.tables[name].files[0]})")
        scan.tables[name] = TableSource(name, files)
    return scan


def _table_files(entry: Path) -> tuple[Path, ...]:
    if entry.is_file():
        return (entry,)
    files = tuple(sorted(p for p in entry.iterdir() if p.suffix.lower() in SOURCE_SUFFIXES))
    if not files:
        raise IngestFileError(f"{entry}: folder holds no .csv or .parquet files")
    suffixes = {p.suffix.lower() for p in files}
    if len(suffixes) > 1:
        raise IngestFileError(f"{entry}: mixes CSV and Parquet parts; use one format per table")
    return files


@dataclass(frozen=True)
class ColumnReport:
    """How a file's columns line up with the contract."""

    missing_optional: tuple[str, ...]
    unknown: tuple[str, ...]


def check_file_columns(path: Path, columns: list[str], contract: TableContract) -> ColumnReport:
    """Stop on a missing required column; report missing optional and unknown columns."""
    present = set(columns)
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise IngestFileError(f"{path}: column(s) {', '.join(duplicates)} appear more than once")
    for required in contract.required_columns:
        if required not in present:
            raise IngestFileError(
                f"{path}: missing required column '{required}' of table {contract.name}"
            )
    missing = tuple(c for c in contract.column_names if c not in present)
    unknown = tuple(c for c in columns if c not in contract.column_names)
    return ColumnReport(missing, unknown)

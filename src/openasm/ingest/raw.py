"""Raw canonical tables from any source, before the row checks: what canonical files and connectors hand to
ingest (`runs.ingest.check_raw_tables`), so one path accepts or quarantines every row of every format.

A raw table's parts have the canonical column names (text, or typed where the source is typed) plus
`_row_number` (the record number in its source file) and `_source_file`, as `Engine.read_source` returns them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ibis.expr.types as ir

from openasm.engine import Engine
from openasm.engine_csv import CsvDialect, read_header
from openasm.ingest.sources import check_file_columns
from openasm.schema.canonical import CANONICAL_TABLES

REQUIRED_TABLES = ("beneficiary", "enrollment", "claim_line")
# beneficiary first: the other tables' bene_id values are checked against it.
INGEST_ORDER = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")


@dataclass
class RawTable:
    """Raw rows of one canonical table. `rejected` holds rows a connector could not map at all (wrong record
    length, a line without its header), already in the quarantine's columns; they count as read and
    quarantined."""

    table: str
    parts: list[ir.Table]
    files: list[str]
    rejected: ir.Table | None = None
    missing_optional_columns: dict[str, list[str]] = field(default_factory=dict)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    # Every part gives at most one row per source record (canonical files; connector parts that say so), or numbers
    # the rows it makes from one record itself (`_row_copy`): the rows' positions are then unique and need no copy
    # numbering by a window over all rows (`validate.numbered_rows`).
    unique_positions: bool = False
    # Every text value is already without edge blanks (a connector's fixed-width cut trims each field).
    text_trimmed: bool = False


def read_canonical_files(engine: Engine, name: str, files: Iterable[Path],
                         dialect: CsvDialect | None = None) -> RawTable:
    """The files of one canonical table, their columns checked against the contract (a missing required
    column stops ingest), read through the engine: delimited files with one explicit `dialect` (default UTF-8,
    delimiter read off each header), Parquet parts of one layout scanned as one relation."""
    files = list(files)
    dialect = dialect or CsvDialect()
    contract = CANONICAL_TABLES[name]
    record = RawTable(name, [], [str(p) for p in files], unique_positions=True)
    parquet_layouts: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        is_parquet = path.suffix.lower() == ".parquet"
        if is_parquet:
            columns, delimiter = engine.source_columns(path), None
        else:
            columns, delimiter = read_header(path, dialect, contract.column_names)
        report = check_file_columns(path, columns, contract)
        if report.missing_optional:
            record.missing_optional_columns[str(path)] = list(report.missing_optional)
        if report.unknown:
            record.ignored_columns[str(path)] = list(report.unknown)
        if is_parquet:
            parquet_layouts.setdefault(tuple(columns), []).append(path)
        else:
            record.parts.append(engine.read_source(path, delimiter, dialect.encoding))
    record.parts.extend(engine.read_parquet_parts(paths) for paths in parquet_layouts.values())
    return record

"""What every connector hands to ingest: raw canonical-named tables, its own rejections, per-file record counts
and the limitations of its format.

A connector reads its files through the engine and returns `SourceTables`; `runs.ingest.run_ingest` passes its
raw tables to `check_raw_tables`, so the same row checks accept or quarantine every row with the source file
and record number, and `read = accepted + quarantined` holds per canonical table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from openasm.engine import ROW_NUMBER, SOURCE_FILE, Engine
from openasm.engine_sources import ROW_COPY
from openasm.ingest.raw import RawTable, read_canonical_files
from openasm.ingest.sources import scan_input_folder
from openasm.schema.canonical import CANONICAL_TABLES


class ConnectorError(ValueError):
    """A source folder or file cannot be read at all (nothing recognisable, a required file missing)."""


@dataclass(frozen=True)
class Limitation:
    """Something the source format cannot carry, and what follows from it for the outputs."""

    table: str
    column: str
    statement: str
    consequence: str
    affected_rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "statement": self.statement,
                "consequence": self.consequence, "affected_rows": self.affected_rows}


@dataclass
class SourceTables:
    """A connector's result: raw tables per canonical table, plus the accounting around them."""

    source_format: str
    raw: dict[str, RawTable] = field(default_factory=dict)
    extra_quarantine: list[ir.Table] = field(default_factory=list)
    source_records: list[dict[str, Any]] = field(default_factory=list)
    limitations: list[Limitation] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)
    # The connector's text values carry no edge blanks (fixed-width fields are trimmed as they are cut).
    text_trimmed: bool = False

    def stage(self, engine: Engine, expr: ir.Table) -> ir.Table:
        """Materialise an intermediate result that several later steps read (dropped after ingest): they then
        compile against a stored table instead of re-inlining every cut, join and pairing before it."""
        return engine.save(self._scratch_name(), expr, scratch=True)

    def _for_one_reader(self, engine: Engine, expr: ir.Table) -> ir.Table:
        return engine.for_one_reader(self._scratch_name(), expr)

    def _scratch_name(self) -> str:
        name = f"connector__int_{len(self.staged)}"
        self.staged.append(name)
        return name

    def add_part(self, table: str, part: ir.Table, files: list[str], *, one_row_per_record: bool = False,
                 row_copy: ir.IntegerValue | None = None) -> None:
        """Add raw rows of a canonical table (canonical column names, `_row_number`, `_source_file`).
        `one_row_per_record`: the part never makes two rows from one source record; `row_copy`: it does, and this
        numbers the rows of one record uniquely, in the order of the table's key (see `RawTable`)."""
        record = self._record(table)
        if row_copy is not None:
            part = part.mutate(**{ROW_COPY: row_copy.cast("int64")})
        unique = one_row_per_record or row_copy is not None
        record.unique_positions = unique and (record.unique_positions or not record.parts)
        record.parts.append(canonical_columns(part, table))
        record.files.extend(f for f in files if f not in record.files)

    def prepared(self, engine: Engine) -> dict[str, RawTable]:
        """The raw tables ready for the row checks: a table whose parts are expressions (cuts, joins, pairings)
        is aligned as one part, which only its row checks read (stored first where the backend needs it, see
        `Engine.for_one_reader`); parts that are stored already (canonical files) are left as they are."""
        for record in self.raw.values():
            if record.parts and not all(_is_stored(part) for part in record.parts):
                record.parts = [self._for_one_reader(engine, union_parts(record.parts))]
            if record.rejected is not None:
                record.rejected = self._for_one_reader(engine, record.rejected)
        self.extra_quarantine = [self.stage(engine, q) for q in self.extra_quarantine]
        return self.raw

    def drop_staged(self, engine: Engine) -> None:
        """Remove the intermediate tables `stage` stored."""
        for name in self.staged:
            engine.drop(name)
        self.staged.clear()

    def _record(self, table: str) -> RawTable:
        return self.raw.setdefault(table, RawTable(table, [], [], text_trimmed=self.text_trimmed))

    def add_rejected(self, table: str, rejected: ir.Table) -> None:
        """Add rows the connector could not map (quarantine columns) to a canonical table's accounting."""
        record = self._record(table)
        record.rejected = rejected if record.rejected is None else record.rejected.union(rejected)


def canonical_columns(part: ir.Table, table: str) -> ir.Table:
    """Only the contract's columns that the part has, plus the provenance columns (file, record and, where the
    connector numbered them, copy; its other helper columns, named with a leading underscore, are dropped)."""
    names = [c for c in CANONICAL_TABLES[table].column_names if c in part.columns]
    return part.select(*names, ROW_NUMBER, SOURCE_FILE, *([ROW_COPY] if ROW_COPY in part.columns else []))


def add_side_tables(engine: Engine, folder: Path, tables: SourceTables, names: tuple[str, ...]) -> None:
    """Canonical files (`<table>.csv|.parquet` or a `<table>/` folder) that sit beside the source files, for the
    tables the format does not carry (e.g. `clinician`, the practice roster no claims format holds). They are
    checked like any canonical input; a table the connector already produced is never replaced."""
    scan = scan_input_folder(folder, {n: CANONICAL_TABLES[n] for n in names})
    for name, source in scan.tables.items():
        if name not in tables.raw:
            tables.raw[name] = read_canonical_files(engine, name, source.files)


def union_parts(parts: list[ir.Table]) -> ir.Table:
    """Parts of one table as one: missing columns null (a missing copy number 0), every column text when the
    parts' types differ."""
    if len(parts) == 1:
        return parts[0]
    if any(ROW_COPY in part.columns for part in parts):
        parts = [part if ROW_COPY in part.columns else part.mutate(**{ROW_COPY: ibis.literal(0, "int64")})
                 for part in parts]
    names = list(dict.fromkeys(c for part in parts for c in part.columns))
    types = {c: {str(p.schema()[c]) for p in parts if c in p.columns} for c in names}
    aligned = []
    for part in parts:
        cols = {}
        for c in names:
            as_text = len(types[c]) > 1 or c not in part.columns
            value = part[c] if c in part.columns else ibis.null("string")
            cols[c] = value.cast("string") if as_text and c not in (ROW_NUMBER, ROW_COPY) else value
        aligned.append(part.select(**cols))
    return ibis.union(*aligned)


def _is_stored(table: ir.Table) -> bool:
    """Whether a table is a plain reference to a stored or registered table (nothing to compile)."""
    import ibis.expr.operations as ops

    return isinstance(table.op(), (ops.DatabaseTable, ops.UnboundTable, ops.InMemoryTable))


"""Run claims ingest: every canonical table read from the input folder (canonical files or a source format through
its connector, `connectors.formats`), each row checked, accepted rows stored, the rest quarantined.

Publishes `ingest_summary` (read = accepted + quarantined per table) and `quarantine`, and records the accounting
in the manifest. Derived tables of an earlier ingest (final-action status) are dropped so they are recomputed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from openasm.connectors.formats import read_source_tables
from openasm.engine import Engine
from openasm.engine_csv import CsvDialect
from openasm.ingest.raw import INGEST_ORDER, RawTable
from openasm.ingest.validate import (
    POSITION,
    QUARANTINE_SCHEMA,
    accepted_rows,
    check_rows,
    checked_rows_table,
    duplicate_rows,
    numbered_rows,
    quarantined_rows,
    unknown_bene_rows,
)
from openasm.rules import RulesForYear
from openasm.runs.final_action import FINAL_ACTION_TABLES
from openasm.runs.stage import PUBLISHES_ITSELF, StageResult, Step, count_rows, no_step, write_output
from openasm.schema.canonical import CANONICAL_TABLES


@dataclass(frozen=True)
class IngestInputs:
    """The input folder and its format: `canonical` (CSV or Parquet, one file or a folder of parts per table),
    `cclf`, `bcda`, `bluebutton`, `rif`, or `auto` (recognised from the files). `dialect`: how delimited
    canonical files are read (default UTF-8, delimiter read off each header). `csv_copies`: CSV copies of this
    run's outputs, `runs.stage.CSV_MODES` (None: as the run folder had it, else all)."""

    input_dir: Path
    source_format: str = "canonical"
    dialect: CsvDialect = field(default_factory=CsvDialect)
    csv_copies: str | None = None


@dataclass
class TableIngest:
    """Row accounting for one canonical table."""

    table: str
    files: list[str]
    read: int
    accepted: int
    quarantined: int
    missing_optional_columns: dict[str, list[str]] = field(default_factory=dict)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    provided: bool = True

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.quarantined


@dataclass
class IngestResult(StageResult):
    input_dir: str = ""
    tables: dict[str, TableIngest] = field(default_factory=dict)
    ignored_entries: list[str] = field(default_factory=list)
    # Set by a connector: the source format, each source file's record accounting, and what the format
    # cannot carry (column, rows affected, consequence) so the outputs say so.
    source_format: str = "canonical"
    source_records: list[dict[str, Any]] = field(default_factory=list)
    limitations: list[dict[str, Any]] = field(default_factory=list)
    # Tables quarantined beyond ingest.max_quarantine_share (set when the runner has rules).
    share_failures: list[QuarantineShareFailure] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return all(t.reconciles for t in self.tables.values())

    def manifest_entries(self) -> dict[str, Any]:
        return {"ingest": {"input_dir": self.input_dir, "reconciles": self.reconciles,
                           "ignored_entries": self.ignored_entries, "source_format": self.source_format,
                           "source_records": self.source_records, "limitations": self.limitations,
                           "quarantine_share_failures": [f.message() for f in self.share_failures],
                           "tables": {name: asdict(t) for name, t in self.tables.items()}}}


def _empty_table(contract_name: str) -> ir.Table:
    schema = CANONICAL_TABLES[contract_name].ibis_schema()
    return ibis.memtable(schema.to_pyarrow().empty_table())


def _empty_quarantine() -> ir.Table:
    return ibis.memtable(QUARANTINE_SCHEMA.to_pyarrow().empty_table())


# Suffix of a checked-rows table written before ingest publishes it (DuckDB): large tables are written and read
# outside the publishing transaction, in which DuckDB reads rows written earlier about half as fast.
UNPUBLISHED = "__unpublished"


@dataclass
class CheckedTable:
    """One canonical table checked and split, not yet published: `accepted` (the accepted rows, readable now),
    `quarantine` (its quarantine rows, stored) and the checked-rows table to rename (`unpublished`, DuckDB)."""

    record: TableIngest
    accepted: ir.Table
    quarantine: ir.Table
    unpublished: str | None = None

    def publish(self, engine: Engine) -> ir.Table:
        """Make the accepted rows run table `name` (inside the ingest's transaction) and check the accounting."""
        name, contract = self.record.table, CANONICAL_TABLES[self.record.table]
        if self.unpublished is not None:
            rows = engine.rename(self.unpublished, self.unpublished.removesuffix(UNPUBLISHED))
            self.accepted = engine.save_view(name, accepted_rows(checked=rows, duplicates=None, contract=contract))
        elif self.accepted.get_name() != name:
            self.accepted = engine.save(name, self.accepted)
        self.record.accepted = count_rows(self.accepted)
        self.record.quarantined = count_rows(self.quarantine)
        if not self.record.reconciles:
            raise RuntimeError(f"ingest accounting broken for {name}: read {self.record.read} != accepted "
                               f"{self.record.accepted} + quarantined {self.record.quarantined}")
        return self.accepted


def check_table(engine: Engine, source: RawTable, known_bene: ir.Table | None) -> CheckedTable:
    """Check every raw row of one canonical table in one query written once (`ingest__<name>_row`: each row
    typed and checked), find key repeats by a window over the key columns, and split off the quarantine (failed
    checks, key repeats and the rows the source's reader rejected) from the accepted rows.

    DuckDB: the rows that fail the bene_id check or repeat a key are moved out of the stored rows in place, so
    the accepted rows are a view over them (published as run table `name`, not copied). Spark: the accepted
    rows are stored (an anti-join)."""
    name = source.table
    contract = CANONICAL_TABLES[name]
    record = TableIngest(name, list(source.files), 0, 0, 0, dict(source.missing_optional_columns),
                         dict(source.ignored_columns))
    rejected = None
    if source.rejected is not None:
        rejected = engine.save(f"ingest__int_{name}_rejected", source.rejected.select(*QUARANTINE_SCHEMA.names),
                               scratch=True)
        record.read += count_rows(rejected)
    quarantine_name = f"ingest__int_{name}_quarantine"
    if not source.parts:
        quarantine = engine.save(quarantine_name, rejected if rejected is not None else _empty_quarantine(),
                                 scratch=True)
        return CheckedTable(record, _empty_table(name), quarantine)
    in_place = engine.changes_in_place
    checked_parts = [check_rows(raw=part, contract=contract, known_bene=None if in_place else known_bene,
                                text_trimmed=source.text_trimmed) for part in source.parts]
    checked = checked_parts[0] if len(checked_parts) == 1 else ibis.union(*checked_parts)
    numbered = numbered_rows(checked, contract, source.unique_positions)
    # Stored in file and record order (ties in later windows are broken by the order the accepted rows are read
    # in): as read when the engine keeps the sources' order, else sorted (a join or window reorders rows).
    row_name = checked_rows_table(name) + (UNPUBLISHED if in_place else "")
    checked = engine.save(row_name, numbered if engine.keeps_order(numbered) else numbered.order_by([*POSITION]))
    record.read += count_rows(checked)
    if in_place and known_bene is not None and "bene_id" in contract.column_names:
        # The bene_id check is a join, kept out of the checks above so they keep the order: failing rows move to
        # the end of the table (out of the accepted rows, whose order stays).
        unknown = engine.save(f"ingest__int_{name}_unknown_bene", unknown_bene_rows(
            checked=checked, known_bene=known_bene), scratch=True)
        engine.delete_rows(row_name, unknown, [*POSITION])
        engine.append_rows(row_name, unknown)
        engine.drop(unknown.get_name())
    duplicates = engine.save(f"ingest__int_{name}_duplicate", duplicate_rows(checked=checked, contract=contract),
                             scratch=True)
    quarantined = quarantined_rows(checked=checked, duplicates=duplicates, contract=contract)
    quarantine = engine.save(quarantine_name, quarantined if rejected is None
                             else quarantined.union(rejected.cast(quarantined.schema())), scratch=True)
    repeats = count_rows(duplicates) > 0
    if in_place:
        if repeats:
            engine.delete_rows(row_name, duplicates, [*POSITION])
        accepted = accepted_rows(checked=checked, duplicates=None, contract=contract)
        return CheckedTable(record, accepted, quarantine, unpublished=row_name)
    # No key repeats: the accepted rows filter the stored ones in their order; else they are stored (an
    # anti-join's output order is not stable).
    accepted = (engine.save if repeats else engine.save_view)(name, accepted_rows(
        checked=checked, duplicates=duplicates if repeats else None, contract=contract))
    return CheckedTable(record, accepted, quarantine)


def ingest_table(engine: Engine, source: RawTable, known_bene: ir.Table | None) -> tuple[
        TableIngest, ir.Table, ir.Table]:
    """One canonical table checked (`check_table`) and published: its accounting, accepted rows and quarantine."""
    checked = check_table(engine, source, known_bene)
    with engine.transaction():
        accepted = checked.publish(engine)
    return checked.record, accepted, checked.quarantine


def run_ingest(engine: Engine, rules: RulesForYear | None, run_dir: Path, inputs: IngestInputs,
               step: Step | None = None) -> IngestResult:
    """Read the tables of `inputs.input_dir` in its format, validate each row, store accepted rows and quarantine.

    The checked rows are written first; the canonical tables, the quarantine and the accounting are then
    published in one transaction (an error before or during it leaves the run folder's tables as they were).
    Raises IngestFileError when a required table is absent or a file lacks a required column, ConnectorError when
    a source format's files cannot be read at all (or the format cannot be recognised).
    """
    input_dir = Path(inputs.input_dir)
    source = read_source_tables(engine, input_dir, inputs.source_format, inputs.dialect)
    result = IngestResult(input_dir=str(input_dir), ignored_entries=list(source.not_read),
                          source_format=source.source_format, source_records=source.source_records,
                          limitations=[limitation.as_dict() for limitation in source.limitations])
    try:
        checked = check_raw_tables(engine, source.prepared(engine), step)
        with engine.transaction():
            publish_raw_tables(engine, checked, result, source.extra_quarantine)
            if rules is not None:
                result.share_failures = quarantine_share_failures(
                    engine, result, rules.value("ingest.max_quarantine_share"))
            publish_ingest(engine, run_dir, result)
    finally:
        drop_unpublished(engine)
        source.drop_staged(engine)
    return result


setattr(run_ingest, PUBLISHES_ITSELF, True)


def check_raw_tables(engine: Engine, raw: dict[str, RawTable], step: Step | None = None
                     ) -> dict[str, CheckedTable | None]:
    """Every raw table checked in ingest order (None: not provided); see `check_table`."""
    say = step or no_step
    checked: dict[str, CheckedTable | None] = {}
    known_bene: ir.Table | None = None
    for position, name in enumerate(INGEST_ORDER, start=1):
        say(f"{name} ({position}/{len(INGEST_ORDER)})")
        source = raw.get(name)
        checked[name] = None if source is None else check_table(engine, source, known_bene)
        if name == "beneficiary" and checked[name] is not None:
            known_bene = checked[name].accepted.select("bene_id")
    return checked


def publish_raw_tables(engine: Engine, checked: dict[str, CheckedTable | None], result: IngestResult,
                       extra_quarantine: list[ir.Table] | None = None) -> IngestResult:
    """The checked tables made the run's canonical tables, with the quarantine (call inside a transaction)."""
    quarantine_parts: list[ir.Table] = []
    for name, table in checked.items():
        if table is None:
            engine.save(name, _empty_table(name))
            result.tables[name] = TableIngest(name, [], 0, 0, 0, provided=False)
            continue
        table.publish(engine)
        quarantine_parts.append(table.quarantine)
        result.tables[name] = table.record
    quarantine_parts.extend(extra_quarantine or [])
    all_quarantine = (
        ibis.union(*[q.select(*QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA) for q in quarantine_parts])
        if quarantine_parts else _empty_quarantine())
    engine.save("quarantine", all_quarantine)
    for derived in FINAL_ACTION_TABLES:
        if engine.has_table(derived):
            engine.drop(derived)
    return result


def drop_unpublished(engine: Engine) -> None:
    """Remove ingest's intermediate tables (checked rows never published, per-table quarantine parts)."""
    for name in INGEST_ORDER:
        for intermediate in (checked_rows_table(name) + UNPUBLISHED, *(f"ingest__int_{name}_{suffix}" for suffix in (
                "quarantine", "rejected", "duplicate", "unknown_bene"))):
            engine.drop(intermediate)  # temporary tables too; a missing one is no error


@dataclass(frozen=True)
class QuarantineShareFailure:
    """A table whose quarantined share of rows exceeds `ingest.max_quarantine_share`, with its top reasons
    (column, reason, rows): no row values, so it can be printed and logged."""

    table: str
    read: int
    quarantined: int
    share: float
    max_share: float
    top_reasons: list[tuple[str, str, int]]

    def message(self) -> str:
        reasons = "; ".join(f"{column}: {reason} ({rows:,} rows)" for column, reason, rows in self.top_reasons)
        return (f"{self.table}: {self.quarantined:,} of {self.read:,} rows quarantined ({self.share:.0%}, more "
                f"than ingest.max_quarantine_share {self.max_share:.0%}); top reasons: {reasons}")


def quarantine_share_failures(engine: Engine, result: IngestResult, max_share: float,
                              top: int = 3) -> list[QuarantineShareFailure]:
    """Tables with more than `max_share` of their rows quarantined (ingest outcome check, issue 9): a table
    quarantined whole or mostly is a mis-specified input (date format, delimiter, layout), not dirty data.
    A record quarantined only for columns its source format cannot carry (the format's declared limitations,
    e.g. CCLF7 has no Part D cost) is the format's gap, stated in the run's limitations, not a wrong input:
    such records do not count toward the share."""
    candidates = [t for t in result.tables.values() if t.read and t.quarantined / t.read > max_share]
    if not candidates:
        return []
    quarantine = engine.table("quarantine")
    quarantine = quarantine.filter(quarantine.table_name.isin([t.table for t in candidates]))
    uncarried = format_gap_columns(result.limitations)
    gap = ibis.or_(ibis.literal(False), *[(quarantine.table_name == table) & quarantine.column_name.isin(columns)
                                          for table, columns in uncarried.items()])
    unexplained = quarantine.filter(~gap)
    counted: dict[str, int] = {}
    if any(t.table in uncarried for t in candidates):  # records, not rows: a record may fail on several columns
        records = unexplained.select("table_name", "source_file", "row_number").distinct()
        counted = {r["table_name"]: r["records"] for r in engine.fetch(
            records.group_by("table_name").agg(records=records.count())).to_pylist()}
    failing = [(t, t.quarantined if t.table not in uncarried else counted.get(t.table, 0)) for t in candidates]
    failing = [(t, n) for t, n in failing if n / t.read > max_share]
    if not failing:
        return []
    counts = engine.fetch(unexplained.group_by("table_name", "column_name", "reason").agg(rows=unexplained.count()))
    by_table: dict[str, list[tuple[str, str, int]]] = {}
    for row in sorted(counts.to_pylist(), key=lambda r: (-r["rows"], r["column_name"] or "", r["reason"])):
        by_table.setdefault(row["table_name"], []).append((row["column_name"], row["reason"], row["rows"]))
    return [QuarantineShareFailure(t.table, t.read, n, n / t.read, max_share, by_table.get(t.table, [])[:top])
            for t, n in failing]


def format_gap_columns(limitations: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per canonical table, the columns a source format's limitations say it cannot carry (the limitation's
    column text names them among other words)."""
    gaps: dict[str, list[str]] = {}
    for limitation in limitations:
        contract = CANONICAL_TABLES.get(limitation["table"])
        if contract is None:
            continue
        named = set(re.findall(r"[a-z0-9_]+", limitation["column"]))
        columns = [c for c in contract.column_names if c in named]
        if columns:
            gaps.setdefault(limitation["table"], []).extend(c for c in columns if c not in gaps[limitation["table"]])
    return gaps


def publish_ingest(engine: Engine, run_dir: Path, result: IngestResult) -> None:
    """Write the accounting (`ingest_summary`) and the quarantine to `outputs/`."""
    summary = engine.save("ingest_summary", ingest_summary_table(result))
    result.outputs["ingest_summary"] = write_output(engine, summary, run_dir, "ingest_summary")
    result.outputs["quarantine"] = write_output(engine, engine.table("quarantine"), run_dir, "quarantine")


def ingest_summary_table(result: IngestResult) -> ir.Table:
    """Per-table accounting as a table (for outputs and the report)."""
    rows = [
        {
            "table_name": t.table, "file_count": len(t.files), "read": t.read, "accepted": t.accepted,
            "quarantined": t.quarantined, "reconciles": t.reconciles, "provided": t.provided,
        }
        for t in result.tables.values()
    ]
    return ibis.memtable(rows)

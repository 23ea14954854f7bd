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
    duplicate_rows,
    numbered_rows,
    quarantined_rows,
)
from openasm.rules import RulesForYear
from openasm.runs.final_action import FINAL_ACTION_TABLES
from openasm.runs.stage import StageResult, Step, count_rows, no_step, write_output
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


def ingest_table(engine: Engine, source: RawTable, known_bene: ir.Table | None) -> tuple[
        TableIngest, ir.Table, ir.Table]:
    """Check every raw row of one canonical table in one query written once (`ingest__<name>_row`: each row
    typed and checked), find key repeats by a window over the key columns, and split off the quarantine (failed
    checks, key repeats and the rows the source's reader rejected) and the accepted rows (run table `name`; on
    DuckDB a view over the checked rows when no key repeats, so they are not copied again)."""
    name = source.table
    contract = CANONICAL_TABLES[name]
    record = TableIngest(name, list(source.files), 0, 0, 0, dict(source.missing_optional_columns),
                         dict(source.ignored_columns))
    rejected = None
    if source.rejected is not None:
        rejected = engine.save(f"ingest__int_{name}_rejected", source.rejected.select(*QUARANTINE_SCHEMA.names))
        record.read += count_rows(rejected)
    quarantine_name = f"ingest__int_{name}_quarantine"
    if source.parts:
        checked_parts = [check_rows(raw=part, contract=contract, known_bene=known_bene,
                                    text_trimmed=source.text_trimmed) for part in source.parts]
        checked = checked_parts[0] if len(checked_parts) == 1 else ibis.union(*checked_parts)
        # Stored in file and record order: the bene_id join leaves rows in an order that differs run to run, and
        # later float sums (cost regressions) depend on the order in which they read the accepted rows.
        numbered = numbered_rows(checked, contract, source.unique_positions)
        checked = engine.save(f"ingest__{name}_row", numbered.order_by([*POSITION]))
        duplicates = engine.save(f"ingest__{name}_duplicate", duplicate_rows(checked=checked, contract=contract))
        quarantined = quarantined_rows(checked=checked, duplicates=duplicates, contract=contract)
        quarantine = engine.save(quarantine_name, quarantined if rejected is None
                                 else quarantined.union(rejected.cast(quarantined.schema())))
        # No key repeats (the usual case): a view filtering the stored rows in their stored order; else the
        # accepted rows are stored (an anti-join's output order is not stable, and later sums depend on it).
        repeats = count_rows(duplicates) > 0
        accepted = (engine.save if repeats else engine.save_view)(name, accepted_rows(
            checked=checked, duplicates=duplicates if repeats else None, contract=contract))
        record.read += count_rows(checked)
    else:
        accepted = engine.save(name, _empty_table(name))
        quarantine = engine.save(quarantine_name, rejected if rejected is not None else _empty_quarantine())
    record.accepted = count_rows(accepted)
    record.quarantined = count_rows(quarantine)
    if not record.reconciles:
        raise RuntimeError(f"ingest accounting broken for {name}: read {record.read} != accepted {record.accepted} "
                           f"+ quarantined {record.quarantined}")
    return record, accepted, quarantine


def run_ingest(engine: Engine, rules: RulesForYear | None, run_dir: Path, inputs: IngestInputs,
               step: Step | None = None) -> IngestResult:
    """Read the tables of `inputs.input_dir` in its format, validate each row, store accepted rows and quarantine.

    Raises IngestFileError when a required table is absent or a file lacks a required column, ConnectorError when
    a source format's files cannot be read at all (or the format cannot be recognised).
    """
    input_dir = Path(inputs.input_dir)
    source = read_source_tables(engine, input_dir, inputs.source_format, inputs.dialect)
    result = IngestResult(input_dir=str(input_dir), ignored_entries=list(source.not_read),
                          source_format=source.source_format, source_records=source.source_records,
                          limitations=[limitation.as_dict() for limitation in source.limitations])
    try:
        ingest_raw_tables(engine, source.prepared(engine), result, step, source.extra_quarantine)
    finally:
        source.drop_staged(engine)
    if rules is not None:
        result.share_failures = quarantine_share_failures(engine, result, rules.value("ingest.max_quarantine_share"))
    publish_ingest(engine, run_dir, result)
    return result


def ingest_raw_tables(engine: Engine, raw: dict[str, RawTable], result: IngestResult, step: Step | None = None,
                      extra_quarantine: list[ir.Table] | None = None) -> IngestResult:
    """Validate raw canonical tables from any source (canonical files or a connector): every row accepted or
    quarantined with its source file and record number; accepted rows stored as the canonical tables and the
    accounting recorded in `result`.

    A table absent from `raw` is stored empty and reported as not provided. `extra_quarantine` adds rows a
    connector rejected outside the canonical tables (e.g. a cross-walk file's bad records) to the quarantine.
    """
    say = step or no_step
    quarantine_parts: list[ir.Table] = []
    known_bene: ir.Table | None = None
    for position, name in enumerate(INGEST_ORDER, start=1):
        say(f"{name} ({position}/{len(INGEST_ORDER)})")
        source = raw.get(name)
        if source is None:
            engine.save(name, _empty_table(name))
            result.tables[name] = TableIngest(name, [], 0, 0, 0, provided=False)
            continue
        record, accepted, quarantine = ingest_table(engine, source, known_bene)
        quarantine_parts.append(quarantine)
        if name == "beneficiary":
            known_bene = accepted.select("bene_id")
        result.tables[name] = record
    quarantine_parts.extend(extra_quarantine or [])
    all_quarantine = (
        ibis.union(*[q.select(*QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA) for q in quarantine_parts])
        if quarantine_parts else _empty_quarantine())
    engine.save("quarantine", all_quarantine)
    for derived in FINAL_ACTION_TABLES:
        if engine.has_table(derived):
            engine.drop(derived)
    for name in INGEST_ORDER:
        for suffix in ("quarantine", "rejected"):
            if engine.has_table(f"ingest__int_{name}_{suffix}"):
                engine.drop(f"ingest__int_{name}_{suffix}")
    return result


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

"""Compose stages into runs: the only module that executes, materialises or writes.

A run folder holds the engine's tables (DuckDB file or Spark Parquet), `outputs/` (Parquet + CSV of each
published table), and `manifest.json` (what was read, row-count reconciliation, rules values used).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from openasm import __version__
from openasm.engine import Engine
from openasm.ingest.final_action import resolve_final_action
from openasm.ingest.sources import IngestFileError, check_file_columns, scan_input_folder
from openasm.ingest.csv_dialect import CsvDialect, read_header
from openasm.ingest.validate import (
    QUARANTINE_SCHEMA,
    accepted_rows,
    check_rows,
    duplicate_rows,
    quarantined_rows,
)
from openasm.rules import RulesForYear
from openasm.schema.canonical import CANONICAL_TABLES
from openasm.schema.contract import TableContract
from openasm.summary.claim_spend import (
    count_claim_versions,
    summarize_spend_by_setting,
    summarize_spend_by_specialty,
)

REQUIRED_TABLES = ("beneficiary", "enrollment", "claim_line")
# beneficiary first: the other tables' bene_id values are checked against it.
INGEST_ORDER = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")
# Tables derived from ingested claims: recomputed after every ingest.
FINAL_ACTION_TABLES = {"claim_line_status": "claim_line", "pharmacy_claim_status": "pharmacy_claim"}
MANIFEST = "manifest.json"
OUTPUTS = "outputs"

Progress = Callable[[str, int, int], None]


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
class IngestResult:
    input_dir: str
    tables: dict[str, TableIngest]
    ignored_entries: list[str]

    @property
    def reconciles(self) -> bool:
        return all(t.reconciles for t in self.tables.values())


def count_rows(expr: ir.Table) -> int:
    """Executed row count of a table expression."""
    return int(expr.count().to_pyarrow().as_py())


def _empty_table(contract_name: str) -> ir.Table:
    schema = CANONICAL_TABLES[contract_name].ibis_schema()
    return ibis.memtable(schema.to_pyarrow().empty_table())


def run_ingest(engine: Engine, input_dir: Path, progress: Progress | None = None,
               dialect: CsvDialect | None = None) -> IngestResult:
    """Read every canonical table in `input_dir`, validate each row, store accepted rows and quarantine.

    Each table is read, typed and checked in one query written once (`ingest__int_<table>_checked`); key
    repeats come from a window over that table's key columns; accepted rows and the quarantine are split off
    it. Delimited files are read with `dialect` (default: UTF-8, delimiter read off each header).
    Raises IngestFileError when a required table is absent or a file lacks a required column.
    """
    input_dir = Path(input_dir)
    dialect = dialect or CsvDialect()
    scan = scan_input_folder(input_dir, CANONICAL_TABLES)
    missing = [t for t in REQUIRED_TABLES if t not in scan.tables]
    if missing:
        raise IngestFileError(
            f"{input_dir}: required table(s) missing: {', '.join(missing)} "
            f"(expected <table>.csv, <table>.parquet or a <table>/ folder of parts)"
        )
    results: dict[str, TableIngest] = {}
    quarantine_parts: list[ir.Table] = []
    known_bene: ir.Table | None = None
    for step, name in enumerate(INGEST_ORDER):
        if progress:
            progress(name, step, len(INGEST_ORDER))
        source = scan.tables.get(name)
        if source is None:
            engine.save(name, _empty_table(name))
            results[name] = TableIngest(name, [], 0, 0, 0, provided=False)
            continue
        record, accepted, quarantine = ingest_table(engine, CANONICAL_TABLES[name], source.files, dialect,
                                                    known_bene)
        quarantine_parts.append(quarantine)
        if name == "beneficiary":
            known_bene = accepted.select("bene_id")
        results[name] = record
    all_quarantine = (
        ibis.union(*quarantine_parts) if quarantine_parts
        else ibis.memtable(QUARANTINE_SCHEMA.to_pyarrow().empty_table())
    )
    engine.save("quarantine", all_quarantine)
    for derived in FINAL_ACTION_TABLES:
        if engine.has_table(derived):
            engine.drop(derived)
    for name in INGEST_ORDER:
        if engine.has_table(f"ingest__int_{name}_quarantine"):
            engine.drop(f"ingest__int_{name}_quarantine")
    if progress:
        progress("done", len(INGEST_ORDER), len(INGEST_ORDER))
    return IngestResult(str(input_dir), results, scan.ignored)


def ingest_table(engine: Engine, contract: TableContract, files: tuple[Path, ...] | list[Path],
                 dialect: CsvDialect, known_bene: ir.Table | None = None) -> tuple[TableIngest, ir.Table, ir.Table]:
    """Read, type and check one canonical table's files in one query written once, find key repeats by a
    window over the key columns, and split off the accepted rows (stored as the table) and the quarantine.
    Returns the row accounting, the accepted table and the table's quarantine (`ingest__int_<t>_quarantine`)."""
    name = contract.name
    record = TableIngest(name, [str(p) for p in files], 0, 0, 0)
    raw_parts = []
    parquet_layouts: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        delimiter = None
        if path.suffix.lower() == ".parquet":
            columns = engine.source_columns(path)
        else:
            columns, delimiter = read_header(path, dialect, contract.column_names)
        report = check_file_columns(path, columns, contract)
        if report.missing_optional:
            record.missing_optional_columns[str(path)] = list(report.missing_optional)
        if report.unknown:
            record.ignored_columns[str(path)] = list(report.unknown)
        if path.suffix.lower() == ".parquet":
            parquet_layouts.setdefault(tuple(columns), []).append(path)
        else:
            raw_parts.append(engine.read_source(path, delimiter, dialect.encoding))
    # Parquet parts with the same columns are scanned as one relation.
    raw_parts.extend(engine.read_parquet_parts(paths) for paths in parquet_layouts.values())
    checked_parts = [check_rows(raw=raw, contract=contract, known_bene=known_bene) for raw in raw_parts]
    # The only pass over the source: every row typed and checked, written once.
    checked = engine.save(f"ingest__{name}_row",
                          checked_parts[0] if len(checked_parts) == 1 else ibis.union(*checked_parts))
    duplicates = engine.save(f"ingest__{name}_duplicate", duplicate_rows(checked=checked, contract=contract))
    quarantine = engine.save(f"ingest__int_{name}_quarantine",
                             quarantined_rows(checked=checked, duplicates=duplicates, contract=contract))
    accepted = engine.save_view(name, accepted_rows(checked=checked, duplicates=duplicates, contract=contract))
    record.read = count_rows(checked)
    record.accepted = count_rows(accepted)
    record.quarantined = count_rows(quarantine)
    if not record.reconciles:
        raise RuntimeError(
            f"ingest accounting broken for {name}: read {record.read} != accepted {record.accepted} "
            f"+ quarantined {record.quarantined}"
        )
    return record, accepted, quarantine


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
    """Tables with more than `max_share` of their rows quarantined (ingest outcome check, issue 9)."""
    failing = [t for t in result.tables.values() if t.read and t.quarantined / t.read > max_share]
    if not failing:
        return []
    quarantine = engine.table("quarantine")
    quarantine = quarantine.filter(quarantine.table_name.isin([t.table for t in failing]))
    counts = engine.fetch(quarantine.group_by("table_name", "column_name", "reason").agg(rows=quarantine.count()))
    by_table: dict[str, list[tuple[str, str, int]]] = {}
    for row in sorted(counts.to_pylist(), key=lambda r: (-r["rows"], r["column_name"] or "", r["reason"])):
        by_table.setdefault(row["table_name"], []).append((row["column_name"], row["reason"], row["rows"]))
    return [QuarantineShareFailure(t.table, t.read, t.quarantined, t.quarantined / t.read, max_share,
                                   by_table.get(t.table, [])[:top]) for t in failing]


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


def quarantine_reasons(*, quarantine: ir.Table) -> ir.Table:
    """Grain: table x column x reason, with row counts."""
    return quarantine.group_by("table_name", "column_name", "reason").agg(row_count=quarantine.count()).order_by(
        "table_name", ibis.desc("row_count"), "column_name"
    )


@dataclass
class SummaryResult:
    tables: dict[str, Path]


def ensure_final_action(engine: Engine) -> tuple[ir.Table, ir.Table]:
    """Claims and fills with their final-action status, resolved once per ingest (ingest drops them)."""
    for name, source in FINAL_ACTION_TABLES.items():
        if not engine.has_table(name):
            engine.save(name, resolve_final_action(claims=engine.table(source)))
    return engine.table("claim_line_status"), engine.table("pharmacy_claim_status")


def run_claims_summary(engine: Engine, rules: RulesForYear, out_dir: Path) -> SummaryResult:
    """Resolve final action on claims and fills, then write spend summaries and quarantine reasons."""
    claim_status, fill_status = ensure_final_action(engine)
    specialty_codes = ibis.memtable(rules.code_list("reference__medicare_specialty_codes"))
    outputs = {
        "spend_by_setting": summarize_spend_by_setting(claim_line=claim_status, pharmacy_claim=fill_status),
        "spend_by_specialty": summarize_spend_by_specialty(claim_line=claim_status, specialty_names=specialty_codes),
        "claim_versions": count_claim_versions(claim_line=claim_status, pharmacy_claim=fill_status),
        "quarantine_reasons": quarantine_reasons(quarantine=engine.table("quarantine")),
    }
    written = {}
    for name, expr in outputs.items():
        stored = engine.save(name, expr)
        written[name] = write_output(engine, stored, out_dir, name)
    return SummaryResult(written)


Step = Callable[[str], None]


@dataclass
class StageResult:
    """Row counts of the published tables, for the CLI and the manifest."""

    row_counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)


def publish(engine: Engine, out_dir: Path, result: StageResult, name: str, expr: ir.Table) -> ir.Table:
    """Materialise a stage output, write it to `outputs/` and count its rows into `result`."""
    stored = engine.save(name, expr)
    result.outputs[name] = write_output(engine, stored, out_dir, name)
    result.row_counts[name] = count_rows(stored)
    return stored


def write_output(engine: Engine, expr: ir.Table, out_dir: Path, name: str) -> Path:
    """Publish a table as `outputs/<name>.parquet` and `.csv`."""
    target = Path(out_dir) / OUTPUTS
    engine.write_parquet(expr, target / f"{name}.parquet")
    engine.write_csv(expr, target / f"{name}.csv")
    return target / f"{name}.parquet"


def write_manifest(
    run_dir: Path, *, engine: Engine, ingest: IngestResult | None, rules: RulesForYear | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Record what the run read, how rows reconcile, and each rules value used (with citation, evidence)."""
    path = Path(run_dir) / MANIFEST
    existing: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    existing.update(
        {
            "openasm_version": __version__,
            "backend": engine.backend,
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    if ingest is not None:
        existing["ingest"] = {
            "input_dir": ingest.input_dir,
            "reconciles": ingest.reconciles,
            "ignored_entries": ingest.ignored_entries,
            "tables": {name: asdict(t) for name, t in ingest.tables.items()},
        }
    if rules is not None:
        existing["performance_year"] = rules.performance_year
        # Each stage adds what it read; a value read again by a later stage replaces the earlier row.
        for key, rows in (("rules_used", rules.manifest_rows(only_used=True)),
                          ("code_lists_used", rules.code_list_rows())):
            merged = {row["name"]: row for row in existing.get(key, [])}
            merged.update({row["name"]: row for row in rows})
            existing[key] = [merged[name] for name in sorted(merged)]
    if extra:
        existing.update(extra)
    path.write_text(json.dumps(existing, indent=2, default=str))
    return path


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {MANIFEST}; run `openasm ingest` into this folder first")
    return json.loads(path.read_text())

"""Run claims ingest: every canonical table read, each row checked, accepted rows stored, the rest quarantined.

Publishes `ingest_summary` (read = accepted + quarantined per table) and `quarantine`, and records the accounting
in the manifest. Derived tables of an earlier ingest (final-action status) are dropped so they are recomputed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from openasm.engine import Engine
from openasm.ingest.sources import (
    IngestFileError,
    check_file_columns,
    scan_input_folder,
)
from openasm.ingest.validate import (
    QUARANTINE_SCHEMA,
    accepted_rows,
    check_rows,
    flag_duplicate_keys,
    quarantined_rows,
)
from openasm.rules import RulesForYear
from openasm.runs.final_action import FINAL_ACTION_TABLES
from openasm.runs.stage import StageResult, Step, count_rows, no_step, write_output
from openasm.schema.canonical import CANONICAL_TABLES

REQUIRED_TABLES = ("beneficiary", "enrollment", "claim_line")
# beneficiary first: the other tables' bene_id values are checked against it.
INGEST_ORDER = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")


@dataclass(frozen=True)
class IngestInputs:
    """The folder of canonical tables (CSV or Parquet, one file or a folder of parts per table)."""

    input_dir: Path


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

    @property
    def reconciles(self) -> bool:
        return all(t.reconciles for t in self.tables.values())

    def manifest_entries(self) -> dict[str, Any]:
        return {"ingest": {"input_dir": self.input_dir, "reconciles": self.reconciles,
                           "ignored_entries": self.ignored_entries,
                           "tables": {name: asdict(t) for name, t in self.tables.items()}}}


def _empty_table(contract_name: str) -> ir.Table:
    schema = CANONICAL_TABLES[contract_name].ibis_schema()
    return ibis.memtable(schema.to_pyarrow().empty_table())


def _ingest_table(engine: Engine, name: str, files: list[Path], known_bene: ir.Table | None) -> tuple[
        TableIngest, ir.Table, ir.Table]:
    """Check every row of one canonical table's files; store accepted rows as run table `name`."""
    contract = CANONICAL_TABLES[name]
    record = TableIngest(name, [str(p) for p in files], 0, 0, 0)
    checked_parts = []
    for path in files:
        report = check_file_columns(path, engine.source_columns(path), contract)
        if report.missing_optional:
            record.missing_optional_columns[str(path)] = list(report.missing_optional)
        if report.unknown:
            record.ignored_columns[str(path)] = list(report.unknown)
        raw = engine.read_source(path)
        record.read += count_rows(raw)
        checked_parts.append(check_rows(raw=raw, contract=contract, known_bene=known_bene))
    checked = checked_parts[0] if len(checked_parts) == 1 else ibis.union(*checked_parts)
    checked = engine.save(f"ingest__int_{name}_checked", flag_duplicate_keys(checked=checked, contract=contract))
    accepted = engine.save(name, accepted_rows(checked=checked, contract=contract))
    quarantine = engine.save(f"ingest__int_{name}_quarantine", quarantined_rows(checked=checked, contract=contract))
    record.accepted = count_rows(accepted)
    record.quarantined = count_rows(quarantine)
    engine.drop(f"ingest__int_{name}_checked")
    if not record.reconciles:
        raise RuntimeError(f"ingest accounting broken for {name}: read {record.read} != accepted {record.accepted} "
                           f"+ quarantined {record.quarantined}")
    return record, accepted, quarantine


def run_ingest(engine: Engine, rules: RulesForYear | None, run_dir: Path, inputs: IngestInputs,
               step: Step | None = None) -> IngestResult:
    """Read every canonical table in `inputs.input_dir`, validate each row, store accepted rows and quarantine.

    Raises IngestFileError when a required table is absent or a file lacks a required column.
    """
    say = step or no_step
    input_dir = Path(inputs.input_dir)
    scan = scan_input_folder(input_dir, CANONICAL_TABLES)
    missing = [t for t in REQUIRED_TABLES if t not in scan.tables]
    if missing:
        raise IngestFileError(
            f"{input_dir}: required table(s) missing: {', '.join(missing)} "
            f"(expected <table>.csv, <table>.parquet or a <table>/ folder of parts)"
        )
    result = IngestResult(input_dir=str(input_dir), ignored_entries=scan.ignored)
    quarantine_parts: list[ir.Table] = []
    known_bene: ir.Table | None = None
    for position, name in enumerate(INGEST_ORDER, start=1):
        say(f"{name} ({position}/{len(INGEST_ORDER)})")
        source = scan.tables.get(name)
        if source is None:
            engine.save(name, _empty_table(name))
            result.tables[name] = TableIngest(name, [], 0, 0, 0, provided=False)
            continue
        record, accepted, quarantine = _ingest_table(engine, name, list(source.files), known_bene)
        quarantine_parts.append(quarantine)
        if name == "beneficiary":
            known_bene = accepted.select("bene_id")
        result.tables[name] = record
    all_quarantine = (ibis.union(*quarantine_parts) if quarantine_parts
                      else ibis.memtable(QUARANTINE_SCHEMA.to_pyarrow().empty_table()))
    engine.save("quarantine", all_quarantine)
    for derived in FINAL_ACTION_TABLES:
        if engine.has_table(derived):
            engine.drop(derived)
    for name in INGEST_ORDER:
        if engine.has_table(f"ingest__int_{name}_quarantine"):
            engine.drop(f"ingest__int_{name}_quarantine")
    summary = engine.save("ingest_summary", ingest_summary_table(result))
    result.outputs["ingest_summary"] = write_output(engine, summary, run_dir, "ingest_summary")
    result.outputs["quarantine"] = write_output(engine, engine.table("quarantine"), run_dir, "quarantine")
    return result


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

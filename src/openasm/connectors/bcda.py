"""BCDA bulk FHIR export (NDJSON) and Blue Button 2.0 / DPC per-patient responses (JSON Bundles) → canonical.

Both carry the same BFD resources: ExplanationOfBenefit (carrier, DME, inpatient, outpatient, SNF, HHA, hospice,
Part D), Patient and Coverage. Files are streamed one resource at a time (`fhir_eob` flattens each), written to
staging Parquet in the run folder and read back through the engine, so the canonical checks run on the
backend with each row naming its file and record (NDJSON line, or entry number of a Bundle). A claim whose
lines arrive in several EOBs (paged or split responses) is one claim: its items join by claim id.
Patient ids become the current MBI where the Patient resource gives one.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from openasm.connectors.base import ConnectorError, Limitation, SourceTables, add_side_tables
from openasm.connectors.fhir_eob import Rejected, flatten_coverage, flatten_eob, flatten_patient
from openasm.engine import ROW_NUMBER, SOURCE_FILE, Engine
from openasm.schema.canonical import CANONICAL_TABLES

SUFFIXES = (".ndjson", ".json", ".ndjson.gz", ".json.gz", ".jsonl")
STAGING = "connector-staging"
SIDE_TABLES = ("clinician",)
FHIR_LIMITATIONS = (
    Limitation("claim_line", "claim_adjustment_type, original_claim_id, standardized_amount",
               "BFD serves final action claims without their earlier versions, and no standardized amounts.",
               "Costs use final action claims; the cost basis falls back to allowed amounts."),
    Limitation("beneficiary", "county_fips, orec, is_esrd",
               "Patient carries the USPS state and ZIP but no county, entitlement reason or ESRD status.",
               "County-based adjustments have no county."),
    Limitation("enrollment", "is_hospice, is_msp, is_esrd",
               "Coverage carries monthly buy-in, HMO, Part D contract and dual status for its reference year "
               "only; no hospice or MSP months.",
               "Keep every year's Coverage export (or supply enrollment) to cover look-back years."),
)


def fhir_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def iter_resources(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(record number, resource, parse error): NDJSON lines, or the entries of a Bundle / a single resource."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        if path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line), None
                    except json.JSONDecodeError as err:
                        yield number, None, f"malformed JSON: {err.msg} at column {err.colno}"
            return
        try:
            document = json.load(handle)
        except json.JSONDecodeError as err:
            yield 1, None, f"malformed JSON: {err.msg} at line {err.lineno}"
            return
    if document.get("resourceType") == "Bundle":
        for number, entry in enumerate(document.get("entry", []), start=1):
            yield number, entry.get("resource"), None
    else:
        yield 1, document, None


class _Collector:
    """Rows per output, written to staging Parquet in batches."""

    def __init__(self, folder: Path, batch: int = 50_000) -> None:
        self.folder, self.batch = folder, batch
        self.rows: dict[str, list[dict]] = {}
        self.parts: dict[str, list[Path]] = {}

    def add(self, name: str, row: dict, path: Path, record: int) -> None:
        bucket = self.rows.setdefault(name, [])
        bucket.append({**row, "_src_row": record, "_src_file": str(path)})
        if len(bucket) >= self.batch:
            self.flush(name)

    def flush(self, name: str) -> None:
        rows = self.rows.pop(name, [])
        if not rows:
            return
        names = list(dict.fromkeys(k for row in rows for k in row))
        table = pa.table({k: pa.array([None if row.get(k) is None else str(row[k]) for row in rows], pa.string())
                          for k in names})
        path = self.folder / f"{name}-{len(self.parts.get(name, [])):05d}.parquet"
        pq.write_table(table, path)
        self.parts.setdefault(name, []).append(path)


def read_fhir_claims(engine: Engine, folder: Path, source_format: str) -> SourceTables:
    """Every EOB, Patient and Coverage resource under `folder` as raw canonical tables."""
    files = fhir_files(folder)
    if not files:
        raise ConnectorError(f"{folder}: no FHIR files (*.ndjson, *.json) found")
    if engine.run_dir is None:
        raise ConnectorError("reading FHIR claims needs a run folder for its staging files")
    staging = Path(engine.run_dir) / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    collector, tables = _Collector(staging), SourceTables(source_format)
    tables.limitations.extend(FHIR_LIMITATIONS)
    for path in files:
        counts: dict[str, int] = {}
        for record, resource, error in iter_resources(path):
            kind = (resource or {}).get("resourceType", "unreadable")
            counts[kind] = counts.get(kind, 0) + 1
            _collect(collector, path, record, resource, error)
        tables.source_records.append({"file": str(path), "file_type": "fhir", "resources": counts})
    for name in list(collector.rows):
        collector.flush(name)
    staged = {name: _read_staged(engine, parts) for name, parts in collector.parts.items()}
    _assemble(staged, tables, [str(p) for p in files])
    add_side_tables(engine, Path(folder), tables, SIDE_TABLES)
    if "beneficiary" not in tables.raw or "claim_line" not in tables.raw:
        raise ConnectorError(f"{folder}: FHIR claims need Patient and ExplanationOfBenefit resources (found: "
                             f"{', '.join(sorted(staged)) or 'none usable'})")
    return tables


def _collect(collector: _Collector, path: Path, record: int, resource: dict | None, error: str | None) -> None:
    if resource is None:
        collector.add("rejected", {"table_name": "claim_line", "reason": error or "empty entry"}, path, record)
        return
    kind = resource.get("resourceType")
    try:
        if kind == "ExplanationOfBenefit":
            claim_type, lines, diagnoses = flatten_eob(resource)
            for line in lines:
                collector.add("pharmacy" if claim_type == "pharmacy" else "line", line, path, record)
            for dx in diagnoses:
                collector.add("diagnosis", dx, path, record)
        elif kind == "Patient":
            collector.add("patient", flatten_patient(resource), path, record)
        elif kind == "Coverage":
            for row in flatten_coverage(resource):
                collector.add("coverage", row, path, record)
    except Rejected as err:
        collector.add("rejected", {"table_name": "claim_line", "reason": str(err),
                                   "raw_value": resource.get("id")}, path, record)


def _read_staged(engine: Engine, parts: list[Path]) -> ir.Table:
    tables = []
    for part in parts:
        raw = engine.read_source(part)
        tables.append(raw.drop(ROW_NUMBER, SOURCE_FILE).rename({ROW_NUMBER: "_src_row", SOURCE_FILE: "_src_file"})
                      .mutate(**{ROW_NUMBER: ibis._[ROW_NUMBER].cast("int64")}))
    return tables[0] if len(tables) == 1 else ibis.union(*tables)


def _with_mbi(rows: ir.Table, patients: ir.Table | None) -> ir.Table:
    if patients is None:
        return rows
    ids = patients.select(_p_id=patients._patient_id, _p_mbi=patients.bene_id).distinct()
    joined = rows.left_join(ids, rows._patient_id == ids._p_id)
    return joined.mutate(bene_id=joined._p_mbi.fill_null(joined.bene_id)).drop("_p_id", "_p_mbi")


def _assemble(staged: dict[str, ir.Table], tables: SourceTables, files: list[str]) -> None:
    patients = staged.get("patient")
    if patients is not None:
        tables.add_part("beneficiary", patients, files)
    if "line" in staged:
        tables.add_part("claim_line", _with_mbi(staged["line"], patients), files)
    if "diagnosis" in staged:
        dx = _with_mbi(staged["diagnosis"], patients)
        first = ibis.row_number().over(ibis.window(group_by=[dx.claim_id, dx.dx_position, dx.icd10_code],
                                                   order_by=[dx[SOURCE_FILE], dx[ROW_NUMBER]]))
        tables.add_part("claim_diagnosis", dx.mutate(_first=first).filter(ibis._._first == 0), files)
    if "pharmacy" in staged:
        tables.add_part("pharmacy_claim", _with_mbi(staged["pharmacy"], patients), files)
    if "coverage" in staged:
        tables.add_part("enrollment", _enrollment(_with_mbi(staged["coverage"].mutate(
            bene_id=ibis._._patient_id), patients)), files)
    if "rejected" in staged:
        rejected = staged["rejected"]
        contract_names = set(CANONICAL_TABLES)
        tables.add_rejected("claim_line", rejected.filter(rejected.table_name.isin(contract_names)).select(
            table_name=rejected.table_name, source_file=rejected[SOURCE_FILE], row_number=rejected[ROW_NUMBER],
            column_name=ibis.literal("(resource)"), reason=rejected.reason,
            raw_value=rejected.raw_value if "raw_value" in rejected.columns else ibis.null("string"),
            failure_count=ibis.literal(1, "int64")))


def _enrollment(coverage: ir.Table) -> ir.Table:
    """One row per beneficiary month: each part's Coverage sets its own flag; the first record names the row."""
    def flag(column: str) -> ir.StringValue:
        true_seen = (coverage[column] == "True").cast("int64").max()
        any_seen = coverage[column].notnull().cast("int64").max()
        return ibis.ifelse(any_seen == 1, ibis.ifelse(true_seen == 1, "true", "false"), ibis.null("string"))

    grouped = coverage.group_by(["bene_id", "year_month"]).agg(
        has_part_a=flag("_a"), has_part_b=flag("_b"), is_medicare_advantage=flag("_c"), has_part_d=flag("_d"),
        dual_status_code=coverage.dual_status_code.max(),
        **{SOURCE_FILE: coverage[SOURCE_FILE].min(), ROW_NUMBER: coverage[ROW_NUMBER].min()})
    return grouped

"""`ingest --csv all|small|none` (issue 14): Parquet is always written; CSV copies per the run's choice, kept by
the later stages of the run, and a CSV copy not written again is removed rather than left stale."""

from __future__ import annotations

import json

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openasm.runs import stage
from openasm.runs.execute import execute_stage
from openasm.runs.ingest import IngestInputs, run_ingest

from ..ingest.cases import write_case_folder


def test_csv_copies_follow_the_run_choice(tmp_path, engine_for, monkeypatch):
    folder = write_case_folder(tmp_path / "input")
    run = tmp_path / "run"
    engine = engine_for("duckdb", run)
    execute_stage(run_ingest, engine, None, run, IngestInputs(folder))
    outputs = run / "outputs"
    for name in ("quarantine", "ingest_summary"):
        from_csv = pacsv.read_csv(outputs / f"{name}.csv").num_rows
        assert from_csv == pq.ParquetFile(outputs / f"{name}.parquet").metadata.num_rows
    summary_rows = pq.ParquetFile(outputs / "ingest_summary.parquet").metadata.num_rows
    quarantine_rows = pq.ParquetFile(outputs / "quarantine.parquet").metadata.num_rows
    assert quarantine_rows > summary_rows
    monkeypatch.setattr(stage, "SMALL_CSV_ROWS", summary_rows)
    execute_stage(run_ingest, engine, None, run, IngestInputs(folder, csv_copies="small"), force=True)
    assert (outputs / "ingest_summary.csv").exists() and not (outputs / "quarantine.csv").exists()
    assert (outputs / "quarantine.parquet").exists()
    assert json.loads((run / "manifest.json").read_text())["csv_copies"] == "small"
    execute_stage(run_ingest, engine, None, run, IngestInputs(folder, csv_copies="none"), force=True)
    assert not list(outputs.glob("*.csv")) and (outputs / "ingest_summary.parquet").exists()


def test_by_default_only_tables_a_spreadsheet_opens_get_a_csv(tmp_path, engine_for, monkeypatch):
    """The default (`--csv small`) writes a CSV copy only of tables of at most SMALL_CSV_ROWS rows."""
    assert stage.DEFAULT_CSV_MODE == "small" and stage.SMALL_CSV_ROWS == 100_000
    folder = write_case_folder(tmp_path / "input")
    run = tmp_path / "run"
    engine = engine_for("duckdb", run)
    monkeypatch.setattr(stage, "SMALL_CSV_ROWS", 1)
    execute_stage(run_ingest, engine, None, run, IngestInputs(folder))
    outputs = run / "outputs"
    assert (outputs / "quarantine.parquet").exists() and not (outputs / "quarantine.csv").exists()
    assert json.loads((run / "manifest.json").read_text())["csv_copies"] == "small"

"""The engine abstraction holds: ingest and the claims summary stages give identical tables on DuckDB and
PySpark (order-insensitive comparison) for the hand-built cases; test_cost_parity does the same for a
synthetic world through every stage."""

from __future__ import annotations

import pytest

from openasm.rules import load_rules
from openasm.runs.summary import run_summary

from .conftest import assert_tables_equal, ingest_folder
from .ingest.cases import write_case_folder

COMPARED = (
    "beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician", "quarantine",
    "claim_line_status", "spend_by_setting", "spend_by_specialty", "claim_versions", "quarantine_reasons",
)


def _run_both(input_dir, tmp_path, engine_for):
    rules = load_rules(2027)
    results = {}
    for backend in ("duckdb", "pyspark"):
        engine = engine_for(backend, tmp_path / f"run-{backend}")
        ingest = ingest_folder(engine, input_dir)
        run_summary(engine, rules, tmp_path / f"run-{backend}")
        results[backend] = (ingest, {name: engine.fetch(engine.table(name)) for name in COMPARED})
    return results


def _assert_same(results):
    (duck_ingest, duck), (spark_ingest, spark) = results["duckdb"], results["pyspark"]
    for name, record in duck_ingest.tables.items():
        other = spark_ingest.tables[name]
        assert (record.read, record.accepted, record.quarantined) == (other.read, other.accepted, other.quarantined)
    for name in COMPARED:
        assert_tables_equal(duck[name], spark[name], float_tol=1e-9)


@pytest.mark.spark
def test_cases_folder_identical_on_duckdb_and_pyspark(tmp_path, engine_for):
    _assert_same(_run_both(write_case_folder(tmp_path / "input"), tmp_path, engine_for))

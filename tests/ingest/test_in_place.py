"""Issue 14: DuckDB ingest stores each table's checked rows once, in file order, and publishes the accepted rows as
a view over them; rows failing the bene_id check or repeating a key are moved out in place. The verdicts are the
ones the single-query path gives (the Spark path, checked against DuckDB by the backend parity tests)."""

from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from openasm.engine import connect
from openasm.ingest.raw import read_canonical_files
from openasm.ingest.validate import check_rows, numbered_rows
from openasm.runs.ingest import ingest_table
from openasm.schema.canonical import CANONICAL_TABLES


def _diagnoses(path: Path, rows: list[tuple[str, str, int, str]]) -> Path:
    columns = list(zip(*rows))
    pq.write_table(pa.table({"bene_id": list(columns[0]), "claim_id": list(columns[1]),
                             "dx_position": list(columns[2]), "icd10_code": list(columns[3])}), path)
    return path


def test_checked_rows_keep_file_order_without_a_sort(tmp_path) -> None:
    """Every canonical table's checks plan as an order-keeping query (no IN list planned as a join, no bene_id
    join), so the stored rows need no sort."""
    engine = connect("duckdb", tmp_path / "run")
    for name, contract in CANONICAL_TABLES.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({c: pa.array([None], pa.string()) for c in contract.column_names}), path)
        raw = read_canonical_files(engine, name, [path])
        checked = numbered_rows(check_rows(raw=raw.parts[0], contract=contract), contract, raw.unique_positions)
        assert engine.keeps_order(checked), name
        assert not engine.keeps_order(checked.order_by("_row_number").mutate(n=ibis.row_number().over(
            group_by="_source_file")))  # the probe does tell
    engine.close()


def test_moved_rows_leave_the_accepted_rows_in_file_order(tmp_path) -> None:
    engine = connect("duckdb", tmp_path / "run")
    rows = [("B1", f"C{i:03d}", 1, "I50.9") for i in range(40)]
    rows[5] = ("B9", "C005", 1, "I50.9")           # unknown beneficiary, otherwise valid
    rows[7] = ("B9", "C007", 1, "not a code!")      # unknown beneficiary and a bad code: the code is first
    rows[30] = ("B1", "C010", 1, "I50.9")           # repeats the key of row 11
    path = _diagnoses(tmp_path / "claim_diagnosis.parquet", rows)
    known = engine.save("known", engine.con.sql("SELECT 'B1' AS bene_id"))
    record, accepted, quarantine = ingest_table(
        engine, read_canonical_files(engine, "claim_diagnosis", [path]), known)
    assert (record.read, record.accepted, record.quarantined) == (40, 37, 3)
    assert accepted.get_name() == "claim_diagnosis"
    kept = engine.fetch(accepted).to_pylist()
    assert [r["claim_id"] for r in kept] == [r[1] for i, r in enumerate(rows) if i not in (5, 7, 30)]
    reasons = {r["row_number"]: (r["column_name"], r["reason"], r["failure_count"])
               for r in engine.fetch(quarantine).to_pylist()}
    assert reasons[6] == ("bene_id", "unknown bene_id (not in beneficiary)", 1)
    assert reasons[8][0] == "icd10_code" and reasons[8][2] == 2
    assert reasons[31][1].startswith("duplicate key")
    assert not [t for t in engine.con.list_tables() if t.endswith("__unpublished")]
    engine.close()

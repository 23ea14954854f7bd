"""Issue 14: on Spark, ingest stores a table's checked rows without a sort when the check query keeps the order its
sources are read in (`Engine.keeps_order` reads Spark's physical plan), and sorts them when it does not."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openasm.ingest.raw import read_canonical_files
from openasm.ingest.validate import check_rows, numbered_rows
from openasm.schema.canonical import CANONICAL_TABLES

pytestmark = pytest.mark.spark


def _claim_lines(path, rows: int):
    contract = CANONICAL_TABLES["claim_line"]
    columns = {c: pa.array([None] * rows, pa.string()) for c in contract.column_names}
    columns["bene_id"] = pa.array([f"B{i % 7}" for i in range(rows)])
    columns["claim_id"] = pa.array([f"C{i}" for i in range(rows)])
    pq.write_table(pa.table(columns), path, row_group_size=rows // 3)  # three row groups
    return path


def test_checks_with_a_broadcast_bene_lookup_keep_order_and_a_shuffle_does_not(engine_for, tmp_path) -> None:
    engine = engine_for("pyspark")
    contract = CANONICAL_TABLES["claim_line"]
    known_bene = engine.save("beneficiary", ibis.memtable({"bene_id": [f"B{i}" for i in range(5)]}))
    raw = read_canonical_files(engine, "claim_line", [_claim_lines(tmp_path / "claim_line.parquet", 300)])
    checked = numbered_rows(check_rows(raw=raw.parts[0], contract=contract, known_bene=known_bene), contract,
                            raw.unique_positions)
    assert engine.keeps_order(checked)
    stored = engine.fetch(engine.save("checked", checked))
    assert stored.column("_row_number").to_pylist() == list(range(1, 301))  # as read, no sort

    assert not engine.keeps_order(checked.mutate(n=ibis.row_number().over(group_by="_source_file")))
    assert not engine.keeps_order(checked.group_by("_source_file").agg(rows=checked.count()))
    session = engine._spark
    session.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")  # the bene lookup becomes a sort-merge join
    try:
        assert not engine.keeps_order(checked)
    finally:
        session.conf.unset("spark.sql.autoBroadcastJoinThreshold")

"""Issue 14: a table Spark has just stored is read back with the schema it was written with (no job reads the
Parquet footers); that schema is the one a later command infers from the files."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from urllib.parse import urlparse

import ibis
import pyarrow as pa
import pytest

pytestmark = pytest.mark.spark


def test_a_stored_table_reads_back_as_a_later_command_reads_it(engine_for, tmp_path) -> None:
    engine = engine_for("pyspark")
    rows = pa.table({
        "episode_id": pa.array(["E1", "E2"], pa.string()),
        "risk_level": pa.array([1, 2], pa.int32()),
        "cost": pa.array([1.5, None], pa.float64()),
        "amount": pa.array([decimal.Decimal("1.10"), decimal.Decimal("2.25")], pa.decimal128(12, 2)),
        "trigger_date": pa.array([dt.date(2027, 1, 2), None], pa.date32()),
        "loaded_at": pa.array([dt.datetime(2027, 1, 2, 3, 4, 5)] * 2, pa.timestamp("us", tz="UTC")),
        "codes": pa.array([["A", None], []], pa.list_(pa.string())),
        "window": pa.array([{"start": 1, "end": 2}, None], pa.struct([("start", pa.int64()), ("end", pa.int64())])),
    })
    source = ibis.memtable(rows)
    stored = engine.save("episode_sample", source.mutate(row=ibis.literal(1), flag=source.risk_level > 1))
    inferred = engine.table("episode_sample")  # read off the files, as a later command does
    assert stored.schema() == inferred.schema()
    assert engine.fetch(stored).equals(engine.fetch(inferred))


def test_a_table_is_replaced_whole_or_not_at_all(engine_for) -> None:
    """A run table is written beside the old one and swapped in when complete (Warehouse.store): a write that fails
    after some tasks committed their parts leaves the old table as it was, and the next write leaves no staging."""
    engine = engine_for("pyspark")
    engine.save("episode_sample", ibis.memtable({"x": [1, 2]}))
    uri = engine._spark_table_uri("episode_sample")
    # Some tasks finish and commit their part before another fails.
    failing = engine._spark.sql("SELECT CASE WHEN id = 7 THEN raise_error('planted failure') ELSE id END AS x "
                                "FROM range(0, 8, 1, 4)")
    with pytest.raises(Exception, match="planted failure"):
        engine._warehouse.store(failing, uri)
    assert sorted(engine.fetch(engine.table("episode_sample")).column("x").to_pylist()) == [1, 2]
    engine.save("episode_sample", ibis.memtable({"x": [3]}))
    assert engine.fetch(engine.table("episode_sample")).column("x").to_pylist() == [3]
    folder = Path(urlparse(uri).path)
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith("episode_sample")] == ["episode_sample"]
    assert "_temporary" not in [p.name for p in folder.iterdir()]


def test_a_view_over_run_tables_is_kept_as_its_sql_and_read_by_a_later_command(engine_for, tmp_path) -> None:
    """Spark keeps a run table defined over other run tables (ingest's accepted rows over the checked rows) as a
    view in the warehouse, not as a second copy of the rows: a later command (a new session's temporary views)
    reads it, it follows the table it reads when that is replaced, and it can be renamed, replaced and dropped.
    A definition that reads an in-memory table is stored as a table."""
    engine = engine_for("pyspark")
    checked = engine.save("sample_row", ibis.memtable({"x": [1, 2, 3], "_fail_count": [0, 1, 0]}))
    accepted = engine.save_view("sample", checked.filter(checked._fail_count == 0).select("x"))
    folder = Path(urlparse(engine._spark_table_uri("sample")).path)
    assert engine.is_view("sample") and not folder.exists()
    assert sorted(engine.fetch(accepted).column("x").to_pylist()) == [1, 3]
    for name in ("sample", "sample_row"):
        engine._spark.catalog.dropTempView(name)  # as a later command starts: no temporary views
    assert sorted(engine.fetch(engine.table("sample")).column("x").to_pylist()) == [1, 3]
    engine.save("sample_row", ibis.memtable({"x": [7, 8], "_fail_count": [0, 0]}))
    assert sorted(engine.fetch(engine.table("sample")).column("x").to_pylist()) == [7, 8]
    engine.rename("sample", "sample_kept")
    assert not engine.has_table("sample") and engine.is_view("sample_kept")
    assert sorted(engine.fetch(engine.table("sample_kept")).column("x").to_pylist()) == [7, 8]
    engine.save("sample_kept", ibis.memtable({"x": [5]}))  # a table replaces the view
    assert not engine.is_view("sample_kept") and engine.fetch(engine.table("sample_kept")).column("x").to_pylist() == [5]
    in_memory = engine.save_view("sample_memory", ibis.memtable({"x": [4]}))
    assert not engine.is_view("sample_memory") and engine.fetch(in_memory).column("x").to_pylist() == [4]
    engine.save_view("sample_kept", engine.table("sample_row").select("x"))
    engine.drop("sample_kept")
    assert not engine.has_table("sample_kept") and not list(folder.parent.glob("sample_kept*"))
    engine.save_view("sample", engine.table("sample_row").select("x"))
    engine.drop("sample_row")
    with pytest.raises(Exception, match="run table 'sample_row' does not exist"):
        engine.table("sample")


def _plan(engine, expr) -> str:
    return engine._spark_frame(expr)._jdf.queryExecution().executedPlan().toString()


def test_a_small_in_memory_table_is_broadcast_to_the_joins_that_read_it(engine_for) -> None:
    """PySpark makes local data an RDD of unknown size, which Spark never broadcast: joining claim lines with a
    code list shuffled the claim lines, a cross join with a two-row table was a Cartesian product."""
    from openasm.engine_spark import broadcast_small_memtables

    engine = engine_for("pyspark")
    lines = engine.save("hinted_lines", ibis.memtable({"code": [f"C{i % 7}" for i in range(500)]}))
    code_list = ibis.memtable({"code": ["C1", "C2"], "category": ["a", "b"]})
    joined = lines.join(code_list, "code")
    assert "BroadcastHashJoin" in _plan(engine, joined) and "SortMergeJoin" not in _plan(engine, joined)
    kinds = ibis.memtable({"kind": pa.array([0, 1], pa.int8())})
    crossed = lines.cross_join(kinds)
    assert "CartesianProduct" not in _plan(engine, crossed)
    assert engine.count(joined) == 144 and engine.count(crossed) == 1000
    # Above the limit no hint is added: Spark decides by its own estimates (a memtable's is unknown: no broadcast).
    con = broadcast_small_memtables(ibis.pyspark.connect(engine._spark), max_bytes=0)
    unhinted = con.table("hinted_lines").join(ibis.memtable({"code": ["C3"], "category": ["c"]}), "code")
    con._run_pre_execute_hooks(unhinted)
    plan = con._session.sql(con.compile(unhinted))._jdf.queryExecution().executedPlan().toString()
    assert "BuildRight" not in plan

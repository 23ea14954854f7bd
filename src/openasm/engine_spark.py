"""The Spark side of the engine: the session and the warehouse where a Spark run keeps its tables.

The warehouse is a URI (`file:///…`, `s3a://bucket/prefix`, `abfss://container@account.dfs.core.windows.net/…`,
`hdfs://…`) reached through Hadoop's FileSystem API, so the same code keeps tables on a laptop, on a standalone
cluster or on a managed service; a plain path means a local folder. Each run table is one Parquet directory
`<warehouse>/<table>`, written beside the old one and swapped in when complete, or a view over other run tables:
the file `<warehouse>/<table>.view.json` holding its Spark SQL and the tables it reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir

SPARK_TABLES = "spark-tables"
VIEW_FILE = ".view.json"
DEFAULT_MASTER = "local[2]"
# In-memory tables up to this size are broadcast to the joins that read them (`broadcast_small_memtables`); Spark's
# own threshold for tables of known size is 10 MB, and an in-memory table is already whole in the driver's memory.
MEMTABLE_BROADCAST_BYTES = 16 * 2**20


def warehouse_uri(location: str | Path) -> str:
    """A warehouse location as a URI: URIs pass through, paths become absolute `file:` URIs."""
    text = str(location)
    if "://" in text or text.startswith("file:"):
        return text.rstrip("/")
    return Path(text).resolve().as_uri()


def table_uri(warehouse: str, name: str) -> str:
    return f"{warehouse.rstrip('/')}/{name}"


class Warehouse:
    """exists / delete / rename of table directories through Hadoop's FileSystem (any URI scheme)."""

    def __init__(self, session: Any, uri: str) -> None:
        self.uri = uri
        self._jvm = session._jvm
        self._conf = session._jsc.hadoopConfiguration()

    def _path(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def exists(self, uri: str) -> bool:
        fs, path = self._path(uri)
        return bool(fs.exists(path)) or self.is_view(uri)

    def is_view(self, uri: str) -> bool:
        fs, path = self._path(uri + VIEW_FILE)
        return bool(fs.exists(path))

    def delete(self, uri: str) -> None:
        """Remove the table at `uri`, a directory or a view."""
        for target in (uri, uri + VIEW_FILE):
            fs, path = self._path(target)
            if fs.exists(path):
                fs.delete(path, True)

    def rename(self, source: str, target: str) -> None:
        if self.is_view(source):
            source, target = source + VIEW_FILE, target + VIEW_FILE
        fs, path = self._path(source)
        _, destination = self._path(target)
        if not fs.rename(path, destination):
            raise OSError(f"could not move {source} to {target}")

    def store_view(self, uri: str, sql: str, sources: list[str]) -> None:
        """Keep the view `uri` (replacing a table or view of that name): its SQL over the run tables `sources`."""
        self.delete(uri)
        fs, path = self._path(uri + VIEW_FILE)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(json.dumps({"sql": sql, "tables": sources}).encode("utf-8")))
        finally:
            stream.close()

    def view(self, uri: str) -> dict[str, Any] | None:
        """The definition `store_view` kept for `uri` (None: `uri` is no view)."""
        if not self.is_view(uri):
            return None
        fs, path = self._path(uri + VIEW_FILE)
        stream = fs.open(path)
        try:
            return json.loads(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def store(self, frame: Any, uri: str) -> None:
        """Write `frame` as the Parquet table at `uri`: beside the old one, swapped in when complete."""
        staging = uri + ".tmp"
        self.delete(staging)
        frame.write.parquet(staging)
        self.delete(uri)
        self.rename(staging, uri)


def register_run_table(session: Any, warehouse: Warehouse, name: str) -> str | None:
    """Run table `name` (a Parquet directory, or a view with the run tables it reads) as temporary view `name`;
    returns the name of a run table that does not exist (None when all do)."""
    uri = table_uri(warehouse.uri, name)
    view = warehouse.view(uri)
    if view is None:
        if not warehouse.exists(uri):
            return name
        stored_table_view(session, uri, name)
        return None
    for source in view["tables"]:
        if missing := register_run_table(session, warehouse, source):
            return missing
    define_view(session, name, view["sql"])
    return None


def define_view(session: Any, name: str, sql: str) -> None:
    """Temporary view `name` of the query `sql` (over temporary views of run tables)."""
    session.sql(f"CREATE OR REPLACE TEMPORARY VIEW `{name}` AS {sql}")


def view_sources(expr: ir.Table) -> list[str] | None:
    """The run tables a view defined by `expr` reads, or None when `expr` reads anything else (an in-memory
    table, a file): such an expression is stored as a table, since a view must be readable by a later command."""
    leaves = expr.op().find(ops.PhysicalTable)
    if not all(type(leaf) is ops.DatabaseTable for leaf in leaves):
        return None
    return sorted({leaf.name for leaf in leaves})


def stored_table_view(session: Any, uri: str, name: str, written: Any = None) -> None:
    """The Parquet table at `uri` as temporary view `name`; given the schema it was `written` with, Spark runs no
    job to read the schema off the files' footers (it reads every file column as nullable either way)."""
    reader = session.read if written is None else session.read.schema(written)
    reader.parquet(uri).createOrReplaceTempView(name)


# Physical operators that pass rows on in the order they receive them (a union: its inputs one after another).
_ORDER_KEEPING = frozenset({"Project", "Filter", "Union", "ColumnarToRow", "InputAdapter", "LocalTableScan",
                            "Generate"})


def plan_keeps_order(frame: Any) -> bool:
    """Whether writing `frame` stores its rows in the order its sources are read: every operator from the scans to
    the output keeps order (no shuffle, sort, window or aggregation), a broadcast join streaming its left side
    (the broadcast right side is only looked up). Each task then writes one part of one source split, in order."""
    plan = frame._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.inputPlan()
    return _operator_keeps_order(plan)


def _operator_keeps_order(node: Any) -> bool:
    name = node.nodeName()
    children = node.children()
    if name == "BroadcastHashJoin":
        return node.buildSide().toString() == "BuildRight" and _operator_keeps_order(children.apply(0))
    if not (name in _ORDER_KEEPING or name.startswith("Scan ") or name.startswith("WholeStageCodegen")):
        return False
    return all(_operator_keeps_order(children.apply(i)) for i in range(children.size()))


def session_settings(master: str, warehouse: str) -> dict[str, str]:
    """The Spark settings openasm starts a session with (UTC, small shuffles for one machine unless configured
    otherwise); the OPENASM_SPARK_* environment variables override the sizes and the driver's JVM options."""
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": os.environ.get("OPENASM_SPARK_SHUFFLE_PARTITIONS", "4"),
        # Validation builds very wide expressions; whole-stage Java code for them exceeds the JVM 64 KB limit.
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.warehouse.dir": warehouse,
        "spark.driver.memory": os.environ.get("OPENASM_SPARK_DRIVER_MEMORY", "2g"),
    }
    if master.startswith("local"):
        # The driver JVM runs every task: the throughput collector spends less CPU than the default G1 on a small
        # heap (20k-beneficiary demo on 2 cores: GC 53 -> 24 s of CPU, 327 -> 271 s in all, paired runs).
        settings["spark.driver.extraJavaOptions"] = os.environ.get("OPENASM_SPARK_DRIVER_JAVA_OPTIONS",
                                                                   "-XX:+UseParallelGC")
        # Split files of a few hundred KB too (default: 4 MB a file), so that both cores of a small machine scan
        # a source or run table of that size (each row group of a file goes to one of its splits).
        settings["spark.sql.files.openCostInBytes"] = os.environ.get("OPENASM_SPARK_FILE_OPEN_COST", "131072")
    else:
        settings["spark.executor.memory"] = os.environ.get("OPENASM_SPARK_EXECUTOR_MEMORY", "1g")
    return settings


def spark_session(master: str, warehouse: str, app_name: str = "openasm") -> Any:
    """A Spark session for openasm with `session_settings`. A session already running (a notebook's) is reused:
    its SQL settings are set, the JVM's (memory, Java options) stay as that JVM was started."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in session_settings(master, warehouse).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def conform_spark_floats(frame: Any, schema: Any) -> Any:
    """Spark SQL reads a bare decimal literal (a rule value such as 0.09) as DECIMAL even where Ibis typed it
    float64; store such columns as DOUBLE so a table has the same types on every backend."""
    from pyspark.sql.functions import col
    from pyspark.sql.types import DecimalType

    for column in frame.schema.fields:
        if isinstance(column.dataType, DecimalType) and column.name in schema and schema[column.name].is_floating():
            frame = frame.withColumn(column.name, col(column.name).cast("double"))
    return frame


def broadcast_small_memtables(con: Any, max_bytes: int = MEMTABLE_BROADCAST_BYTES) -> Any:
    """Register each in-memory table of up to `max_bytes` (a rule table, a value set, a feed file) with a broadcast
    hint. PySpark makes local data an RDD, whose size Spark does not know, so it never broadcast one: a join of
    claim lines with a code list shuffled and sorted the claim lines, and a cross join with a two-row table was a
    Cartesian product. In-memory tables come from the driver's own memory, so broadcasting one costs no more."""
    from pyspark.sql.functions import broadcast

    register = con._register_in_memory_table

    def register_hinted(op: ops.InMemoryTable) -> None:
        register(op)
        if op.data.to_pyarrow(op.schema).nbytes <= max_bytes:
            broadcast(con._session.table(op.name)).createOrReplaceTempView(op.name)

    con._register_in_memory_table = register_hinted
    return con

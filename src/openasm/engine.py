"""The one place that knows backends: open DuckDB or PySpark, read source files, persist run tables.

Stages never see this module: they take and return Ibis expressions. The runners (`openasm.runs`) use an
`Engine` to read raw files (with their file row numbers, so quarantine rows can name them), to materialise stage
outputs, and to write Parquet/CSV. A DuckDB run keeps its tables in `<run_dir>/openasm.duckdb`; a Spark run keeps them as
Parquet under `<run_dir>/spark-tables/` so a later command can reopen the run folder with any master.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BackendName = Literal["duckdb", "pyspark"]
BACKENDS: tuple[str, ...] = ("duckdb", "pyspark")
ROW_NUMBER = "_row_number"
SOURCE_FILE = "_source_file"
DELIMITED_SUFFIXES = (".csv", ".txt", ".psv")
DUCKDB_FILE = "openasm.duckdb"
SPARK_TABLES = "spark-tables"


class EngineError(RuntimeError):
    """A backend could not be opened or a file could not be read."""


def is_interruption(err: BaseException) -> bool:
    """Ctrl-C as a backend reports it: DuckDB's Python client turns the signal that stops a running query into
    `RuntimeError("Query interrupted")` (or `duckdb.InterruptException`)."""
    import duckdb

    return isinstance(err, (KeyboardInterrupt, duckdb.InterruptException)) or (
        type(err) is RuntimeError and str(err) == "Query interrupted")


@dataclass
class Engine:
    """An open backend plus the run folder its tables live in."""

    backend: str
    con: Any
    run_dir: Path | None
    _spark: Any = field(default=None, repr=False)

    # ---- reading source files -------------------------------------------------------------
    def read_source(self, path: Path, delimiter: str | None = None) -> ir.Table:
        """A raw source file as a table with `_row_number` (1-based data row) and `_source_file`.

        CSV columns arrive as text (types are checked by ingest); Parquet keeps its own types. `delimiter`
        names the field separator of a delimited text file (e.g. `|` for research-file extracts, which may
        then end in .txt); without it CSV is comma-separated on Spark and sniffed on DuckDB.
        """
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet") and not (delimiter and suffix in DELIMITED_SUFFIXES):
            raise EngineError(f"{path}: unsupported file type '{suffix}' (use .csv or .parquet)")
        if suffix != ".parquet":
            suffix = ".csv"
        try:
            if self.backend == "duckdb":
                return self._read_duckdb(path, suffix, delimiter)
            return self._read_spark(path, suffix, delimiter)
        except EngineError:
            raise
        except Exception as err:  # the backend's own parse errors vary; name the file
            raise EngineError(f"{path}: unreadable {suffix[1:]} file: {err}") from err

    def _read_duckdb(self, path: Path, suffix: str, delimiter: str | None = None) -> ir.Table:
        quoted = str(path).replace("'", "''")
        if suffix == ".parquet":
            # file_row_number is the position in the file, independent of scan parallelism.
            relation = f"read_parquet('{quoted}', file_row_number = true)"
            row_expr = "file_row_number + 1"
            drop = "EXCLUDE (file_row_number)"
        else:
            relation = (
                f"read_csv('{quoted}', header = true, all_varchar = true, auto_detect = true, "
                "strict_mode = true, null_padding = false"
                + (f", delim = '{delimiter}', quote = '\"'" if delimiter else "") + ")"
            )
            # A single-threaded ordered scan numbers CSV rows in file order.
            row_expr = "row_number() OVER ()"
            drop = ""
        name = _temp_name(path)
        # Parquet stays a view (row numbers come from the file); CSV is numbered once and stored.
        kind = "VIEW" if suffix == ".parquet" else "TABLE"
        self.con.raw_sql("SET preserve_insertion_order = true").fetchall()
        self.con.raw_sql(
            f"CREATE OR REPLACE TEMP {kind} {name} AS SELECT * {drop}, "
            f"CAST({row_expr} AS BIGINT) AS {ROW_NUMBER}, '{quoted}' AS {SOURCE_FILE} FROM {relation}"
        ).fetchall()
        return self.con.table(name)

    def _read_spark(self, path: Path, suffix: str, delimiter: str | None = None) -> ir.Table:
        spark = self._spark
        if suffix == ".parquet":
            frame = spark.read.parquet(str(path)).selectExpr(
                "*", f"_metadata.row_index + 1 AS {ROW_NUMBER}"
            )
        else:
            raw = spark.read.option("header", True).option("mode", "FAILFAST").option(
                "sep", delimiter or ",").csv(str(path))
            from pyspark.sql.types import LongType, StringType, StructField, StructType

            schema = StructType(
                [StructField(c, StringType()) for c in raw.columns] + [StructField(ROW_NUMBER, LongType())]
            )
            # zipWithIndex numbers rows in file order across partitions (a contiguous 0-based index).
            numbered = raw.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1] + 1))
            frame = spark.createDataFrame(numbered, schema)
        from pyspark.sql import functions as F

        frame = frame.withColumn(SOURCE_FILE, F.lit(str(path)))
        name = _temp_name(path)
        frame.createOrReplaceTempView(name)
        return self.con.table(name)

    def read_lines(self, path: Path) -> ir.Table:
        """A text file as one row per non-blank line: `line` (text, without its line ending), `_row_number`
        (1-based record number in file order) and `_source_file`. Fixed-width formats are cut from `line` with
        substrings in Ibis, so no record passes through Python."""
        if not Path(path).is_file():
            raise EngineError(f"{path}: no such file")
        try:
            if self.backend == "duckdb":
                return self._read_lines_duckdb(Path(path))
            return self._read_lines_spark(Path(path))
        except EngineError:
            raise
        except Exception as err:
            raise EngineError(f"{path}: unreadable text file: {err}") from err

    def _read_lines_duckdb(self, path: Path) -> ir.Table:
        quoted = str(path).replace("'", "''")
        # One VARCHAR column: a unit-separator delimiter and no quoting keep every byte of the record.
        relation = (
            f"read_csv('{quoted}', header = false, columns = {{'line': 'VARCHAR'}}, delim = '\x1f', quote = '', "
            "escape = '', auto_detect = false, strict_mode = false, nullstr = '\x1e')"
        )
        name = _lines_name(path)
        self.con.raw_sql("SET preserve_insertion_order = true").fetchall()
        self.con.raw_sql(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT line, CAST(row_number() OVER () AS BIGINT) AS "
            f"{ROW_NUMBER}, '{quoted}' AS {SOURCE_FILE} FROM {relation}"
        ).fetchall()
        return self.con.table(name)

    def _read_lines_spark(self, path: Path) -> ir.Table:
        from pyspark.sql import functions as F
        from pyspark.sql.types import LongType, StringType, StructField, StructType

        text = self._spark.read.text(str(path)).filter(F.length("value") > 0)
        schema = StructType([StructField("line", StringType()), StructField(ROW_NUMBER, LongType())])
        numbered = text.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1] + 1))
        frame = self._spark.createDataFrame(numbered, schema).withColumn(SOURCE_FILE, F.lit(str(path)))
        name = _lines_name(path)
        frame.createOrReplaceTempView(name)
        return self.con.table(name)

    def source_columns(self, path: Path, delimiter: str | None = None) -> list[str]:
        """Column names of a source file, read from its header or Parquet schema only."""
        try:
            if path.suffix.lower() == ".parquet":
                return list(pq.read_schema(path).names)
            with path.open("rb") as handle:
                reader = pacsv.open_csv(
                    handle, read_options=pacsv.ReadOptions(block_size=1 << 20),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter or ","),
                    convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=True),
                )
                return list(reader.schema.names)
        except Exception as err:
            raise EngineError(f"{path}: unreadable file: {err}") from err

    # ---- run tables -------------------------------------------------------------------------
    def save(self, name: str, expr: ir.Table) -> ir.Table:
        """Materialise `expr` as run table `name` and return the stored table."""
        if self.backend == "duckdb":
            self.con.create_table(name, expr, overwrite=True)
            return self.con.table(name)
        target = self._spark_table_dir(name)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.con._run_pre_execute_hooks(expr)  # registers in-memory tables the expression uses
        frame = _conform_spark_floats(self.con._session.sql(self.con.compile(expr)), expr.schema())
        frame.write.parquet(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return self.table(name)

    def table(self, name: str) -> ir.Table:
        """A run table saved earlier (in this session or by an earlier command on the run folder)."""
        if self.backend == "duckdb":
            if name not in self.con.list_tables():
                raise EngineError(f"run table '{name}' does not exist in {self.run_dir}")
            return self.con.table(name)
        path = self._spark_table_dir(name)
        if not path.exists():
            raise EngineError(f"run table '{name}' does not exist in {path.parent}")
        self._spark.read.parquet(str(path)).createOrReplaceTempView(name)
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        if self.backend == "duckdb":
            return name in self.con.list_tables()
        return self._spark_table_dir(name).exists()

    def drop(self, name: str) -> None:
        """Remove a run table (intermediate results)."""
        if self.backend == "duckdb":
            self.con.drop_table(name, force=True)
        else:
            shutil.rmtree(self._spark_table_dir(name), ignore_errors=True)

    def fetch(self, expr: ir.Table) -> pa.Table:
        """Execute and return Arrow (for small results: summaries, reports, tests)."""
        return expr.to_pyarrow()

    def write_parquet(self, expr: ir.Table, path: Path) -> Path:
        """Write `expr` to one Parquet file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.backend == "duckdb":
            self.con.to_parquet(expr, path)
        else:
            pq.write_table(expr.to_pyarrow(), path)
        return path

    def write_csv(self, expr: ir.Table, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(expr.to_pyarrow(), path)
        return path

    def _spark_table_dir(self, name: str) -> Path:
        if self.run_dir is None:
            raise EngineError("a Spark engine needs a run folder to keep tables in")
        base = self.run_dir / SPARK_TABLES
        base.mkdir(parents=True, exist_ok=True)
        return base / name

    def close(self) -> None:
        if self.backend == "duckdb":
            self.con.disconnect()


def _conform_spark_floats(frame: Any, schema: Any) -> Any:
    """Spark SQL reads a bare decimal literal (a rule value such as 0.09) as DECIMAL even where Ibis typed it
    float64; store such columns as DOUBLE so a table has the same types on every backend."""
    from pyspark.sql.functions import col
    from pyspark.sql.types import DecimalType

    for field in frame.schema.fields:
        if isinstance(field.dataType, DecimalType) and field.name in schema and schema[field.name].is_floating():
            frame = frame.withColumn(field.name, col(field.name).cast("double"))
    return frame


def _lines_name(path: Path) -> str:
    """A temp table name unique to the full path (fixed-width file names differ only in their suffixes)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:12]
    return f"lines__{digest}"


def _temp_name(path: Path) -> str:
    text = f"{path.parent.name}__{path.stem}"
    return "src__" + "".join(ch if ch.isalnum() else "_" for ch in text).lower()


def connect(
    backend: str = "duckdb",
    run_dir: Path | None = None,
    spark_master: str | None = None,
    memory_limit: str | None = None,
) -> Engine:
    """Open a backend by name: `duckdb` (database file in `run_dir`, in memory without one) or `pyspark`.

    `spark_master` defaults to `local[2]`; any Spark master URL works for users with a cluster.
    """
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb":
        database = str(run_dir / DUCKDB_FILE) if run_dir is not None else ":memory:"
        con = ibis.duckdb.connect(database)
        if memory_limit:
            con.raw_sql(f"SET memory_limit = '{memory_limit}'").fetchall()
        return Engine("duckdb", con, run_dir)
    return _connect_spark(run_dir, spark_master or os.environ.get("OPENASM_SPARK_MASTER", "local[2]"))


def _connect_spark(run_dir: Path | None, master: str) -> Engine:
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise EngineError("the pyspark backend needs `pip install openasm[spark]` and a Java runtime") from err
    warehouse = (run_dir or Path.cwd()) / "spark-warehouse"
    session = (
        SparkSession.builder.master(master)
        .appName("openasm")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        # Validation builds very wide expressions; whole-stage Java code for them exceeds the JVM 64 KB limit.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", os.environ.get("OPENASM_SPARK_DRIVER_MEMORY", "2g"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return Engine("pyspark", ibis.pyspark.connect(session), run_dir, _spark=session)

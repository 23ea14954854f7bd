"""The one place that knows backends: open DuckDB or PySpark, read source files, persist run tables.

Stages never see this module: they take and return Ibis expressions. The runners (`openasm.runs`) use an
`Engine` to read raw files (with their file row numbers, so quarantine rows can name them), to materialise
stage outputs, and to write Parquet/CSV. A DuckDB run keeps its tables in `<run_dir>/openasm.duckdb`, within a
memory limit (beyond it DuckDB spills to disk, so memory does not grow with the input); a Spark run keeps them as Parquet
in a warehouse (`<run_dir>/spark-tables/` unless a URI is given: `engine_spark`) so a later command can
reopen the run with any master. Source reading per backend: `engine_sources`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openasm.engine_sources import (MALFORMED, ROW_NUMBER, SOURCE_FILE, duckdb_csv_view, duckdb_drop_lines,
                                    duckdb_lines_table, duckdb_parquet_view, lines_name, spark_csv_frame,
                                    spark_lines_frame, spark_parquet_frame, temp_name)
from openasm import engine_duckdb
from openasm.engine_duckdb import NullTypedColumns, is_interruption
from openasm.engine_spark import (DEFAULT_MASTER, SPARK_TABLES, Warehouse, broadcast_small_memtables,
                                  conform_spark_floats, define_view, plan_keeps_order, register_run_table,
                                  spark_session, stored_table_view, table_uri, view_sources, warehouse_uri)
from openasm.engine_csv import CsvDialect, CsvFormatError, read_header

BackendName = Literal["duckdb", "pyspark"]
BACKENDS: tuple[str, ...] = ("duckdb", "pyspark")
DELIMITED_SUFFIXES = (".csv", ".txt", ".psv", ".tsv")
DUCKDB_FILE = "openasm.duckdb"
SPARK_MASTER_ENV, WAREHOUSE_ENV = "OPENASM_SPARK_MASTER", "OPENASM_WAREHOUSE"
SCRATCH = "tmp-openasm"
# DuckDB's own default is 80% of the machine; a fixed budget keeps a run's memory flat as inputs grow
# (operators spill beyond it). OPENASM_MEMORY_LIMIT or --memory-limit changes it.
DEFAULT_MEMORY_LIMIT = "2GB"
# New database files in the pinned DuckDB's own storage format (the default stays readable by DuckDB 1.0): its
# string compression writes 8.5M claim lines 30% faster and smaller. Older run folders open as they are.
DUCKDB_STORAGE = "latest"
__all__ = ["BACKENDS", "Engine", "EngineError", "MALFORMED", "ROW_NUMBER", "SOURCE_FILE", "connect", "is_interruption"]


class EngineError(RuntimeError):
    """A backend could not be opened or a file could not be read."""


@contextmanager
def _traced(action: str, name: str):
    """With OPENASM_TRACE set, print how long each table write took (bench/ and profiling; no effect else)."""
    if not os.environ.get("OPENASM_TRACE"):
        yield
        return
    started = time.perf_counter()
    yield
    print(f"[openasm] {action} {name}: {time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)


@dataclass
class Engine:
    """An open backend plus the run folder its tables live in (and, on Spark, the warehouse URI)."""

    backend: str
    con: Any
    run_dir: Path | None
    _spark: Any = field(default=None, repr=False)
    warehouse: str | None = None
    _warehouse: Warehouse | None = field(default=None, repr=False)
    _in_transaction: bool = field(default=False, repr=False)
    _own_scratch: Path | None = field(default=None, repr=False)

    @property
    def spark_master(self) -> str | None:
        """The Spark master URL this engine runs on (None on DuckDB)."""
        return self._spark.sparkContext.master if self._spark is not None else None

    # ---- reading source files -------------------------------------------------------------
    def read_source(self, path: Path, delimiter: str | None = None, encoding: str = "utf-8") -> ir.Table:
        """A raw source file as a table with `_row_number` (1-based record number), `_source_file` and
        `_malformed` (why a record could not be parsed, else null).

        Delimited text (.csv; .txt/.psv/.tsv with a delimiter) arrives as text, read with one explicit dialect
        over the whole file (`engine_csv`); without `delimiter` it is read off the header. Parquet keeps
        its own types.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix != ".parquet" and not (suffix == ".csv" or (delimiter and suffix in DELIMITED_SUFFIXES)):
            raise EngineError(f"{path}: unsupported file type '{suffix}' (use .csv or .parquet)")
        if suffix == ".parquet":
            return self.read_parquet_parts([path])
        view = temp_name(path)
        try:
            dialect = CsvDialect(delimiter, encoding)
            header, delimiter = read_header(path, dialect)
            if self.backend == "duckdb":
                duckdb_csv_view(self.con, path, header, delimiter, dialect, view, self._scratch())
            else:
                spark_csv_frame(self._spark, path, header, delimiter, dialect, self._scratch()
                                ).createOrReplaceTempView(view)
            return self.con.table(view)
        except (EngineError, CsvFormatError):
            raise
        except Exception as err:  # the backend's own errors vary; name the file, never quote its rows
            raise EngineError(f"{path}: unreadable {suffix[1:]} file ({type(err).__name__})") from err

    def read_parquet_parts(self, paths: list[Path]) -> ir.Table:
        """Parquet files of one table (same columns) as one raw table, read in one scan (see read_source)."""
        paths = [Path(p) for p in paths]
        view = temp_name(paths[0]) + (f"__{len(paths)}" if len(paths) > 1 else "")
        try:
            if self.backend == "duckdb":
                duckdb_parquet_view(self.con, paths, view)
            else:
                spark_parquet_frame(self._spark, paths).createOrReplaceTempView(view)
            return self.con.table(view)
        except Exception as err:  # name the file(s), never quote their rows
            names = str(paths[0]) + (f" (and {len(paths) - 1} more)" if len(paths) > 1 else "")
            raise EngineError(f"{names}: unreadable parquet file ({type(err).__name__})") from err

    def read_lines(self, path: Path) -> ir.Table:
        """A text file as one row per line: `line` (text, without its line ending), `_row_number` (1-based
        record number in file order) and `_source_file`. Fixed-width formats are cut from `line` with
        substrings in Ibis, so no record passes through Python."""
        if not Path(path).is_file():
            raise EngineError(f"{path}: no such file")
        try:
            with _traced("lines", Path(path).name):
                if self.backend == "duckdb":
                    return duckdb_lines_table(self.con, path, lines_name(path))
                spark_lines_frame(self._spark, path).createOrReplaceTempView(lines_name(path))
                return self.con.table(lines_name(path))
        except EngineError:
            raise
        except Exception as err:
            raise EngineError(f"{path}: unreadable text file: {err}") from err

    def source_columns(self, path: Path, delimiter: str | None = None, encoding: str = "utf-8",
                       known_columns: list[str] | None = None) -> list[str]:
        """Column names of a source file, read from its header or Parquet schema only."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".parquet":
                return list(pq.read_schema(path).names)
        except Exception as err:
            raise EngineError(f"{path}: unreadable parquet file ({type(err).__name__}: not Parquet?)") from err
        return read_header(path, CsvDialect(delimiter, encoding), known_columns)[0]

    def _scratch(self) -> Path:
        """Folder for copies of inputs (transcoded text, records re-read one by one): the run folder's, else a
        temporary one removed when the engine is closed or collected (no copy of an input outlives it)."""
        if self.run_dir is None and self._own_scratch is None:
            self._own_scratch = Path(tempfile.mkdtemp(prefix="openasm-scratch-"))
            weakref.finalize(self, shutil.rmtree, self._own_scratch, ignore_errors=True)
        return self.run_dir / SCRATCH if self.run_dir is not None else self._own_scratch

    # ---- run tables -------------------------------------------------------------------------
    def save(self, name: str, expr: ir.Table, *, scratch: bool = False) -> ir.Table:
        """Materialise `expr` as run table `name` and return the stored table. `scratch`: an intermediate the
        caller drops before the stage ends; DuckDB keeps it as a temporary table (spilled under the memory
        limit, never checkpointed into the run's database file, which costs a compressed write of every row)."""
        with _traced("save", name):
            return self._save(name, expr, scratch)

    def for_one_reader(self, name: str, expr: ir.Table) -> ir.Table:
        """An intermediate that one later query reads once. DuckDB plans it inside that query (storing it first
        would write and re-read every row); Spark stores it like `save(name, expr, scratch=True)`, so that the
        reader's plan stays small. The caller drops `name` when done (a no-op where nothing was stored)."""
        if self.backend == "duckdb":
            return expr
        return self.save(name, expr, scratch=True)

    def _save(self, name: str, expr: ir.Table, scratch: bool = False) -> ir.Table:
        if self.backend == "duckdb":
            if engine_duckdb.table_kind(self.con, name) == "VIEW":
                self.con.drop_view(name)
            try:
                engine_duckdb.create_table(self.con, name, expr, scratch)
            except NullTypedColumns as err:
                raise EngineError(f"run table '{name}' would have columns of NULL type: {err}") from err
            return self.con.table(name)
        op = expr.op()
        if isinstance(op, ops.Sort) and not isinstance(op.parent, ops.PhysicalTable):
            # Spark samples a global sort's input to choose its ranges, so the input's plan runs twice: store
            # the input first, then sort the stored rows.
            unsorted = self._save(f"{name}__unsorted", op.parent.to_expr(), scratch=True)
            stored = self._save(name, op.replace({op.parent: unsorted.op()}).to_expr(), scratch)
            self.drop(unsorted.get_name())
            return stored
        target = self._spark_table_uri(name)
        frame = conform_spark_floats(self._spark_frame(expr), expr.schema())
        self._warehouse.store(frame, target)
        stored_table_view(self._spark, target, name, written=frame.schema)
        return self.con.table(name)

    def _spark_frame(self, expr: ir.Table) -> Any:
        self.con._run_pre_execute_hooks(expr)  # registers in-memory tables the expression uses
        return self.con._session.sql(self.con.compile(expr))

    def save_view(self, name: str, expr: ir.Table) -> ir.Table:
        """Run table `name` defined by `expr` over stored run tables: a view (no copy is written; reads filter
        the stored rows). On Spark its SQL is kept in the warehouse (`Warehouse.store_view`); an `expr` that reads
        anything but other run tables is stored as a table there."""
        if self.backend != "duckdb":
            sources = view_sources(expr)
            if sources is None or name in sources:
                return self.save(name, expr)
            with _traced("view", name):
                sql = self.con.compile(expr)
                self._warehouse.store_view(self._spark_table_uri(name), sql, sources)
                define_view(self._spark, name, sql)  # its sources are views of this session already
            return self.con.table(name)
        with _traced("view", name):
            if engine_duckdb.table_kind(self.con, name) == "BASE TABLE":
                self.con.drop_table(name)
            self.con.create_view(name, expr, overwrite=True)
        return self.con.table(name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One DuckDB transaction around the block, which an error or Ctrl-C rolls back whole; inside another
        one the block is part of it. Spark has none (each table is written atomically on its own)."""
        if self.backend != "duckdb" or self._in_transaction:
            yield
            return
        self.con.raw_sql("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.con.raw_sql("ROLLBACK")
            raise
        else:
            self.con.raw_sql("COMMIT")
        finally:
            self._in_transaction = False

    def rename(self, name: str, new_name: str) -> ir.Table:
        """Run table `name` becomes `new_name` (replacing any table or view of that name) without copying it."""
        if self.has_table(new_name):
            self.drop(new_name)
        if self.backend == "duckdb":
            engine_duckdb.rename_table(self.con, name, new_name)
        else:
            self._warehouse.rename(self._spark_table_uri(name), self._spark_table_uri(new_name))
        return self.table(new_name)

    # ---- changing stored rows (DuckDB; a Spark table is rewritten whole instead) ----------------------
    @property
    def changes_in_place(self) -> bool:
        """Whether run tables change in place (`delete_rows`, `append_rows`, `set_columns`)."""
        return self.backend == "duckdb"

    def keeps_order(self, expr: ir.Table) -> bool:
        """Whether storing `expr` keeps the order its sources are read in (so it needs no sort before)."""
        duckdb = self.backend == "duckdb"
        return engine_duckdb.keeps_order(self.con, expr) if duckdb else plan_keeps_order(self._spark_frame(expr))

    def delete_rows(self, name: str, rows: ir.Table, on: list[str]) -> None:
        """Remove from run table `name` the rows matching `rows` on the columns `on` (DuckDB)."""
        engine_duckdb.delete_rows(self.con, name, rows, on)

    def append_rows(self, name: str, rows: ir.Table) -> None:
        """Add `rows` at the end of run table `name` (DuckDB)."""
        engine_duckdb.append_rows(self.con, name, rows)

    def set_columns(self, name: str, rows: ir.Table, on: tuple[str, str], columns: dict[str, str]) -> None:
        """Add `columns` to run table `name` from the matching row of `rows`, null elsewhere (DuckDB; no copy)."""
        engine_duckdb.set_columns(self.con, name, rows, on, columns)

    def table(self, name: str) -> ir.Table:
        """A run table saved earlier (in this session or by an earlier command on the run folder)."""
        if self.backend == "duckdb":
            if not engine_duckdb.has_table(self.con, name):
                raise EngineError(f"run table '{name}' does not exist in {self.run_dir}")
            return self.con.table(name)
        self._spark_table_uri(name)  # raises without a warehouse
        if missing := register_run_table(self._spark, self._warehouse, name):
            raise EngineError(f"run table '{missing}' does not exist in {self.warehouse}")
        return self.con.table(name)

    def is_view(self, name: str) -> bool:
        return (engine_duckdb.table_kind(self.con, name) == "VIEW" if self.backend == "duckdb"
                else self._warehouse.is_view(self._spark_table_uri(name)))

    def has_table(self, name: str) -> bool:
        return (engine_duckdb.has_table(self.con, name) if self.backend == "duckdb"
                else self._warehouse.exists(self._spark_table_uri(name)))

    def drop(self, name: str) -> None:
        """Remove a run table (intermediate results)."""
        if self.backend == "duckdb":
            engine_duckdb.drop(self.con, name)
        else:
            self._warehouse.delete(self._spark_table_uri(name))

    def drop_lines(self, lines: ir.Table) -> None:
        """Forget a `read_lines` table (its records are cut and stored)."""
        if self.backend == "duckdb":
            duckdb_drop_lines(self.con, lines.get_name())
        else:
            self._spark.catalog.dropTempView(lines.get_name())

    def count(self, expr: ir.Table) -> int:
        """Executed row count of a table expression."""
        return int(expr.count().to_pyarrow().as_py())

    def fetch(self, expr: ir.Table) -> pa.Table:
        """Execute and return Arrow (for small results: summaries, reports, tests)."""
        return expr.to_pyarrow()

    def write_parquet(self, expr: ir.Table, path: Path) -> Path:
        """Write `expr` to one Parquet file (streamed: memory does not grow with the table)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _traced("parquet", path.name):
            if self.backend == "duckdb":
                self.con.to_parquet(expr, path)
                return path
            batches = expr.to_pyarrow_batches()
            with pq.ParquetWriter(path, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
        return path

    def write_csv(self, expr: ir.Table, path: Path) -> Path:
        """Write `expr` to one CSV file with a header (streamed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _traced("csv", path.name):
            batches = expr.to_pyarrow_batches()
            with pacsv.CSVWriter(path, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
        return path

    def _spark_table_uri(self, name: str) -> str:
        if self.warehouse is None or self._warehouse is None:
            raise EngineError("a Spark engine needs a run folder or a warehouse URI to keep tables in")
        return table_uri(self.warehouse, name)

    def close(self) -> None:
        if self.backend == "duckdb":
            self.con.disconnect()
        folder = self.run_dir / SCRATCH if self.run_dir is not None else self._own_scratch  # never made here
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def connect(
    backend: str = "duckdb",
    run_dir: Path | None = None,
    spark_master: str | None = None,
    memory_limit: str | None = None,
    warehouse: str | None = None,
) -> Engine:
    """Open a backend by name: `duckdb` (database file in `run_dir`, in memory without one) or `pyspark`.

    `memory_limit` (DuckDB; default OPENASM_MEMORY_LIMIT, else 2GB) bounds the engine's memory; beyond it
    DuckDB spills to `<run_dir>/openasm.duckdb.tmp`. `spark_master` defaults to `local[2]`; any Spark master
    URL works. `warehouse` (Spark) is where run tables live: a URI such as `s3a://bucket/run` or a path;
    default `<run_dir>/spark-tables`.
    """
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb":
        database = str(run_dir / DUCKDB_FILE) if run_dir is not None else ":memory:"
        limit = memory_limit or os.environ.get("OPENASM_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        try:
            con = engine_duckdb.open_database(database, DUCKDB_STORAGE, limit)
        except engine_duckdb.UnknownSize as err:
            raise EngineError(f"memory limit '{limit}': not a size DuckDB understands (e.g. 2GB, 500MB)") from err
        return Engine("duckdb", con, run_dir)
    master = spark_master or os.environ.get(SPARK_MASTER_ENV, DEFAULT_MASTER)
    location = warehouse or os.environ.get(WAREHOUSE_ENV) or (run_dir or Path.cwd()) / SPARK_TABLES
    return _connect_spark(run_dir, master, warehouse_uri(location))


def _connect_spark(run_dir: Path | None, master: str, warehouse: str) -> Engine:
    try:
        import pyspark  # noqa: F401
    except ImportError as err:
        raise EngineError("the pyspark backend needs `pip install openasm[spark]` and a Java runtime") from err
    session = spark_session(master, warehouse)
    return Engine("pyspark", broadcast_small_memtables(ibis.pyspark.connect(session)), run_dir, _spark=session,
                  warehouse=warehouse, _warehouse=Warehouse(session, warehouse))

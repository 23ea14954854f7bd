"""Run tables on DuckDB: how `Engine` stores a query, asks whether a stored copy keeps the query's row order, and
changes stored rows in place (ingest removes the rows it moves to the quarantine instead of copying the rest).

Functions of a DuckDB connection (an Ibis backend); `engine.Engine` is the only caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

from openasm.engine_sources import SOURCE_FILE, sql_identifier


class UnknownSize(ValueError):
    """A memory limit DuckDB cannot read."""


def open_database(database: str, storage: str, memory_limit: str) -> Any:
    """An Ibis DuckDB connection to `database` (a file, or `:memory:`) with the settings every run uses."""
    con = ibis.duckdb.connect(database, storage_compatibility_version=storage)
    try:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'").fetchall()
    except Exception as err:
        raise UnknownSize(memory_limit) from err
    # CSV records are numbered in file order by an ordered scan.
    con.raw_sql("SET preserve_insertion_order = true").fetchall()
    # No row-group compaction at checkpoints: it rewrote ingest's row groups (partly filled by parallel
    # inserts, or holding the few rows ingest moves out) into new blocks and left the old ones free (250k
    # beneficiaries: ingest 34.6 -> 32.9 s, its database 575 -> 508 MB); deleted rows stay marked, unread.
    con.raw_sql("SET max_vacuum_tasks = 0").fetchall()
    return con


class NullTypedColumns(ValueError):
    """A query whose result would have columns of NULL type (DuckDB cannot store them)."""


def create_table(con: Any, name: str, expr: ir.Table, scratch: bool = False) -> None:
    """`create_table(name, expr, overwrite=True)` as Ibis does it (typed empty table, insert, swap, so that
    `expr` may read `name`), with the query compiled once and passed as text: Ibis wraps the compiled query in
    an INSERT tree that sqlglot copies whole (about a tenth of the eCQM stage's time). `scratch`: a temporary
    table (spilled under the memory limit, never checkpointed into the database file)."""
    query, definitions = _compiled(con, expr)
    columns = ", ".join(_stored_definitions(con, expr.schema(), query, definitions))
    target, staging = sql_identifier(name), sql_identifier(f"{name}__staging")
    if scratch:  # a fresh intermediate that `expr` never reads: created in place, no swap
        con.con.execute(f"CREATE OR REPLACE TEMP TABLE {target} ({columns}); INSERT INTO {target} {query}")
        return
    # Stages run inside one transaction (runs.execute), which an error rolls back whole.
    con.con.execute(f"CREATE OR REPLACE TABLE {staging} ({columns}); INSERT INTO {staging} {query}; "
                    f"DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {target}")


# The last few queries compiled: ingest asks `keeps_order` of a check query, then stores it (compiling a check
# query of 8.5M claim lines' 60-odd checks takes a quarter of a second).
_RECENT_QUERIES: dict[Any, tuple[str, tuple[str, ...]]] = {}
_RECENT_LIMIT = 4


def _compiled(con: Any, expr: ir.Table) -> tuple[str, tuple[str, ...]]:
    """The query of `expr` and its column definitions as Ibis types them."""
    schema = expr.schema()
    if schema.null_fields:
        raise NullTypedColumns(str(list(schema.null_fields)))
    con._run_pre_execute_hooks(expr)  # registers the in-memory tables the expression uses
    key = (id(con), expr.op())
    if key not in _RECENT_QUERIES:
        definitions = tuple(column.sql("duckdb") for column in schema.to_sqlglot_column_defs("duckdb"))
        while len(_RECENT_QUERIES) >= _RECENT_LIMIT:
            _RECENT_QUERIES.pop(next(iter(_RECENT_QUERIES)))
        _RECENT_QUERIES[key] = (con.compile(expr), definitions)
    return _RECENT_QUERIES[key]


def _stored_definitions(con: Any, schema: Any, query: str, definitions: tuple[str, ...]) -> list[str]:
    """The column definitions of a table stored from `query`: Ibis' types, except `_source_file`, which Ibis reads
    as a string where DuckDB has the ENUM of the files read (`engine_sources.source_file_sql`): stored as text,
    every checked row would carry its file's path again. Asked of DuckDB at each store, not cached with the
    query: the same query over a table ingested again reads other files."""
    stored = list(definitions)
    if SOURCE_FILE in schema:
        position = list(schema).index(SOURCE_FILE)
        source_type = con.con.execute(f"DESCRIBE {query}").fetchall()[position][1]
        stored[position] = f"{sql_identifier(SOURCE_FILE)} {source_type}"
    return stored


def keeps_order(con: Any, expr: ir.Table) -> bool:
    """Whether a table stored from `expr` holds its rows in the order the query reads its sources: DuckDB plans
    an order-keeping (batch) insert exactly when every operator of the query keeps order (scans, filters,
    projections, unions; not joins, windows over partitions, aggregations)."""
    query, _ = _compiled(con, expr)
    plan = con.con.execute(f"EXPLAIN CREATE TEMP TABLE _openasm_order_probe AS {query}").fetchall()
    return any("BATCH_CREATE_TABLE_AS" in text for _, text in plan)


def delete_rows(con: Any, name: str, rows: ir.Table, on: Sequence[str]) -> None:
    """Delete from run table `name` the rows that match a row of `rows` on every column of `on` (equal values;
    `on` columns are never null in the rows ingest deletes)."""
    query, _ = _compiled(con, rows.select(*on))
    match = " AND ".join(f"{sql_identifier(name)}.{sql_identifier(c)} = _gone.{sql_identifier(c)}" for c in on)
    con.con.execute(f"DELETE FROM {sql_identifier(name)} USING ({query}) AS _gone WHERE {match}")


def append_rows(con: Any, name: str, rows: ir.Table) -> None:
    """Add `rows` (the columns of run table `name`, by name) at the end of it."""
    query, _ = _compiled(con, rows)
    names = ", ".join(sql_identifier(c) for c in rows.columns)
    con.con.execute(f"INSERT INTO {sql_identifier(name)} ({names}) {query}")


def set_columns(con: Any, name: str, rows: ir.Table, on: tuple[str, str], columns: dict[str, str]) -> None:
    """Give run table `name` the new `columns` (new name: column of `rows`), filled on the rows where `name`'s
    `on[0]` equals `rows`' `on[1]` (one row of `rows` per value) and null elsewhere. A catalog change plus an update
    of the matched rows: the other columns are not rewritten and the rows keep their order. Columns of those
    names left by an earlier call are replaced."""
    added = rows.select(on[1], **{new: rows[source] for new, source in columns.items()})
    query, _ = _compiled(con, added)
    target = sql_identifier(name)
    for column in added.schema().to_sqlglot_column_defs("duckdb")[1:]:
        con.con.execute(f"ALTER TABLE {target} DROP COLUMN IF EXISTS {sql_identifier(column.name)}; "
                        f"ALTER TABLE {target} ADD COLUMN {column.sql('duckdb')}")
    assign = ", ".join(f"{sql_identifier(new)} = _found.{sql_identifier(new)}" for new in columns)
    con.con.execute(f"UPDATE {target} SET {assign} FROM ({query}) AS _found "
                    f"WHERE {target}.{sql_identifier(on[0])} = _found.{sql_identifier(on[1])}")


def has_table(con: Any, name: str) -> bool:
    """Whether a table, view or temporary table `name` exists (what Ibis' `list_tables` holds): asked by name,
    where listing every table took three times as long, some fifty times a stage."""
    return table_kind(con, name) is not None


def table_kind(con: Any, name: str) -> str | None:
    """'BASE TABLE', 'VIEW', 'LOCAL TEMPORARY' or, for no such name, None."""
    found = con.raw_sql(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        parameters=[name]).fetchall()
    return found[0][0] if found else None


def drop(con: Any, name: str) -> None:
    """Remove table or view `name` (a missing one is no error)."""
    if table_kind(con, name) == "VIEW":
        con.drop_view(name, force=True)
    else:
        con.drop_table(name, force=True)


def rename_table(con: Any, name: str, new_name: str) -> None:
    """ALTER TABLE ... RENAME (a catalog change: no row is copied)."""
    con.con.execute(f"ALTER TABLE {sql_identifier(name)} RENAME TO {sql_identifier(new_name)}")


def is_interruption(err: BaseException) -> bool:
    """Ctrl-C as a backend reports it: DuckDB's Python client turns the signal that stops a running query into
    `RuntimeError("Query interrupted")` (or `duckdb.InterruptException`)."""
    import duckdb

    return isinstance(err, (KeyboardInterrupt, duckdb.InterruptException)) or (
        type(err) is RuntimeError and str(err) == "Query interrupted")



"""The runner contract every stage follows, and the one path by which stages publish tables and the manifest.

A runner is `run_<stage>(engine, rules, run_dir, inputs, step=None) -> StageResult`: it reads the run's tables
through the `Engine`, calls the stage's pure functions, materialises and publishes what they return, and reports
progress through `step`. `runs.execute.execute_stage` runs one and records it in the run's manifest, so every
command, the demo, the tests and the dashboard go through the same path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

import ibis
import ibis.expr.types as ir
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openasm import __version__
from openasm.engine import Engine
from openasm.rules import RulesForYear
from openasm.schema.run_folder import MANIFEST, output_path

Step = Callable[[str], None]


def no_step(_text: str) -> None:
    """The progress callback of a runner called without one."""


@dataclass
class StageResult:
    """What a runner produced: row counts and files of the published tables, notes for the user, and the
    entries it adds to the manifest (besides the rules it read)."""

    row_counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    entries: dict[str, Any] = field(default_factory=dict)

    def manifest_entries(self) -> dict[str, Any]:
        """Top-level manifest keys this stage writes (ingest accounting, sources read, ...)."""
        return dict(self.entries)


ResultT = TypeVar("ResultT", bound=StageResult)


# Attribute of a runner that makes its own tables atomic (runs.execute does not wrap it in a transaction).
PUBLISHES_ITSELF = "publishes_itself"


class Runner(Protocol[ResultT]):
    def __call__(self, engine: Engine, rules: Any, run_dir: Path, inputs: Any, step: Step | None = None
                 ) -> ResultT: ...


def count_rows(expr: ir.Table) -> int:
    """Executed row count of a table expression."""
    return int(expr.count().to_pyarrow().as_py())


# CSV copies of published tables beside the Parquet (always written): every table, only small tables, or none.
# Chosen at ingest; DEFAULT_CSV_MODE otherwise. Small (SMALL_CSV_ROWS) covers every table of a practice's or a
# TIN's run and a cohort's per-clinician and per-TIN tables, which a spreadsheet opens at once; a cohort's
# episode-level tables are not (at 1.5M beneficiaries 330k-5.6M rows each, 30-75 MB of CSV apiece, the CSV
# copies were a twelfth of the run folder; Excel's hard limit, 1,048,576 rows, is no measure of what opens).
CSV_MODES = ("all", "small", "none")
DEFAULT_CSV_MODE = "small"
SMALL_CSV_ROWS = 100_000

_STAGING: ContextVar[Path | None] = ContextVar("openasm_output_staging", default=None)
_YEAR: ContextVar[int | None] = ContextVar("openasm_publish_year", default=None)
_CSV: ContextVar[str] = ContextVar("openasm_csv_copies", default=DEFAULT_CSV_MODE)


@contextmanager
def staged_outputs(folder: Path, year: int | None = None, csv_copies: str = DEFAULT_CSV_MODE) -> Iterator[None]:
    """Within the block, `write_output` writes into `folder` (moved into `outputs/` when the stage commits), with
    CSV copies per `csv_copies` (one of CSV_MODES), and with `year`, `publish` keeps the published tables' rows
    of other performance years."""
    if csv_copies not in CSV_MODES:
        raise ValueError(f"--csv {csv_copies!r}: choose one of {', '.join(CSV_MODES)}")
    tokens = _STAGING.set(folder), _YEAR.set(year), _CSV.set(csv_copies)
    try:
        yield
    finally:
        _STAGING.reset(tokens[0])
        _YEAR.reset(tokens[1])
        _CSV.reset(tokens[2])


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary name beside `path`, then rename: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _written_path(run_dir: Path, name: str) -> Path:
    """Where `write_output` writes `<name>.parquet`: the stage's staging folder, else `outputs/`."""
    parquet = output_path(run_dir, name)
    return (_STAGING.get() or parquet.parent) / parquet.name


def write_output(engine: Engine, expr: ir.Table, run_dir: Path, name: str) -> Path:
    """Publish a table as `outputs/<name>.parquet` and, per the run's CSV mode (`staged_outputs`), `.csv`; rows
    sorted on every column (so identical inputs give identical files), each file replaced atomically. The CSV
    is copied from the written Parquet file, so the table is queried and sorted once. Returns the Parquet path
    in `outputs/`."""
    written = _written_path(run_dir, name)
    _replace_atomically(written, lambda path: engine.write_parquet(expr.order_by(list(expr.columns)), path))
    mode = _CSV.get()
    if mode == "all" or (mode == "small" and pq.ParquetFile(written).metadata.num_rows <= SMALL_CSV_ROWS):
        _replace_atomically(written.with_name(f"{name}.csv"), lambda path: parquet_to_csv(written, path))
    return output_path(run_dir, name)


def parquet_to_csv(parquet: Path, csv: Path) -> Path:
    """A CSV copy of a Parquet file, streamed batch by batch in file order (memory does not grow with it)."""
    source = pq.ParquetFile(parquet)
    with pacsv.CSVWriter(csv, source.schema_arrow) as writer:
        for batch in source.iter_batches():
            writer.write_batch(batch)
    return csv


def _with_other_years(engine: Engine, name: str, expr: ir.Table, year: int, run_year: str) -> ir.Table:
    """`expr` (given a performance_year column when it has none) with the stored table's rows that runs for other
    years wrote (`run_year` is not `year`); a stored table of another shape (an older openasm) is replaced."""
    if "performance_year" not in expr.columns:
        expr = expr.mutate(performance_year=ibis.literal(year, "int32"))
    if not engine.has_table(name):
        return expr
    stored = engine.table(name)
    if stored.schema() != expr.schema():
        return expr
    return ibis.union(stored.filter(stored[run_year] != year), expr, distinct=False)


def year_rows(engine: Engine, name: str, year: int) -> ir.Table:
    """A run table's rows of one performance year (all rows when it has no performance_year column)."""
    table = engine.table(name)
    return table.filter(table.performance_year == year) if "performance_year" in table.columns else table


def publish(engine: Engine, run_dir: Path, result: StageResult, name: str, expr: ir.Table, *,
            run_year: str = "performance_year") -> ir.Table:
    """Materialise a stage output, write it to `outputs/` and count its rows into `result`. Run for one
    performance year (`execute_stage` of a year stage), the table keeps the rows that runs for other years wrote
    and replaces this year's, so a stage run again leaves the same table; the returned table and the count are
    this year's. `run_year`: the column that holds the year of the run that wrote a row, performance_year unless
    a row may describe another year (a projection's later years)."""
    year = _YEAR.get()
    stored = engine.save(name, expr if year is None else _with_other_years(engine, name, expr, year, run_year))
    result.outputs[name] = write_output(engine, stored, run_dir, name)
    result.row_counts[name] = _rows_written(name, run_dir, year, run_year)
    return stored if year is None else stored.filter(stored[run_year] == year)


def _rows_written(name: str, run_dir: Path, year: int | None, run_year: str) -> int:
    """Rows (of `year`) in the Parquet file `write_output` just wrote: read from the file rather than counted by
    the engine again (on Spark each count is a job)."""
    written = _written_path(run_dir, name)
    if year is None:
        return pq.ParquetFile(written).metadata.num_rows
    years = pq.read_table(written, columns=[run_year]).column(run_year)
    return int(pc.sum(pc.equal(years, year)).as_py() or 0)


class InputError(ValueError):
    """A stage's input holds values it cannot compute with (non-finite, out of range)."""


def refuse_invalid(engine: Engine, findings: ir.Table, what: str, shown: int = 10) -> None:
    """Raise InputError listing the rows of `findings` (`schema.value_ranges.range_findings`), if any: the run
    stops before a NaN or an out-of-range value can spread into pools and factors."""
    rows = engine.fetch(findings.limit(shown + 1)).to_pylist()
    if not rows:
        return
    total = count_rows(findings) if len(rows) > shown else len(rows)
    keys = [c for c in rows[0] if c not in ("column_name", "value", "expected")]
    lines = [", ".join(f"{k} {r[k]}" for k in keys) + f": {r['column_name']} = {r['value']!r}, expected "
             f"{r['expected']}" for r in rows[:shown]]
    more = f" (and {total - shown} more)" if total > shown else ""
    raise InputError(f"{what}: {total} invalid value(s){more}: " + "; ".join(lines))


def write_manifest(run_dir: Path, *, engine: Engine, rules: RulesForYear | Sequence[RulesForYear] | None,
                   entries: dict[str, Any] | None = None, remove: Sequence[str] = ()) -> Path:
    """Record what the run read and each rules value used. A single year's rules merge into `rules_used` and
    `code_lists_used` (a value read again by a later stage replaces the earlier row); a stage over several
    years puts its rules in its own entry. `remove`: entries of stages whose results are gone."""
    path = Path(run_dir) / MANIFEST
    existing: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    existing.update({"openasm_version": __version__, "backend": engine.backend,
                     "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if engine.backend == "pyspark":
        # Later commands reopen the run's tables where they are (cli.common.open_run).
        existing["spark"] = {"master": engine.spark_master, "warehouse": engine.warehouse}
    if isinstance(rules, RulesForYear):
        existing["performance_year"] = rules.performance_year
        for key, rows in rules_rows([rules]).items():
            merged = {row["name"]: row for row in existing.get(key, [])}
            merged.update({row["name"]: row for row in rows})
            existing[key] = [merged[name] for name in sorted(merged)]
    for key in remove:
        existing.pop(key, None)
    existing.update(entries or {})
    _replace_atomically(path, lambda partial: partial.write_text(json.dumps(existing, indent=2, default=str)))
    return path


def rules_rows(rules_list: Sequence[RulesForYear]) -> dict[str, list[dict[str, Any]]]:
    """`rules_used` and `code_lists_used` of one or more years' rules, one row per name (later years win)."""
    used = {r["name"]: r for rules in rules_list for r in rules.manifest_rows(only_used=True)}
    codes = {r["name"]: r for rules in rules_list for r in rules.code_list_rows()}
    return {"rules_used": [used[k] for k in sorted(used)], "code_lists_used": [codes[k] for k in sorted(codes)]}

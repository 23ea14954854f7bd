"""What every command shares: consoles, the error exit, option types, rules loading, opening a run folder, and
running one stage through `runs.stage.execute_stage` with progress and a table of what it published."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

RunArg = Annotated[Path, typer.Argument(help="Run folder")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="duckdb (default) or pyspark")]
MasterOpt = Annotated[Optional[str], typer.Option(
    "--spark-master", help="Spark master URL (default: OPENASM_SPARK_MASTER, else the run's, else local[2])")]
WarehouseOpt = Annotated[Optional[str], typer.Option(
    "--warehouse", help="Spark: where the run's tables live, a URI (file://, s3a://, abfss://) or a path (default: "
    "OPENASM_WAREHOUSE, else <run>/spark-tables); recorded in the run's manifest for later commands")]
PyOpt = Annotated[int, typer.Option("--py", help="Performance year")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a rule: name=value (repeatable)")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace the results of later stages in a used run folder (they would be stale)")]
CodeListsOpt = Annotated[Optional[Path], typer.Option(
    "--code-lists", help="Folder of replacement code lists (<list>.csv with the shipped columns), e.g. the CMS "
    "measure codes workbook exported to CSV")]


def fail(message: str) -> NoReturn:
    """Print one error line and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def warn(message: str) -> None:
    err_console.print(f"[bold yellow]warning:[/] {message}")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def load_rules_for_years(years: Sequence[int], overrides: list[str] | None, code_lists: Path | None = None) -> list:
    """Each year's rules with the same overrides and code-list folder; a bad override or file exits."""
    from openasm.rules import RulesError, load_rules, parse_override

    try:
        parsed = [parse_override(text) for text in overrides or []]
        out = []
        for year in years:
            rules = load_rules(year, parsed)
            out.append(rules.with_code_lists(code_lists) if code_lists is not None else rules)
        return out
    except RulesError as err:
        fail(str(err))


def load_rules(py: int, overrides: list[str] | None, code_lists: Path | None = None):
    return load_rules_for_years([py], overrides, code_lists)[0]


def parse_years(text: str) -> tuple[int, int]:
    """`YYYY-YYYY` (or one year) as (first, last)."""
    try:
        first, _, last = text.partition("-")
        first_year, last_year = int(first), int(last or first)
    except ValueError:
        fail(f"--years '{text}': expected YYYY-YYYY")
    if last_year < first_year:
        fail(f"--years '{text}': last year before first year")
    return first_year, last_year


def open_engine(backend: str, run_dir: Path, spark_master: str | None = None, warehouse: str | None = None):
    from openasm.engine import EngineError, connect

    try:
        return connect(backend, run_dir, spark_master=spark_master, warehouse=warehouse)
    except EngineError as err:
        fail(str(err))


def open_run(run_dir: Path, backend: str, spark_master: str | None, *, create: bool = False,
             warehouse: str | None = None):
    """Reopen a run folder with the backend that ingested it: on Spark, its recorded warehouse (where its tables
    are) and, unless `spark_master` or OPENASM_SPARK_MASTER names another, its recorded master. `create`: a
    folder without a run yet is opened with `backend`, `spark_master` and `warehouse` (the ingest commands)."""
    from openasm.engine import SPARK_MASTER_ENV
    from openasm.schema.run_folder import read_manifest, read_manifest_if_any

    try:
        manifest = read_manifest_if_any(run_dir) if create else read_manifest(run_dir)
    except FileNotFoundError as err:
        fail(str(err))
    if not manifest:
        return open_engine(backend, run_dir, spark_master, warehouse)
    spark = manifest.get("spark") or {}
    master = spark_master or os.environ.get(SPARK_MASTER_ENV) or spark.get("master")
    return open_engine(manifest.get("backend", backend), run_dir, master, warehouse or spark.get("warehouse"))


def run_stage(runner: Any, run_dir: Path, rules: Any, inputs: Any, *, title: str, backend: str,
              spark_master: str | None, engine: Any = None, errors: tuple[type[Exception], ...] = (),
              force: bool = False) -> Any:
    """Execute one runner on a run folder with a progress line and record it in the manifest. `engine`: an
    already open engine (ingest commands create the run); else the run folder is reopened. ValueError,
    RuntimeError and `errors` end the command with one error line; results are printed as notes."""
    from openasm.engine import is_interruption
    from openasm.runs.execute import execute_stage

    engine = engine or open_run(run_dir, backend, spark_master)
    try:
        with progress_bar() as progress:
            task = progress.add_task(title, total=None)
            result = execute_stage(runner, engine, rules, run_dir, inputs, force=force,
                                   step=lambda text: progress.update(task, description=f"{title}: {text}"))
    except (ValueError, RuntimeError, *errors) as err:
        if is_interruption(err):
            raise KeyboardInterrupt from err
        fail(str(err))
    finally:
        engine.close()
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    return result


def run_year_stage(runner: Any, run_dir: Path, inputs: Any, *, title: str, py: int, set_: list[str] | None,
                   backend: str, spark_master: str | None, code_lists: Path | None = None) -> Any:
    """A stage of one performance year: its rules (with `--set` and `--code-lists`), run and recorded, then the
    table of what it published."""
    result = run_stage(runner, run_dir, load_rules(py, set_, code_lists), inputs, title=title, backend=backend,
                       spark_master=spark_master)
    print_published(result, f"{title} (performance year {py})")
    return result


def print_counts(title: str, label: str, counts: dict[str, int], unit: str = "rows") -> None:
    """A two-column table of counts by name."""
    table = Table(title=title)
    table.add_column(label)
    table.add_column(unit, justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)


def print_published(result: Any, title: str) -> None:
    """The tables a stage published, with row counts and files."""
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for name, count in result.row_counts.items():
        table.add_row(name, f"{count:,}", str(result.outputs[name]))
    console.print(table)

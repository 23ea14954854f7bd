"""`openasm quality-benchmarks FILE [--exclusions FILE]`: check a benchmark file in the CMSgov/qpp-measures-data
format (quality.md §2.2, §3) before a run uses it, and show its rows for the ASM quality measures.

A malformed file exits with code 2 and the error naming file, record and field. `register(app)` adds the command to
a Typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openasm.rules import load_rules
from openasm.scoring.quality_benchmarks import (
    BenchmarkFileError,
    read_mips_benchmark_file,
)
from openasm.scoring.quality_points import pcol

console = Console()
err_console = Console(stderr=True)


def check_benchmark_file(
    path: Annotated[Path, typer.Argument(help="benchmarks/<PY>.json in the qpp-measures-data format")],
    exclusions: Annotated[Path | None, typer.Option(
        "--exclusions", help="benchmark-exclusion-reasons.json of the same year")] = None,
    py: Annotated[int, typer.Option("--py", help="Performance year whose ASM measure set is shown")] = 2027,
) -> None:
    """Validate a user benchmark file and list its ASM quality-measure rows."""
    try:
        table = read_mips_benchmark_file(path, exclusion_reasons_path=exclusions)
    except BenchmarkFileError as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(code=2) from err
    measures = {m for members in load_rules(py).value("quality.measures").values() for m in members}
    rows = sorted((r for r in table.to_pylist() if r["measure_id"] in measures),
                  key=lambda r: (r["performance_year"], r["measure_id"], r["collection_type"]))
    shown = Table(title=f"{path.name}: {table.num_rows} records, {len(rows)} for the PY{py} ASM measures")
    for column in ("PY", "QID", "collection type", "BY", "inverse", "cap", "flat", "p10", "p50", "p90", "excluded"):
        shown.add_column(column)
    for r in rows:
        shown.add_row(str(r["performance_year"]), r["measure_id"], r["collection_type"], str(r["benchmark_year"]),
                      _flag(r["is_inverse"]), _flag(r["is_topped_out_by_program"]), _flag(r["is_flat"]),
                      *[_num(r[pcol(k)]) for k in (10, 50, 90)], r["exclusion_reason"] or "")
    console.print(shown)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def register(app: typer.Typer) -> None:
    """Add `quality-benchmarks` to `app`."""
    app.command("quality-benchmarks")(check_benchmark_file)

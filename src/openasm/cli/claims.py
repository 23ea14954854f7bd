"""Claims commands: `synth` (synthetic world), `ingest`, `summarize`, `episodes`, `cost`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from openasm.cli.app import app
from openasm.cli.common import (
    BackendOpt,
    CodeListsOpt,
    MasterOpt,
    PyOpt,
    SetOpt,
    console,
    fail,
    open_engine,
    parse_years,
    print_counts,
    progress_bar,
    run_stage,
    run_year_stage,
)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the synthetic world into")],
    benes: Annotated[int, typer.Option("--benes", help="Number of beneficiaries")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes)")] = 1,
    years: Annotated[str, typer.Option("--years", help="Calendar years, e.g. 2025-2027")] = "2025-2027",
    chunk_benes: Annotated[int, typer.Option("--chunk-benes", help="Beneficiaries per chunk")] = 25_000,
) -> None:
    """Generate a seeded synthetic Medicare world in the canonical tables (Parquet)."""
    from openasm.synth import generate_world

    first_year, last_year = parse_years(years)
    if benes <= 0:
        fail("--benes must be positive")
    with progress_bar() as progress:
        task = progress.add_task(f"synthesizing {benes:,} beneficiaries", total=benes)
        summary = generate_world(
            out_dir=out, benes=benes, seed=seed, first_year=first_year, last_year=last_year,
            chunk_benes=chunk_benes, progress=lambda done, total: progress.update(task, completed=done),
        )
    print_counts(f"synthetic world in {out}", "table", summary.row_counts)
    console.print(f"elapsed {summary.elapsed_seconds:.1f} s")


@app.command()
def ingest(
    input_dir: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the results of later stages in a used run folder (they would be stale)")] = False,
) -> None:
    """Read and validate canonical tables; every row is accepted or quarantined with a reason."""
    from openasm.ingest.sources import IngestFileError
    from openasm.runs.ingest import IngestInputs, run_ingest

    engine = open_engine(backend, out, spark_master)
    result = run_stage(run_ingest, out, None, IngestInputs(input_dir), title="ingesting", backend=backend,
                       spark_master=spark_master, engine=engine, errors=(IngestFileError,), force=force)
    table = Table(title=f"validation summary ({result.input_dir})")
    for col in ("table", "read", "accepted", "quarantined", "reconciles"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in result.tables.values():
        note = "" if t.provided else " (not provided)"
        table.add_row(t.table + note, f"{t.read:,}", f"{t.accepted:,}", f"{t.quarantined:,}",
                      "yes" if t.reconciles else "NO")
    console.print(table)
    if result.ignored_entries:
        console.print(f"not canonical tables, not read: {', '.join(result.ignored_entries)}")
    if not result.reconciles:
        fail("row accounting does not reconcile")


@app.command()
def summarize(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `openasm ingest`")],
    py: PyOpt = 2027,
    set_: SetOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Resolve claim adjustments to final action and summarize spend by setting and specialty."""
    from openasm.runs.summary import run_summary

    run_year_stage(run_summary, run_dir, None, title="summary", py=py, set_=set_, backend=backend,
                   spark_master=spark_master)


@app.command()
def episodes(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `openasm ingest`")],
    py: PyOpt = 2027,
    set_: SetOpt = None,
    ndc_class_map: Annotated[Optional[Path], typer.Option(
        "--ndc-class-map", help="CSV with ndc_code, drug_class (default: the shipped list)")] = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Group COST_HF_1 / COST_LBP_1 episodes, apply exclusions, assign cost and attribute clinicians."""
    from openasm.runs.episodes import EpisodeInputs, run_episodes

    run_year_stage(run_episodes, run_dir, EpisodeInputs(ndc_class_map), title="episodes", py=py, set_=set_,
                   code_lists=code_lists, backend=backend, spark_master=spark_master)


@app.command()
def cost(
    run_dir: Annotated[Path, typer.Argument(help="Run folder after `openasm episodes`")],
    py: PyOpt = 2027,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Risk-adjust episodes and score the cost measures per TIN and TIN-NPI, with achievement points."""
    from openasm.runs.cost import run_cost

    run_year_stage(run_cost, run_dir, None, title="cost", py=py, set_=set_, code_lists=code_lists,
                   backend=backend, spark_master=spark_master)

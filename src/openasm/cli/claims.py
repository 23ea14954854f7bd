"""Claims commands: `synth` (synthetic world, optionally in a source format), `ingest` (canonical tables or a
source format: CCLF, BCDA, Blue Button, CCW research files), `ingest-835` (remittances), `summarize`, `episodes`,
`cost`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from openasm.cli.app import app
from openasm.cli.common import (
    BackendOpt,
    CodeListsOpt,
    ForceOpt,
    MasterOpt,
    PyOpt,
    SetOpt,
    WarehouseOpt,
    console,
    err_console,
    fail,
    load_rules,
    open_engine,
    open_run,
    parse_years,
    print_counts,
    print_published,
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
    source_format: Annotated[Optional[str], typer.Option("--format", help="Also write OUT/<format>/: cclf, bcda, "
                                                         "bluebutton, rif or x12-835")] = None,
) -> None:
    """Generate a seeded synthetic Medicare world in the canonical tables (Parquet), optionally also in a source
    format."""
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
    if source_format:
        write_source_format(out, source_format)


def write_source_format(world: Path, source_format: str, folder: Path | None = None) -> Path:
    """The world also written in a source format (default folder `<world>/<format>`)."""
    from openasm.runs.world import write_world_format

    try:
        written = write_world_format(world, source_format, folder)
    except ValueError as err:
        fail(str(err))
    console.print(f"{source_format} files: {written}")
    return written


@app.command()
def ingest(
    input_dir: Annotated[Path, typer.Argument(help="Folder of canonical tables, CCLF files, BCDA NDJSON, Blue "
                                                   "Button JSON or CCW research files")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
    warehouse: WarehouseOpt = None,
    force: ForceOpt = False,
    source_format: Annotated[str, typer.Option(
        "--format", help="auto (recognised from the files), canonical, cclf, bcda, bluebutton or rif")] = "auto",
    delimiter: Annotated[Optional[str], typer.Option(
        "--delimiter", help="Field separator of the canonical CSV files: one character or comma, semicolon, tab, "
        "pipe (default: read off each header)")] = None,
    encoding: Annotated[str, typer.Option(
        "--encoding", help="Text encoding of the canonical CSV files, e.g. latin-1, cp1252")] = "utf-8",
    csv_copies: Annotated[Optional[str], typer.Option(
        "--csv", help="CSV copies of this run's outputs beside the Parquet: small (default: tables of up to "
        "100,000 rows, which a spreadsheet opens at once), all or none; later commands on the run keep the "
        "choice")] = None,
    py: PyOpt = 2027,
    set_: SetOpt = None,
) -> None:
    """Read and validate an input folder; every row is accepted or quarantined with a reason. Ends with an error
    when a table has more than ingest.max_quarantine_share of its rows quarantined (`--set` to change it)."""
    from openasm.engine_csv import CsvDialect, CsvFormatError, parse_delimiter_option
    from openasm.ingest.sources import IngestFileError
    from openasm.runs.ingest import IngestInputs, run_ingest

    try:
        dialect = CsvDialect(parse_delimiter_option(delimiter), encoding)
    except CsvFormatError as err:
        fail(str(err))
    rules = load_rules(py, set_)
    engine = open_engine(backend, out, spark_master, warehouse)
    inputs = IngestInputs(input_dir, source_format, dialect, csv_copies)
    result = run_stage(run_ingest, out, rules, inputs, title="ingesting", backend=backend, spark_master=spark_master,
                       engine=engine, errors=(IngestFileError,), force=force)
    table = Table(title=f"validation summary ({result.input_dir})")
    for col in ("table", "read", "accepted", "quarantined", "reconciles"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in result.tables.values():
        note = "" if t.provided else " (not provided)"
        table.add_row(t.table + note, f"{t.read:,}", f"{t.accepted:,}", f"{t.quarantined:,}",
                      "yes" if t.reconciles else "NO")
    console.print(table)
    if result.ignored_entries:
        console.print(f"not read: {', '.join(result.ignored_entries)}")
    if result.source_format != "canonical":
        console.print(f"source format: [bold]{result.source_format}[/]")
    for item in result.limitations:
        console.print(f"[yellow]{result.source_format} cannot carry[/] {item['table']}.{item['column']}: "
                      f"{item['consequence']}")
    if not result.reconciles:
        fail("row accounting does not reconcile")
    for failure in result.share_failures[1:]:
        err_console.print(f"[red]error:[/] {failure.message()}")
    if result.share_failures:
        fail(f"{result.share_failures[0].message()} (see {out}/outputs/quarantine.csv)")


@app.command("ingest-835")
def ingest_835(
    paths: Annotated[list[Path], typer.Argument(help="X12 835 remittance files or folders of them")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    py: PyOpt = 2027,
    set_: SetOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
    warehouse: WarehouseOpt = None,
    force: ForceOpt = False,
) -> None:
    """Read Medicare remittances (X12 835): every service line accepted or quarantined, and the practice's Part B
    base per NPI x TIN for the performance year (remittance_part_b_base), which `openasm payment` then uses."""
    from openasm.runs.remittance import RemittanceInputs, run_ingest_835

    engine = open_run(out, backend, spark_master, create=True, warehouse=warehouse)
    result = run_stage(run_ingest_835, out, load_rules(py, set_), RemittanceInputs(tuple(paths)),
                       title="ingesting remittances", backend=backend, spark_master=spark_master, engine=engine,
                       force=force)
    console.print(f"835 service lines: read {result.read:,}, accepted {result.accepted:,}, quarantined "
                  f"{result.quarantined:,} from {len(result.files)} file(s)")
    for error in result.structure_errors[:10]:
        console.print(f"[yellow]structure:[/] {error}")
    print_published(result, f"remittances (performance year {py})")


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

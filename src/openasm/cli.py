"""`openasm` command line: synth → ingest → summarize → report, plus rules and schema lookup."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from openasm import __version__

app = typer.Typer(help="openasm: open reference engine for the CMS Ambulatory Specialty Model.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="duckdb (default) or pyspark")]
MasterOpt = Annotated[Optional[str], typer.Option("--spark-master", help="Spark master URL (default local[2])")]
PyOpt = Annotated[int, typer.Option("--py", help="Performance year")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a rule: name=value (repeatable)")]
CodeListsOpt = Annotated[Optional[Path], typer.Option(
    "--code-lists", help="Folder of replacement code lists (<list>.csv with the shipped columns), e.g. the CMS "
    "measure codes workbook exported to CSV")]


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _load_rules(py: int, overrides: list[str] | None, code_lists: Path | None = None):
    from openasm.rules import RulesError, load_rules, parse_override

    try:
        rules = load_rules(py, [parse_override(text) for text in overrides or []])
        return rules.with_code_lists(code_lists) if code_lists is not None else rules
    except RulesError as err:
        _fail(str(err))


def _parse_years(text: str) -> tuple[int, int]:
    try:
        first, _, last = text.partition("-")
        first_year, last_year = int(first), int(last or first)
    except ValueError:
        _fail(f"--years '{text}': expected YYYY-YYYY")
    if last_year < first_year:
        _fail(f"--years '{text}': last year before first year")
    return first_year, last_year


@app.command()
def version() -> None:
    """Print the openasm version."""
    console.print(__version__)


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

    first_year, last_year = _parse_years(years)
    if benes <= 0:
        _fail("--benes must be positive")
    with _progress() as progress:
        task = progress.add_task(f"synthesizing {benes:,} beneficiaries", total=benes)
        summary = generate_world(
            out_dir=out, benes=benes, seed=seed, first_year=first_year, last_year=last_year,
            chunk_benes=chunk_benes, progress=lambda done, total: progress.update(task, completed=done),
        )
    table = Table(title=f"synthetic world in {out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.row_counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"elapsed {summary.elapsed_seconds:.1f} s")


def _open_engine(backend: str, run_dir: Path, spark_master: str | None):
    from openasm.engine import EngineError, connect

    try:
        return connect(backend, run_dir, spark_master=spark_master)
    except EngineError as err:
        _fail(str(err))


@app.command()
def ingest(
    input_dir: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Read and validate canonical tables; every row is accepted or quarantined with a reason."""
    from openasm.engine import EngineError
    from openasm.ingest.sources import IngestFileError
    from openasm.pipeline import ingest_summary_table, run_ingest, write_manifest, write_output

    engine = _open_engine(backend, out, spark_master)
    try:
        with _progress() as progress:
            task = progress.add_task("ingesting", total=6)

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, description=f"ingesting {name}")

            result = run_ingest(engine, input_dir, progress=step)
        write_output(engine, engine.save("ingest_summary", ingest_summary_table(result)), out, "ingest_summary")
        write_output(engine, engine.table("quarantine"), out, "quarantine")
        write_manifest(out, engine=engine, ingest=result, rules=None)
    except (IngestFileError, EngineError) as err:
        _fail(str(err))
    finally:
        engine.close()
    _print_ingest(result)
    if not result.reconciles:
        _fail("row accounting does not reconcile")


def _print_ingest(result) -> None:
    table = Table(title=f"validation summary ({result.input_dir})")
    for col in ("table", "read", "accepted", "quarantined", "reconciles"):
        table.add_column(col, justify="right" if col not in ("table",) else "left")
    for t in result.tables.values():
        note = "" if t.provided else " (not provided)"
        table.add_row(t.table + note, f"{t.read:,}", f"{t.accepted:,}", f"{t.quarantined:,}",
                      "yes" if t.reconciles else "NO")
    console.print(table)
    if result.ignored_entries:
        console.print(f"not canonical tables, not read: {', '.join(result.ignored_entries)}")


@app.command()
def summarize(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `openasm ingest`")],
    py: PyOpt = 2027,
    set_: SetOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Resolve claim adjustments to final action and summarize spend by setting and specialty."""
    from openasm.pipeline import run_claims_summary, write_manifest

    rules = _load_rules(py, set_)
    engine = _open_run(run_dir, backend, spark_master)
    try:
        result = run_claims_summary(engine, rules, run_dir)
        write_manifest(run_dir, engine=engine, ingest=None, rules=rules)
    finally:
        engine.close()
    for name, path in result.tables.items():
        console.print(f"wrote {name}: {path}")


def _open_run(run_dir: Path, backend: str, spark_master: str | None):
    """Reopen a run folder with the backend that ingested it."""
    from openasm.pipeline import read_manifest

    try:
        manifest = read_manifest(run_dir)
    except FileNotFoundError as err:
        _fail(str(err))
    return _open_engine(manifest.get("backend", backend), run_dir, spark_master)


def _run_stage(run_dir: Path, py: int, set_: list[str] | None, backend: str, spark_master: str | None,
               title: str, work, code_lists: Path | None = None) -> None:
    from openasm.pipeline import write_manifest

    rules = _load_rules(py, set_, code_lists)
    engine = _open_run(run_dir, backend, spark_master)
    try:
        with _progress() as progress:
            task = progress.add_task(title, total=None)
            result = work(engine, rules, lambda text: progress.update(task, description=f"{title}: {text}"))
        write_manifest(run_dir, engine=engine, ingest=None, rules=rules)
    except (ValueError, RuntimeError) as err:
        _fail(str(err))
    finally:
        engine.close()
    table = Table(title=f"{title} (performance year {py})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for name, count in result.row_counts.items():
        table.add_row(name, f"{count:,}", str(result.outputs[name]))
    console.print(table)


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
    from openasm.pipeline_cost import run_episodes

    _run_stage(run_dir, py, set_, backend, spark_master, "episodes",
               lambda engine, rules, step: run_episodes(engine, rules, run_dir, ndc_class_map, step), code_lists)


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
    from openasm.pipeline_cost import run_cost

    _run_stage(run_dir, py, set_, backend, spark_master, "cost",
               lambda engine, rules, step: run_cost(engine, rules, run_dir, step), code_lists)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: run folder)")] = None,
    py: PyOpt = 2027,
    set_: SetOpt = None,
) -> None:
    """Write the HTML summary page (index.html) from a run's finished tables."""
    from openasm.report.html import write_report

    rules = _load_rules(py, set_)
    path = write_report(run_dir, out or run_dir, rules)
    console.print(f"report: {path}")


@app.command()
def rules(
    py: PyOpt = 2027,
    set_: SetOpt = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Show names containing this text")] = None,
) -> None:
    """Print every rule in force for a performance year with its citation and evidence level."""
    resolved = _load_rules(py, set_)
    table = Table(title=f"openasm rules for performance year {py} (payment year {resolved.payment_year})",
                  show_lines=False)
    for col in ("name", "value", "unit", "year", "evidence", "citation"):
        table.add_column(col, overflow="fold")
    for row in resolved.manifest_rows(only_used=False):
        if only and only not in row["name"]:
            continue
        evidence = row["evidence"]
        if evidence == "override":
            evidence = f"[bold yellow]override[/] (was {row['shipped_value']}, {row['shipped_evidence']})"
        table.add_row(row["name"], row["value"], row["unit"], str(row["key_year"]), evidence, row["citation"])
    console.print(table)


@app.command()
def schema(table: Annotated[Optional[str], typer.Argument(help="One table; all when omitted")] = None) -> None:
    """Describe the canonical input tables: columns, types, required, checks."""
    from openasm.schema import CANONICAL_TABLES

    names = [table] if table else list(CANONICAL_TABLES)
    for name in names:
        if name not in CANONICAL_TABLES:
            _fail(f"unknown table '{name}'; tables: {', '.join(CANONICAL_TABLES)}")
        contract = CANONICAL_TABLES[name]
        out = Table(title=f"{name}: {contract.grain} (key: {', '.join(contract.key)})")
        for col in ("column", "type", "required", "check", "description"):
            out.add_column(col, overflow="fold")
        for col in contract.columns:
            required = "yes" if col.required else (
                f"on {'/'.join(col.required_for_claim_types)}" if col.required_for_claim_types else "")
            check = col.check or (f"one of {', '.join(col.allowed)}" if col.allowed else "")
            out.add_row(col.name, col.dtype, required, check, col.description)
        console.print(out)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo output folder")] = Path("demo-output"),
    benes: Annotated[int, typer.Option("--benes")] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    py: PyOpt = 2027,
    backend: BackendOpt = "duckdb",
) -> None:
    """Synthetic world → ingest → episodes → cost → participation → synthetic EHR and feeds → quality → scores →
    payment → HTML report."""
    from openasm.cli_model import payment, quality, score
    from openasm.cli_quality import ingest_fhir, synth_fhir
    from openasm.participation.cli import participate
    from openasm.synth.model_feeds import generate_model_feeds

    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    world = out / "synthetic-world"
    run = out / "run"
    # CY PY-3 gives the eligibility year (PY-2) its enrollment and history look-back.
    synth(out=world, benes=benes, seed=seed, years=f"{py - 3}-{py}", chunk_benes=25_000)
    ingest(input_dir=world, out=run, backend=backend, spark_master=None)
    summarize(run_dir=run, py=py, set_=None, backend=backend, spark_master=None)
    episodes(run_dir=run, py=py, set_=None, ndc_class_map=None, code_lists=None, backend=backend,
             spark_master=None)
    cost(run_dir=run, py=py, set_=None, code_lists=None, backend=backend, spark_master=None)
    participate(run_dir=run, py=[py], years=None, selected_areas=None, prior=None, compare_with=None, set_=None,
                code_lists=None, backend=backend, spark_master=None)
    import pyarrow.parquet as pq

    feeds_dir = out / "synthetic-feeds"
    feeds = generate_model_feeds(world, feeds_dir, py, seed=seed,
                                 participant=pq.read_table(run / "outputs" / "participant.parquet"))
    console.print(f"synthetic feeds: {', '.join(f'{k} ({v:,} rows)' for k, v in feeds.rows.items())}")
    from openasm.pipeline_model import run_participant_list_comparison

    _run_stage(run, py, None, backend, None, "participant list comparison",
               lambda engine, rules, step: run_participant_list_comparison(
                   engine, rules, run, feeds.files["participant_list"], step))
    synth_fhir(world=world, out=out / "synthetic-ehr", py=py, seed=seed, copies=1)
    ingest_fhir(paths=[out / "synthetic-ehr"], out=run, backend=backend)
    quality(run_dir=run, py=py, q220=feeds.files.get("q220"), q492=feeds.files.get("q492"), qpp_json=None,
            qrda3=None, group_reporting=None, set_=None, code_lists=None, backend=backend, spark_master=None)
    # PY2027 MIPS benchmarks are unpublished and a synthetic cohort has too few reporters for its own, so the
    # demo scores quality against the PY2026 MIPS benchmarks (an explicit, recorded override).
    score(run_dir=run, py=py, attestation=feeds.files.get("ia_pi_attestation"), euc=None, practice_size=None,
          benchmarks=None, set_=[f"quality.benchmark_fallback_py={py - 1}"], code_lists=None, backend=backend,
          spark_master=None)
    payment(run_dir=run, py=py, set_=None, code_lists=None, backend=backend, spark_master=None)
    report(run_dir=run, out=out, py=py, set_=None)
    console.print(f"[bold green]demo finished[/] in {time.perf_counter() - started:.0f} s: {out / 'index.html'}")


def _register_stage_commands() -> None:
    """Commands of later stages live next to them; each module adds its own to the app."""
    from openasm import cli_model, cli_quality
    from openasm.explain.cli import register as register_explain
    from openasm.participation.cli import register as register_participation
    from openasm.scoring.quality_cli import register as register_benchmarks

    cli_quality.register(app)
    register_participation(app)
    cli_model.register(app)
    register_explain(app)
    register_benchmarks(app)


_register_stage_commands()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

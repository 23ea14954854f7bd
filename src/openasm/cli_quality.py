"""Quality commands: `ingest-fhir`, `synth-fhir`, `conformance`, `quality` (registered on the main app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def ingest_fhir(
    paths: Annotated[list[Path], typer.Argument(help="FHIR JSON/NDJSON files or folders (Bundles, single "
                                                    "resources, bulk-export NDJSON, .gz allowed)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    backend: Annotated[str, typer.Option("--backend", help="duckdb or pyspark")] = "duckdb",
) -> None:
    """Read FHIR R4 resources into the clinical tables; every resource is accepted or quarantined with a reason."""
    from rich.progress import Progress

    from openasm.engine import EngineError, connect
    from openasm.pipeline import write_manifest
    from openasm.pipeline_quality import run_fhir_ingest
    from openasm.quality.fhir_read import FhirInputError, discover_fhir_files

    try:
        files = discover_fhir_files(paths)
        engine = connect(backend, out)
    except (FhirInputError, EngineError) as err:
        _fail(str(err))
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("reading FHIR files", total=len(files))
            result = run_fhir_ingest(engine, paths, out, progress=lambda _n: progress.advance(task))
        write_manifest(out, engine=engine, ingest=None, rules=None, extra={"fhir_ingest": {
            "paths": result.paths, "resources_read": result.resources_read,
            "resources_accepted": result.resources_accepted, "resources_quarantined": result.resources_quarantined,
            "warnings": result.warnings, "table_rows": result.table_rows}})
    finally:
        engine.close()
    table = Table(title=f"FHIR ingest into {out}")
    for column in ("resources read", "accepted", "quarantined", "warnings (kept)", "reconciles"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.resources_read:,}", f"{result.resources_accepted:,}",
                  f"{result.resources_quarantined:,}", f"{result.warnings:,}", "yes" if result.reconciles else "NO")
    console.print(table)
    console.print(f"quarantine: {out / 'outputs' / 'fhir_quarantine.csv'} ({result.seconds:.1f} s)")
    if not result.reconciles:
        _fail("resource accounting does not reconcile")


def synth_fhir(
    world: Annotated[Path, typer.Argument(help="Synthetic world folder written by `openasm synth`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the NDJSON export")],
    py: Annotated[int, typer.Option("--py", help="Performance year (measurement period)")] = 2027,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    copies: Annotated[int, typer.Option("--copies", help="Repeat every patient under new ids")] = 1,
) -> None:
    """Write a FHIR bulk export (NDJSON per resource type) for the synthetic world's HF and LBP patients."""
    from openasm.synth.fhir_export import generate_fhir_export

    if not (world / "claim_line").exists():
        _fail(f"{world}: not a synthetic world (no claim_line folder); run `openasm synth` first")
    summary = generate_fhir_export(world, out, py, seed=seed, copies=copies)
    table = Table(title=f"synthetic FHIR export in {out}")
    table.add_column("resource type")
    table.add_column("resources", justify="right")
    for name, count in summary.resources_by_type.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"patients: {summary.patients}; planted defects: {summary.defects_by_kind}")


def conformance(
    tests: Annotated[Path, typer.Argument(help="Folder of CMS<id>-Q<id> measure folders with test cases")],
    valuesets: Annotated[Optional[Path], typer.Option("--valuesets", help="Folder of FHIR ValueSet expansions "
                                                                          "(default: the shipped ones)")] = None,
    measure: Annotated[Optional[str], typer.Option("--measure", help="Only this measure, e.g. CMS156")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write a JSON report here")] = None,
) -> None:
    """Run eCQM conformance cases and compare every population with the expected MeasureReport."""
    from openasm.quality.conformance import ConformanceError, run_conformance
    from openasm.quality.value_sets import ValueSetError, value_set_codes

    try:
        result = run_conformance(tests, measure=measure, value_set_code=value_set_codes(folder=valuesets))
    except (ConformanceError, ValueSetError, KeyError) as err:
        _fail(str(err))
    for line in result.lines():
        style = "red" if "FAIL" in line else ("bold" if line.endswith("failed") else "")
        console.print(f"[{style}]{line}[/]" if style else line, highlight=False)
    if report is not None:
        report.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    if result.failed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("ingest-fhir")(ingest_fhir)
    app.command("synth-fhir")(synth_fhir)
    app.command("conformance")(conformance)

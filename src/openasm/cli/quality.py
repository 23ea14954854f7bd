"""Quality commands: `ingest-fhir`, `synth-fhir`, `conformance`, `quality`, `quality-benchmarks`."""

from __future__ import annotations

import json
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
    RunArg,
    SetOpt,
    WarehouseOpt,
    console,
    fail,
    load_rules,
    open_engine,
    open_run,
    print_counts,
    run_stage,
    run_year_stage,
)


@app.command("ingest-fhir")
def ingest_fhir(
    paths: Annotated[list[Path], typer.Argument(help="FHIR JSON/NDJSON files or folders (Bundles, single "
                                                    "resources, bulk-export NDJSON, .gz allowed)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create or update")] = Path("openasm-run"),
    backend: Annotated[str, typer.Option("--backend", help="duckdb or pyspark (a new run; an existing run keeps "
                                                           "its own)")] = "duckdb",
    spark_master: MasterOpt = None,
    warehouse: WarehouseOpt = None,
    force: ForceOpt = False,
) -> None:
    """Read FHIR R4 resources into the clinical tables; every resource is accepted or quarantined with a reason."""
    from openasm.quality.fhir_read import FhirInputError, discover_fhir_files
    from openasm.runs.fhir_ingest import FhirInputs, run_fhir_ingest

    try:
        discover_fhir_files(paths)
    except FhirInputError as err:
        fail(str(err))
    engine = open_run(out, backend, spark_master, create=True, warehouse=warehouse)
    result = run_stage(run_fhir_ingest, out, None, FhirInputs(tuple(paths)), title="reading FHIR files",
                       backend=backend, spark_master=spark_master, engine=engine, errors=(FhirInputError,), force=force)
    table = Table(title=f"FHIR ingest into {out}")
    for column in ("resources read", "accepted", "quarantined", "warnings (kept)", "reconciles"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.resources_read:,}", f"{result.resources_accepted:,}",
                  f"{result.resources_quarantined:,}", f"{result.warnings:,}", "yes" if result.reconciles else "NO")
    console.print(table)
    console.print(f"quarantine: {out / 'outputs' / 'fhir_quarantine.csv'} ({result.seconds:.1f} s)")
    if not result.reconciles:
        fail("resource accounting does not reconcile")


@app.command("synth-fhir")
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
        fail(f"{world}: not a synthetic world (no claim_line folder); run `openasm synth` first")
    summary = generate_fhir_export(world, out, py, seed=seed, copies=copies)
    print_counts(f"synthetic FHIR export in {out}", "resource type", summary.resources_by_type, "resources")
    console.print(f"patients: {summary.patients}; planted defects: {summary.defects_by_kind}")


@app.command()
def conformance(
    tests: Annotated[Path, typer.Argument(help="Folder of CMS<id>-Q<id> measure folders with test cases")],
    valuesets: Annotated[Optional[Path], typer.Option("--valuesets", help="Folder of FHIR ValueSet expansions "
                                                                          "(default: the shipped ones)")] = None,
    measure: Annotated[Optional[str], typer.Option("--measure", help="Only this measure, e.g. CMS156")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write a JSON report here")] = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Run eCQM conformance cases and compare every population with the expected MeasureReport (exit 1 when a
    case fails; argued disagreements pinned to their exact difference are listed as PINNED)."""
    import tempfile

    from openasm.quality.conformance import ConformanceError, run_conformance
    from openasm.quality.value_sets import ValueSetError, value_set_codes

    with tempfile.TemporaryDirectory(prefix="openasm-conformance-") as scratch:
        engine = open_engine(backend, Path(scratch), spark_master)
        try:
            result = run_conformance(tests, measure=measure, value_set_code=value_set_codes(folder=valuesets),
                                     con=engine.con)
        except (ConformanceError, ValueSetError, KeyError) as err:
            fail(str(err))
    for line in result.lines():
        style = "red" if "FAIL" in line else ("bold" if line.endswith("failed") else "")
        console.print(f"[{style}]{line}[/]" if style else line, highlight=False)
    if report is not None:
        report.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    if result.failed:
        raise typer.Exit(code=1)


@app.command()
def quality(
    run_dir: RunArg,
    py: PyOpt = 2027,
    q220: Annotated[Optional[Path], typer.Option("--q220", help="Q220 FOTO episode file (CSV/JSON)")] = None,
    q492: Annotated[Optional[Path], typer.Option("--q492", help="CMS Q492 results file (CSV/JSON)")] = None,
    qpp_json: Annotated[Optional[list[Path]], typer.Option("--qpp-json", help="QPP JSON measurement sets")] = None,
    qrda3: Annotated[Optional[list[Path]], typer.Option("--qrda3", help="QRDA Category III files")] = None,
    group_reporting: Annotated[Optional[Path], typer.Option(
        "--group-reporting", help="CSV with a tin column: small practices reporting as a group")] = None,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Evaluate the eCQMs on the run's clinical tables, read the Q220/Q492 feeds and imported aggregates, and
    publish measure aggregates and gap lists."""
    from openasm.runs.quality import QualityFeeds, run_quality

    feeds = QualityFeeds(q220=q220, q492=q492, qpp_json=tuple(qpp_json or ()), qrda3=tuple(qrda3 or ()),
                         group_reporting_tins=group_reporting)
    run_year_stage(run_quality, run_dir, feeds, title="quality", py=py, set_=set_, code_lists=code_lists,
                   backend=backend, spark_master=spark_master)


@app.command("quality-benchmarks")
def check_benchmark_file(
    path: Annotated[Path, typer.Argument(help="benchmarks/<PY>.json in the qpp-measures-data format")],
    exclusions: Annotated[Optional[Path], typer.Option(
        "--exclusions", help="benchmark-exclusion-reasons.json of the same year")] = None,
    py: Annotated[int, typer.Option("--py", help="Performance year whose ASM measure set is shown")] = 2027,
) -> None:
    """Validate a user benchmark file (quality.md §2.2, §3) and list its ASM quality-measure rows."""
    from openasm.scoring.benchmark_file import BenchmarkFileError, read_mips_benchmark_file
    from openasm.scoring.quality_points import pcol

    try:
        table = read_mips_benchmark_file(path, exclusion_reasons_path=exclusions)
    except BenchmarkFileError as err:
        fail(str(err))
    measures = {m for members in load_rules(py, None).value("quality.measures").values() for m in members}
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

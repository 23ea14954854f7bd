"""Tool commands: `report` (HTML pages from a run's finished tables) and `demo` (every stage on a synthetic
world)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from openasm.cli.app import app
from openasm.cli.claims import cost, episodes, ingest, summarize, synth, write_source_format
from openasm.cli.common import (
    BackendOpt,
    MasterOpt,
    PyOpt,
    SetOpt,
    WarehouseOpt,
    console,
    fail,
    load_rules,
    run_year_stage,
    warn,
)
from openasm.cli.model import participate, payment, score
from openasm.cli.quality import ingest_fhir, quality, synth_fhir


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: run folder)")] = None,
    py: PyOpt = 2027,
    set_: SetOpt = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the board report PDF (board-report.pdf)")] = False,
    npi: Annotated[Optional[str], typer.Option("--npi", help="Board report for this NPI")] = None,
    tin: Annotated[Optional[str], typer.Option("--tin", help="Board report for this TIN (default: largest)")] = None,
    no_suppress: Annotated[bool, typer.Option("--no-suppress", help="Show counts under 11 (internal use)")] = False,
) -> None:
    """Write the HTML pages (index.html first with the outlook, quality.html, model.html) from a run's finished
    tables, the shareable aggregate CSVs, and with --pdf the board report PDF."""
    from openasm.app.pdf import PDF_NAME, write_board_pdf
    from openasm.app.report_outlook import outlook_fragment
    from openasm.disclosure import NO_SUPPRESS
    from openasm.report.html import write_report

    # --no-suppress is a rules override (recorded, and every page then says it is for internal use).
    rules = load_rules(py, [*(set_ or []), *([f"{NO_SUPPRESS[0]}={NO_SUPPRESS[1]}"] if no_suppress else [])])
    outlook = outlook_fragment(run_dir, rules)
    path = write_report(run_dir, out or run_dir, rules, lead={"index.html": outlook} if outlook else None)
    console.print(f"report: {path}")
    if pdf:
        try:
            written = write_board_pdf(run_dir, (out or run_dir) / PDF_NAME, npi=npi, tin=tin,
                                      suppress=not no_suppress)
        except ValueError as err:  # nothing to put before a board (no scored participant, unknown NPI/TIN)
            warn(f"no board report: {err}")
            return
        console.print(f"board report: {written}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo output folder")] = Path("demo-output"),
    benes: Annotated[int, typer.Option("--benes")] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    py: PyOpt = 2027,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
    warehouse: WarehouseOpt = None,
    source_format: Annotated[str, typer.Option("--format", help="Run from canonical (default), cclf, bcda, "
                                               "bluebutton or rif files of the synthetic world")] = "canonical",
    set_: SetOpt = None,
) -> None:
    """Synthetic world (in a source format with --format) → ingest → episodes → cost → participation → synthetic EHR and feeds → quality → scores →
    payment → HTML report and board PDF."""
    import pyarrow.parquet as pq

    from openasm.connectors.formats import FORMATS
    from openasm.runs.participant_list import (
        ParticipantListInputs,
        run_participant_list_comparison,
    )
    from openasm.synth.model_feeds import generate_model_feeds

    if source_format not in FORMATS:
        fail(f"--format {source_format!r}: choose one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    world = out / "synthetic-world"
    run = out / "run"
    # CY PY-3 gives the eligibility year (PY-2) its enrollment and history look-back.
    synth(out=world, benes=benes, seed=seed, years=f"{py - 3}-{py}", chunk_benes=25_000, source_format=None)
    source = world if source_format == "canonical" else write_source_format(
        world, source_format, out / f"synthetic-{source_format}")
    ingest(input_dir=source, out=run, backend=backend, spark_master=spark_master, warehouse=warehouse, force=False,
           source_format=source_format, py=py, set_=set_)
    stage = {"set_": set_, "backend": backend, "spark_master": spark_master}
    summarize(run_dir=run, py=py, **stage)
    episodes(run_dir=run, py=py, ndc_class_map=None, code_lists=None, **stage)
    cost(run_dir=run, py=py, code_lists=None, **stage)
    participate(run_dir=run, py=[py], years=None, selected_areas=None, prior=None, compare_with=None,
                code_lists=None, **stage)
    feeds_dir = out / "synthetic-feeds"
    feeds = generate_model_feeds(world, feeds_dir, py, seed=seed,
                                 participant=pq.read_table(run / "outputs" / "participant.parquet"))
    console.print(f"synthetic feeds: {', '.join(f'{k} ({v:,} rows)' for k, v in feeds.rows.items())}")
    run_year_stage(run_participant_list_comparison, run, ParticipantListInputs(feeds.files["participant_list"]),
                   title="participant list comparison", py=py, **stage)
    synth_fhir(world=world, out=out / "synthetic-ehr", py=py, seed=seed, copies=1)
    ingest_fhir(paths=[out / "synthetic-ehr"], out=run, backend=backend, spark_master=spark_master, force=False)
    quality(run_dir=run, py=py, q220=feeds.files.get("q220"), q492=feeds.files.get("q492"), qpp_json=None,
            qrda3=None, group_reporting=None, code_lists=None, **stage)
    # PY2027 MIPS benchmarks are unpublished and a synthetic cohort has too few reporters for its own, so the
    # demo scores quality against the PY2026 MIPS benchmarks (an explicit, recorded override).
    score(run_dir=run, py=py, attestation=feeds.files.get("ia_pi_attestation"), euc=None, practice_size=None,
          benchmarks=None, code_lists=None, **{**stage, "set_": [f"quality.benchmark_fallback_py={py - 1}",
                                                                  *(set_ or [])]})
    payment(run_dir=run, py=py, code_lists=None, part_b_base="auto", **stage)
    report(run_dir=run, out=out, py=py, set_=set_, pdf=True, npi=None, tin=None, no_suppress=False)
    console.print(f"[bold green]demo finished[/] in {time.perf_counter() - started:.0f} s: {out / 'index.html'}")

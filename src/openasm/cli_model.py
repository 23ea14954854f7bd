"""Model commands: `quality` (eCQMs, feeds, aggregates, gap lists), `score` (final scores) and `payment`
(adjustments, dollars, projection), each over a run folder (registered on the main app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RunArg = Annotated[Path, typer.Argument(help="Run folder")]
PyOpt = Annotated[int, typer.Option("--py", help="Performance year")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a rule: name=value (repeatable)")]
CodeListsOpt = Annotated[Optional[Path], typer.Option("--code-lists", help="Folder of replacement code lists")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="duckdb (default) or pyspark")]
MasterOpt = Annotated[Optional[str], typer.Option("--spark-master", help="Spark master URL")]


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
    from openasm.cli import _run_stage
    from openasm.pipeline_quality import QualityFeeds, run_quality

    feeds = QualityFeeds(q220=q220, q492=q492, qpp_json=tuple(qpp_json or ()), qrda3=tuple(qrda3 or ()),
                         group_reporting_tins=group_reporting)
    _run_stage(run_dir, py, set_, backend, spark_master, "quality",
               lambda engine, rules, step: run_quality(engine, rules, run_dir, feeds, step), code_lists)


def score(
    run_dir: RunArg,
    py: PyOpt = 2027,
    attestation: Annotated[Optional[Path], typer.Option(
        "--attestation", help="IA/PI attestation file per TIN (CSV/JSON)")] = None,
    euc: Annotated[Optional[Path], typer.Option(
        "--euc", help="CSV of extreme and uncontrollable circumstances (tin/npi, category)")] = None,
    practice_size: Annotated[Optional[Path], typer.Option(
        "--practice-size", help="CSV with tin, clinician_count")] = None,
    benchmarks: Annotated[Optional[Path], typer.Option(
        "--benchmarks", help="MIPS benchmark JSON (qpp-measures-data format) to use instead of the shipped")] = None,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Score participants: quality category (benchmarks, decile points), cost category, IA/PI deductions and
    the final score with its breakdown."""
    from openasm.cli import _run_stage
    from openasm.pipeline_model import ScoreInputs, run_score

    inputs = ScoreInputs(attestation=attestation, euc=euc, practice_size=practice_size, mips_benchmark=benchmarks)
    _run_stage(run_dir, py, set_, backend, spark_master, "score",
               lambda engine, rules, step: run_score(engine, rules, run_dir, inputs, step), code_lists)


def payment(
    run_dir: RunArg,
    py: PyOpt = 2027,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Payment adjustments for the payment year (PY + 2): pool, scaling factor, adjustment factors (invariant
    checked), dollars per participant and TIN, and the 2027-2031 projection."""
    from openasm.cli import _run_stage
    from openasm.pipeline_model import run_payment

    _run_stage(run_dir, py, set_, backend, spark_master, "payment",
               lambda engine, rules, step: run_payment(engine, rules, run_dir, step), code_lists)


def register(app: typer.Typer) -> None:
    app.command("quality")(quality)
    app.command("score")(score)
    app.command("payment")(payment)

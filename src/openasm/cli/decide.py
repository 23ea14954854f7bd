"""`openasm whatif`, `openasm simulate` and `openasm serve`: decisions on a finished run (issue 13).

    openasm whatif RUN --npi N --set quality.Q134.rate=0.62 --set cost.COST_LBP_1.oe=0.95 [--target af>=0]
    openasm simulate RUN --npi N --draws 10000 --seed S
    openasm serve RUN [--host H] [--port P] [--no-suppress]
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from openasm.cli.app import app
from openasm.cli.common import RunArg, console, fail, warn

QUANTILES = ("p5", "p25", "p50", "p75", "p95")
NpiOpt = Annotated[Optional[str], typer.Option("--npi", help="Participant NPI")]
TinOpt = Annotated[Optional[str], typer.Option("--tin", help="Practice TIN (all its participant NPIs)")]


def _decision(run_dir: Path, npi: str | None, tin: str | None):
    from openasm.decide.run_tables import RunTablesError, load_run_tables
    from openasm.decide.subject import SubjectError
    from openasm.decide.whatif import decision_for

    try:
        return decision_for(load_run_tables(run_dir), npi=npi, tin=tin)
    except (RunTablesError, SubjectError) as err:
        fail(str(err))


def _money(value: float) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


@app.command("whatif")
def whatif(run_dir: RunArg, npi: NpiOpt = None, tin: TinOpt = None,
           set_: Annotated[Optional[list[str]], typer.Option("--set", help="lever=value")] = None,
           target: Annotated[Optional[str], typer.Option(
               "--target", help="af>=0 | fs>=median | dollars>=N")] = None,
           explain: Annotated[bool, typer.Option(
               "--explain", help="Print the explain chain of the scenario")] = False,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Scores, AF and dollars under lever settings against the run's baseline; with --target, the break-even
    value of every lever (the others held)."""
    from openasm.app.scenario_chain import explain_scenario
    from openasm.decide.levers import LeverError, parse_setting
    from openasm.decide.whatif import break_even, parse_target, what_if
    from openasm.explain.render import render_console

    decision = _decision(run_dir, npi, tin)
    try:
        settings = dict(parse_setting(text) for text in set_ or [])
        result = what_if(decision, settings)
        solved = break_even(decision, parse_target(target), settings) if target else []
    except LeverError as err:
        fail(str(err))
    rows = result.rows(decision.subject.npis)
    if as_json:
        console.print_json(json.dumps({"settings": settings, "rows": rows, "break_even": [
            vars(b) for b in solved]}))
        return
    table = Table(title="what-if against the run's baseline")
    for column in ("NPI", "metric", "baseline", "scenario", "difference"):
        table.add_column(column, justify="right" if column in ("baseline", "scenario", "difference") else "left")
    for r in rows:
        fmt = _money if r["metric"] == "dollars" else (lambda v: f"{v:.6f}") if r["metric"] in (
            "adjustment_factor", "transformed_final_score", "multiplier") else (lambda v: f"{v:.2f}")
        table.add_row(r["npi"], r["metric"], fmt(r["baseline"]), fmt(r["scenario"]), fmt(r["difference"]))
    console.print(table)
    if solved:
        be = Table(title=f"break-even: {target} (each lever alone, others held)")
        for column in ("lever", "baseline", "break-even", "change", "note"):
            be.add_column(column)
        for b in solved:
            be.add_row(b.lever, f"{b.baseline:.4g}", "" if b.value is None else f"{b.value:.4g}",
                       "" if b.change is None else f"{b.change:+.4g}", b.note)
        console.print(be)
    if explain:
        for k in range(len(decision.subject.npis)):
            render_console(explain_scenario(decision, result.scenario, k), console)


@app.command("simulate")
def simulate_command(run_dir: RunArg, npi: NpiOpt = None, tin: TinOpt = None,
                     draws: Annotated[int, typer.Option("--draws")] = 10_000,
                     seed: Annotated[int, typer.Option("--seed")] = 0,
                     peers: Annotated[str, typer.Option(
                         "--peers", help="drawn (priors) or run (the run's cohort)")] = "drawn",
                     threads: Annotated[int, typer.Option("--threads")] = 2,
                     as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Monte Carlo over unknown peers: percentiles of final score, AF and dollars, P(AF < 0), the levers
    ranked at the median and the Monte Carlo standard error; reproducible for a seed."""
    from openasm.decide.montecarlo import simulate

    decision = _decision(run_dir, npi, tin)
    try:
        summary = simulate(decision, draws=draws, seed=seed, peers=peers, threads=threads).summary()
    except ValueError as err:
        fail(str(err))
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table(title=f"{draws:,} draws (seed {seed}, peers {peers}) in {summary['seconds']:.1f} s")
    table.add_column("")
    for p in QUANTILES:
        table.add_column(p.upper(), justify="right")
    table.add_row("dollars", *[_money(summary["dollars"][p]) for p in QUANTILES])
    table.add_row("AF", *[f"{100 * summary['adjustment_factor'][p]:+.3f}%" for p in QUANTILES])
    table.add_row("final score", *[f"{summary['final_score'][p]:.2f}" for p in QUANTILES])
    table.add_row("cohort median", *[f"{summary['cohort_median'][p]:.2f}" for p in QUANTILES])
    console.print(table)
    console.print(f"P(AF < 0) = {summary['probability_af_negative']:.3f}; mean {_money(summary['mean_dollars'])} "
                  f"(MC standard error {_money(summary['standard_error_mean_dollars'])}); P50 MC standard error "
                  f"{_money(summary['standard_error_p50_dollars'])}; {summary['draws_per_second']:,.0f} draws/s")
    for lever in summary["levers"]:
        console.print(f"  {lever['label']}: {lever['from']:.3f} → {lever['to']:.3f} "
                      f"moves {_money(lever['dollars'])}")


@app.command("serve")
def serve_command(run_dir: RunArg,
                  host: Annotated[str, typer.Option(
                      "--host", help="Interface (default 127.0.0.1 only)")] = "127.0.0.1",
                  port: Annotated[int, typer.Option("--port")] = 8765,
                  no_suppress: Annotated[bool, typer.Option(
                      "--no-suppress", help="Show small cells (internal use)")] = False) -> None:
    """The local dashboard of a run on http://127.0.0.1:PORT (other interfaces only with --host, warned)."""
    from openasm.app.server import HostWarning, check_host, serve

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HostWarning)
        check_host(host)
    for warning in caught:
        warn(str(warning.message))
    console.print(f"openasm dashboard on http://{host}:{port}/ (Ctrl-C to stop)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HostWarning)
        serve(Path(run_dir), host=host, port=port, suppress=not no_suppress)

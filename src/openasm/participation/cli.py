"""`openasm participate` and `openasm lookup`: the participant table of a run, and the CMS participant list.

`register(app)` adds both commands to a Typer app (the `openasm` app calls it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _years(py: list[int] | None, years: str | None) -> list[int]:
    chosen = set(py or [])
    if years:
        first, _, last = years.partition("-")
        try:
            first_year, last_year = int(first), int(last or first)
        except ValueError:
            _fail(f"--years '{years}': expected YYYY-YYYY")
        if last_year < first_year:
            _fail(f"--years '{years}': last year before first year")
        chosen.update(range(first_year, last_year + 1))
    if not chosen:
        _fail("give the performance year(s): --py 2027 (repeatable) or --years 2027-2029")
    return sorted(chosen)


def _rules_for(years: list[int], overrides: list[str] | None, code_lists: Path | None):
    from openasm.rules import RulesError, load_rules, parse_override

    try:
        parsed = [parse_override(text) for text in overrides or []]
        out = []
        for year in years:
            rules = load_rules(year, parsed)
            out.append(rules.with_code_lists(code_lists) if code_lists is not None else rules)
        return out
    except RulesError as err:
        _fail(str(err))


def _open_run(run_dir: Path, backend: str, spark_master: str | None):
    from openasm.engine import EngineError, connect
    from openasm.pipeline import read_manifest

    try:
        manifest = read_manifest(run_dir)
        return connect(manifest.get("backend", backend), run_dir, spark_master=spark_master)
    except (FileNotFoundError, EngineError) as err:
        _fail(str(err))


def _print_lookup(rows: list[dict], title: str) -> None:
    table = Table(title=title)
    for col in ("NPI", "name", "state", "cohort", "organization", "participant PYs", "small practice PYs", "line"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = " ".join(p for p in (r["first_name"], r["last_name"]) if p)
        table.add_row(r["npi"], name, r["state"] or "", {"hf": "Heart Failure", "lbp": "Low Back Pain"}[r["cohort"]],
                      r["organization_legal_name"] or "", ", ".join(map(str, r["participant_years"])) or "-",
                      ", ".join(map(str, r["small_practice_years"])) or "-", str(r["source_line"]))
    console.print(table)


def participate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `openasm ingest`")],
    py: Annotated[list[int] | None, typer.Option("--py", help="Performance year (repeatable)")] = None,
    years: Annotated[str | None, typer.Option("--years", help="Performance years, e.g. 2027-2029")] = None,
    selected_areas: Annotated[Path | None, typer.Option(
        "--selected-areas", help="CSV/Parquet of selected CBSAs / metropolitan divisions (column cbsa_code); "
        "default: participation.selected_areas_file, else the shipped ILLUSTRATIVE list")] = None,
    prior: Annotated[Path | None, typer.Option(
        "--prior", help="Participant table of earlier performance years (Parquet/CSV) for lock-in")] = None,
    compare_with: Annotated[Path | None, typer.Option(
        "--compare-with", help="CMS ASM participant list (CSV/Parquet) to compare the result with")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a rule: name=value")] = None,
    code_lists: Annotated[Path | None, typer.Option("--code-lists", help="Folder of replacement code lists")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="duckdb (default) or pyspark")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option("--spark-master", help="Spark master URL")] = None,
) -> None:
    """Select ASM participants (§512.710): specialty, cohort, selected area, episode volume, lock-in; every
    clinician in or out with the reason. Writes outputs/participant.parquet and .csv."""
    from openasm.participation.participant_list import (
        ParticipantListError,
        read_participant_list,
    )
    from openasm.participation.run import read_prior_participant_file, run_participation
    from openasm.participation.selected_area import (
        SelectedAreaError,
        load_selected_areas,
    )
    from openasm.pipeline import write_manifest

    chosen = _years(py, years)
    rules_list = _rules_for(chosen, set_, code_lists)
    try:
        areas = load_selected_areas(rules_list[0], selected_areas)
        prior_table = read_prior_participant_file(prior) if prior is not None else None
        listed = read_participant_list(compare_with) if compare_with is not None else None
    except (SelectedAreaError, ParticipantListError, ValueError) as err:
        _fail(str(err))
    if areas.evidence == "default":
        err_console.print("[bold yellow]warning:[/] selected areas: the shipped ILLUSTRATIVE list (not the CMS list); "
                          "pass --selected-areas with the published list for real results")
    engine = _open_run(run_dir, backend, spark_master)
    try:
        with console.status("participation") as status:
            result = run_participation(engine, rules_list, run_dir, areas, prior_table, listed,
                                       step=lambda text: status.update(f"participation: {text}"))
        manifest_rows = {r["name"]: r for rules in rules_list for r in rules.manifest_rows(only_used=True)}
        code_rows = {r["name"]: r for rules in rules_list for r in rules.code_list_rows()}
        write_manifest(run_dir, engine=engine, ingest=None, rules=None, extra={"participation": {
            "performance_years": chosen, "selected_areas": {"source": areas.source, "evidence": areas.evidence,
                                                            "area_count": areas.table.num_rows},
            "episode_sources": {str(k): v for k, v in result.episode_sources.items()},
            "rules_used": [manifest_rows[k] for k in sorted(manifest_rows)],
            "code_lists_used": [code_rows[k] for k in sorted(code_rows)],
        }})
    except (ValueError, RuntimeError) as err:
        _fail(str(err))
    finally:
        engine.close()
    table = Table(title=f"participation (performance years {', '.join(map(str, chosen))})")
    for col in ("PY", "reason", "cohort", "clinicians"):
        table.add_column(col, justify="right" if col == "clinicians" else "left")
    for row in result.reason_counts:
        table.add_row(str(row["performance_year"]), row["reason"], row["cohort"] or "-", f"{row['clinicians']:,}")
    console.print(table)
    if result.agreement_counts:
        compared = Table(title=f"computed vs CMS list ({compare_with})")
        for col in ("PY", "agreement", "clinicians"):
            compared.add_column(col)
        for row in result.agreement_counts:
            compared.add_row(str(row["performance_year"]), row["agreement"], f"{row['clinicians']:,}")
        console.print(compared)
    for year, source in result.episode_sources.items():
        console.print(f"PY{year} episodes: {source}")
    console.print(f"selected areas: {areas.source} ({areas.table.num_rows} areas, evidence {areas.evidence})")
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    for name, path in result.outputs.items():
        console.print(f"wrote {name} ({result.row_counts[name]:,} rows): {path}")


def lookup(
    file: Annotated[Path, typer.Option("--file", "-f", help="CMS ASM participant list (CSV or Parquet)")],
    npi: Annotated[str | None, typer.Option("--npi", help="NPI (exact)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Clinician name words, any order and case")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Text in the organization legal name")] = None,
) -> None:
    """Look clinicians up in the CMS ASM participant list by NPI, name or organization."""
    from openasm.participation.participant_list import (
        ParticipantListError,
        lookup_participants,
        read_participant_list,
    )

    if not (npi or name or org):
        _fail("give at least one of --npi, --name, --org")
    try:
        listed = read_participant_list(file)
    except ParticipantListError as err:
        _fail(str(err))
    rows = lookup_participants(listed, npi=npi, name=name, org=org)
    wanted = ", ".join(f"{k}={v}" for k, v in (("npi", npi), ("name", name), ("org", org)) if v)
    if not rows:
        console.print(f"no clinician in {file} matches {wanted}")
        raise typer.Exit(code=1)
    _print_lookup(rows, f"{len(rows)} row(s) of {file} matching {wanted}")


def register(app: typer.Typer) -> None:
    """Add `participate` and `lookup` to the openasm command line."""
    app.command("participate")(participate)
    app.command("lookup")(lookup)

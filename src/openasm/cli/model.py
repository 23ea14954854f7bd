"""Model commands: `participate`, `lookup` (CMS participant list), `score`, `payment`, `explain`."""

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
    RunArg,
    SetOpt,
    console,
    fail,
    load_rules,
    load_rules_for_years,
    run_stage,
    run_year_stage,
    warn,
)


def _years(py: list[int] | None, years: str | None) -> list[int]:
    from openasm.cli.common import parse_years

    chosen = set(py or [])
    if years:
        first_year, last_year = parse_years(years)
        chosen.update(range(first_year, last_year + 1))
    if not chosen:
        fail("give the performance year(s): --py 2027 (repeatable) or --years 2027-2029")
    return sorted(chosen)


@app.command()
def participate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `openasm ingest`")],
    py: Annotated[Optional[list[int]], typer.Option("--py", help="Performance year (repeatable)")] = None,
    years: Annotated[Optional[str], typer.Option("--years", help="Performance years, e.g. 2027-2029")] = None,
    selected_areas: Annotated[Optional[Path], typer.Option(
        "--selected-areas", help="CSV/Parquet of selected CBSAs / metropolitan divisions (column cbsa_code); "
        "default: participation.selected_areas_file, else the shipped ILLUSTRATIVE list")] = None,
    prior: Annotated[Optional[Path], typer.Option(
        "--prior", help="Participant table of earlier performance years (Parquet/CSV) for lock-in")] = None,
    compare_with: Annotated[Optional[Path], typer.Option(
        "--compare-with", help="CMS ASM participant list (CSV/Parquet) to compare the result with")] = None,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
) -> None:
    """Select ASM participants (§512.710): specialty, cohort, selected area, episode volume, lock-in; every
    clinician in or out with the reason. Writes outputs/participant.parquet and .csv."""
    from openasm.participation.lock_in import read_prior_participant_file
    from openasm.participation.participant_list import (
        ParticipantListError,
        read_participant_list,
    )
    from openasm.participation.selected_area import (
        SelectedAreaError,
        load_selected_areas,
    )
    from openasm.runs.participation import ParticipationInputs, run_participation

    chosen = _years(py, years)
    rules_list = load_rules_for_years(chosen, set_, code_lists)
    try:
        inputs = ParticipationInputs(
            selected_areas=load_selected_areas(rules_list[0], selected_areas),
            prior_participant=read_prior_participant_file(prior) if prior is not None else None,
            participant_list=read_participant_list(compare_with) if compare_with is not None else None)
    except (SelectedAreaError, ParticipantListError, ValueError) as err:
        fail(str(err))
    areas = inputs.selected_areas
    if areas.evidence == "default":
        warn("selected areas: the shipped ILLUSTRATIVE list (not the CMS list); pass --selected-areas with the "
             "published list for real results")
    result = run_stage(run_participation, run_dir, rules_list, inputs, title="participation", backend=backend,
                       spark_master=spark_master)
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
    for name, path in result.outputs.items():
        console.print(f"wrote {name} ({result.row_counts[name]:,} rows): {path}")


@app.command()
def lookup(
    file: Annotated[Path, typer.Option("--file", "-f", help="CMS ASM participant list (CSV or Parquet)")],
    npi: Annotated[Optional[str], typer.Option("--npi", help="NPI (exact)")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Clinician name words, any order and case")] = None,
    org: Annotated[Optional[str], typer.Option("--org", help="Text in the organization legal name")] = None,
) -> None:
    """Look clinicians up in the CMS ASM participant list by NPI, name or organization."""
    from openasm.participation.participant_list import (
        COHORT_NAMES,
        ParticipantListError,
        lookup_participants,
        read_participant_list,
    )

    if not (npi or name or org):
        fail("give at least one of --npi, --name, --org")
    try:
        listed = read_participant_list(file)
    except ParticipantListError as err:
        fail(str(err))
    rows = lookup_participants(listed, npi=npi, name=name, org=org)
    wanted = ", ".join(f"{k}={v}" for k, v in (("npi", npi), ("name", name), ("org", org)) if v)
    if not rows:
        console.print(f"no clinician in {file} matches {wanted}")
        raise typer.Exit(code=1)
    table = Table(title=f"{len(rows)} row(s) of {file} matching {wanted}")
    for col in ("NPI", "name", "state", "cohort", "organization", "participant PYs", "small practice PYs", "line"):
        table.add_column(col, overflow="fold")
    for r in rows:
        full_name = " ".join(p for p in (r["first_name"], r["last_name"]) if p)
        table.add_row(r["npi"], full_name, r["state"] or "", COHORT_NAMES[r["cohort"]],
                      r["organization_legal_name"] or "", ", ".join(map(str, r["participant_years"])) or "-",
                      ", ".join(map(str, r["small_practice_years"])) or "-", str(r["source_line"]))
    console.print(table)


@app.command()
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
    from openasm.runs.score import ScoreInputs, run_score

    inputs = ScoreInputs(attestation=attestation, euc=euc, practice_size=practice_size, mips_benchmark=benchmarks)
    run_year_stage(run_score, run_dir, inputs, title="score", py=py, set_=set_, code_lists=code_lists,
                   backend=backend, spark_master=spark_master)


@app.command()
def payment(
    run_dir: RunArg,
    py: PyOpt = 2027,
    set_: SetOpt = None,
    code_lists: CodeListsOpt = None,
    backend: BackendOpt = "duckdb",
    spark_master: MasterOpt = None,
    part_b_base: Annotated[str, typer.Option(
        "--part-b-base", help="auto (the run's remittance base from ingest-835 for the NPIs it covers, else "
        "claims), claims or remittances")] = "auto",
) -> None:
    """Payment adjustments for the payment year (PY + 2): pool, scaling factor, adjustment factors (invariant
    checked), dollars per participant and TIN, and the 2027-2031 projection. The Part B base comes from the
    claims, or from the practice's remittances (`openasm ingest-835`) for the NPIs they cover; the output says
    which."""
    from openasm.runs.payment import PaymentInputs, run_payment

    run_year_stage(run_payment, run_dir, PaymentInputs(part_b_base), title="payment", py=py, set_=set_,
                   code_lists=code_lists, backend=backend, spark_master=spark_master)


@app.command()
def explain(
    npi: Annotated[str, typer.Option("--npi", help="Participant NPI")],
    py: Annotated[int, typer.Option("--py", help="Performance year")] = 2027,
    run: Annotated[Path, typer.Option("--run", help="Run folder with outputs/*.parquet")] = Path("openasm-run"),
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a rule: name=value")] = None,
    output_format: Annotated[str, typer.Option("--format", help="rich (default) or markdown")] = "rich",
) -> None:
    """Explain one participant's final score, adjustment factor and dollars, step by step, with every rule's
    citation and evidence; numbers resting on secondary or default values are flagged."""
    from openasm.explain.chain import ExplainError, explain_participant
    from openasm.explain.render import render_console, render_markdown
    from openasm.explain.run_tables import (
        RunTablesError,
        manifest_differences,
        read_npi_rows,
    )

    if output_format not in ("rich", "markdown"):
        fail(f"--format '{output_format}': expected rich or markdown")
    rules = load_rules(py, set_)
    try:
        expl = explain_participant(npi=npi, rules=rules, **read_npi_rows(run, npi))
    except (RunTablesError, ExplainError) as err:
        fail(str(err))
    if output_format == "markdown":
        console.print(render_markdown(expl), markup=False, highlight=False, soft_wrap=True)
    else:
        render_console(expl, console)
    for line in manifest_differences(run, expl):
        warn(line)

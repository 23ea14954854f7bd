"""Reference commands: `version`, `rules` (every parameter with citation and evidence), `schema` (canonical
tables)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from openasm import __version__
from openasm.cli.app import app
from openasm.cli.common import PyOpt, SetOpt, console, fail, load_rules
from openasm.rules.resolve import format_value


@app.command()
def version() -> None:
    """Print the openasm version."""
    console.print(__version__)


@app.command()
def rules(
    py: PyOpt = 2027,
    set_: SetOpt = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Show names containing this text")] = None,
    used_by: Annotated[Optional[str], typer.Option(
        "--used-by", help="List the functions that read this parameter (found from the code)")] = None,
) -> None:
    """Print every rule in force for a performance year with its citation, evidence level and the functions that
    read it."""
    from openasm.rules.usage import functions_reading

    resolved = load_rules(py, set_)
    readers = functions_reading(resolved.values)
    unresolved = resolved.unresolved()
    if used_by is not None:
        if used_by not in readers:
            fail(f"unknown parameter '{used_by}' (see `openasm rules`)")
        if used_by in unresolved:
            console.print(f"[bold]{used_by}[/]: {unresolved[used_by]}", highlight=False)
        else:
            row = resolved.resolved(used_by)
            console.print(f"[bold]{used_by}[/] = {format_value(row.value)} ({row.evidence}; "
                          f"{'; '.join(row.citations)})")
        for function in readers[used_by] or ("(no function reads it)",):
            console.print(f"  {function}", highlight=False)
        return
    payment_year = "none" if "model.payment_year_lag" in unresolved else resolved.payment_year
    table = Table(title=f"openasm rules for performance year {py} (payment year {payment_year})",
                  show_lines=False)
    for col in ("name", "value", "unit", "year", "evidence", "citation", "read by"):
        table.add_column(col, overflow="fold")
    for row in resolved.manifest_rows(only_used=False):
        if only and only not in row["name"]:
            continue
        evidence = row["evidence"]
        if evidence == "override":
            evidence = f"[bold yellow]override[/] (was {row['shipped_value']}, {row['shipped_evidence']})"
        functions = [f.removeprefix("openasm.") for f in readers[row["name"]]]
        table.add_row(row["name"], row["value"], row["unit"], str(row["key_year"]), evidence, row["citation"],
                      ", ".join(functions))
    console.print(table)
    missing = [name for name in unresolved if not only or only in name]
    if missing:
        console.print(f"[bold]{len(missing)} parameters have no value for performance year {py}[/] (a stage that "
                      f"reads one stops with its name): {', '.join(missing)}", highlight=False)


@app.command()
def schema(table: Annotated[Optional[str], typer.Argument(help="One table; all when omitted")] = None) -> None:
    """Describe the canonical input tables: columns, types, required, checks."""
    from openasm.schema import CANONICAL_TABLES

    names = [table] if table else list(CANONICAL_TABLES)
    for name in names:
        if name not in CANONICAL_TABLES:
            fail(f"unknown table '{name}'; tables: {', '.join(CANONICAL_TABLES)}")
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

"""`openasm explain --npi N --py 2027 --run RUN`: the chain from measures to dollars for one participant.

Reads the run's published tables (`RUN/outputs/<table>.parquet`), keeps the NPI's rows, and prints the
explanation built by `openasm.explain.chain` with every parameter's citation and evidence, flagging each number
that rests on a secondary or default value. `register(app)` adds the command to a Typer app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
from rich.console import Console

from openasm.explain.chain import ExplainError, Explanation, explain_participant
from openasm.explain.render import render_console, render_markdown

# table -> (NPI column, the stage that writes it)
REQUIRED_TABLES = {
    "participant_score": ("npi", "the final-score stage"),
    "quality_measure_score": ("npi", "the quality stage"),
    "quality_category_score": ("npi", "the quality stage"),
    "measure_score": ("rendering_npi", "the cost stage (`openasm cost`)"),
    "payment_adjustment": ("npi", "the payment stage"),
}
OPTIONAL_TABLES = {"adjustment_dollars": ("npi", "the payment stage")}
OUTPUTS = "outputs"
MANIFEST = "manifest.json"

console = Console()
err_console = Console(stderr=True)


class RunTablesError(ValueError):
    """A run folder lacks a table or a column the explanation needs."""


def read_npi_rows(run_dir: Path, npi: str) -> dict[str, pa.Table]:
    """The rows of `npi` in each required (and present optional) output table of a run folder; for the cost
    `measure_score`, also the TIN-level rows of the TINs the NPI is scored under."""
    folder = Path(run_dir) / OUTPUTS
    paths = {}
    for name, (column, stage) in {**REQUIRED_TABLES, **OPTIONAL_TABLES}.items():
        path = folder / f"{name}.parquet"
        if not path.is_file():
            if name in OPTIONAL_TABLES:
                continue
            raise RunTablesError(f"{path} not found: run {stage} on {run_dir} first (it writes {name})")
        names = pq.read_schema(path).names
        if column not in names:
            raise RunTablesError(f"{path}: column '{column}' missing (columns: {', '.join(names)})")
        paths[name] = (path, column)
    tables = {name: _rows_matching(path, column, [npi]) for name, (path, column) in paths.items()}
    tins = [t for t in tables["participant_score"].column("tin").to_pylist() if t is not None] if (
        "tin" in tables["participant_score"].column_names) else []
    measure_path = paths["measure_score"][0]
    if tins and "billing_tin" in pq.read_schema(measure_path).names:
        by_tin = _rows_matching(measure_path, "billing_tin", tins)
        if "entity_level" in by_tin.column_names:
            by_tin = by_tin.filter(pc.equal(by_tin["entity_level"], "tin").fill_null(False))
        tables["measure_score"] = pa.concat_tables([tables["measure_score"], by_tin])
    return tables


def _rows_matching(path: Path, column: str, values: list[str]) -> pa.Table:
    table = pq.read_table(path)
    mask = pc.is_in(table[column].cast(pa.string()), value_set=pa.array(values, pa.string()))
    return table.filter(mask.fill_null(False))


def manifest_differences(run_dir: Path, expl: Explanation) -> list[str]:
    """Parameters whose value here differs from the value the run recorded in its manifest (e.g. the run used
    a --set override that this command was not given)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return []
    recorded = {row["name"]: row for row in json.loads(path.read_text()).get("rules_used", [])}
    out = []
    for p in expl.parameters():
        row = recorded.get(p.name)
        if row is not None and str(row.get("value")) != p.value:
            out.append(f"{p.name}: the run used {row.get('value')} ({row.get('evidence')}), this explanation "
                       f"uses {p.value} ({p.evidence})")
    return out


def register(app: typer.Typer) -> None:
    """Add the `explain` command to `app`."""

    @app.command("explain")
    def explain(
        npi: Annotated[str, typer.Option("--npi", help="Participant NPI")],
        py: Annotated[int, typer.Option("--py", help="Performance year")] = 2027,
        run: Annotated[Path, typer.Option("--run", help="Run folder with outputs/*.parquet")] = Path("openasm-run"),
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a rule: name=value")] = None,
        output_format: Annotated[str, typer.Option("--format", help="rich (default) or markdown")] = "rich",
    ) -> None:
        """Explain one participant's final score, adjustment factor and dollars, step by step, with every
        rule's citation and evidence; numbers resting on secondary or default values are flagged."""
        from openasm.rules import RulesError, load_rules, parse_override

        if output_format not in ("rich", "markdown"):
            _fail(f"--format '{output_format}': expected rich or markdown")
        try:
            rules = load_rules(py, [parse_override(text) for text in set_ or []])
            tables = read_npi_rows(run, npi)
            expl = explain_participant(npi=npi, rules=rules, **tables)
        except (RulesError, RunTablesError, ExplainError) as err:
            _fail(str(err))
        if output_format == "markdown":
            console.print(render_markdown(expl), markup=False, highlight=False, soft_wrap=True)
        else:
            render_console(expl, console)
        for line in manifest_differences(run, expl):
            err_console.print(f"[bold yellow]warning:[/] {line}")


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)

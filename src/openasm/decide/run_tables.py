"""The finished tables of a run that the decision tools read (`RUN/outputs/<table>.parquet`), and the run's rules.

The decision tools never re-run a stage: they start from what the run published (participant_score,
payment_adjustment, the quality measure scores with their benchmarks, the cost measure scores and knots, the
payment-year dollars) and the rules the run used, overrides included (from its manifest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from openasm.rules import RulesForYear, load_rules, parse_override
from openasm.schema.run_folder import MANIFEST, output_path, read_manifest_if_any, read_output

REQUIRED = {
    "payment_adjustment": "the payment stage (`openasm payment`)",
    "quality_measure_score": "the score stage (`openasm score`)",
    "quality_benchmark": "the score stage (`openasm score`)",
    "measure_score": "the cost stage (`openasm cost`)",
    "cost_benchmark_knots": "the cost stage (`openasm cost`)",
}
OPTIONAL = ("adjustment_dollars", "quality_measure_row", "participant_score", "participant", "payment_projection",
            "episode_attribution", "episode_detail", "episode_cost_by_category")


class RunTablesError(ValueError):
    """A run folder lacks a table the decision tools need."""


@dataclass
class RunTables:
    """The run's finished tables (Arrow) and its rules for the performance year."""

    run_dir: Path
    rules: RulesForYear
    tables: dict[str, pa.Table] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    def rows(self, name: str) -> list[dict]:
        """Rows of a table as dicts (empty when the table is absent)."""
        table = self.tables.get(name)
        return [] if table is None else table.to_pylist()


def run_overrides(manifest: dict) -> list[tuple[str, object]]:
    """The `--set` overrides the run used, parsed back from its manifest (evidence `override`)."""
    return [parse_override(f"{row['name']}={row['value']}") for row in manifest.get("rules_used", [])
            if row.get("evidence") == "override"]


def load_run_tables(run_dir: Path | str, extra_overrides: list[tuple[str, object]] | None = None) -> RunTables:
    """Read the tables of `run_dir` and the rules of its performance year with the run's own overrides (plus
    `extra_overrides`, e.g. a what-if scenario's rule changes). Raises RunTablesError naming the missing table and
    the stage that writes it."""
    run_dir = Path(run_dir)
    manifest = read_manifest_if_any(run_dir)
    if not manifest:
        raise RunTablesError(f"{run_dir / MANIFEST} not found: {run_dir} is not an openasm run folder")
    year = manifest.get("performance_year")
    if year is None:
        raise RunTablesError(f"{run_dir / MANIFEST} has no performance_year: run the model stages first")
    tables: dict[str, pa.Table] = {}
    for name, stage in REQUIRED.items():
        table = read_output(run_dir, name)
        if table is None:
            raise RunTablesError(f"{output_path(run_dir, name)} not found: run {stage} on {run_dir} first "
                                 f"(it writes {name})")
        tables[name] = table
    for name in OPTIONAL:
        table = read_output(run_dir, name)
        if table is not None:
            tables[name] = table
    rules = load_rules(int(year), run_overrides(manifest) + list(extra_overrides or []))
    return RunTables(run_dir=run_dir, rules=rules, tables=tables, manifest=manifest)

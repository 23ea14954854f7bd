"""The runner contract every stage follows, and the one path by which stages publish tables and the manifest.

A runner is `run_<stage>(engine, rules, run_dir, inputs, step=None) -> StageResult`: it reads the run's tables
through the `Engine`, calls the stage's pure functions, materialises and publishes what they return, and reports
progress through `step`. `execute_stage` runs one and records it in the run's manifest, so every command, the
demo, the tests and the dashboard go through the same path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

import ibis.expr.types as ir

from openasm import __version__
from openasm.engine import Engine
from openasm.rules import RulesForYear
from openasm.schema.run_folder import MANIFEST, output_path

Step = Callable[[str], None]


def no_step(_text: str) -> None:
    """The progress callback of a runner called without one."""


@dataclass
class StageResult:
    """What a runner produced: row counts and files of the published tables, notes for the user, and the
    entries it adds to the manifest (besides the rules it read)."""

    row_counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    entries: dict[str, Any] = field(default_factory=dict)

    def manifest_entries(self) -> dict[str, Any]:
        """Top-level manifest keys this stage writes (ingest accounting, sources read, ...)."""
        return dict(self.entries)


ResultT = TypeVar("ResultT", bound=StageResult)


class Runner(Protocol[ResultT]):
    def __call__(self, engine: Engine, rules: Any, run_dir: Path, inputs: Any, step: Step | None = None
                 ) -> ResultT: ...


def count_rows(expr: ir.Table) -> int:
    """Executed row count of a table expression."""
    return int(expr.count().to_pyarrow().as_py())


def write_output(engine: Engine, expr: ir.Table, run_dir: Path, name: str) -> Path:
    """Publish a table as `outputs/<name>.parquet` and `.csv`."""
    parquet = output_path(run_dir, name)
    engine.write_parquet(expr, parquet)
    engine.write_csv(expr, output_path(run_dir, name, ".csv"))
    return parquet


def publish(engine: Engine, run_dir: Path, result: StageResult, name: str, expr: ir.Table) -> ir.Table:
    """Materialise a stage output, write it to `outputs/` and count its rows into `result`."""
    stored = engine.save(name, expr)
    result.outputs[name] = write_output(engine, stored, run_dir, name)
    result.row_counts[name] = count_rows(stored)
    return stored


class InputError(ValueError):
    """A stage's input holds values it cannot compute with (non-finite, out of range)."""


def refuse_invalid(engine: Engine, findings: ir.Table, what: str, shown: int = 10) -> None:
    """Raise InputError listing the rows of `findings` (`schema.value_ranges.range_findings`), if any: the run
    stops before a NaN or an out-of-range value can spread into pools and factors."""
    rows = engine.fetch(findings.limit(shown + 1)).to_pylist()
    if not rows:
        return
    total = count_rows(findings) if len(rows) > shown else len(rows)
    keys = [c for c in rows[0] if c not in ("column_name", "value", "expected")]
    lines = [", ".join(f"{k} {r[k]}" for k in keys) + f": {r['column_name']} = {r['value']!r}, expected "
             f"{r['expected']}" for r in rows[:shown]]
    more = f" (and {total - shown} more)" if total > shown else ""
    raise InputError(f"{what}: {total} invalid value(s){more}: " + "; ".join(lines))


def execute_stage(runner: Runner[ResultT], engine: Engine, rules: RulesForYear | Sequence[RulesForYear] | None,
                  run_dir: Path, inputs: Any = None, step: Step | None = None) -> ResultT:
    """Run one stage and record it in the run's manifest (the rules it read, with citation and evidence)."""
    result = runner(engine, rules, run_dir, inputs, step)
    write_manifest(run_dir, engine=engine, rules=rules, entries=result.manifest_entries())
    return result


def write_manifest(run_dir: Path, *, engine: Engine, rules: RulesForYear | Sequence[RulesForYear] | None,
                   entries: dict[str, Any] | None = None) -> Path:
    """Record what the run read and each rules value used. A single year's rules merge into `rules_used` and
    `code_lists_used` (a value read again by a later stage replaces the earlier row); a stage over several
    years puts its rules in its own entry."""
    path = Path(run_dir) / MANIFEST
    existing: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    existing.update({"openasm_version": __version__, "backend": engine.backend,
                     "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if isinstance(rules, RulesForYear):
        existing["performance_year"] = rules.performance_year
        for key, rows in rules_rows([rules]).items():
            merged = {row["name"]: row for row in existing.get(key, [])}
            merged.update({row["name"]: row for row in rows})
            existing[key] = [merged[name] for name in sorted(merged)]
    existing.update(entries or {})
    path.write_text(json.dumps(existing, indent=2, default=str))
    return path


def rules_rows(rules_list: Sequence[RulesForYear]) -> dict[str, list[dict[str, Any]]]:
    """`rules_used` and `code_lists_used` of one or more years' rules, one row per name (later years win)."""
    used = {r["name"]: r for rules in rules_list for r in rules.manifest_rows(only_used=True)}
    codes = {r["name"]: r for rules in rules_list for r in rules.code_list_rows()}
    return {"rules_used": [used[k] for k in sorted(used)], "code_lists_used": [codes[k] for k in sorted(codes)]}

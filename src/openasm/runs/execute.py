"""Execute one stage so that a run folder is always consistent: the stage runs in one database transaction
(DuckDB; a runner marked PUBLISHES_ITSELF writes its large tables under names of their own first and publishes
them in one transaction of its own) with its output files staged aside, and only when it finishes are the files
moved into `outputs/`, the results of downstream stages removed as stale, and the manifest rewritten
(atomically). An error or Ctrl-C rolls the transaction back and leaves the previous state.

On PySpark each table is written atomically (a folder renamed into place) but several tables are not one
transaction: an interrupted Spark stage leaves its manifest entry unfinished and the next command says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from openasm.engine import Engine
from openasm.rules import RulesForYear
from openasm.runs.lineage import INPUT_STAGES, YEAR_AWARE, YEAR_STAGES, downstream, missing_upstream, stage_name
from openasm.runs.stage import DEFAULT_CSV_MODE, PUBLISHES_ITSELF, ResultT, Runner, Step, staged_outputs, write_manifest
from openasm.schema.run_folder import OUTPUTS, read_manifest_if_any


class StaleRunError(ValueError):
    """Ingest would leave results of later stages resting on data that is no longer there."""


@contextmanager
def _recording_saves(engine: Engine, saved: set[str]) -> Iterator[None]:
    """Note the name of every run table the stage materialises or defines as a view (the stage's own tables,
    for lineage)."""
    originals = {method: getattr(engine, method) for method in ("save", "save_view", "rename")}

    def recorded(method: str) -> Any:
        def store(name: str, expr: Any, **options: Any) -> Any:
            if method == "rename":  # `expr` is the new name
                saved.discard(name)
            saved.add(expr if method == "rename" else name)
            return originals[method](name, expr, **options)
        return store

    for method in originals:
        setattr(engine, method, recorded(method))
    try:
        yield
    finally:
        for method in originals:
            delattr(engine, method)


def _years(rules: RulesForYear | Sequence[RulesForYear] | None) -> list[int]:
    if rules is None:
        return []
    return sorted({r.performance_year for r in ([rules] if isinstance(rules, RulesForYear) else rules)})


def execute_stage(runner: Runner[ResultT], engine: Engine, rules: RulesForYear | Sequence[RulesForYear] | None,
                  run_dir: Path, inputs: Any = None, step: Step | None = None, *, force: bool = False) -> ResultT:
    """Run one stage (`run_<stage>`) on a run folder and record it; see the module docstring. Raises
    StaleRunError when an ingest would leave later results stale and `force` is not given."""
    stage = stage_name(runner)
    run_dir = Path(run_dir)
    manifest = read_manifest_if_any(run_dir)
    stages: dict[str, Any] = manifest.get("stages", {})
    # CSV copies of outputs: chosen by the stage that starts a run (ingest `--csv`), kept for the later stages.
    csv_copies = getattr(inputs, "csv_copies", None) or manifest.get("csv_copies", DEFAULT_CSV_MODE)
    years = _years(rules)
    year = years[0] if len(years) == 1 else None
    reason = missing_upstream(stage, year, stages)
    if reason:
        raise ValueError(reason)
    # Downstream results of other performance years do not rest on this run (each year has its own rows).
    stale = [s for s in downstream(stage) if s in stages and (
        stage not in YEAR_AWARE or s not in YEAR_AWARE or set(stages[s].get("performance_years", [])) & set(years))]
    if stage in INPUT_STAGES and stale and not force:
        raise StaleRunError(
            f"{run_dir} holds results of later stages ({', '.join(stale)}) that a new {stage.replace('_', ' ')} "
            "would leave stale; pass --force to replace them, or write to a new run folder")
    staging = run_dir / OUTPUTS / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    saved: set[str] = set()
    # A runner that publishes its tables in a transaction of its own (PUBLISHES_ITSELF) writes its large tables
    # outside one first: DuckDB reads rows written earlier in the same open transaction about half as fast.
    runner_transaction = nullcontext() if getattr(runner, PUBLISHES_ITSELF, False) else engine.transaction()
    try:
        with _recording_saves(engine, saved), staged_outputs(
                staging, year if stage in YEAR_STAGES else None, csv_copies):
            with runner_transaction:
                result = runner(engine, rules, run_dir, inputs, step)
            with engine.transaction():
                kept = {t for s, entry in stages.items() if s not in stale and s != stage
                        for t in entry.get("tables", [])}
                for table in {t for s in stale for t in stages[s].get("tables", [])} - saved - kept:
                    if engine.has_table(table):
                        engine.drop(table)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outputs = run_dir / OUTPUTS
    for name in {o for s in stale for o in stages[s].get("outputs", [])} - set(result.outputs):
        for suffix in (".parquet", ".csv"):
            (outputs / f"{name}{suffix}").unlink(missing_ok=True)
    for name in result.outputs:  # a CSV copy not written this time would be stale
        if not (staging / f"{name}.csv").exists():
            (outputs / f"{name}.csv").unlink(missing_ok=True)
    for staged in sorted(staging.glob("*")):
        staged.replace(outputs / staged.name)
    shutil.rmtree(staging, ignore_errors=True)
    if stale:
        result.notes.append(f"removed the results of {', '.join(stale)}: they rested on the earlier "
                            f"{stage.replace('_', ' ')}; run them again")
    entries = result.manifest_entries()
    entries["csv_copies"] = csv_copies
    previous = stages.get(stage, {})
    kept_years = previous.get("performance_years", []) if stage in YEAR_STAGES else []
    entries["stages"] = {**{s: e for s, e in stages.items() if s not in stale and s != stage}, stage: {
        "performance_years": sorted(set(kept_years) | set(years)), "scratch_year": year,
        "tables": sorted(saved | set(previous.get("tables", []))),
        "outputs": sorted(set(result.outputs) | set(previous.get("outputs", []))),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    write_manifest(run_dir, engine=engine, rules=rules, entries=entries, remove=stale)
    return result

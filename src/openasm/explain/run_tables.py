"""The finished tables an explanation reads: the NPI's rows of the run's published tables
(`RUN/outputs/<table>.parquet`), and the rules values the run recorded in its manifest."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openasm.explain.chain import Explanation
from openasm.schema.run_folder import OUTPUTS, read_manifest_if_any

# table -> (NPI column, the stage that writes it)
REQUIRED_TABLES = {
    "participant_score": ("npi", "the final-score stage"),
    "quality_measure_score": ("npi", "the quality stage"),
    "quality_category_score": ("npi", "the quality stage"),
    "measure_score": ("rendering_npi", "the cost stage (`openasm cost`)"),
    "payment_adjustment": ("npi", "the payment stage"),
}
OPTIONAL_TABLES = {"adjustment_dollars": ("npi", "the payment stage")}
# Read for the participant's cohort (the pool it shares): what a binding clamp leaves unpaid.
COHORT_TABLE = "pool_invariant_check"


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
    cohorts = [c for c in tables["participant_score"].column("cohort").to_pylist() if c is not None] if (
        "cohort" in tables["participant_score"].column_names) else []
    pool_path = folder / f"{COHORT_TABLE}.parquet"
    if cohorts and pool_path.is_file():
        tables[COHORT_TABLE] = _rows_matching(pool_path, "cohort", cohorts)
    return tables


def _rows_matching(path: Path, column: str, values: list[str]) -> pa.Table:
    table = pq.read_table(path)
    mask = pc.is_in(table[column].cast(pa.string()), value_set=pa.array(values, pa.string()))
    return table.filter(mask.fill_null(False))


def manifest_differences(run_dir: Path, expl: Explanation) -> list[str]:
    """Parameters whose value here differs from the value the run recorded in its manifest (e.g. the run used
    a --set override that this command was not given)."""
    recorded = {row["name"]: row for row in read_manifest_if_any(run_dir).get("rules_used", [])}
    out = []
    for p in expl.parameters():
        row = recorded.get(p.name)
        if row is not None and str(row.get("value")) != p.value:
            out.append(f"{p.name}: the run used {row.get('value')} ({row.get('evidence')}), this explanation "
                       f"uses {p.value} ({p.evidence})")
    return out

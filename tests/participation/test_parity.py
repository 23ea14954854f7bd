"""The participant table of a small synthetic world is identical on DuckDB and PySpark: ingest, then
participation for PY2029 (the grouper runs for CY2027 inside the participation run) with lock-in against a
PY2028 prior table, and the comparison with a CMS list."""

from __future__ import annotations

import pyarrow as pa
import pytest

from openasm.participation.participant_list import LIST_SCHEMA
from openasm.participation.run import (
    COMPARISON_TABLE,
    PARTICIPANT_TABLE,
    run_participation,
)
from openasm.participation.selected_area import SelectedAreas
from openasm.pipeline import run_ingest
from openasm.rules import load_rules

from ..conftest import assert_tables_equal


def _areas(engine) -> SelectedAreas:
    """Every practice CBSA of the world but the largest, so clinicians fall on both sides."""
    clinician = engine.table("clinician")
    counts = engine.fetch(clinician.group_by("practice_cbsa_code").agg(n=clinician.count())).to_pylist()
    codes = sorted((r for r in counts if r["practice_cbsa_code"]), key=lambda r: (-r["n"], r["practice_cbsa_code"]))
    return SelectedAreas(pa.table({"cbsa_code": [r["practice_cbsa_code"] for r in codes[1:]]}), "test", "override")


def _cms_list(npis: list[str]) -> pa.Table:
    rows = [{"source_line": i + 2, "npi": n, "first_name": "A", "last_name": "B", "state": "NY", "cohort": "lbp",
             "organization_legal_name": "ORG", "performance_year": 2029, "is_participant": True,
             "is_small_practice": False} for i, n in enumerate(npis)]
    return pa.Table.from_pylist(rows, schema=LIST_SCHEMA)


def _prior(engine) -> pa.Table:
    """PY2028 participants as read from `--prior`: two general practitioners (who cannot re-qualify, so they
    are locked in) and an NPI the world does not have."""
    clinician = engine.table("clinician")
    gps = clinician.filter(clinician.specialty_code == "08").select("npi").distinct().order_by("npi").limit(2)
    npis = engine.fetch(gps)["npi"].to_pylist() + ["1000000004"]
    return pa.table({"performance_year": pa.array([2028] * 3, pa.int32()), "npi": npis, "cohort": ["hf", "lbp", "lbp"],
                     "first_selected_year": pa.array([2028] * 3, pa.int32())})


@pytest.mark.spark
def test_participation_identical_on_duckdb_and_pyspark(participation_world, tmp_path, engine_for):
    # 900 beneficiaries give no clinician 20 episodes: a threshold of 3 lets some qualify.
    rules = [load_rules(2029, {"participation.episode_volume_threshold": 3})]
    results = {}
    for backend in ("duckdb", "pyspark"):
        run = tmp_path / f"run-{backend}"
        engine = engine_for(backend, run)
        run_ingest(engine, participation_world)
        listed = _cms_list(["1000000012"])  # an NPI the world does not have
        outcome = run_participation(engine, rules, run, _areas(engine), prior_file=_prior(engine),
                                    participant_list=listed)
        assert "grouped for CY2027" in outcome.episode_sources[2029]
        results[backend] = {name: engine.fetch(engine.table(name)) for name in (PARTICIPANT_TABLE, COMPARISON_TABLE)}
    duck = results["duckdb"][PARTICIPANT_TABLE].to_pylist()
    assert {r["reason"] for r in duck} >= {"in", "locked_in", "outside_selected_area", "not_asm_specialty"}
    assert len({r["npi"] for r in duck}) == len(duck)  # grain: PY x NPI, one PY here
    for name in (PARTICIPANT_TABLE, COMPARISON_TABLE):
        assert_tables_equal(results["duckdb"][name], results["pyspark"][name])

"""`openasm participate` and `openasm lookup` through a fresh Typer app with the commands registered."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.engine import connect
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.execute import execute_stage

from .test_participant_list import HEADER, ROWS, _write_csv

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def run_dir(participation_world, tmp_path_factory):
    """An ingested DuckDB run folder of the small world."""
    run = tmp_path_factory.mktemp("cli-run")
    engine = connect("duckdb", run)
    try:
        execute_stage(run_ingest, engine, None, run, IngestInputs(participation_world))
    finally:
        engine.close()
    return run


def test_lookup_prints_matching_rows(tmp_path):
    path = _write_csv(tmp_path / "asm.csv", HEADER, ROWS)
    result = runner.invoke(app, ["lookup", "--file", str(path), "--name", "john smith"])
    assert result.exit_code == 0, result.output
    assert "SPINE PARTNERS LLC" in result.output and "ORTHO NJ LLC" in result.output
    assert "Low Back Pain" in result.output and "2 row(s)" in result.output
    by_org = runner.invoke(app, ["lookup", "-f", str(path), "--org", "heart clinic"])
    assert by_org.exit_code == 0 and "GARCIA" in by_org.output


def test_lookup_without_match_or_criteria_or_with_a_bad_file(tmp_path):
    path = _write_csv(tmp_path / "asm.csv", HEADER, ROWS)
    none = runner.invoke(app, ["lookup", "--file", str(path), "--npi", "1999999999"])
    assert none.exit_code == 1 and "no clinician" in none.output
    assert runner.invoke(app, ["lookup", "--file", str(path)]).exit_code == 2
    bad = _write_csv(tmp_path / "bad.csv", HEADER[1:], [r[1:] for r in ROWS])
    failed = runner.invoke(app, ["lookup", "--file", str(bad), "--npi", "1"])
    assert failed.exit_code == 2 and "missing column(s) NPI" in failed.output


def test_participate_writes_the_table_and_the_comparison(run_dir, tmp_path):
    areas = tmp_path / "areas.csv"
    clinician = connect("duckdb", run_dir)
    try:
        codes = sorted({c for c in clinician.fetch(clinician.table("clinician"))["practice_cbsa_code"].to_pylist() if c})
    finally:
        clinician.close()
    areas.write_text("cbsa_code\n" + "\n".join(codes) + "\n")
    cms = _write_csv(tmp_path / "asm.csv", HEADER, ROWS)
    # 900 beneficiaries give no clinician 20 episodes: a threshold of 3 lets some qualify.
    result = runner.invoke(app, ["participate", str(run_dir), "--years", "2028-2029", "--selected-areas", str(areas),
                                 "--compare-with", str(cms), "--set", "participation.episode_volume_threshold=3"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(run_dir / "outputs" / "participant.parquet")
    assert set(table["performance_year"].to_pylist()) == {2028, 2029}
    assert "in" in table["reason"].to_pylist()
    assert (run_dir / "outputs" / "participant.csv").is_file()
    compared = pq.read_table(run_dir / "outputs" / "participant_list_comparison.parquet").to_pylist()
    assert {r["agreement"] for r in compared} <= {"computed_only", "cms_only"}  # the list's NPIs are not in the world
    assert "no participant flags for PY2028" in result.output
    manifest = json.loads((run_dir / "manifest.json").read_text())["participation"]
    assert manifest["performance_years"] == [2028, 2029] and manifest["selected_areas"]["evidence"] == "override"
    assert any(r["name"] == "participation.episode_volume_threshold" for r in manifest["rules_used"])
    assert "PY2029 episodes: grouped for CY2027" in result.output
    # The world ends in CY2027: PY2030 (CY2028 data) cannot be judged.
    again = runner.invoke(app, ["participate", str(run_dir), "--py", "2030", "--selected-areas", str(areas)])
    assert again.exit_code == 2 and "no Part B lines in CY2028" in again.output
    # Recomputing PY2029 alone with an unreachable threshold keeps the PY2028 rows, whose participants are then
    # locked in; a prior file adds a participant the run has never seen.
    selected_2028 = {r["npi"] for r in table.to_pylist() if r["performance_year"] == 2028 and r["is_participant"]}
    prior = tmp_path / "prior.csv"
    prior.write_text("performance_year,npi,is_participant,cohort,first_selected_year\n"
                     "2027,1000000004,true,hf,2027\n2027,1000000012,false,,\n")
    rerun = runner.invoke(app, ["participate", str(run_dir), "--py", "2029", "--selected-areas", str(areas),
                                "--prior", str(prior), "--set", "participation.episode_volume_threshold=1000"])
    assert rerun.exit_code == 0, rerun.output
    rows = pq.read_table(run_dir / "outputs" / "participant.parquet").to_pylist()
    assert {r["npi"] for r in rows if r["performance_year"] == 2028 and r["is_participant"]} == selected_2028
    locked = {r["npi"]: r for r in rows if r["performance_year"] == 2029 and r["reason"] == "locked_in"}
    assert set(locked) == selected_2028 | {"1000000004"} and selected_2028
    assert locked["1000000004"]["first_selected_year"] == 2027


def test_participate_refuses_bad_input(run_dir, tmp_path):
    assert runner.invoke(app, ["participate", str(run_dir)]).exit_code == 2
    no_run = runner.invoke(app, ["participate", str(tmp_path / "none"), "--py", "2028"])
    assert no_run.exit_code == 2 and "manifest.json" in no_run.output
    bad_areas = tmp_path / "areas.csv"
    bad_areas.write_text("cbsa_code\n123\n")
    failed = runner.invoke(app, ["participate", str(run_dir), "--py", "2028", "--selected-areas", str(bad_areas)])
    assert failed.exit_code == 2 and "line 2 column cbsa_code" in failed.output
    outside = runner.invoke(app, ["participate", str(run_dir), "--py", "2026"])
    assert outside.exit_code == 2
    default = runner.invoke(app, ["participate", str(run_dir), "--py", "2032"])
    assert default.exit_code == 2 and "not an ASM performance year" in default.output

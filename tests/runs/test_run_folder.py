"""Issue 9, runs: a run folder never goes stale. Re-ingesting into a used folder kept the previous episodes and
scores beside the new claims; a second performance year left the first year's tables beside the new ones; Ctrl-C
gave a raw traceback. Each case below failed before the fix."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.engine import connect
from openasm.rules import load_rules
from openasm.runs import episodes as episodes_runner
from openasm.runs.cost import run_cost
from openasm.runs.episodes import run_episodes
from openasm.runs.execute import StaleRunError, execute_stage
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.synth import generate_world

pytestmark = pytest.mark.usefixtures("wide_console")
RULES = load_rules(2027)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs-world")
    generate_world(out_dir=folder, benes=700, seed=11, first_year=2025, last_year=2027)
    return folder


def _stage(runner, run: Path, rules=RULES, inputs=None, **kw):
    engine = connect("duckdb", run)
    try:
        return execute_stage(runner, engine, rules, run, inputs, **kw)
    finally:
        engine.close()


def _tables(run: Path) -> set[str]:
    engine = connect("duckdb", run)
    try:
        return set(engine.con.list_tables())
    finally:
        engine.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def grouped_run(world, tmp_path) -> Path:
    """A run folder with claims ingested, episodes grouped and cost scored for PY2027."""
    run = tmp_path / "run"
    _stage(run_ingest, run, None, IngestInputs(world))
    _stage(run_episodes, run)
    _stage(run_cost, run)
    return run


def test_ingest_into_a_used_folder_refuses_then_replaces_every_later_result(world, grouped_run) -> None:
    refused = CliRunner().invoke(app, ["ingest", str(world), "--out", str(grouped_run)])
    assert refused.exit_code == 2
    assert "results of later stages (episodes, cost)" in refused.output and "--force" in refused.output
    assert (grouped_run / "outputs" / "episode_detail.parquet").exists()  # nothing touched
    with pytest.raises(StaleRunError):
        _stage(run_ingest, grouped_run, None, IngestInputs(world))
    forced = CliRunner().invoke(app, ["ingest", str(world), "--out", str(grouped_run), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "removed the results of episodes, cost" in forced.output
    outputs = {p.stem for p in (grouped_run / "outputs").glob("*.parquet")}
    assert outputs == {"ingest_summary", "quarantine"}
    assert not {"episode", "episode_detail", "measure_score", "episode_expected"} & _tables(grouped_run)
    manifest = json.loads((grouped_run / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"ingest"}
    later = CliRunner().invoke(app, ["cost", str(grouped_run)])
    assert later.exit_code == 2 and "run `openasm episodes --py 2027` first" in later.output


def test_running_a_stage_again_removes_what_rested_on_it(grouped_run) -> None:
    result = _stage(run_episodes, grouped_run)
    assert any("removed the results of cost" in note for note in result.notes)
    assert not (grouped_run / "outputs" / "measure_score.parquet").exists()
    assert "measure_score" not in _tables(grouped_run)


def test_a_second_performance_year_keeps_each_years_rows(grouped_run) -> None:
    first = pq.read_table(grouped_run / "outputs" / "episode_detail.parquet")
    assert set(first.column("performance_year").to_pylist()) == {2027}
    assert "performance_year" in pq.read_schema(grouped_run / "outputs" / "measure_score.parquet").names
    _stage(run_episodes, grouped_run, load_rules(2028))
    both = pq.read_table(grouped_run / "outputs" / "episode_detail.parquet")
    assert set(both.column("performance_year").to_pylist()) <= {2027, 2028}
    kept = both.filter(pq.read_table(grouped_run / "outputs" / "episode_detail.parquet")["performance_year"]
                       .to_numpy() == 2027)
    assert kept.num_rows == first.num_rows  # PY2027's rows untouched
    # PY2027 cost results do not rest on the PY2028 episodes: they stay.
    assert (grouped_run / "outputs" / "measure_score.parquet").exists()
    refused = CliRunner().invoke(app, ["cost", str(grouped_run), "--py", "2027"])
    assert refused.exit_code == 2 and "tables are for performance year 2028" in refused.output


def test_an_interrupted_stage_leaves_the_previous_state(grouped_run, monkeypatch) -> None:
    detail = grouped_run / "outputs" / "episode_detail.parquet"
    before = _digest(detail), _tables(grouped_run)
    real = episodes_runner.summarize_cost_by_category

    def interrupted(**kwargs):
        raise KeyboardInterrupt  # Ctrl-C half-way: several tables and files are already rewritten

    monkeypatch.setattr(episodes_runner, "summarize_cost_by_category", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _stage(run_episodes, grouped_run)
    monkeypatch.setattr(episodes_runner, "summarize_cost_by_category", real)
    assert (_digest(detail), _tables(grouped_run)) == before
    assert (grouped_run / "outputs" / "measure_score.parquet").exists()  # cost was not declared stale
    assert not list((grouped_run / "outputs").glob(".*"))  # no staging folder, no partial file
    assert json.loads((grouped_run / "manifest.json").read_text())["stages"]["cost"]


def test_ctrl_c_prints_one_line_and_exits_130(world, tmp_path) -> None:
    run = tmp_path / "run"
    _stage(run_ingest, run, None, IngestInputs(world))
    before = _tables(run)
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "openasm.cli", "episodes", str(run)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        if (run / "outputs" / ".staging").exists():  # the stage is under way
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the stage finished before the signal arrived")
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "interrupted: the run folder keeps its previous results" in stderr
    assert _tables(run) == before and not (run / "outputs" / ".staging").exists()


@pytest.mark.parametrize("where", ["checking", "publishing"])
def test_an_interrupted_ingest_leaves_the_previous_tables(world, tmp_path, monkeypatch, where) -> None:
    """Ingest writes its checked rows outside a transaction and publishes them in one: stopped while checking a
    later table (earlier tables already written) or while publishing, the run keeps its tables and rows and no
    unpublished table is left behind."""
    from openasm.runs import ingest as ingest_runner

    run = tmp_path / "run"
    _stage(run_ingest, run, None, IngestInputs(world))
    engine = connect("duckdb", run)
    before = _tables(run), engine.con.table("claim_line").count().execute()
    engine.close()
    real_check, real_publish = ingest_runner.check_table, ingest_runner.publish_ingest

    def check_then_stop(engine, source, known_bene):
        if source.table == "claim_diagnosis":
            raise KeyboardInterrupt
        return real_check(engine, source, known_bene)

    def publish_then_stop(*args, **kwargs):
        real_publish(*args, **kwargs)
        raise KeyboardInterrupt

    if where == "checking":
        monkeypatch.setattr(ingest_runner, "check_table", check_then_stop)
    else:
        monkeypatch.setattr(ingest_runner, "publish_ingest", publish_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _stage(run_ingest, run, None, IngestInputs(world))
    engine = connect("duckdb", run)
    after = _tables(run), engine.con.table("claim_line").count().execute()
    engine.close()
    assert after == before
    assert not [t for t in after[0] if t.endswith(ingest_runner.UNPUBLISHED)]

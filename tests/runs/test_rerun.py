"""A stage run again on the same run folder leaves the same outputs. A year stage replaces the rows it wrote
before and keeps those of runs for other years; rows that describe another year than the run's (a projection's
later years, baseline benchmarks, Q220 episodes of another year) were once kept as "another year's" and written
again beside themselves on every run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openasm.cli import app

pytestmark = pytest.mark.usefixtures("wide_console")
PY = "2027"


def _stage_command(stage: str, run: str, feeds: str) -> list[str]:
    """A demo stage after ingest with the demo's options (cli/tools.py `demo`)."""
    options = {
        "quality": ["--q220", f"{feeds}/q220_foto_episodes.csv", "--q492", f"{feeds}/q492_cms_results.csv"],
        "score": ["--attestation", f"{feeds}/ia_pi_attestation.csv",
                  "--set", f"quality.benchmark_fallback_py={int(PY) - 1}"],
    }
    return [stage, run, "--py", PY, *options.get(stage, [])]


def _outputs(run: Path) -> dict[str, list[tuple]]:
    """Each output table's rows, sorted (a multiset: a row written twice shows)."""
    tables = {}
    for path in sorted((run / "outputs").glob("*.parquet")):
        table = pq.read_table(path)
        tables[path.stem] = sorted(map(tuple, (r.values() for r in table.to_pylist())), key=repr)
    return tables


@pytest.mark.parametrize(("stage", "written"), [
    ("payment", ("payment_projection", "adjustment_dollars")),
    ("score", ("quality_benchmark", "participant_score")),
    ("quality", ("q220_episode_result", "measure_aggregate")),
    ("cost", ("measure_score", "episode_expected")),
    ("participate", ("participant", "clinician_specialty")),
    ("episodes", ("episode_detail", "episode_cost_line")),
    ("summarize", ("spend_by_setting", "claim_versions")),
])
def test_a_stage_run_again_leaves_the_same_outputs(demo_output, tmp_path, stage, written) -> None:
    """The stage runs once more on the finished demo (a later stage's results are removed when an earlier one
    runs again: those left must match)."""
    copy = tmp_path / demo_output.name
    shutil.copytree(demo_output, copy)
    before = _outputs(copy / "run")
    command = _stage_command(stage, f"{copy.name}/run", f"{copy.name}/synthetic-feeds")
    previous = Path.cwd()
    os.chdir(tmp_path)  # the demo recorded relative paths (evidence names the feed file as given)
    try:
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
    finally:
        os.chdir(previous)
    after = _outputs(copy / "run")
    assert set(written) <= after.keys()
    changed = sorted(name for name in after if before.get(name) != after[name])
    assert not changed, {name: (len(before.get(name, [])), len(after[name])) for name in changed}

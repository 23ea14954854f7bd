"""`openasm explain` on a fixture run folder (asm-model.md §9 participant A), through a fresh Typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.explain.render import OWN_FLAG

from .fixtures import A, B, write_run

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("wide_console")


def test_explain_prints_the_chain_as_markdown(tmp_path):
    run = write_run(tmp_path / "run")
    result = runner.invoke(app, ["explain", "--npi", A, "--py", "2027", "--run", str(run), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("Quality 008 (mips_cqm)", "8.46 points", "Final score | 54.10", "Cohort midpoint m",
                 "$141,525.00", "-2.2595%", "-$7,230.55", "payment year 2029"):
        assert text in out, text
    assert "| payment.risk_level | 0.09 | **secondary** | 42 CFR 512.750(c)(1)(i) |" in out
    assert f"| {OWN_FLAG} | Risk level RL (payment year 2029)" in out
    assert "23 of 23 numbers rest on a secondary or default value" in out


def test_explain_rich_output(tmp_path):
    run = write_run(tmp_path / "run")
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run)])
    assert result.exit_code == 0, result.output
    assert "Dollars in payment year 2029" in result.output and "-$7,230.55" in result.output
    assert "Parameters used" in result.output and "secondary" in result.output


def test_tin_level_cost_rows_are_read(tmp_path):
    from .fixtures import tables

    scores = [{**r, "cost_entity_level": "tin", "cost_measure_id": "COST_HF_1"} for r in tables()["participant_score"]]
    run = write_run(tmp_path / "run", participant_score=scores)
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| Cost COST_HF_1 | 6.00 points | 300 episodes at tin level" in result.output


def test_missing_table_names_the_stage_to_run(tmp_path):
    run = write_run(tmp_path / "run", skip=("payment_adjustment",))
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run)])
    assert result.exit_code == 2
    assert "payment_adjustment.parquet not found" in result.output and "payment stage" in result.output
    run = write_run(tmp_path / "run2", skip=("quality_measure_score",))
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run)])
    assert result.exit_code == 2 and "quality stage" in result.output


def test_unknown_npi_and_year_fail_clearly(tmp_path):
    run = write_run(tmp_path / "run")
    result = runner.invoke(app, ["explain", "--npi", "1999999999", "--run", str(run)])
    assert result.exit_code == 2 and "NPI 1999999999 has no participant_score row" in result.output
    result = runner.invoke(app, ["explain", "--npi", A, "--py", "2028", "--run", str(run)])
    assert result.exit_code == 2 and "performance year 2028" in result.output
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run), "--format", "pdf"])
    assert result.exit_code == 2 and "--format" in result.output


def test_override_and_manifest_difference_are_shown(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "manifest.json").write_text(json.dumps({"rules_used": [
        {"name": "payment.risk_level", "value": "0.1", "evidence": "override"}]}))
    result = runner.invoke(app, ["explain", "--npi", A, "--run", str(run), "--format", "markdown",
                                 "--set", "payment.exchange_slope_k=0.2"])
    assert result.exit_code == 0, result.output
    assert "payment.exchange_slope_k=0.2 [override]" in result.output
    assert "the run used 0.1 (override), this explanation uses 0.09 (secondary)" in result.output
    assert "CHECK: TFS" not in result.output  # A sits at the cohort midpoint: TFS = 1 for any slope
    result = runner.invoke(app, ["explain", "--npi", B, "--run", str(run), "--format", "markdown",
                                 "--set", "payment.exchange_slope_k=0.2"])
    assert result.exit_code == 0, result.output
    assert "CHECK: TFS: recomputed" in result.output  # B's stored TFS was computed with k = 0.1

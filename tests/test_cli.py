"""The `openasm` command: rules listing and overrides, schema, ingest with clear errors and exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openasm.cli import app

from .ingest.cases import TABLES, write_case_folder

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("wide_console")


def test_rules_lists_values_with_citation_and_evidence():
    result = runner.invoke(app, ["rules", "--py", "2027", "--only", "payment.risk_level"], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "payment.risk_level" in result.output
    assert "0.09" in result.output and "512.750(c)(1)(i)" in result.output and "secondary" in result.output


def test_rules_override_is_shown_as_override():
    result = runner.invoke(app, ["rules", "--py", "2027", "--only", "payment.risk_level",
                                 "--set", "payment.risk_level=0.1"], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "0.1" in result.output and "override" in result.output and "was 0.09" in result.output


def test_rules_bad_override_fails_with_reason():
    result = runner.invoke(app, ["rules", "--set", "payment.risk_level=high"])
    assert result.exit_code == 2
    assert "payment.risk_level" in result.output and "number" in result.output


def test_rules_unknown_parameter_fails():
    result = runner.invoke(app, ["rules", "--set", "payment.no_such_thing=1"])
    assert result.exit_code == 2
    assert "unknown parameter" in result.output


def test_schema_describes_claim_line():
    result = runner.invoke(app, ["schema", "claim_line"], terminal_width=250)
    assert result.exit_code == 0
    assert "rendering_npi" in result.output and "on carrier/dme" in result.output


def test_ingest_writes_outputs_and_manifest(tmp_path):
    folder = write_case_folder(tmp_path / "input")
    run = tmp_path / "run"
    # The case folder is a catalogue of faults (most rows quarantined): allow that share, or ingest refuses it.
    result = runner.invoke(app, ["ingest", str(folder), "--out", str(run), "--set", "ingest.max_quarantine_share=1"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert (run / "outputs" / "quarantine.csv").exists()
    assert (run / "outputs" / "ingest_summary.parquet").exists()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["ingest"]["reconciles"] is True
    assert manifest["ingest"]["tables"]["claim_line"]["read"] == len(TABLES["claim_line"])
    summarized = runner.invoke(app, ["summarize", str(run)], terminal_width=200)
    assert summarized.exit_code == 0, summarized.output
    assert (run / "outputs" / "spend_by_setting.csv").exists()
    reported = runner.invoke(app, ["report", str(run)])
    assert reported.exit_code == 0, reported.output
    page = (run / "index.html").read_text()
    for heading in ("Row counts and validation", "Quarantine reasons", "Claim spend by setting", "Rules in force"):
        assert heading in page


def test_ingest_missing_column_exits_2_naming_file_and_column(tmp_path):
    folder = write_case_folder(tmp_path / "input")
    (folder / "beneficiary.csv").write_text("bene_id,sex\nB1,F\n")
    result = runner.invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run")], terminal_width=300)
    assert result.exit_code == 2
    assert "beneficiary.csv" in result.output and "'birth_date'" in result.output


def test_summarize_without_ingest_explains(tmp_path):
    result = runner.invoke(app, ["summarize", str(tmp_path / "nothing")], terminal_width=300)
    assert result.exit_code == 2
    assert "openasm ingest" in result.output

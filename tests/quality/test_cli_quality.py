"""The quality commands: ingest-fhir reconciles, conformance names failing cases and exits non-zero."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openasm.cli import app

SUITES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ecqm-tests"
runner = CliRunner()


def test_ingest_fhir_reports_and_quarantines(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}) + "\n"
        + '{"resourceType": "Patient", "id": "p2", "birthDate": "1950-02-30"}\n', encoding="utf-8")
    result = runner.invoke(app, ["ingest-fhir", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "yes" in result.output
    quarantine = (tmp_path / "run" / "outputs" / "fhir_quarantine.csv").read_text()
    assert "element_nulled" in quarantine and "birthDate: '1950-02-30'" in quarantine
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["fhir_ingest"]["resources_read"] == 2


def test_ingest_fhir_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest-fhir", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "no such file" in " ".join(result.output.split())


@pytest.mark.skipif(not SUITES.is_dir(), reason="conformance suites not present")
def test_conformance_names_a_failing_case_and_exits_non_zero(tmp_path: Path) -> None:
    # A one-case suite whose expected report is altered: the harness must name the case and population.
    source = next(p for p in sorted((SUITES / "CMS165-Q236").iterdir()) if p.is_dir())
    target = tmp_path / "CMS165-Q236" / source.name
    shutil.copytree(source, target)
    report_path = next(target.glob("MeasureReport-*.json"))
    report = json.loads(report_path.read_text())
    population = report["group"][0]["population"][0]
    population["count"] = 1 - int(population["count"])
    report_path.write_text(json.dumps(report))
    result = runner.invoke(app, ["conformance", str(tmp_path), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert f"FAIL CMS165-Q236 {source.name}" in result.output and "initial-population" in result.output
    assert " ".join(result.output.split()).endswith("0 passed, 0 pinned (argued disagreements), 1 failed")
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == 1


def test_conformance_on_a_folder_without_suites_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["conformance", str(tmp_path)])
    assert result.exit_code == 2 and "no measure folders" in " ".join(result.output.split())

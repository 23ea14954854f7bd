"""Format recognition (one format used, several or none a clear error listing what was found), the CLI
`ingest --format`, and the enrollment CCLF8 gives when no enrollment file sits beside the CCLF files."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.connectors.base import ConnectorError, ingest_source_tables
from openasm.connectors.cclf import read_cclf
from openasm.connectors.ingest import detect_format
from openasm.synth.cclf_writer import write_cclf

from .cclf_records import bene, write_cclf_file


def test_recognises_one_format_and_lists_several(tmp_path):
    write_cclf_file(tmp_path, "CCLF8", [bene("1EG4TE5MK73")])
    assert detect_format(tmp_path) == "cclf"
    (tmp_path / "ExplanationOfBenefit.ndjson").write_text('{"resourceType": "ExplanationOfBenefit"}\n')
    with pytest.raises(ConnectorError, match="more than one input format.*bcda: ExplanationOfBenefit.ndjson.*cclf"):
        detect_format(tmp_path)


def test_unknown_folder_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ConnectorError, match="cannot tell the input format"):
        detect_format(tmp_path)


def test_cli_ingests_cclf_and_derives_enrollment(connector_world, tmp_path, engine_for):
    folder = tmp_path / "cclf"
    write_cclf(connector_world.path, folder)  # clinician beside it, no enrollment: derived from CCLF8
    result = CliRunner().invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "source format: cclf" in result.output and "COST_HF_1" in result.output
    engine = engine_for("duckdb", tmp_path / "run2")
    tables = read_cclf(engine, folder)
    assert any(item.table == "enrollment" for item in tables.limitations)
    ingested = ingest_source_tables(engine, tables, str(folder))
    enrollment = engine.table("enrollment")
    months = enrollment.aggregate(n=enrollment.count(), ma=enrollment.is_medicare_advantage.cast("int64").sum(),
                                  a=enrollment.has_part_a.cast("int64").sum()).to_pyarrow().to_pylist()[0]
    assert ingested.reconciles and months["ma"] == 0 and 0 < months["a"] <= months["n"]
    assert months["n"] % 12 == 0  # whole years of months per beneficiary


def test_cli_reports_an_ambiguous_folder(tmp_path):
    write_cclf_file(tmp_path, "CCLF8", [bene("1EG4TE5MK73")])
    shutil.copy(next(tmp_path.iterdir()), tmp_path / "copy.ndjson")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--format" in result.output

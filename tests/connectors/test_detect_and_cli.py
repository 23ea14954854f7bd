"""Format recognition (one format used, several or none a clear error listing what was found), the CLI
`ingest --format`, and the enrollment CCLF8 gives when no enrollment file sits beside the CCLF files."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.connectors.base import ConnectorError
from openasm.connectors.formats import detect_format

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


def test_cli_ingests_cclf_and_derives_enrollment(tmp_path, engine_for, wide_console):
    """No enrollment beside the CCLF files: twelve months per claim year from CCLF8 (Part B from its begin date,
    nothing after death, no Medicare Advantage, Part D only with CCLF7 records), the assumptions printed."""
    folder = tmp_path / "cclf"
    folder.mkdir()
    write_cclf_file(folder, "CCLF8", [bene("1EG4TE5MK73", BENE_PART_B_ENRLMT_BGN_DT="2024-04-15"),
                                      bene("2EG4TE5MK73", BENE_DEATH_DT="2024-06-10")])
    write_cclf_file(folder, "CCLF5", [_carrier_line(mbi) for mbi in ("1EG4TE5MK73", "2EG4TE5MK73")])
    result = CliRunner().invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "source format: cclf" in result.output and "COST_HF_1" in result.output
    recorded = json.loads((tmp_path / "run" / "manifest.json").read_text())["ingest"]
    assert recorded["source_format"] == "cclf" and recorded["reconciles"]
    assert any(item["table"] == "enrollment" for item in recorded["limitations"])
    engine = engine_for("duckdb", tmp_path / "run")
    months = {(r["bene_id"], r["year_month"]): r for r in engine.table("enrollment").to_pyarrow().to_pylist()}
    assert len(months) == 24 and not any(r["is_medicare_advantage"] or r["has_part_d"] for r in months.values())
    assert not months[("1EG4TE5MK73", "2024-03")]["has_part_b"] and months[("1EG4TE5MK73", "2024-04")]["has_part_b"]
    assert months[("2EG4TE5MK73", "2024-06")]["has_part_a"] and not months[("2EG4TE5MK73", "2024-07")]["has_part_a"]


def _carrier_line(mbi: str) -> dict:
    return {"CUR_CLM_UNIQ_ID": "000000000000" + mbi[0], "CLM_LINE_NUM": "1", "BENE_MBI_ID": mbi,
            "CLM_TYPE_CD": "71", "CLM_FROM_DT": "2024-05-01", "CLM_THRU_DT": "2024-05-01",
            "CLM_LINE_FROM_DT": "2024-05-01", "CLM_PRVDR_SPCLTY_CD": "06", "CLM_LINE_HCPCS_CD": "99213",
            "CLM_LINE_CVRD_PD_AMT": 80.0, "CLM_LINE_ALOWD_CHRG_AMT": 100.0, "CLM_RNDRG_PRVDR_TAX_NUM": "123456789",
            "RNDRG_PRVDR_NPI_NUM": "1234567893", "CLM_ADJSMT_TYPE_CD": "0", "CLM_CNTL_NUM": "7" + mbi[0]}


def test_cli_reports_an_ambiguous_folder(tmp_path):
    write_cclf_file(tmp_path, "CCLF8", [bene("1EG4TE5MK73")])
    shutil.copy(next(tmp_path.iterdir()), tmp_path / "copy.ndjson")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--format" in result.output


def _part_d_event(claim: str, mbi: str) -> dict:
    return {"CUR_CLM_UNIQ_ID": claim, "BENE_MBI_ID": mbi, "CLM_LINE_NDC_CD": "00002323401", "CLM_TYPE_CD": "01",
            "CLM_LINE_FROM_DT": "2024-05-01", "PRVDR_SRVC_ID_QLFYR_CD": "01",
            "CLM_SRVC_PRVDR_GNRC_ID_NUM": "1234567893", "CLM_DSPNSNG_STUS_CD": "P", "CLM_LINE_SRVC_UNIT_QTY": "30",
            "CLM_LINE_DAYS_SUPLY_QTY": "30", "CLM_ADJSMT_TYPE_CD": "0", "CLM_LINE_RX_SRVC_RFRNC_NUM": "000000000101",
            "CLM_LINE_RX_FILL_NUM": "1"}


def test_a_table_quarantined_for_what_the_format_cannot_carry_does_not_fail_ingest(tmp_path, wide_console):
    """CCLF7 carries no Part D cost: every event is quarantined for it (a stated limitation), which the
    quarantine-share check does not count as a mis-specified input; the same events with a bad date do."""
    mbi = "1EG4TE5MK73"
    folder = tmp_path / "cclf"
    folder.mkdir()
    write_cclf_file(folder, "CCLF8", [bene(mbi)])
    write_cclf_file(folder, "CCLF5", [_carrier_line(mbi)])
    write_cclf_file(folder, "CCLF7", [_part_d_event(f"00000000000{n:02d}", mbi) for n in range(10)])
    result = CliRunner().invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "run" / "manifest.json").read_text())["ingest"]
    pharmacy = recorded["tables"]["pharmacy_claim"]
    assert (pharmacy["read"], pharmacy["quarantined"]) == (10, 10)

    write_cclf_file(folder, "CCLF7", [{**_part_d_event(f"00000000000{n:02d}", mbi), "CLM_LINE_FROM_DT": "2024-13-45"}
                                      for n in range(10)])
    result = CliRunner().invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run2")])
    assert result.exit_code != 0
    assert "pharmacy_claim: 10 of 10 rows quarantined" in result.output and "fill_date" in result.output

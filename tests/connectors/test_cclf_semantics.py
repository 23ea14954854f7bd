"""CCLF source semantics as golden cases (CMS CCLF Information Packet v38): debit/credit chains from the packet's
own examples (§5.3.2 Tables 4 and 6), the MBI cross-walk (§3.1, §5.1.1), null tokens and sentinel dates (§3.6),
run-out files (§3.4), and malformed files (wrong record length, a truncated record, an unknown code)."""

from __future__ import annotations

import pytest

from openasm.connectors.base import ConnectorError
from openasm.connectors.cclf import read_cclf
from openasm.runs.final_action import ensure_final_action

from .cclf_records import bene, write_cclf_file
from .conftest import ingest

MBI = "1EG4TE5MK73"


def _header(claim: str, adjustment: str, paid: float, effective: str, **extra) -> dict:
    return {"CUR_CLM_UNIQ_ID": claim, "BENE_MBI_ID": MBI, "CLM_TYPE_CD": "60", "CLM_FROM_DT": "2012-07-01",
            "CLM_THRU_DT": "2012-07-08", "PRVDR_OSCAR_NUM": "654321", "CLM_BLG_PRVDR_OSCAR_NUM": "654321",
            "CLM_PMT_AMT": paid, "CLM_ADJSMT_TYPE_CD": adjustment, "CLM_EFCTV_DT": effective,
            "CLM_IDR_LD_DT": effective, "DGNS_DRG_CD": "0291", "CLM_BILL_FAC_TYPE_CD": "1",
            "CLM_BILL_CLSFCTN_CD": "1", "CLM_BILL_FREQ_CD": "1", "BENE_PTNT_STUS_CD": "01", **extra}


def _carrier(claim: str, line: int, adjustment: str, amount: float, effective: str, **extra) -> dict:
    return {"CUR_CLM_UNIQ_ID": claim, "CLM_LINE_NUM": str(line), "BENE_MBI_ID": MBI, "CLM_TYPE_CD": "71",
            "CLM_FROM_DT": "2012-08-01", "CLM_THRU_DT": "2012-08-01", "CLM_LINE_FROM_DT": "2012-08-01",
            "CLM_LINE_THRU_DT": "2012-08-01", "CLM_PRVDR_SPCLTY_CD": "06", "CLM_POS_CD": "11",
            "CLM_LINE_HCPCS_CD": "99213", "CLM_LINE_CVRD_PD_AMT": amount, "CLM_LINE_ALOWD_CHRG_AMT": amount,
            "CLM_RNDRG_PRVDR_TAX_NUM": "123456789", "RNDRG_PRVDR_NPI_NUM": "1234567893",
            "CLM_ADJSMT_TYPE_CD": adjustment, "CLM_EFCTV_DT": effective, "CLM_IDR_LD_DT": effective,
            "CLM_CNTL_NUM": "7", "CLM_LINE_SRVC_UNIT_QTY": "1", "CLM_DGNS_1_CD": "I5022", **extra}


def _ingest(engine_for, folder, backend="duckdb"):
    engine = engine_for(backend)
    result = ingest(engine, folder, "cclf")
    claims, _ = ensure_final_action(engine)
    return engine, result, claims


def _status(claims) -> dict[str, set[str]]:
    rows = claims.select("claim_id", "final_action_status").distinct().to_pyarrow().to_pylist()
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row["final_action_status"], set()).add(row["claim_id"])
    return out


def test_part_a_table_4_final_action_claims(tmp_path, engine_for, backend):
    """Packet §5.3.2 Table 4: claims 1-6 are related, 7 is not. Cancel #3 ($200) voids #1; cancel #6 ($0)
    voids one of the $0 adjustments (#5, processed first); final action = #4, #7 and #2 (the packet: "#4, #7
    and either #2 or #5"). Paid sum over all signed records = $260, as in the packet."""
    rows = [_header("0000000000001", "0", 200, "2012-07-20"), _header("0000000000002", "2", 0, "2012-09-20"),
            _header("0000000000003", "1", 200, "2012-08-07"), _header("0000000000004", "2", 210, "2012-09-20"),
            _header("0000000000005", "2", 0, "2012-08-07"), _header("0000000000006", "1", 0, "2012-10-07"),
            _header("0000000000007", "0", 50, "2012-09-20", CLM_FROM_DT="2012-08-20", CLM_THRU_DT="2012-08-29")]
    write_cclf_file(tmp_path, "CCLF1", rows)
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)])
    engine, result, claims = _ingest(engine_for, tmp_path, backend)
    assert result.reconciles and result.tables["claim_line"].accepted == 7
    status = _status(claims)
    assert status["final"] == {"0000000000002", "0000000000004", "0000000000007"}
    assert status["cancelled"] == {"0000000000001", "0000000000005"}
    assert status["cancel_record"] == {"0000000000003", "0000000000006"}
    total = claims.aggregate(paid=claims.paid_amount.sum()).to_pyarrow().to_pylist()[0]["paid"]
    assert total == pytest.approx(260.0)
    inpatient = claims.filter(claims.claim_id == "0000000000004").to_pyarrow().to_pylist()[0]
    assert inpatient["drg_code"] == "291" and inpatient["type_of_bill_code"] == "111"
    assert str(inpatient["admission_date"]) == "2012-07-01" and str(inpatient["discharge_date"]) == "2012-07-08"


def test_part_b_table_6_cancellation_pairs_the_identical_claim(tmp_path, engine_for, backend_spark_slow):
    backend = backend_spark_slow
    """Packet §5.3.2 Table 6: three claims share control number 7; cancellation #1 ($380 + $227 + $0) repeats
    #3, so #2 is the final action claim and the signed total is $707."""
    rows = [_carrier("0000000000001", 3, "1", 0, "2012-09-02"), _carrier("0000000000001", 1, "1", 380, "2012-09-02"),
            _carrier("0000000000001", 2, "1", 227, "2012-09-02"), _carrier("0000000000002", 1, "0", 380, "2012-09-02"),
            _carrier("0000000000002", 2, "0", 227, "2012-09-02"), _carrier("0000000000002", 3, "0", 100, "2012-09-02"),
            _carrier("0000000000003", 3, "0", 0, "2012-08-15"), _carrier("0000000000003", 1, "0", 380, "2012-08-15"),
            _carrier("0000000000003", 2, "0", 227, "2012-08-15")]
    write_cclf_file(tmp_path, "CCLF5", rows)
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)])
    engine, result, claims = _ingest(engine_for, tmp_path, backend)
    status = _status(claims)
    assert status["final"] == {"0000000000002"} and status["cancelled"] == {"0000000000003"}
    total = claims.aggregate(paid=claims.paid_amount.sum()).to_pyarrow().to_pylist()[0]["paid"]
    assert total == pytest.approx(707.0)
    dx = engine.table("claim_diagnosis").to_pyarrow().to_pylist()
    assert {(r["claim_id"], r["dx_position"], r["icd10_code"]) for r in dx} == {
        (c, 1, "I5022") for c in ("0000000000001", "0000000000002", "0000000000003")}


def test_mbi_crosswalk_follows_chains_and_sentinels_are_null(tmp_path, engine_for, backend_spark_slow):
    backend = backend_spark_slow
    """§3.1/§5.1.1: claims under older MBIs (two changes) belong to the current MBI. §3.6: 1000-01-01 and
    9999-12-31 dates and `~` fields are null."""
    old1, old2 = "9AA0AA0AA01", "9AA0AA0AA02"
    write_cclf_file(tmp_path, "CCLF9", [
        {"HICN_MBI_XREF_IND": "M", "CRNT_NUM": old2, "PRVS_NUM": old1, "PRVS_ID_OBSLT_DT": "2012-01-31"},
        {"HICN_MBI_XREF_IND": "M", "CRNT_NUM": MBI, "PRVS_NUM": old2, "PRVS_ID_OBSLT_DT": "2012-06-30"}])
    write_cclf_file(tmp_path, "CCLF5", [
        _carrier("0000000000001", 1, "0", 50, "2012-09-02", BENE_MBI_ID=old1, CLM_LINE_THRU_DT="1000-01-01",
                 CLM_POS_CD="~"),
        _carrier("0000000000002", 1, "0", 60, "2012-09-02", BENE_MBI_ID=old2)])
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI, BENE_DEATH_DT="9999-12-31")])
    engine, result, claims = _ingest(engine_for, tmp_path, backend)
    assert result.tables["claim_line"].accepted == 2
    rows = engine.table("claim_line").to_pyarrow().to_pylist()
    assert {r["bene_id"] for r in rows} == {MBI}
    first = next(r for r in rows if r["claim_id"] == "0000000000001")
    assert first["line_thru_date"] is None and first["place_of_service_code"] is None
    assert engine.table("beneficiary").to_pyarrow().to_pylist()[0]["death_date"] is None


def test_runout_files_are_read_and_their_load_date_orders_versions(tmp_path, engine_for):
    """§3.4: a run-out delivery (ZC5R24) adds claims loaded after the year; CLM_IDR_LD_DT is their processing
    date. An older CCLF8 delivery is superseded by the latest and listed as not read."""
    write_cclf_file(tmp_path, "CCLF5", [_carrier("0000000000001", 1, "0", 50, "2012-12-20")])
    write_cclf_file(tmp_path, "CCLF5", [_carrier("0000000000002", 1, "0", 70, "2013-02-11")], runout=True,
                    delivered="250310")
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)], delivered="241210")
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)], delivered="250310")
    engine, result, claims = _ingest(engine_for, tmp_path)
    assert result.tables["claim_line"].accepted == 2 and result.tables["beneficiary"].read == 1
    assert any(r["run_out"] for r in result.source_records if r["file_type"] == "CCLF5")
    assert any("superseded" in entry for entry in result.ignored_entries)
    late = claims.filter(claims.claim_id == "0000000000002").to_pyarrow().to_pylist()[0]
    assert str(late["claim_processed_date"]) == "2013-02-11"


def test_malformed_records_are_quarantined_with_file_and_record(tmp_path, engine_for, backend_spark_slow):
    backend = backend_spark_slow
    """A record of the wrong length (record 2), a truncated last record (record 4) and an unknown claim type
    code (record 3) are quarantined naming the file and the record; the counts reconcile."""
    path = write_cclf_file(tmp_path, "CCLF5", [
        _carrier("0000000000001", 1, "0", 50, "2012-09-02"), _carrier("0000000000002", 1, "0", 50, "2012-09-02"),
        _carrier("0000000000003", 1, "0", 50, "2012-09-02", CLM_TYPE_CD="99"),
        _carrier("0000000000004", 1, "0", 50, "2012-09-02")])
    lines = path.read_text().splitlines()
    lines[1] = lines[1] + "EXTRA"
    lines[3] = lines[3][:200]
    path.write_text("\n".join(lines))
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)])
    engine, result, _ = _ingest(engine_for, tmp_path, backend)
    record = result.tables["claim_line"]
    assert (record.read, record.accepted, record.quarantined) == (4, 1, 3)
    quarantine = {r["row_number"]: r for r in engine.table("quarantine").to_pyarrow().to_pylist()}
    assert quarantine[2]["source_file"] == str(path) and "record length 393, expected 388" in quarantine[2]["reason"]
    assert "record length 200" in quarantine[4]["reason"]
    assert quarantine[3]["column_name"] == "claim_type" and quarantine[3]["raw_value"] == "99"


def test_folder_without_a_cclf_delivery_is_a_clear_error(tmp_path, engine_for):
    write_cclf_file(tmp_path, "CCLF5", [_carrier("0000000000001", 1, "0", 50, "2012-09-02")])
    with pytest.raises(ConnectorError, match="needs CCLF8.*found: CCLF5"):
        read_cclf(engine_for("duckdb"), tmp_path)


def _part_d_event(claim: str, adjustment: str, loaded: str, ndc: str | None, rx: str = "000000000101",
                  **extra) -> dict:
    return {"CUR_CLM_UNIQ_ID": claim, "BENE_MBI_ID": MBI, "CLM_LINE_NDC_CD": ndc, "CLM_TYPE_CD": "01",
            "CLM_LINE_FROM_DT": "2012-08-01", "PRVDR_SRVC_ID_QLFYR_CD": "01", "CLM_SRVC_PRVDR_GNRC_ID_NUM": "1234567893",
            "CLM_DSPNSNG_STUS_CD": "P", "CLM_LINE_SRVC_UNIT_QTY": "30", "CLM_LINE_DAYS_SUPLY_QTY": "30",
            "PRVDR_PRSBNG_ID_QLFYR_CD": "01", "CLM_PRSBNG_PRVDR_GNRC_ID_NUM": "1234567893",
            "CLM_ADJSMT_TYPE_CD": adjustment, "CLM_EFCTV_DT": loaded, "CLM_IDR_LD_DT": loaded,
            "CLM_LINE_RX_SRVC_RFRNC_NUM": rx, "CLM_LINE_RX_FILL_NUM": "1", **extra}


def test_part_d_versions_point_at_the_first_original_of_their_key(tmp_path, engine_for):
    """§3.3: an adjustment and a deletion point at the first processed original of their six-field key (MR_MBI
    included); a deletion without an NDC takes that original's. A key without versions points at nothing, and
    a version whose key has no original keeps no target."""
    write_cclf_file(tmp_path, "CCLF7", [
        _part_d_event("0000000000002", "0", "2012-08-09", "00002323401"),
        _part_d_event("0000000000001", "0", "2012-08-03", "00002323402"),
        _part_d_event("0000000000003", "2", "2012-08-20", "00002323403"),
        _part_d_event("0000000000004", "1", "2012-09-01", None),
        _part_d_event("0000000000005", "0", "2012-08-03", "00002323405", rx="000000000202"),
        _part_d_event("0000000000006", "1", "2012-09-01", None, rx="000000000303")])
    write_cclf_file(tmp_path, "CCLF5", [_carrier("0000000000009", 1, "0", 50, "2012-09-02")])
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)])
    tables = read_cclf(engine_for("duckdb"), tmp_path)
    events = {r["claim_id"]: r for r in tables.raw["pharmacy_claim"].parts[0].to_pyarrow().to_pylist()}
    assert {c: (r["claim_adjustment_type"], r["original_claim_id"], r["ndc_code"]) for c, r in events.items()} == {
        "0000000000001": ("original", None, "00002323402"), "0000000000002": ("original", None, "00002323401"),
        "0000000000003": ("adjustment", "0000000000001", "00002323403"),
        "0000000000004": ("cancel", "0000000000001", "00002323402"),
        "0000000000005": ("original", None, "00002323405"), "0000000000006": ("cancel", None, None)}


def test_carrier_diagnoses_come_from_the_first_line_that_carries_them(tmp_path, engine_for):
    """CCLF5 repeats the claim's diagnoses on every line. A code is taken from the first line that carries it;
    a line that adds a code adds a row; another code at a position already taken is kept as a second row, so
    the row checks quarantine the conflict (a duplicate claim and position). A claim whose lines agree gives
    one row per position."""
    write_cclf_file(tmp_path, "CCLF5", [
        _carrier("0000000000001", 1, "0", 50, "2012-09-02", CLM_DGNS_1_CD="M545"),
        _carrier("0000000000001", 2, "0", 50, "2012-09-02", CLM_DGNS_1_CD="M545", CLM_DGNS_2_CD="M5416"),
        _carrier("0000000000001", 3, "0", 50, "2012-09-02", CLM_DGNS_1_CD="M5450", CLM_DGNS_2_CD="M5416"),
        _carrier("0000000000002", 1, "0", 50, "2012-09-02", CLM_DGNS_3_CD="I110"),
        _carrier("0000000000002", 2, "0", 50, "2012-09-02", CLM_DGNS_3_CD="I110")])
    write_cclf_file(tmp_path, "CCLF8", [bene(MBI)])
    tables = read_cclf(engine_for("duckdb"), tmp_path)
    rows = [r for part in tables.raw["claim_diagnosis"].parts for r in part.to_pyarrow().to_pylist()]
    assert sorted((r["claim_id"], int(r["dx_position"]), r["icd10_code"], r["_row_number"]) for r in rows) == [
        ("0000000000001", 1, "M545", 1), ("0000000000001", 1, "M5450", 3), ("0000000000001", 2, "M5416", 2),
        ("0000000000002", 1, "I5022", 4), ("0000000000002", 3, "I110", 4)]

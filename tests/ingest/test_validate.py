"""Ingest validation: every deliberately broken row is quarantined with the right column and reason,
every good row is accepted, and accepted + quarantined = read, on each backend."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from openasm.ingest.sources import IngestFileError
from openasm.schema import CANONICAL_TABLES

from ..conftest import ingest_folder
from .cases import TABLES, expected_quarantine, write_case_folder


def _quarantine_by_row(engine) -> dict[tuple[str, int], tuple[str, str]]:
    rows = engine.fetch(engine.table("quarantine")).to_pylist()
    return {(r["table_name"], r["row_number"]): (r["column_name"], r["reason"]) for r in rows}


def test_each_broken_row_is_quarantined_with_its_reason(tmp_path, backend, engine_for):
    folder = write_case_folder(tmp_path / "input")
    engine = engine_for(backend)
    result = ingest_folder(engine, folder)
    got = _quarantine_by_row(engine)
    expected = expected_quarantine()
    assert set(got) == set(expected), {"unexpected": set(got) - set(expected), "missed": set(expected) - set(got)}
    for key, (row_id, column, reason) in expected.items():
        assert got[key] == (column, reason), (row_id, got[key])
    for name, rows in TABLES.items():
        record = result.tables[name]
        bad = sum(1 for _, _, verdict in rows if verdict is not None)
        assert (record.read, record.accepted, record.quarantined) == (len(rows), len(rows) - bad, bad), name
        assert record.reconciles
    assert result.reconciles


def test_accepted_rows_are_typed_per_contract(tmp_path, engine_for):
    engine = engine_for("duckdb")
    ingest_folder(engine, write_case_folder(tmp_path / "input"))
    claim_line = engine.fetch(engine.table("claim_line"))
    assert claim_line.schema == CANONICAL_TABLES["claim_line"].ibis_schema().to_pyarrow()
    first = [r for r in claim_line.to_pylist() if r["claim_id"] == "C1" and r["line_number"] == 1][0]
    assert first["allowed_amount"] == pytest.approx(100.50)
    assert str(first["claim_from_date"]) == "2025-01-05"
    enrollment = engine.fetch(engine.table("enrollment")).to_pylist()
    assert enrollment == [{
        "bene_id": "B1", "year_month": "2025-01", "has_part_a": True, "has_part_b": True, "has_part_d": True,
        "is_medicare_advantage": False, "dual_status_code": None, "is_esrd": None, "is_hospice": None,
        "is_msp": None,
    }]


def test_parquet_parts_and_csv_give_the_same_verdicts(tmp_path, engine_for):
    csv_folder = write_case_folder(tmp_path / "csv")
    parquet_folder = tmp_path / "parquet"
    for name in TABLES:
        table = pacsv.read_csv(csv_folder / f"{name}.csv", convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in pacsv.read_csv(csv_folder / f"{name}.csv").column_names}))
        part_dir = parquet_folder / name
        part_dir.mkdir(parents=True)
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), part_dir / "part-0.parquet")
        pq.write_table(table.slice(half), part_dir / "part-1.parquet")
    from_csv = ingest_folder(engine_for("duckdb", tmp_path / "run-csv"), csv_folder)
    from_parquet = ingest_folder(engine_for("duckdb", tmp_path / "run-parquet"), parquet_folder)
    for name in TABLES:
        a, b = from_csv.tables[name], from_parquet.tables[name]
        assert (a.read, a.accepted, a.quarantined) == (b.read, b.accepted, b.quarantined), name


def test_typed_parquet_input_is_checked_too(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input", {k: v for k, v in TABLES.items() if k != "beneficiary"})
    beneficiary = pa.table({
        "bene_id": ["B1", "B2"], "birth_date": pa.array([19500101, 19480503], pa.int64()), "sex": ["F", "M"],
    })
    pq.write_table(beneficiary, folder / "beneficiary.parquet")
    engine = engine_for("duckdb")
    result = ingest_folder(engine, folder)
    # An integer where a date belongs is not silently converted: both rows are quarantined.
    assert result.tables["beneficiary"].quarantined == 2
    reasons = {r["reason"] for r in engine.fetch(engine.table("quarantine")).to_pylist()
               if r["table_name"] == "beneficiary"}
    assert reasons == {"not a valid date"}


def test_missing_required_column_names_file_and_column(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input")
    (folder / "claim_line.csv").write_text("claim_id,line_number,bene_id\nC1,1,B1\n")
    with pytest.raises(IngestFileError) as err:
        ingest_folder(engine_for("duckdb"), folder)
    assert "claim_line.csv" in str(err.value) and "'claim_type'" in str(err.value)


def test_missing_required_table_is_named(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input")
    (folder / "enrollment.csv").unlink()
    with pytest.raises(IngestFileError, match="required table\\(s\\) missing: enrollment"):
        ingest_folder(engine_for("duckdb"), folder)


def test_unreadable_file_is_named(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input")
    (folder / "clinician.csv").unlink()
    (folder / "clinician.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(Exception) as err:
        ingest_folder(engine_for("duckdb"), folder)
    assert "clinician.parquet" in str(err.value)


def test_unrecognised_entries_are_reported_not_read(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input")
    (folder / "notes.txt").write_text("hello")
    (folder / "truth").mkdir()
    result = ingest_folder(engine_for("duckdb"), folder)
    assert result.ignored_entries == ["notes.txt", "truth"]


def test_optional_tables_may_be_absent(tmp_path, engine_for):
    folder = write_case_folder(tmp_path / "input", {k: TABLES[k] for k in ("beneficiary", "enrollment", "claim_line")})
    engine = engine_for("duckdb")
    result = ingest_folder(engine, folder)
    assert not result.tables["pharmacy_claim"].provided
    assert engine.fetch(engine.table("pharmacy_claim")).num_rows == 0


def test_reingest_drops_final_action_derived_from_the_old_claims(tmp_path, engine_for):
    from openasm.runs.final_action import ensure_final_action

    engine = engine_for("duckdb")
    ingest_folder(engine, write_case_folder(tmp_path / "input"))
    ensure_final_action(engine)
    assert engine.has_table("claim_line_status")
    ingest_folder(engine, write_case_folder(tmp_path / "input"))
    assert not engine.has_table("claim_line_status") and not engine.has_table("pharmacy_claim_status")


def test_key_repeat_quarantines_that_row_only_when_a_record_gives_several_rows(engine_for):
    """A connector makes several rows from one record (the diagnoses of one EOB share its file and record
    number): a key repeat among them quarantines the repeat, never its sibling rows."""
    import ibis

    from openasm.engine import ROW_NUMBER, SOURCE_FILE
    from openasm.ingest.raw import RawTable
    from openasm.runs.ingest import ingest_table

    engine = engine_for("duckdb")
    rows = [("C1", 1, "I50.22", 1), ("C1", 2, "E119", 1), ("C1", 3, "I10", 1),  # record 1: three diagnoses
            ("C1", 2, "E119", 2), ("C2", 1, "I10", 2)]  # record 2 repeats (C1, 2) and adds C2
    raw = ibis.memtable({"claim_id": [r[0] for r in rows], "bene_id": ["B1"] * len(rows),
                         "dx_position": [str(r[1]) for r in rows], "icd10_code": [r[2] for r in rows],
                         ROW_NUMBER: [r[3] for r in rows], SOURCE_FILE: ["eob.ndjson"] * len(rows)})
    record, accepted, quarantine = ingest_table(engine, RawTable("claim_diagnosis", [raw], ["eob.ndjson"]), None)
    assert (record.read, record.accepted, record.quarantined) == (5, 4, 1) and record.reconciles
    kept = sorted((r["claim_id"], r["dx_position"]) for r in engine.fetch(accepted).to_pylist())
    assert kept == [("C1", 1), ("C1", 2), ("C1", 3), ("C2", 1)]
    assert [(r["row_number"], r["reason"]) for r in engine.fetch(quarantine).to_pylist()] == [
        (2, "duplicate key (claim_id, dx_position) of an earlier row")]


def test_copy_numbers_given_by_a_connector_give_the_same_verdicts(engine_for):
    """A connector that numbers the rows it makes from one record (`row_copy`) skips the numbering window over
    all rows and still quarantines only the repeat."""
    import ibis

    from openasm.connectors.base import SourceTables
    from openasm.engine import ROW_NUMBER, SOURCE_FILE
    from openasm.runs.ingest import ingest_table

    engine = engine_for("duckdb")
    rows = [("C1", 1, "I50.22", 1), ("C1", 2, "E119", 1), ("C1", 3, "I10", 1), ("C1", 2, "E119", 2),
            ("C2", 1, "I10", 2)]
    raw = ibis.memtable({"claim_id": [r[0] for r in rows], "bene_id": ["B1"] * len(rows),
                         "dx_position": [str(r[1]) for r in rows], "icd10_code": [r[2] for r in rows],
                         ROW_NUMBER: [r[3] for r in rows], SOURCE_FILE: ["f"] * len(rows)})
    single = ibis.memtable({"claim_id": ["C3"], "bene_id": ["B1"], "dx_position": ["1"], "icd10_code": ["I10"],
                            ROW_NUMBER: [1], SOURCE_FILE: ["g"]})
    tables = SourceTables("test")
    tables.add_part("claim_diagnosis", raw, ["f"], row_copy=raw.dx_position.cast("int64") - 1)
    tables.add_part("claim_diagnosis", single, ["g"], one_row_per_record=True)
    source = tables.prepared(engine)["claim_diagnosis"]
    assert source.unique_positions
    record, accepted, quarantine = ingest_table(engine, source, None)
    assert (record.read, record.accepted, record.quarantined) == (6, 5, 1) and record.reconciles
    assert [(r["row_number"], r["reason"]) for r in engine.fetch(quarantine).to_pylist()] == [
        (2, "duplicate key (claim_id, dx_position) of an earlier row")]
    tables.add_part("claim_diagnosis", single, ["g"])  # a part without copy numbers: the window is needed again
    assert not tables.raw["claim_diagnosis"].unique_positions


def test_text_a_connector_trimmed_is_checked_like_any_text(engine_for):
    """`text_trimmed` skips only the edge-blank trimming: blanks still become null, every check still runs."""
    import ibis

    from openasm.engine import ROW_NUMBER, SOURCE_FILE
    from openasm.ingest.validate import check_rows

    engine = engine_for("duckdb")
    raw = ibis.memtable({"claim_id": ["C1", "C2", ""], "bene_id": ["B1", "B1", "B1"],
                         "dx_position": ["1", "x", "1"], "icd10_code": ["I10", "I10", "I10"],
                         ROW_NUMBER: [1, 2, 3], SOURCE_FILE: ["f"] * 3})
    contract = CANONICAL_TABLES["claim_diagnosis"]
    verdicts = [engine.fetch(check_rows(raw=raw, contract=contract, text_trimmed=flag).order_by(ROW_NUMBER))
                .to_pylist() for flag in (False, True)]
    assert verdicts[0] == verdicts[1]
    assert [(r["claim_id"], r["_fail_column"]) for r in verdicts[1]] == [
        ("C1", None), ("C2", "dx_position"), (None, "claim_id")]

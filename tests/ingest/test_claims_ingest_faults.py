"""Issue 9, claims ingest: each failure a new user met, reproduced with generated files (no mocks).

Late quoting (after DuckDB's 20,480-row sniffing sample), quoted commas and line breaks, other delimiters and
encodings, non-finite and huge amounts, non-whole integers, a table that is mostly quarantined, and raw rows or
identifier values leaking into errors and the quarantine.
"""

from __future__ import annotations

import csv
import gc
import io
import math
import tempfile
from pathlib import Path

import pytest

from openasm.engine import connect
from openasm.engine_csv import CsvDialect, CsvFormatError
from openasm.rules import load_rules
from openasm.runs import ingest as ingest_runner
from openasm.runs.ingest import IngestInputs, quarantine_share_failures
from openasm.runs.summary import run_summary

from .cases import _line

SNIFF_ROWS = 20_480  # DuckDB's default sniffing sample: the faults below sit after it
FILLER = SNIFF_ROWS + 500
CLAIM_COLUMNS = [*_line("C0", 1), "facility_ccn"]
SECRET_BENE = "B1"  # a bene id that must never appear in errors or the quarantine
BENEFICIARY = [{"bene_id": "B1", "birth_date": "1950-01-01", "sex": "F"},
               {"bene_id": "B2", "birth_date": "1948-05-03", "sex": "M"}]
ENROLLMENT = [{"bene_id": "B1", "year_month": "2025-01", "has_part_a": "true", "has_part_b": "true",
               "has_part_d": "true", "is_medicare_advantage": "false"}]


def _claim_rows(count: int) -> list[dict[str, str]]:
    return [_line(f"F{i}", 1) for i in range(count)]


def _csv_text(rows: list[dict[str, str]], delimiter: str = ",", header: bool = True,
              quoting: int = csv.QUOTE_MINIMAL) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CLAIM_COLUMNS, delimiter=delimiter, lineterminator="\n",
                            quoting=quoting)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _folder(tmp_path: Path, claim_line: str | bytes, delimiter: str = ",") -> Path:
    """A clean beneficiary and enrollment (every row accepted) next to the claim_line file under test."""
    folder = tmp_path / "input"
    folder.mkdir(parents=True)
    for name, rows in (("beneficiary", BENEFICIARY), ("enrollment", ENROLLMENT)):
        with (folder / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    target = folder / "claim_line.csv"
    if isinstance(claim_line, bytes):
        target.write_bytes(claim_line)
    else:
        target.write_text(claim_line, encoding="utf-8")
    return folder


def run_ingest(engine, folder: Path, dialect: CsvDialect | None = None, rules=None):
    """The ingest runner on a folder of canonical tables, into the engine's run folder."""
    inputs = IngestInputs(folder, "canonical", dialect or CsvDialect())
    return ingest_runner.run_ingest(engine, rules, engine.run_dir, inputs)


def _quarantine(engine, table: str = "claim_line") -> list[dict]:
    rows = engine.fetch(engine.table("quarantine")).to_pylist()
    return sorted((r for r in rows if r["table_name"] == table), key=lambda r: r["row_number"])


def test_quoted_id_after_the_sniffing_sample_keeps_the_claim_whole(tmp_path, engine_for):
    # Before: the quoted claim id was read with its quote marks and split one claim into two.
    text = _csv_text(_claim_rows(FILLER))
    text += _csv_text([_line("10000000015824", 1)], header=False, quoting=csv.QUOTE_ALL)
    text += _csv_text([_line("10000000015824", 2)], header=False)
    assert '"10000000015824"' in text
    engine = engine_for("duckdb")
    result = run_ingest(engine, _folder(tmp_path, text))
    claim = engine.fetch(engine.table("claim_line").filter(lambda t: t.claim_id.startswith("1"))).to_pylist()
    assert sorted((r["claim_id"], r["line_number"]) for r in claim) == [("10000000015824", 1),
                                                                       ("10000000015824", 2)]
    assert result.tables["claim_line"].quarantined == 0


def test_quoted_comma_after_the_sniffing_sample_does_not_shift_columns(tmp_path, engine_for):
    rows = _claim_rows(FILLER) + [_line("Q1", 1, facility_ccn="12,34")]
    engine = engine_for("duckdb")
    result = run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    assert result.tables["claim_line"].quarantined == 0
    row = engine.fetch(engine.table("claim_line").filter(lambda t: t.claim_id == "Q1")).to_pylist()
    assert row[0]["facility_ccn"] == "12,34" and row[0]["allowed_amount"] == pytest.approx(100.5)


def test_quoted_line_break_is_one_value_and_later_rows_keep_their_numbers(tmp_path, backend, engine_for):
    # Before: a quoted newline refused the whole file. Row 4 (after the two-line record) is bad on purpose.
    rows = [_line("N1", 1), _line("N2", 1, facility_ccn="ward 1\nbed 2"), _line("N3", 1),
            _line("N4", 1, hcpcs_code="9921"), _line("N5", 1)]
    engine = engine_for(backend)
    result = run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    ccn = engine.fetch(engine.table("claim_line").filter(lambda t: t.claim_id == "N2")).to_pylist()[0]
    assert ccn["facility_ccn"] == "ward 1\nbed 2"
    assert [(r["row_number"], r["column_name"]) for r in _quarantine(engine)] == [(4, "hcpcs_code")]
    assert (result.tables["claim_line"].read, result.tables["claim_line"].accepted) == (5, 4)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_read_off_the_header(tmp_path, engine_for, delimiter):
    # Before: "missing required column 'claim_id'", with no word of the delimiter.
    rows = [_line("D1", 1, facility_ccn="a,b"), _line("D1", 2, hcpcs_code="93306")]
    engine = engine_for("duckdb")
    result = run_ingest(engine, _folder(tmp_path, _csv_text(rows, delimiter), delimiter))
    assert (result.tables["claim_line"].accepted, result.tables["claim_line"].quarantined) == (2, 0)


def test_semicolon_file_on_both_backends(tmp_path, backend, engine_for):
    rows = [_line("D1", 1), _line("D1", 2, hcpcs_code="93306")]
    result = run_ingest(engine_for(backend), _folder(tmp_path, _csv_text(rows, ";")))
    assert (result.tables["claim_line"].accepted, result.tables["claim_line"].quarantined) == (2, 0)


def test_given_delimiter_is_used_and_a_wrong_one_says_which_option(tmp_path, engine_for):
    folder = _folder(tmp_path, _csv_text([_line("D1", 1)], "|"), delimiter="|")
    result = run_ingest(engine_for("duckdb", tmp_path / "run-a"), folder, dialect=CsvDialect(delimiter="|"))
    assert result.tables["claim_line"].accepted == 1
    with pytest.raises(CsvFormatError, match="--delimiter") as err:
        run_ingest(engine_for("duckdb", tmp_path / "run-b"), folder, dialect=CsvDialect(delimiter=";"))
    assert "\n" not in str(err.value)


def test_latin1_file_is_one_line_naming_file_offset_and_option(tmp_path, engine_for):
    # Before: a long database error dump.
    text = _csv_text([_line("L1", 1), _line("L2", 1, facility_ccn="Hôpital")])
    data = text.encode("latin-1")
    folder = _folder(tmp_path, data)
    with pytest.raises(CsvFormatError) as err:
        run_ingest(engine_for("duckdb", tmp_path / "run-a"), folder)
    message = str(err.value)
    assert "\n" not in message and "claim_line.csv" in message and "--encoding" in message
    assert f"byte {data.index('ô'.encode('latin-1')):,}" in message
    engine = engine_for("duckdb", tmp_path / "run-b")
    run_ingest(engine, folder, dialect=CsvDialect(encoding="latin-1"))
    got = engine.fetch(engine.table("claim_line").filter(lambda t: t.claim_id == "L2")).to_pylist()
    assert got[0]["facility_ccn"] == "Hôpital"


def test_cp1252_file_is_read_through_a_utf8_copy(tmp_path, engine_for):
    text = _csv_text([_line("W1", 1, facility_ccn="€ ward")])
    engine = engine_for("duckdb")
    run_ingest(engine, _folder(tmp_path, text.encode("cp1252")), dialect=CsvDialect(encoding="cp1252"))
    assert engine.fetch(engine.table("claim_line")).to_pylist()[0]["facility_ccn"] == "€ ward"


def test_copies_of_inputs_never_outlive_an_engine_without_run_folder(tmp_path):
    """A UTF-8 copy of a cp1252 file and the records of a malformed one are written to the engine's scratch
    folder; without a run folder that is a temporary folder of its own, removed on close or when the engine is
    collected (before: one folder per file left in the system's temp folder, holding copies of the input)."""
    cp1252 = tmp_path / "claim_line.csv"
    cp1252.write_bytes(_csv_text([_line("W1", 1, facility_ccn="€ ward")]).encode("cp1252"))
    lines = _csv_text([_line("K1", 1), _line("K2", 1)]).split("\n")
    lines[2] = lines[2].replace("carrier", "car\rrier", 1)  # DuckDB's parser stops: records are re-read one by one
    malformed = tmp_path / "malformed.csv"
    malformed.write_bytes("\n".join(lines).encode())
    closed, collected = connect("duckdb"), connect("duckdb")
    folders = []
    for engine in (closed, collected):
        assert engine.count(engine.read_source(cp1252, encoding="cp1252")) == 1
        assert engine.count(engine.read_source(malformed)) == 3  # K1, and K2 cut in two by its CR
        folders.append(engine._scratch())
        assert folders[-1].is_dir() and folders[-1].parent == Path(tempfile.gettempdir())
        assert len(list(folders[-1].iterdir())) == 2
    closed.close()
    del engine, collected
    gc.collect()
    assert not any(folder.exists() for folder in folders)


@pytest.mark.parametrize("amount", ["NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-1e309"])
def test_non_finite_amounts_are_invalid_values(tmp_path, engine_for, amount):
    rows = [_line("A1", 1), _line("A2", 1, allowed_amount=amount)]
    engine = engine_for("duckdb")
    run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    assert [(r["row_number"], r["column_name"], r["reason"]) for r in _quarantine(engine)] == [
        (2, "allowed_amount", "not a valid float64")]


def test_huge_amounts_cannot_turn_totals_infinite(tmp_path, engine_for):
    # Before: five rows of 1e308 summed to inf and every share in the summary was nan.
    rows = [_line("A0", 1)] + [_line(f"H{i}", 1, allowed_amount="1e308") for i in range(5)]
    engine = engine_for("duckdb")
    run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    assert {r["reason"] for r in _quarantine(engine)} == {"amount too large to hold to the cent (beyond ±2^53 cents)"}
    run_summary(engine, load_rules(2027), engine.run_dir)
    for row in engine.fetch(engine.table("spend_by_setting")).to_pylist():
        assert all(row[c] is None or math.isfinite(row[c]) for c in ("allowed_amount", "allowed_share")), row


def test_integer_that_is_not_whole_is_rejected(tmp_path, engine_for):
    # Before: line_number "1.6" was stored as 2.
    rows = [_line("I1", "1.6"), _line("I2", "2.0"), _line("I3", " 3 ")]
    engine = engine_for("duckdb")
    run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    assert [(r["row_number"], r["reason"]) for r in _quarantine(engine)] == [(1, "not a valid int32")]
    lines = {r["claim_id"]: r["line_number"] for r in engine.fetch(engine.table("claim_line")).to_pylist()}
    assert lines == {"I2": 2, "I3": 3}


def test_mostly_quarantined_table_is_a_failure_with_its_top_reasons(tmp_path, engine_for):
    # Before: every date MM/DD/YYYY, every row quarantined, exit 0 and no warning.
    rows = [_line(f"M{i}", 1, claim_from_date="01/05/2025", claim_thru_date="01/05/2025") for i in range(9)]
    rows.append(_line("M9", 1))
    engine = engine_for("duckdb")
    result = run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    failures = quarantine_share_failures(engine, result, max_share=0.5)
    assert [f.table for f in failures] == ["claim_line"]
    assert failures[0].share == pytest.approx(0.9)
    assert failures[0].top_reasons[0] == ("claim_from_date", "not a valid date", 9)
    assert quarantine_share_failures(engine, result, max_share=0.95) == []


def test_malformed_records_are_quarantined_by_row_without_their_values(tmp_path, backend, engine_for):
    # Before: strict parsing refused the file with an error quoting the raw row (bene ids in logs).
    good = _csv_text([_line("R1", 1), _line("R2", 1)])
    lines = good.splitlines()
    body = [lines[0], lines[1], lines[2] + ",extra,fields", lines[1].replace("R1", "R3", 1),
            lines[1].replace("R1", "R4", 1).replace("99213", "9921"), lines[1][:40]]
    engine = engine_for(backend)
    result = run_ingest(engine, _folder(tmp_path, "\n".join(body) + "\n"))
    quarantine = _quarantine(engine)
    assert [(r["row_number"], r["column_name"]) for r in quarantine] == [
        (2, "(record)"), (4, "hcpcs_code"), (5, "(record)")]
    assert all(r["reason"].startswith("malformed CSV record") for r in quarantine if r["column_name"] == "(record)")
    assert (result.tables["claim_line"].read, result.tables["claim_line"].accepted) == (5, 2)
    for row in quarantine:
        assert SECRET_BENE not in " ".join(str(v) for v in row.values())


def test_identifier_values_never_reach_the_quarantine(tmp_path, engine_for):
    rows = [_line("U1", 1, bene_id="B404"), _line("U2", 1, rendering_npi="1234567890"), _line("U2", 1),
            _line("U2", 1), _line("U3", 1, billing_tin="12345678")]
    engine = engine_for("duckdb")
    run_ingest(engine, _folder(tmp_path, _csv_text(rows)))
    quarantine = _quarantine(engine)
    assert [r["column_name"] for r in quarantine] == ["bene_id", "rendering_npi", "claim_id,line_number",
                                                      "billing_tin"]
    assert all(r["raw_value"] is None for r in quarantine)
    dates = [_line("V1", 1, claim_from_date="2025-13-01")]
    run_ingest(engine, _folder(tmp_path / "again", _csv_text(dates)))
    assert _quarantine(engine)[0]["raw_value"] == "2025-13-01"  # other values stay to help fix the file


def test_bare_carriage_return_outside_quotes_does_not_stop_the_file(tmp_path, engine_for):
    # DuckDB's strict parser stops on a lone CR in an unquoted field; the record-by-record reader takes over.
    lines = _csv_text([_line("K1", 1), _line("K2", 1), _line("K3", 1, hcpcs_code="9921")]).split("\n")
    lines[2] = lines[2].replace("carrier", "car\rrier", 1)
    engine = engine_for("duckdb")
    result = run_ingest(engine, _folder(tmp_path, "\n".join(lines)))
    record = result.tables["claim_line"]
    assert record.reconciles and record.accepted == 1
    reasons = [(r["column_name"], r["reason"]) for r in _quarantine(engine)]
    assert reasons[-1] == ("hcpcs_code", "not a valid hcpcs code shape")
    assert all(reason.startswith("malformed CSV record") for column, reason in reasons[:-1])


@pytest.mark.usefixtures("wide_console")
def test_cli_ingest_fails_on_a_mostly_quarantined_table_and_reads_the_given_delimiter(tmp_path):
    from typer.testing import CliRunner

    from openasm.cli import app

    rows = [_line(f"D{i}", 1, claim_from_date="01/05/2025", claim_thru_date="01/05/2025") for i in range(3)]
    folder = _folder(tmp_path, _csv_text(rows, ";"), ";")
    cli = CliRunner()
    failed = cli.invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run-a"), "--delimiter", "semicolon"],
                        terminal_width=250)
    said = " ".join(failed.output.split())
    assert failed.exit_code != 0
    assert "claim_line: 3 of 3 rows quarantined" in said
    assert "claim_from_date: not a valid date (3 rows)" in said and SECRET_BENE not in said
    manifest = (tmp_path / "run-a" / "manifest.json").read_text()
    assert "quarantine_share_failures" in manifest and "ingest.max_quarantine_share" in manifest
    allowed = cli.invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "run-b"), "--delimiter", ";",
                               "--set", "ingest.max_quarantine_share=1"], terminal_width=250)
    assert allowed.exit_code == 0, allowed.output

"""Hypothesis fuzz of the claim_line CSV reader (issue 9): random bytes, random quoting (proper, stray, unclosed),
random field counts and line breaks. Whatever the file holds, no exception escapes ingest except the one-line
encoding error for bytes that are not UTF-8, and every record is accepted or quarantined: read = accepted +
quarantined, with one quarantine row per rejected record and unique row numbers."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.engine_csv import CsvDialect, CsvFormatError
from openasm.ingest.raw import read_canonical_files
from openasm.runs.ingest import ingest_table

from .cases import _line

HEADER = list(_line("C0", 1))
TEMPLATE = [value.encode() for value in _line("C0", 1).values()]
SPECIAL = [b",", b'"', b"\n", b"\r\n", b"\r", b";", b"\t", b"\x00", b"\xff", b"\xc3\xa9", b" ", b"1.6", b"NaN"]


def _field() -> st.SearchStrategy[bytes]:
    noise = st.lists(st.one_of(st.binary(max_size=4), st.sampled_from(SPECIAL)), max_size=4).map(b"".join)
    return st.one_of(st.sampled_from(TEMPLATE), noise)


def _quote(value: bytes, style: str) -> bytes:
    if style == "proper":
        return b'"' + value.replace(b'"', b'""') + b'"'
    if style == "stray":
        return value[:1] + b'"' + value[1:]
    if style == "unclosed":
        return b'"' + value
    return value


@st.composite
def claim_line_csv(draw) -> bytes:
    """A header the contract knows, then records of random fields, quoting, field counts and line endings."""
    lines = [",".join(HEADER).encode()]
    for _ in range(draw(st.integers(0, 12))):
        count = draw(st.sampled_from([len(HEADER)] * 4 + [len(HEADER) - 1, len(HEADER) + 2, 1]))
        fields = []
        for position in range(count):
            value = draw(_field()) if draw(st.booleans()) else TEMPLATE[position % len(TEMPLATE)]
            style = draw(st.sampled_from(["none", "none", "proper", "proper", "stray", "unclosed"]))
            fields.append(_quote(value, style))
        lines.append(b",".join(fields))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(lines) + draw(st.sampled_from([ending, b""]))


def _check(engine, data: bytes, dialect: CsvDialect) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claim_line.csv"
        path.write_bytes(data)
        try:
            record, _, quarantine = ingest_table(engine, read_canonical_files(engine, "claim_line", [path], dialect), None)
        except CsvFormatError as err:
            # Only bytes that are not valid in the encoding may stop the file, with one line naming it.
            assert dialect.encoding == "utf-8", err
            try:
                data.decode("utf-8")
                raise AssertionError(f"valid UTF-8 refused: {err}")
            except UnicodeDecodeError:
                pass
            assert "\n" not in str(err) and "claim_line.csv" in str(err) and "--encoding" in str(err)
            return
        rows = engine.fetch(quarantine).to_pylist()
    assert record.read == record.accepted + record.quarantined
    assert record.quarantined == len(rows)
    numbers = [row["row_number"] for row in rows]
    assert len(set(numbers)) == len(numbers)
    assert all(1 <= n <= max(record.read, 1) + 100 for n in numbers)


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_fuzzed_claim_line_csv_reconciles_in_utf8():
    engine = connect("duckdb")

    @FUZZ
    @given(claim_line_csv())
    def run(data: bytes) -> None:
        _check(engine, data, CsvDialect())

    try:
        run()
    finally:
        engine.close()


def test_fuzzed_claim_line_csv_reconciles_in_latin1():
    """Every byte sequence is Latin-1 text, so here no file may be refused at all."""
    engine = connect("duckdb")

    @FUZZ
    @given(claim_line_csv())
    def run(data: bytes) -> None:
        _check(engine, data, CsvDialect(encoding="latin-1"))

    try:
        run()
    finally:
        engine.close()

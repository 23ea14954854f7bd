"""Issue 14: blanks are trimmed by one SQL function per backend (DuckDB trim, Spark btrim) instead of a guarded
regular expression. The result must be the one Python's strip of space, tab, CR and LF gives: inner blanks,
other whitespace (form feed, vertical tab, no-break space) and letters stay; null stays null."""

from __future__ import annotations

import ibis
import pyarrow as pa

from openasm.ingest.checks import BLANKS, trim_blanks, trimmed
from openasm.text_ops import trim_chars

VALUES = [
    "A1", " A1", "A1 ", "\tA1\r\n", "\n \t\rA 1\t \n", "A\t1", " ", "\t\r\n", "", "\fA1\f", "\vA1", "\xa0A1\xa0",
    "tnrA1rnt", "f A1 f", "é ", " Aé", "é\t", "!A1!", None,
]


def test_trim_blanks_is_python_strip_of_the_four_blanks(backend, engine_for):
    engine = engine_for(backend)
    values = engine.save("trim_values", ibis.memtable(pa.table({
        "position": list(range(len(VALUES))), "text": pa.array(VALUES, pa.string())})))
    got = engine.fetch(values.mutate(edge=trim_blanks(values.text), value=trimmed(values.text)).order_by("position"))
    expected = [None if v is None else v.strip(BLANKS) for v in VALUES]
    assert got.column("edge").to_pylist() == expected
    assert got.column("value").to_pylist() == [v or None for v in expected]


def test_trim_chars_above_the_blanks(backend, engine_for):
    """DuckDB trims only values whose first or last character is at or below the highest of the characters to
    trim: with characters above the blanks ('!' is 33, 'z' 122) the result is still Python's strip of them."""
    engine = engine_for(backend)
    values = engine.save("trim_values", ibis.memtable(pa.table({
        "position": list(range(len(VALUES))), "text": pa.array(VALUES, pa.string())})))
    got = engine.fetch(values.mutate(edge=trim_chars(values.text, "!z ")).order_by("position"))
    assert got.column("edge").to_pylist() == [None if v is None else v.strip("!z ") for v in VALUES]

"""Fixed-width cutting (connectors.layout): the one-pass SQL TRIM path and the regex path give the same fields,
null tokens become null, a span is cut apart like the record it came from, and scratch tables stay out of the
run database."""

from __future__ import annotations

import ibis

from openasm.connectors.layout import FixedField, RecordLayout, Span, cut_records
from openasm.engine import ROW_NUMBER, SOURCE_FILE, connect

LAYOUT = RecordLayout("TEST", "test records", 16, {
    "ID": FixedField("ID", 1, 4, "text"),
    "CODE": FixedField("CODE", 5, 3, "text"),
    "DX_1": FixedField("DX_1", 8, 4, "text"),
    "DX_2": FixedField("DX_2", 12, 5, "date"),
}, ("~",), ("99999",))
COLUMNS = {"claim_id": "ID", "code": "CODE", "dx_1": "DX_1", "dx_2": "DX_2"}


def _lines(records: list[str]) -> ibis.Table:
    return ibis.memtable({"line": records, ROW_NUMBER: list(range(1, len(records) + 1)),
                          SOURCE_FILE: ["f"] * len(records)})


def _cut(records: list[str], **options) -> list[dict]:
    con = ibis.duckdb.connect()
    return sorted(con.to_pyarrow(cut_records(_lines(records), LAYOUT, COLUMNS, **options)).to_pylist(),
                  key=lambda r: r[ROW_NUMBER])


def test_one_pass_and_split_cuts_agree_on_space_padded_records():
    records = ["A1  X  I10 E119 ", "  B2~  ~   99999", "C3  ABCI50 K21  "]
    one_pass = _cut(records, other_blanks=False)
    split = _cut(records, other_blanks=True)
    assert one_pass == split
    assert [(r["claim_id"], r["code"], r["dx_1"], r["dx_2"]) for r in one_pass] == [
        ("A1", "X", "I10", "E119"), ("B2", None, None, None), ("C3", "ABC", "I50", "K21")]


def test_tabs_and_carriage_returns_at_field_edges_are_trimmed_on_the_split_path():
    rows = _cut(["A1\t X\t I10\rE119\t"], other_blanks=True)
    assert (rows[0]["claim_id"], rows[0]["code"], rows[0]["dx_1"], rows[0]["dx_2"]) == ("A1", "X", "I10", "E119")


def test_a_span_is_cut_apart_like_the_record_it_came_from():
    records = ["A1  X  I10 E119 ", "C3  ABCI50 99999"]
    con = ibis.duckdb.connect()
    span = Span("DX_1", "DX_2")
    spans = cut_records(_lines(records), LAYOUT, {"claim_id": "ID"}, spans={"_span": span}, other_blanks=False)
    cut = cut_records(spans, LAYOUT, {"dx_1": "DX_1", "dx_2": "DX_2"}, text="_span", text_start=span.start(LAYOUT),
                      keep=("claim_id",), other_blanks=False)
    rows = sorted(con.to_pyarrow(cut).to_pylist(), key=lambda r: r[ROW_NUMBER])
    assert [(r["claim_id"], r["dx_1"], r["dx_2"]) for r in rows] == [("A1", "I10", "E119"), ("C3", "I50", None)]


def test_scratch_tables_are_not_written_to_the_run_database(tmp_path):
    engine = connect("duckdb", tmp_path)
    stored = engine.save("kept", ibis.memtable({"x": [1, 2]}))
    scratch = engine.save("connector__int_0", ibis.memtable({"x": [3]}), scratch=True)
    assert engine.count(stored) == 2 and engine.count(scratch) == 1
    engine.drop("connector__int_0")
    assert not engine.has_table("connector__int_0")
    engine.save("connector__int_1", ibis.memtable({"x": [4]}), scratch=True)
    engine.close()
    reopened = connect("duckdb", tmp_path)
    assert reopened.has_table("kept") and not reopened.has_table("connector__int_1")
    reopened.close()

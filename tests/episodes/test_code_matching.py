"""Issue 14: diagnosis and prefix matching as one regular expression per list. The verdict must be the one the
normalised comparison gives (dots anywhere ignored, any letter case; exact codes whole, prefix codes at the
start), on both backends, including the odd values claims carry."""

from __future__ import annotations

import ibis
import pyarrow as pa

from openasm.episodes.codes import diagnosis_filter, diagnosis_matches, starts_with_any

CODES = pa.table({"code": ["I509", "I50", "M5416", "I110"], "match": ["exact", "prefix", "exact", "exact"]})
VALUES = [
    "I50", "I50.9", "i50.9", "I5091", ".I509", "I.5.0", "I4", "M54.16", "M5416", "m54.16.", "M541", "M54161",
    "I110", "I11.0", "I11.01", "I1100", "I110\n", " I110", "I11O", "", ".", None,
]


def _normalised_verdict(value: str | None) -> bool:
    if value is None:
        return False
    code = value.replace(".", "").upper()
    return any(code == c if m == "exact" else code.startswith(c)
               for c, m in zip(CODES["code"].to_pylist(), CODES["match"].to_pylist()))


def test_diagnosis_match_is_the_normalised_comparison(backend, engine_for):
    engine = engine_for(backend)
    values = engine.save("dx_values", ibis.memtable(pa.table({
        "position": list(range(len(VALUES))), "dx": pa.array(VALUES, pa.string())})))
    got = engine.fetch(values.mutate(hit=diagnosis_matches(values.dx, CODES)).order_by("position"))
    assert got.column("hit").to_pylist() == [_normalised_verdict(v) for v in VALUES]
    kept = engine.fetch(values.filter(*diagnosis_filter(values.dx, CODES)).order_by("position"))
    assert kept.column("dx").to_pylist() == [v for v in VALUES if _normalised_verdict(v)]
    assert engine.fetch(values.filter(diagnosis_matches(values.dx, CODES.slice(0, 0))).count().as_table()
                        ).column(0)[0].as_py() == 0


def test_starts_with_any_matches_prefixes_literally(backend, engine_for):
    engine = engine_for(backend)
    codes = ["9640", "J9", "77.", "(x"]
    values = ["96401", "9640", "964", "J9045", "j9045", "77.1", "7701", "(x1", "x9640", "", None]
    table = engine.save("hcpcs_values", ibis.memtable(pa.table({
        "position": list(range(len(values))), "code": pa.array(values, pa.string())})))
    got = engine.fetch(table.mutate(hit=starts_with_any(table.code, codes).fill_null(False)).order_by("position"))
    expected = [v is not None and any(v.startswith(c) for c in codes) for v in values]
    assert got.column("hit").to_pylist() == expected

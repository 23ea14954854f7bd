"""Builders for the quality-scoring tests (measure_aggregate and participant rows with defaults, rules for the
PY2026 MIPS benchmark vectors) and tests of the two table helpers they rely on."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.rules import RulesForYear, load_rules
from openasm.scoring.quality_benchmarks import (
    arrow_memtable,
    measure_spec_table,
    spec_year_for,
)

COHORT = {"492": "hf", "008": "hf", "005": "hf", "236": "hf", "377": "hf",
          "238": "lbp", "134": "lbp", "128": "lbp", "220": "lbp"}
AGGREGATE_TYPES = {
    "performance_year": pa.int32(), "measure_id": pa.string(), "collection_type": pa.string(), "tin": pa.string(),
    "npi": pa.string(), "entity_level": pa.string(), "cohort": pa.string(), "stratum": pa.string(),
    "eligible_population": pa.int64(), "performance_met": pa.int64(), "performance_not_met": pa.int64(),
    "exclusions": pa.int64(), "exceptions": pa.int64(), "performance_rate": pa.float64(),
    "data_completeness": pa.float64(), "case_count": pa.int64(), "is_proxy": pa.bool_(), "source": pa.string(),
    "cms_achievement_points": pa.float64(), "cms_scored_flag": pa.bool_(),
}


def result(measure_id: str, collection_type: str, npi: str | None, *, met: int | None = None,
           not_met: int | None = None, rate: float | None = None, cases: int = 10_000, **extra: Any) -> dict:
    """One measure_aggregate row. With `rate` (0–100) the counts are `cases` patients at that rate, so the rate is
    exact to 1/cases (e.g. rate 0.01 of 10,000 = 1 met); otherwise `met` / `not_met` are taken as given.
    Defaults: PY2026, TIN 'T1', TIN/NPI level, stratum overall, DC = reported share of EP (1 unless given)."""
    if rate is not None:
        met = round(rate * cases / 100)
        not_met = cases - met
    row = {
        "performance_year": 2026, "measure_id": measure_id, "collection_type": collection_type, "tin": "T1",
        "npi": npi, "entity_level": "tin_npi" if npi is not None else "tin", "cohort": COHORT[measure_id],
        "stratum": "overall", "performance_met": met, "performance_not_met": not_met, "exclusions": 0,
        "exceptions": 0, "performance_rate": None, "is_proxy": False, "source": "test",
        "cms_achievement_points": None, "cms_scored_flag": None,
    }
    row.update(extra)
    reported = sum(row[c] or 0 for c in ("performance_met", "performance_not_met", "exclusions", "exceptions"))
    row.setdefault("eligible_population", reported)
    if "data_completeness" not in extra:
        row["data_completeness"] = reported / row["eligible_population"] if row["eligible_population"] else None
    if "case_count" not in extra:
        row["case_count"] = (met or 0) + (not_met or 0)
    return row


def aggregate(rows: list[dict]) -> ir.Table:
    """measure_aggregate as a memtable (integer nulls survive PySpark via arrow_memtable)."""
    return arrow_memtable(pa.table({c: pa.array([r.get(c) for r in rows], kind) for c, kind in AGGREGATE_TYPES.items()}))


def participants(rows: list[tuple], *, with_flag: bool = False, performance_year: int = 2026) -> ir.Table:
    """rows: (npi, tin, cohort[, small_practice_flag]), all participants of `performance_year`."""
    data = {
        "performance_year": pa.array([performance_year] * len(rows), pa.int32()), "npi": [r[0] for r in rows],
        "tin": [r[1] for r in rows], "cohort": [r[2] for r in rows], "is_participant": [True] * len(rows),
    }
    if with_flag:
        data["small_practice_flag"] = pa.array([r[3] for r in rows], pa.bool_())
    return ibis.memtable(pa.table(data))


def mips_rules(**overrides: Any) -> RulesForYear:
    """PY2027 rules scoring against the MIPS benchmark of each row's own year with the MIPS 7-point cap: the setting
    of the quality.md §2.6 vectors."""
    return load_rules(2027, overrides={"quality.benchmark_population": "mips_historical",
                                       "quality.topped_out_cap_points": 7, **overrides})


def run(engine, expr: ir.Table) -> list[dict]:
    """Execute on the engine's backend (memtables included) and return rows."""
    return engine.con.to_pyarrow(expr).to_pylist()


# ------------------------------------------------------------------------------------------ helper tests
def test_arrow_memtable_keeps_integer_nulls(backend, engine_for) -> None:
    engine = engine_for(backend)
    table = pa.table({"n": pa.array([-1, None, 3], pa.int64()), "y": pa.array([2026, 2027, None], pa.int32()),
                      "s": ["a", None, "c"]})
    got = run(engine, arrow_memtable(table).order_by("s"))
    assert sorted(got, key=lambda r: str(r["s"])) == sorted(table.to_pylist(), key=lambda r: str(r["s"]))


def test_result_builder_arithmetic() -> None:
    row = result("238", "registry", "N1", rate=0.01)
    assert (row["performance_met"], row["performance_not_met"]) == (1, 9_999)        # 0.01% of 10,000
    assert row["data_completeness"] == 1.0 and row["case_count"] == 10_000
    partial = result("134", "registry", "N1", met=10, not_met=5, eligible_population=20)
    assert partial["data_completeness"] == 0.75                                        # 15 / 20


def test_measure_spec_rows_and_the_year_each_result_reads(backend, engine_for) -> None:
    rules = load_rules(2027)
    table = measure_spec_table(rules)
    spec = {(r["performance_year"], r["measure_id"], r["collection_type"]): r for r in table.to_pylist()}
    assert {year for year, _, _ in spec} == {2026, 2027}
    assert spec[(2027, "134", "electronicHealthRecord")]["ecqm_version"] == "16"       # CMS2v16
    assert spec[(2026, "134", "electronicHealthRecord")]["ecqm_version"] == "15"
    assert spec[(2027, "238", "registry")]["scored_stratum"] == "overall"
    assert spec[(2027, "492", "administrativeClaims")]["spec_is_inverse"] is True
    assert (2027, "377", "registry") not in spec                                        # Q377 is eCQM only
    years = ibis.memtable({"performance_year": [2024, 2026, 2027, 2031]})
    got = run(engine_for(backend), years.select("performance_year", spec_year=spec_year_for(
        years.performance_year, table["performance_year"].to_pylist())))
    assert {r["performance_year"]: r["spec_year"] for r in got} == {2024: 2026, 2026: 2026, 2027: 2027, 2031: 2027}

"""Quality benchmarks (quality.md §2.2, §3, §7): the shipped MIPS rows against the upstream JSON and the spec tables,
strict reading of user benchmark files (clear errors naming file, record and field), cohort percentiles (type 7,
MIPS build rules, minimum reporters) and the selection per `quality.benchmark_population`, on both backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.rules import RulesError, load_rules
from openasm.scoring.benchmark_file import BenchmarkFileError, read_mips_benchmark_file
from openasm.scoring.quality_benchmarks import (
    BENCHMARK_SCHEMA,
    arrow_memtable,
    build_quality_benchmark,
    shipped_mips_benchmarks,
)
from openasm.scoring.quality_category import route_measure_results
from openasm.scoring.quality_points import PERCENTILE_KEYS, pcol

from .test_quality_support import aggregate, mips_rules, participants, result, run

SHARED = Path(__file__).resolve().parents[3] / "shared"
QPP = SHARED / "data" / "qpp-measures-data"
ASM_MEASURES = {"005", "008", "128", "134", "220", "236", "238", "377", "492"}
EHR, CQM = "electronicHealthRecord", "registry"
needs_shared = pytest.mark.skipif(not QPP.is_dir(), reason="../shared/data/qpp-measures-data not present")


def _key(row):
    return row["performance_year"], row["measure_id"], row["collection_type"]


# ------------------------------------------------------------------------------------------ shipped rows
@needs_shared
@pytest.mark.parametrize("year", [2025, 2026])
def test_shipped_rows_equal_the_upstream_json(year) -> None:
    shipped = {_key(r): r for r in shipped_mips_benchmarks(load_rules(2027)).to_pylist() if r["performance_year"] == year}
    upstream = json.loads((QPP / "benchmarks" / f"{year}.json").read_text(encoding="utf-8"))
    records = [r for r in upstream if r["measureId"] in ASM_MEASURES]
    assert {(year, r["measureId"], r["submissionMethod"]) for r in records} == {
        k for k, r in shipped.items() if r["exclusion_reason"] is None}
    for record in records:
        row = shipped[(year, record["measureId"], record["submissionMethod"])]
        assert row["benchmark_year"] == record["benchmarkYear"]
        assert row["is_inverse"] == record["isInverse"] and row["metric_type"] == record["metricType"]
        assert row["is_topped_out"] == record["isToppedOut"]
        assert row["is_topped_out_by_program"] == record["isToppedOutByProgram"]
        assert row["average_performance_rate"] == record["averagePerformanceRate"]
        assert {k: row[pcol(k)] for k in PERCENTILE_KEYS} == {int(k): v for k, v in record["percentiles"].items()}


def test_shipped_exclusion_and_flat_flags() -> None:
    rows = {_key(r): r for r in shipped_mips_benchmarks(load_rules(2027)).to_pylist()}
    excluded = {k: r["exclusion_reason"] for k, r in rows.items() if r["exclusion_reason"]}
    assert excluded == {(2026, "128", "claims"): "BR-009"}
    assert rows[(2026, "128", "claims")][pcol(10)] is None
    assert {k for k, r in rows.items() if r["is_flat"]} == {(y, "236", m) for y in (2025, 2026) for m in ("claims", CQM)}
    assert not rows[(2026, "492", "administrativeClaims")]["is_flat"]


@pytest.mark.skipif(not (SHARED / "spec" / "quality.md").is_file(), reason="shared/spec not present")
def test_shipped_rows_match_the_spec_tables() -> None:
    """quality.md §3 lists every benchmark row (BY, inverse, TO/Cap, average, p1 … p99) for PY2026 and PY2025."""
    text = (SHARED / "spec" / "quality.md").read_text(encoding="utf-8")
    section = text.split("## 3 Benchmark tables", 1)[1].split("\n## ", 1)[0]
    short = {"EHR": EHR, "CQM": CQM, "Claims": "claims", "Admin": "administrativeClaims"}
    rows = {_key(r): r for r in shipped_mips_benchmarks(load_rules(2027)).to_pylist()}
    checked = 0
    for year, block in re.findall(r"### PY(\d{4})\n(.*?)(?=\n### |\Z)", section, flags=re.DOTALL):
        for line in block.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not cells or not re.fullmatch(r"\d{3}", cells[0]) or "no benchmark" in line:
                continue
            row = rows[(int(year), cells[0], short[cells[1].split()[0]])]
            assert row["benchmark_year"] == int(cells[2])
            assert row["is_inverse"] == (cells[3] == "Y")
            assert (row["is_topped_out"], row["is_topped_out_by_program"]) == tuple(v == "Y" for v in cells[4].split("/"))
            assert row["average_performance_rate"] == float(cells[5])
            assert [row[pcol(k)] for k in PERCENTILE_KEYS] == [float(v) for v in cells[6:17]]
            checked += 1
    assert checked == 35  # 18 PY2026 rows + 17 PY2025 rows with a benchmark


# ------------------------------------------------------------------------------------------ user files
@needs_shared
def test_user_file_in_qpp_format_reads_like_the_shipped_rows() -> None:
    table = read_mips_benchmark_file(QPP / "benchmarks" / "2026.json")
    assert table.schema == BENCHMARK_SCHEMA and table.num_rows == 293
    user = {_key(r): r for r in table.to_pylist() if r["measure_id"] in ASM_MEASURES}
    shipped = {_key(r): r for r in shipped_mips_benchmarks(load_rules(2027)).to_pylist()
               if r["performance_year"] == 2026 and r["exclusion_reason"] is None}
    assert user == shipped


def _record(**change):
    record = {"measureId": "134", "performanceYear": 2026, "benchmarkYear": 2024, "submissionMethod": "registry",
              "isInverse": False, "isToppedOut": False, "isToppedOutByProgram": False,
              "metricType": "singlePerformanceRate", "averagePerformanceRate": 50.0,
              "percentiles": {str(k): float(k) for k in PERCENTILE_KEYS}}
    record.update(change)
    return {k: v for k, v in record.items() if v is not ...}


def _write(tmp_path, records, name="bench.json"):
    path = tmp_path / name
    path.write_text(records if isinstance(records, str) else json.dumps(records), encoding="utf-8")
    return path


MALFORMED = [
    ("not json", "{[", None, "not valid JSON (line 1"),
    ("top level object", {"measureId": "134"}, None, "expected a JSON array"),
    ("record not object", [_record(), 7], "record 1", "expected an object"),
    ("missing measureId", [_record(measureId=...)], "record 0 field 'measureId'", "non-empty string"),
    ("year as text", [_record(performanceYear="2026")], "record 0 field 'performanceYear'", "four-digit year"),
    ("unknown method", [_record(), _record(submissionMethod="fax")], "record 1 field 'submissionMethod'",
     "unknown submission method 'fax'"),
    ("inverse as text", [_record(isInverse="no")], "record 0 field 'isInverse'", "expected true or false"),
    ("inverse missing", [_record(isInverse=...)], "record 0 field 'isInverse'", "expected true or false"),
    ("topped out as number", [_record(isToppedOutByProgram=1)], "record 0 field 'isToppedOutByProgram'",
     "expected true or false"),
    ("no percentiles", [_record(percentiles=...)], "record 0 field 'percentiles'", "missing"),
    ("percentiles as list", [_record(percentiles=[1, 2])], "record 0 field 'percentiles'", "expected an object"),
    ("missing keys", [_record(percentiles={"1": 0, "10": 1, "20": 2})], "record 0 field 'percentiles'",
     "missing percentile keys 30, 40, 50, 60, 70, 80, 90, 99"),
    ("unknown key", [_record(percentiles={**{str(k): k for k in PERCENTILE_KEYS}, "95": 96})],
     "record 0 field 'percentiles'", "unknown percentile keys 95"),
    ("value as text", [_record(percentiles={**{str(k): k for k in PERCENTILE_KEYS}, "50": "50"})],
     "record 0 field 'percentiles.50'", "expected a number, got '50'"),
    ("not ascending", [_record(percentiles={**{str(k): k for k in PERCENTILE_KEYS}, "40": 29.5})],
     "record 0 field 'percentiles.40'", "29.5 is below percentiles.30 = 30.0 (values must ascend)"),
    ("above 100", [_record(percentiles={**{str(k): k for k in PERCENTILE_KEYS}, "99": 100.5})],
     "record 0 field 'percentiles.99'", "outside 0-100"),
    ("average as text", [_record(averagePerformanceRate="high")], "record 0 field 'averagePerformanceRate'",
     "expected a number or null"),
    ("repeated key", [_record(), _record()], "record 1 field 'submissionMethod'", "repeats measure 134 / registry"),
    ("short deciles", [_record(percentiles=..., deciles=[1, 2, 3])], "record 0 field 'deciles'", "list of 9 numbers"),
    ("descending direct deciles", [_record(percentiles=..., deciles=[90, 80, 70, 60, 50, 40, 30, 20, 10])],
     "record 0 field 'deciles[1]'", "values must ascend"),
]


@pytest.mark.parametrize("name, content, where, problem", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_benchmark_files_give_clear_errors(tmp_path, name, content, where, problem) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(BenchmarkFileError) as err:
        read_mips_benchmark_file(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert problem in message, message
    if where is not None:
        assert f"{path} {where}" in message, message


def test_cost_and_non_proportion_measures_are_not_range_checked(tmp_path) -> None:
    dollars = {str(k): 1000.0 + 10 * k for k in PERCENTILE_KEYS}
    path = _write(tmp_path, [_record(measureId="COST_HF_1", submissionMethod="administrativeClaims",
                                     metricType="costScore", isInverse=True, percentiles=dollars)])
    assert read_mips_benchmark_file(path).column(pcol(99)).to_pylist() == [1990.0]


def test_legacy_deciles_are_converted_to_percentiles(tmp_path) -> None:
    direct = _record(percentiles=..., deciles=[10, 20, 30, 40, 50, 60, 70, 80, 90])
    inverse = _record(measureId="238", isInverse=True, percentiles=...,       # inverse arrays descend: p90 first
                      deciles=[15.85, 10.16, 5.23, 2.02, 0.66, 0.14, 0, 0, 0])
    rows = {r["measure_id"]: r for r in read_mips_benchmark_file(_write(tmp_path, [direct, inverse])).to_pylist()}
    assert [rows["134"][pcol(k)] for k in PERCENTILE_KEYS] == [None, 10, 20, 30, 40, 50, 60, 70, 80, 90, None]
    assert rows["134"]["is_flat"]
    assert [rows["238"][pcol(k)] for k in PERCENTILE_KEYS] == [None, 0, 0, 0, 0.14, 0.66, 2.02, 5.23, 10.16, 15.85,
                                                               None]


def test_exclusion_reasons_file(tmp_path) -> None:
    bench = _write(tmp_path, [_record()])
    reasons = [{"measureId": "128", "performanceYear": 2026, "benchmarkYear": 2024, "submissionMethod": "claims",
                "reasonCodes": ["BR-009"]}]
    table = read_mips_benchmark_file(bench, exclusion_reasons_path=_write(tmp_path, reasons, "reasons.json"))
    rows = {_key(r): r for r in table.to_pylist()}
    assert rows[(2026, "128", "claims")]["exclusion_reason"] == "BR-009"
    conflicting = _write(tmp_path, [{**reasons[0], "measureId": "134", "submissionMethod": "registry"}], "bad.json")
    with pytest.raises(BenchmarkFileError, match=r"bad\.json record 0 field 'measureId': measure 134 / registry"):
        read_mips_benchmark_file(bench, exclusion_reasons_path=conflicting)
    no_codes = _write(tmp_path, [{**reasons[0], "reasonCodes": []}], "empty.json")
    with pytest.raises(BenchmarkFileError, match=r"empty\.json record 0 field 'reasonCodes'"):
        read_mips_benchmark_file(bench, exclusion_reasons_path=no_codes)


# ------------------------------------------------------------------------------------------ cohort benchmarks
COHORT_RATES = [5.0 * i for i in range(1, 21)]  # 20 submissions: 5, 10, …, 100


def _cohort(valid=20, extra=()):
    """Q134 eCQM PY2026: `valid` scorable submissions (100 cases each, rates 5 … 100) plus rows the MIPS build rules
    leave out: DC 50%, 10 cases, rate 0, a proxy."""
    rows = [result("134", EHR, f"N{i:02d}", rate=COHORT_RATES[i], cases=100) for i in range(valid)]
    rows += [
        result("134", EHR, "X1", met=40, not_met=40, eligible_population=160),   # DC 0.5
        result("134", EHR, "X2", met=5, not_met=5),                               # 10 cases
        result("134", EHR, "X3", met=0, not_met=50),                              # rate 0
        result("134", EHR, "X4", rate=50.0, cases=100, is_proxy=True),            # proxy
        *extra,
    ]
    people = [(r["npi"], r["tin"], "lbp") for r in rows if r["npi"] is not None]
    return aggregate(rows), participants(people)


def _benchmarks(engine, measure_aggregate, participant, rules, **kw):
    rows = route_measure_results(measure_aggregate=measure_aggregate, participant=participant, rules=rules)
    return {_key(r): r for r in run(engine, build_quality_benchmark(measure_row=rows, rules=rules, **kw))}


def test_cohort_percentiles_are_type_7_over_scorable_submissions(backend, engine_for) -> None:
    engine = engine_for(backend)
    got = _benchmarks(engine, *_cohort(), load_rules(2027))[(2026, "134", EHR)]
    assert got["source"] == "asm_cohort_py" and got["reporter_count"] == 20
    # Type 7 over 5, 10, …, 100: p10 at position 1 + 0.1 × 19 = 2.9 → 10 + 0.9 × 5 = 14.5; p50 → 52.5; p1 → 5.95.
    assert (got[pcol(10)], got[pcol(50)], got[pcol(1)]) == pytest.approx((14.5, 52.5, 5.95))
    expected = np.percentile(COHORT_RATES, PERCENTILE_KEYS)              # numpy's default "linear" = type 7
    assert [got[pcol(k)] for k in PERCENTILE_KEYS] == pytest.approx(list(expected))
    assert got["average_performance_rate"] == pytest.approx(52.5)
    assert got["benchmark_year"] == 2026 and not got["is_topped_out_by_program"]
    assert got["is_inverse"] is False


def test_too_few_reporters_fall_back_to_mips(backend, engine_for) -> None:
    engine = engine_for(backend)
    got = _benchmarks(engine, *_cohort(valid=19), load_rules(2027))[(2026, "134", EHR)]
    assert got["source"] == "mips_historical" and got["reporter_count"] is None
    assert (got[pcol(10)], got[pcol(90)]) == (2.7, 93.44)                 # the PY2026 MIPS row


def test_tin_level_submission_counts_once(backend, engine_for) -> None:
    engine = engine_for(backend)
    # 19 individual submissions + one small-practice TIN-level submission routed to its 3 NPIs = 20 reporters.
    tin_row = result("134", EHR, None, rate=50.0, cases=100, tin="T9")
    measure_aggregate, _ = _cohort(valid=19, extra=[tin_row])
    people = [(f"N{i:02d}", "T1", "lbp") for i in range(19)] + [(f"S{i}", "T9", "lbp") for i in range(3)]
    got = _benchmarks(engine, measure_aggregate, participants(people), load_rules(2027))[(2026, "134", EHR)]
    assert got["source"] == "asm_cohort_py" and got["reporter_count"] == 20
    expected = np.percentile(sorted(COHORT_RATES[:19] + [50.0]), PERCENTILE_KEYS)
    assert [got[pcol(k)] for k in PERCENTILE_KEYS] == pytest.approx(list(expected))


def test_inverse_cohort_keeps_zero_and_drops_100(backend, engine_for) -> None:
    engine = engine_for(backend)
    rows = [result("238", EHR, f"N{i:02d}", rate=float(i), cases=100) for i in range(20)]      # 0 … 19
    rows.append(result("238", EHR, "W", rate=100.0, cases=100))
    people = [(r["npi"], "T1", "lbp") for r in rows]
    got = _benchmarks(engine, aggregate(rows), participants(people), load_rules(2027))[(2026, "238", EHR)]
    assert got["reporter_count"] == 20 and got["is_inverse"] is True
    assert got[pcol(1)] == pytest.approx(0.19) and got[pcol(99)] == pytest.approx(18.81)


def test_mips_population_fallback_year_and_flat_switch(backend, engine_for) -> None:
    engine = engine_for(backend)
    rows = [result("134", EHR, "N1", rate=50.0, performance_year=2027),
            result("236", CQM, "N2", rate=70.0),
            result("128", "claims", "N3", rate=70.0, performance_year=2027)]
    people = participants([("N1", "T1", "lbp"), ("N3", "T1", "lbp")], performance_year=2027).union(
        participants([("N2", "T1", "hf")]))
    allow = {"quality.allowed_collection_types": [EHR, CQM, "claims", "administrativeClaims"]}
    plain = _benchmarks(engine, aggregate(rows), people, mips_rules(**allow))
    assert (2027, "134", EHR) not in plain                       # benchmarks/2027.json unpublished: no benchmark
    fallback = _benchmarks(engine, aggregate(rows), people,
                           mips_rules(**allow, **{"quality.benchmark_fallback_py": 2026}))
    got = fallback[(2027, "134", EHR)]
    assert (got["benchmark_performance_year"], got["benchmark_year"], got[pcol(10)]) == (2026, 2024, 2.7)
    assert fallback[(2027, "128", "claims")]["exclusion_reason"] == "BR-009"   # PY2026 excluded it: stays excluded
    assert fallback[(2026, "236", CQM)]["is_flat"] and fallback[(2026, "236", CQM)][pcol(70)] == 70.0
    no_flat = _benchmarks(engine, aggregate(rows), people, mips_rules(**{"quality.apply_flat_benchmarks": False}))
    assert no_flat[(2026, "236", CQM)]["exclusion_reason"] == "flat_benchmark_not_applied"
    assert no_flat[(2026, "236", CQM)][pcol(70)] is None
    assert no_flat[(2026, "236", EHR)][pcol(70)] == 75.0           # not flat: untouched


def test_baseline_population(engine_for) -> None:
    engine = engine_for("duckdb")
    measure_aggregate, people = _cohort()
    later = aggregate([result("134", EHR, "N00", rate=40.0, cases=100, performance_year=2027)])
    later_people = participants([("N00", "T1", "lbp")], performance_year=2027)
    rules = load_rules(2027, overrides={"quality.benchmark_population": "asm_cohort_baseline",
                                        "quality.benchmark_baseline_py": 2026})
    got = _benchmarks(engine, measure_aggregate.union(later), people.union(later_people), rules)
    row = got[(2027, "134", EHR)]
    assert (row["source"], row["benchmark_performance_year"], row["reporter_count"]) == ("asm_cohort_baseline", 2026, 20)
    assert row[pcol(50)] == pytest.approx(52.5)
    with pytest.raises(RulesError, match="benchmark_baseline_py"):
        _benchmarks(engine, measure_aggregate, people,
                    load_rules(2027, overrides={"quality.benchmark_population": "asm_cohort_baseline"}))


def test_user_benchmark_table_replaces_the_shipped_rows(engine_for, tmp_path) -> None:
    engine = engine_for("duckdb")
    table = read_mips_benchmark_file(_write(tmp_path, [_record(measureId="134", submissionMethod=EHR)]))
    measure_aggregate, people = _cohort(valid=3)
    got = _benchmarks(engine, measure_aggregate, people, mips_rules(), mips_benchmark=arrow_memtable(table))
    assert set(got) == {(2026, "134", EHR)} and got[(2026, "134", EHR)][pcol(30)] == 30.0
    assert pa.Table.from_pylist(list(got.values())).num_rows == 1


def test_cli_checks_a_user_benchmark_file(tmp_path, wide_console) -> None:
    runner = CliRunner()
    good = _write(tmp_path, [_record(), _record(measureId="999")])
    ok = runner.invoke(app, ["quality-benchmarks", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "2 records, 1 for the PY2027 ASM measures" in ok.output and "134" in ok.output
    bad = _write(tmp_path, [_record(submissionMethod="fax")], "bad.json")
    failed = runner.invoke(app, ["quality-benchmarks", str(bad)])
    assert failed.exit_code == 2
    assert "record 0 field 'submissionMethod'" in failed.output

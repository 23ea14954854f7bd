"""Q492 (quality.md §4.8, §5.5): the CMS-delivered results file as aggregates, with clear row/column errors, and the
unadjusted claims proxy (labelled `is_proxy`, source `q492_proxy`) against a hand-computed golden case."""

from __future__ import annotations

import csv
from datetime import date

import ibis
import pyarrow as pa
import pytest

from openasm.engine import connect
from openasm.quality.feed_files import QualityFileError
from openasm.quality.q492 import aggregate_q492_results, compute_q492_proxy, read_q492_file
from openasm.rules import load_rules

T1, T2, N1, N2 = "111111111", "222222222", "1000000001", "1000000002"


def write_cms(path, rows, header=("py", "tin", "npi", "rate", "case_count", "scored_flag", "achievement_points",
                                  "benchmark_ref")):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_cms_results_as_aggregates(tmp_path):
    path = write_cms(tmp_path / "q492.csv", [
        ("2027", T1, N1, "70.5", "150", "true", "4.2", "benchmarks/2027.json"),
        ("2027", T2, "", "65.0", "12", "false", "", ""),
    ])
    read = read_q492_file(path)
    assert read.reconciles and read.rows.num_rows == 2
    engine = connect("duckdb")
    rows = {r["tin"]: r for r in engine.fetch(aggregate_q492_results(q492_result=ibis.memtable(read.rows),
                                                                     rules=load_rules(2027))).to_pylist()}
    a, b = rows[T1], rows[T2]
    assert (a["measure_id"], a["collection_type"], a["cohort"], a["source"], a["is_proxy"]) == (
        "492", "administrativeClaims", "hf", "q492_cms", False)
    assert (a["performance_rate"], a["case_count"], a["cms_scored_flag"], a["cms_achievement_points"]) == (
        70.5, 150, True, 4.2)
    assert a["eligible_population"] is None and a["performance_met"] is None and a["data_completeness"] is None
    assert (b["entity_level"], b["npi"], b["cms_scored_flag"]) == ("tin", None, False)
    assert b["cms_achievement_points"] is None
    engine.close()


def test_cms_file_errors(tmp_path):
    path = write_cms(tmp_path / "q492.csv", [
        ("2027", T1, N1, "-1", "150", "true", "", ""),
        ("2027", T1, N2, "", "150", "true", "", ""),
        ("2027", T2, N1, "70", "15", "maybe", "", ""),
        ("2027", T2, N2, "70", "1.5", "false", "", ""),
        ("2027", T2, N2, "70", "15", "false", "", ""),
        ("2027", T2, N2, "71", "15", "false", "", ""),
    ])
    read = read_q492_file(path)
    problems = {(r["source_row"], r["column"]): r["reason"] for r in read.quarantine.to_pylist()}
    assert set(problems) == {(1, "rate"), (2, "rate"), (3, "scored_flag"), (4, "case_count"), (6, "results")}
    assert "below 0" in problems[(1, "rate")] and "scored result" in problems[(2, "rate")]
    assert read.rows.num_rows == 1 and read.reconciles
    with pytest.raises(QualityFileError, match=r"q492\.csv: Q492 row 1, column 'rate'"):
        read_q492_file(path, strict=True)
    with pytest.raises(QualityFileError, match=r"lacks required column\(s\) scored_flag"):
        read_q492_file(write_cms(tmp_path / "short.csv", [], header=("py", "tin", "npi", "rate", "case_count")))


# ------------------------------------------------------------------------------------------- proxy
def claims():
    lines = [  # claim_id, bene, type, from date, hcpcs, tin, npi, line dx, admission date, adjustment type
        ("C1", "A", "carrier", date(2027, 2, 1), "99214", T1, N1, None, None, None),
        ("C2", "A", "carrier", date(2027, 3, 1), "99213", T1, N1, None, None, None),
        ("C3", "A", "carrier", date(2027, 4, 1), "99213", T1, N1, None, None, None),
        ("C4", "A", "carrier", date(2027, 4, 2), "99213", T2, N2, None, None, None),
        ("IA1", "A", "inpatient", date(2027, 5, 10), None, None, None, None, date(2027, 5, 10), None),
        ("IA1b", "A", "inpatient", date(2027, 5, 10), None, None, None, None, date(2027, 5, 10), "adjustment"),
        ("IA2", "A", "inpatient", date(2027, 8, 1), None, None, None, None, date(2027, 8, 1), None),
        ("C5", "B", "carrier", date(2027, 1, 15), "99213", T1, N1, "I11.0", None, None),
        ("IB1", "B", "inpatient", date(2027, 6, 1), None, None, None, None, date(2027, 6, 1), None),
        ("IB2", "B", "inpatient", date(2027, 6, 20), None, None, None, None, date(2027, 6, 20), "cancel"),
        ("C6", "C", "carrier", date(2027, 2, 1), "99213", T1, N1, "I50.9", None, None),
        ("C7", "D", "carrier", date(2027, 2, 1), "99213", T1, N1, "M54.5", None, None),
        ("C8", "E", "carrier", date(2027, 2, 1), "99213", T2, N2, "I42.0", None, None),
        ("C9", "E", "carrier", date(2027, 3, 1), "99213", T1, N1, None, None, None),
        ("IF1", "F", "inpatient", date(2027, 3, 1), None, None, None, None, date(2027, 3, 1), None),
        ("C10", "A", "carrier", date(2026, 12, 1), "99213", T2, N2, None, None, None),  # before the PY
    ]
    claim_line = pa.table({
        "claim_id": [r[0] for r in lines], "line_number": pa.array([1] * len(lines), pa.int32()),
        "bene_id": [r[1] for r in lines], "claim_type": [r[2] for r in lines],
        "claim_from_date": pa.array([r[3] for r in lines], pa.date32()),
        "claim_thru_date": pa.array([r[3] for r in lines], pa.date32()),
        "hcpcs_code": pa.array([r[4] for r in lines], pa.string()),
        "billing_tin": pa.array([r[5] for r in lines], pa.string()),
        "rendering_npi": pa.array([r[6] for r in lines], pa.string()),
        "line_dx_code": pa.array([r[7] for r in lines], pa.string()),
        "admission_date": pa.array([r[8] for r in lines], pa.date32()),
        "claim_adjustment_type": pa.array([r[9] for r in lines], pa.string()),
    })
    dx = [("C1", "A", 1, "I50.22"), ("IA1", "A", 1, "I50.23"), ("IA1b", "A", 1, "I5023"), ("IA2", "A", 1, "J18.9"),
          ("IA2", "A", 2, "I50.9"), ("IB1", "B", 1, "I21.4"), ("IB2", "B", 1, "I50.9"), ("IF1", "F", 1, "I50.9")]
    claim_diagnosis = pa.table({
        "claim_id": [d[0] for d in dx], "bene_id": [d[1] for d in dx],
        "dx_position": pa.array([d[2] for d in dx], pa.int32()), "icd10_code": [d[3] for d in dx]})
    beneficiary = pa.table({
        "bene_id": ["A", "B", "C", "D", "E", "F"],
        "birth_date": pa.array([date(1950, 6, 1), date(1955, 1, 1), date(1970, 1, 1), date(1947, 1, 1),
                                date(1957, 3, 3), date(1950, 1, 1)], pa.date32()),
        "sex": ["F", "M", "F", "M", "F", "M"],
        "death_date": pa.array([None, date(2027, 7, 1), None, None, None, None], pa.date32()),
    })
    return claim_line, claim_diagnosis, beneficiary


def test_proxy_golden_on_both_backends(backend, engine_for):
    engine = engine_for(backend)
    claim_line, claim_diagnosis, beneficiary = claims()
    out = compute_q492_proxy(claim_line=ibis.memtable(claim_line), claim_diagnosis=ibis.memtable(claim_diagnosis),
                             beneficiary=ibis.memtable(beneficiary), rules=load_rules(2027))
    rows = engine.fetch(out).to_pylist()
    # A: HF (C1), 76, 3 E&M visits with T1/N1 vs 1 with T2/N2 → T1/N1; 365 days; admissions: IA1/IA1b one stay
    #    (CV principal), IA2 principal J18.9 not CV → 1.
    # B: HF by line dx I11.0, 72, T1/N1, died 2027-07-01 → 182 days; IB1 I21.4 → 1; IB2 cancelled.
    # C: 57 → too young. D: no HF. E: HF I42.0, 1 visit each → tie → lowest TIN T1/N1; 365 days; 0 admissions.
    # F: no E&M visit → not attributed.
    # T1/N1: 3 patients, person-years (365 + 182 + 365) / 365.25 = 2.496920, 2 admissions
    #        → rate = 100 × 2 / 2.496920 = 80.098684 per 100 person-years.
    (row,) = rows
    assert (row["tin"], row["npi"], row["measure_id"]) == (T1, N1, "492")
    assert row["collection_type"] == "administrativeClaims"
    assert row["is_proxy"] is True and row["source"] == "q492_proxy" and row["cohort"] == "hf"
    assert (row["eligible_population"], row["case_count"]) == (3, 3)
    assert row["performance_met"] is None and row["cms_scored_flag"] is None
    assert row["performance_rate"] == pytest.approx(100 * 2 * 365.25 / 912, rel=1e-9)

"""Q220 intake (quality.md §4.7, §5.5): episode file reading with row-level quarantine and clear errors, result
precedence (code over residual), exclusions, not-calculable episodes, the off-by-default non-FOTO/ODI path, the
episode year, and the registry aggregate."""

from __future__ import annotations

import csv
import json

import ibis
import pytest

from openasm.engine import connect
from openasm.quality.feed_files import QualityFileError
from openasm.quality.q220 import aggregate_q220_results, evaluate_q220_episodes, read_q220_file
from openasm.rules import load_rules

TIN, NPI = "111111111", "1000000001"
HEADER = ["tin", "npi", "patient_id", "episode_id", "initial_eval_dt", "initial_eval_code", "discharge_dt",
          "discharge_code", "intake_fs", "discharge_fs", "predicted_change", "residual", "result_code", "source",
          "q220_instrument"]
# episode, initial evaluation, discharge, intake, discharge FS, residual, result code, source, instrument
EPISODES = [
    ("e1", "2027-01-10", "2027-02-20", "40", "60", "", "G8659", "FOTO", ""),      # met by code
    ("e2", "2027-02-01", "2027-03-15", "40", "45", "-0.5", "", "FOTO", ""),       # not met by residual
    ("e3", "2027-03-01", "2027-04-15", "40", "55", "1.0", "G8660", "FOTO", ""),   # code wins over residual
    ("e4", "2027-04-01", "2027-05-15", "", "", "", "M1122", "FOTO", ""),          # exclusion
    ("e5", "2027-05-01", "2027-06-15", "40", "", "", "", "FOTO", ""),             # not calculable
    ("e6", "2027-06-01", "2027-07-15", "40", "50", "0", "", "FOTO", ""),          # residual 0 → met
    ("e7", "2027-07-01", "2027-08-15", "50", "30", "", "", "Clinic", "ODI"),     # ODI −20 points
    ("e8", "2027-08-01", "2027-09-15", "40", "35", "", "", "Clinic", "ODI"),     # ODI −5 points
    ("e9", "2026-11-01", "2026-12-15", "40", "60", "", "G8659", "FOTO", ""),      # discharged in 2026
    ("e10", "2027-05-01", "", "40", "", "", "", "FOTO", ""),                       # no discharge yet
]


def write_csv(path, episodes=EPISODES, header=HEADER, extra_rows=()):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for e, init, dis, intake, out, residual, code, source, instrument in episodes:
            writer.writerow([TIN, NPI, f"pt-{e}", e, init, "97161", dis, "97164" if dis else "", intake, out, "",
                             residual, code, source, instrument])
        for row in extra_rows:
            writer.writerow(row)
    return path


def evaluate(engine, path, **overrides):
    read = read_q220_file(path)
    rules = load_rules(2027, overrides=overrides or None)
    episodes = evaluate_q220_episodes(treatment_episode=ibis.memtable(read.rows), rules=rules)
    return engine, episodes, rules


def test_episode_results_and_aggregate_on_both_backends(backend, engine_for, tmp_path):
    engine = engine_for(backend)
    read = read_q220_file(write_csv(tmp_path / "q220.csv"))
    assert read.rows_read == 10 and read.reconciles and read.quarantine.num_rows == 0
    rules = load_rules(2027)
    episodes = evaluate_q220_episodes(treatment_episode=ibis.memtable(read.rows), rules=rules)
    got = {r["episode_id"]: r for r in engine.fetch(episodes).to_pylist()}
    status = {e: (r["q220_status"], r["result_basis"], r["is_denominator"], r["is_denominator_exclusion"],
                  r["is_numerator"]) for e, r in got.items()}
    assert status == {
        "e1": ("counted", "result_code", True, False, True),
        "e2": ("counted", "residual", True, False, False),
        "e3": ("counted", "result_code", True, False, False),
        "e4": ("counted", "exclusion_code", True, True, False),
        "e5": ("counted", "not_calculable", True, False, False),
        "e6": ("counted", "residual", True, False, True),
        "e7": ("non_foto_not_allowed", "not_calculable", False, False, False),
        "e8": ("non_foto_not_allowed", "not_calculable", False, False, False),
        "e9": ("other_performance_year", "result_code", False, False, False),  # not counted
        "e10": ("no_episode_date", "not_calculable", False, False, False),
    }
    assert got["e5"]["gap_reason"].startswith("functional status change not calculable (G8661)")
    assert got["e7"]["rests_on_secondary"] and not got["e1"]["rests_on_secondary"]
    (aggregate,) = engine.fetch(aggregate_q220_results(q220_episode_result=episodes, rules=rules)).to_pylist()
    # Counted e1–e6: EP 6, DENEX 1 (e4), PM 2 (e1, e6), PNM 3 (e2, e3, e5) → rate 100 × 2 / 5 = 40.0,
    # DC = (2 + 3 + 1) / 6 = 1.0, case count 5 episodes.
    assert (aggregate["measure_id"], aggregate["collection_type"], aggregate["source"], aggregate["cohort"]) == (
        "220", "registry", "q220_file", "lbp")
    assert (aggregate["eligible_population"], aggregate["exclusions"], aggregate["performance_met"],
            aggregate["performance_not_met"], aggregate["case_count"]) == (6, 1, 2, 3, 5)
    assert aggregate["performance_rate"] == pytest.approx(40.0) and aggregate["data_completeness"] == 1.0


def _aggregate(tmp_path, **overrides):
    engine = connect("duckdb")
    engine, episodes, rules = evaluate(engine, write_csv(tmp_path / "q220.csv"), **overrides)
    rows = engine.fetch(aggregate_q220_results(q220_episode_result=episodes, rules=rules)).to_pylist()
    detail = {r["episode_id"]: r for r in engine.fetch(episodes).to_pylist()}
    engine.close()
    return rows, detail


def test_non_foto_odi_path_when_allowed(tmp_path):
    rows, detail = _aggregate(tmp_path, **{"quality.q220_allow_non_foto": True})
    # e7: ODI 50 → 30 improves 20 ≥ MCID 10 → met; e8: 40 → 35 improves 5 → not met.
    assert detail["e7"]["result_basis"] == "odi_rule" and detail["e7"]["is_numerator"]
    assert detail["e8"]["gap_reason"] == "ODI improved by less than the MCID of 10 points"
    (row,) = rows
    # EP 8, DENEX 1, PM 3, PNM 4 → rate 100 × 3 / 7 = 42.857143
    assert (row["eligible_population"], row["performance_met"], row["performance_not_met"]) == (8, 3, 4)
    assert row["performance_rate"] == pytest.approx(300 / 7)


def test_not_calculable_may_be_excluded(tmp_path):
    (row,), detail = _aggregate(tmp_path, **{"quality.q220_not_calculable": "exclude"})
    assert detail["e5"]["q220_status"] == "not_calculable_excluded"
    # EP 5, PM 2, PNM 2 (e2, e3) → rate 50.0
    assert (row["eligible_population"], row["performance_met"], row["performance_not_met"]) == (5, 2, 2)
    assert row["performance_rate"] == 50.0


def test_episode_year_by_initial_evaluation(tmp_path):
    (row,), detail = _aggregate(tmp_path, **{"quality.q220_episode_year": "initial_evaluation"})
    assert detail["e9"]["q220_status"] == "other_performance_year"  # evaluated in 2026
    assert detail["e10"]["q220_status"] == "counted"  # evaluated in 2027, not discharged: not calculable
    assert (row["eligible_population"], row["performance_not_met"]) == (7, 4)


def test_bad_rows_are_quarantined_with_row_and_column(tmp_path):
    bad = [
        ["12345", NPI, "pt-x", "x1", "2027-01-01", "", "", "", "", "", "", "", "", "FOTO", ""],
        [TIN, NPI, "pt-x", "x2", "2027-13-01", "", "", "", "", "", "", "", "", "FOTO", ""],
        [TIN, NPI, "pt-x", "x3", "2027-01-01", "", "", "", "", "", "", "", "G9999", "FOTO", ""],
        [TIN, NPI, "pt-x", "x4", "2027-02-01", "", "2027-01-01", "", "", "", "", "", "", "FOTO", ""],
        [TIN, NPI, "pt-x", "x5", "2027-02-01", "", "", "", "abc", "", "", "", "", "FOTO", ""],
        [TIN, NPI, "pt-x", "e1", "2027-02-01", "", "", "", "", "", "", "", "", "FOTO", ""],
    ]
    read = read_q220_file(write_csv(tmp_path / "q220.csv", extra_rows=bad))
    assert read.rows_read == 16 and read.rows.num_rows == 10 and read.reconciles
    problems = {(r["source_row"], r["column"]): r["reason"] for r in read.quarantine.to_pylist()}
    assert set(problems) == {(11, "tin"), (12, "initial_eval_dt"), (13, "result_code"), (14, "discharge_dt"),
                             (15, "intake_fs"), (16, "episodes")}
    assert "G9999" in problems[(13, "result_code")] and "duplicate of row 1" in problems[(16, "episodes")]
    assert all(r["measure_id"] == "220" for r in read.quarantine.to_pylist())
    with pytest.raises(QualityFileError, match=r"q220\.csv: Q220 row 11, column 'tin'"):
        read_q220_file(tmp_path / "q220.csv", strict=True)


def test_malformed_files_raise_clear_errors(tmp_path):
    missing = write_csv(tmp_path / "missing.csv", header=[h for h in HEADER if h != "source"] + ["x"])
    with pytest.raises(QualityFileError, match=r"missing\.csv: Q220 file lacks required column\(s\) source"):
        read_q220_file(missing)
    typo = write_csv(tmp_path / "typo.csv", header=[*HEADER[:11], "residul", *HEADER[12:]])
    with pytest.raises(QualityFileError, match="unknown column\\(s\\) residul"):
        read_q220_file(typo)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(QualityFileError, match=r"broken\.json: not valid JSON"):
        read_q220_file(broken)
    sheet = tmp_path / "q220.xlsx"
    sheet.write_text("", encoding="utf-8")
    with pytest.raises(QualityFileError, match="unsupported Q220 file type '.xlsx'"):
        read_q220_file(sheet)


def test_json_file(tmp_path):
    records = [{"tin": TIN, "npi": NPI, "patient_id": "p", "episode_id": "j1", "initial_eval_dt": "2027-01-05",
                "discharge_dt": "2027-02-05", "residual": 2.5, "source": "foto"}]
    path = tmp_path / "q220.json"
    path.write_text(json.dumps({"episodes": records}), encoding="utf-8")
    read = read_q220_file(path)
    (row,) = read.rows.to_pylist()
    assert (row["source"], row["q220_instrument"], row["residual"], row["source_row"]) == ("FOTO", "FOTO_LB", 2.5, 1)

"""Lock-in across performance years (§512.710(a)(1); asm-model.md §2.1): once selected, a participant through
PY2031; a year without re-qualifying is `locked_in` and not scored (`score_only_qualifying_years`)."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from openasm.engine import connect
from openasm.participation.lock_in import apply_lock_in, prior_participants
from openasm.rules import load_rules

from .factory import Inputs, clinician, episodes, npi, visit

STAYS, LATE, GAP, SWITCH = 1, 2, 3, 4  # NPI numbers
OUTSIDE_DATA = npi(9)  # a PY2027 participant (from a prior file) absent from every input of later years


def _lines() -> list[dict]:
    lines = []
    for year in (2025, 2026, 2027):
        for n in (STAYS, LATE):
            lines.append(visit(f"P{n}", f"{year}-03-01", npi_n=n, specialty="06"))
        if year != 2026:  # GAP bills nothing in CY2026
            lines.append(visit("PG", f"{year}-03-01", npi_n=GAP, specialty="06"))
        # SWITCH: general cardiology in CY2025, orthopedic surgery (LBP) from CY2026.
        lines.append(visit("PS", f"{year}-03-01", npi_n=SWITCH, specialty="06" if year == 2025 else "20"))
    return lines


def _episodes() -> list[dict]:
    rows = []
    # STAYS: 20 (CY2025) -> in PY2027; 19 (CY2026) -> PY2028 locked in; 25 (CY2027) -> PY2029 in again.
    for year, count in ((2025, 20), (2026, 19), (2027, 25)):
        rows += episodes(STAYS, count, year=year)
    # LATE: 10 then 20 -> first selected in PY2028.
    rows += episodes(LATE, 10, year=2025) + episodes(LATE, 20, year=2026) + episodes(LATE, 20, year=2027)
    rows += episodes(GAP, 20, year=2025) + episodes(GAP, 20, year=2027)
    rows += episodes(SWITCH, 20, year=2025)
    rows += episodes(SWITCH, 20, measure="COST_LBP_1", year=2026) + episodes(SWITCH, 20, measure="COST_LBP_1", year=2027)
    return rows


def _run_years(engine, overrides=None) -> dict[int, dict[str, dict]]:
    inputs = Inputs(engine, _lines(), [clinician(n) for n in (STAYS, LATE, GAP, SWITCH)], _episodes())
    prior_file = ibis.memtable(pa.table({  # as read from `--prior`: an earlier run's participant
        "performance_year": pa.array([2027], pa.int32()), "npi": [OUTSIDE_DATA], "cohort": ["lbp"],
        "first_selected_year": pa.array([2027], pa.int32())}))
    earlier, out = [prior_file], {}
    for year in (2027, 2028, 2029):
        rules = load_rules(year, overrides)
        prior = ibis.union(*earlier) if len(earlier) > 1 else earlier[0]
        result = inputs.participants(rules, prior=prior)
        out[year] = result
        fetched = ibis.memtable(pa.Table.from_pylist(list(result.values())))
        earlier.append(prior_participants(participant=fetched, rules=load_rules(year + 1)))
    return out


@pytest.fixture(scope="module")
def years(tmp_path_factory):
    """Three years on DuckDB. On Spark the same stages are covered by test_participants (every rule) and
    test_parity (lock-in across years on a synthetic world); three more Spark evaluations take minutes."""
    engine = connect("duckdb", tmp_path_factory.mktemp("lock-in"))
    try:
        yield _run_years(engine)
    finally:
        engine.close()


def _state(row: dict) -> tuple:
    return row["reason"], row["is_participant"], row["is_scored"], row["first_selected_year"], row["cohort"]


def test_selected_participant_stays_locked_in(years):
    assert _state(years[2027][npi(STAYS)]) == ("in", True, True, 2027, "hf")
    locked = years[2028][npi(STAYS)]
    assert _state(locked) == ("locked_in", True, False, 2027, "hf")
    assert locked["eligibility_reason"] == "below_episode_threshold" and locked["attributed_episode_count"] == 19
    assert locked["reason_detail"] == ("selected in PY2027; does not meet the criteria this year (below_episode_threshold: "
                                       "19 attributed COST_HF_1 episodes in CY2026 (< 20)); not scored this year")
    assert _state(years[2029][npi(STAYS)]) == ("in", True, True, 2027, "hf")
    assert years[2029][npi(STAYS)]["reason_detail"].endswith("; first selected in PY2027")


def test_first_selection_in_a_later_year(years):
    assert _state(years[2027][npi(LATE)]) == ("below_episode_threshold", False, False, None, "hf")
    assert _state(years[2028][npi(LATE)]) == ("in", True, True, 2028, "hf")
    assert _state(years[2029][npi(LATE)]) == ("in", True, True, 2028, "hf")


def test_year_without_claims_keeps_the_participant(years):
    gap = years[2028][npi(GAP)]
    assert _state(gap) == ("locked_in", True, False, 2027, "hf")
    assert (gap["eligibility_reason"], gap["part_b_line_count"]) == ("no_part_b_claims", 0)


def test_participant_known_only_from_the_prior_table(years):
    row = years[2028][OUTSIDE_DATA]
    assert _state(row) == ("locked_in", True, False, 2027, "lbp")
    assert row["eligibility_reason"] == "no_part_b_claims"
    assert _state(years[2029][OUTSIDE_DATA]) == ("locked_in", True, False, 2027, "lbp")
    assert OUTSIDE_DATA not in years[2027]  # the prior row is of PY2027 itself: not earlier, not used


def test_cohort_follows_the_qualifying_specialty(years):
    # One cohort per NPI per PY: HF in PY2027 (specialty 06), LBP from PY2028 (specialty 20, COST_LBP_1 episodes).
    assert _state(years[2027][npi(SWITCH)]) == ("in", True, True, 2027, "hf")
    assert _state(years[2028][npi(SWITCH)]) == ("in", True, True, 2027, "lbp")


def test_locked_in_years_scored_when_configured(tmp_path):
    engine = connect("duckdb", tmp_path)
    try:
        got = _run_years(engine, {"participation.score_only_qualifying_years": False})
    finally:
        engine.close()
    assert _state(got[2028][npi(STAYS)]) == ("locked_in", True, True, 2027, "hf")
    assert got[2028][npi(STAYS)]["reason_detail"].endswith("; scored this year")


def test_later_prior_rows_are_ignored_and_the_latest_cohort_is_kept(backend, engine_for):
    evaluation = ibis.memtable(pa.table({
        "npi": ["A", "B", "C"], "cohort": [None, None, None], "meets_criteria": [False, False, False],
        "eligibility_reason": ["outside_selected_area"] * 3, "eligibility_detail": ["x"] * 3,
    }, schema=pa.schema([("npi", pa.string()), ("cohort", pa.string()), ("meets_criteria", pa.bool_()),
                         ("eligibility_reason", pa.string()), ("eligibility_detail", pa.string())])))
    prior = ibis.memtable(pa.table({
        "performance_year": pa.array([2027, 2031, 2027, 2028], pa.int32()), "npi": ["A", "B", "C", "C"],
        "cohort": ["hf", "hf", "hf", "lbp"], "first_selected_year": pa.array([2027, 2031, 2027, 2027], pa.int32()),
    }))
    engine = engine_for(backend)
    out = engine.fetch(apply_lock_in(evaluation=engine.save("evaluation", evaluation),
                                     prior_participant=engine.save("prior", prior), rules=load_rules(2029)))
    got = {r["npi"]: (r["reason"], r["is_participant"], r["first_selected_year"], r["cohort"]) for r in out.to_pylist()}
    assert got == {"A": ("locked_in", True, 2027, "hf"),
                   "B": ("outside_selected_area", False, None, None),  # PY2031 row is not earlier than PY2029
                   "C": ("locked_in", True, 2027, "lbp")}

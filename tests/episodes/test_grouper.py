"""Golden cases for the episode grouper (ebcm.md §3): each case is a handful of claims whose episodes are
worked out by hand in the comments. The cases run on DuckDB; test_grouper_parity runs them all on PySpark."""

from __future__ import annotations

import pytest

from openasm.episodes.group import group_episodes
from openasm.rules import load_rules

from .factory import TIN_A, TIN_B, bene, d, ffs_months, visit, world


def _episodes(engine, tables, py=2026, cohorts=("lbp",), **overrides):
    rules = load_rules(2027, overrides or None)
    rules = rules if py == 2027 else _with_year(rules, py)
    stored = {name: engine.save(name, t) for name, t in tables.items()}
    out = group_episodes(rules=rules, cohorts=cohorts, **stored)
    return {name: engine.fetch(t).to_pylist() for name, t in out.items()}


def _with_year(rules, py):
    from dataclasses import replace
    return replace(rules, performance_year=py)


def _windows(result, bene_id):
    return sorted((r["taw_start_date"], r["taw_end_date"], r["taw_end_reason"])
                  for r in result["attribution_window"] if r["bene_id"] == bene_id)


def test_confirm_inside_window_but_not_one_day_outside(engine_for):
    # LBP confirm window = 60 days. B1: trigger 2025-03-01, confirm 2025-04-30 (day 60) -> confirmed.
    # B2: trigger 2025-03-01, confirm 2025-05-01 (day 61) -> no window, and no other pair qualifies.
    lines = [visit("B1", "2025-03-01"), visit("B1", "2025-04-30"),
             visit("B2", "2025-03-01"), visit("B2", "2025-05-01")]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1"), bene("B2")]))
    triggers = {(r["bene_id"], r["trigger_date"], r["confirm_date"]) for r in result["trigger_event"]}
    assert triggers == {("B1", d("2025-03-01"), d("2025-04-30"))}
    # Window from the trigger, extended by the confirm visit: 2025-04-30 + 364 = 2026-04-29.
    assert _windows(result, "B1") == [(d("2025-03-01"), d("2026-04-29"), "window")]
    assert _windows(result, "B2") == []


def test_hf_window_is_180_days(engine_for):
    lines = [visit("B1", "2025-01-10", hcpcs="99214", dx="I5022", specialty="06"),
             visit("B1", "2025-07-09", hcpcs="99214", dx="I5022", specialty="06")]  # day 180
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]), cohorts=("hf",))
    assert [(r["trigger_date"], r["confirm_date"]) for r in result["trigger_event"]] == [
        (d("2025-01-10"), d("2025-07-09"))]


def test_confirming_claim_from_a_different_tin_is_rejected(engine_for):
    lines = [visit("B1", "2025-03-01", tin=TIN_A), visit("B1", "2025-03-20", tin=TIN_B, npi_n=2)]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]))
    assert result["trigger_event"] == []
    assert result["episode"] == []


def test_same_claim_cannot_confirm_itself_and_diagnosis_must_match(engine_for):
    first = visit("B1", "2025-03-01")
    second_line = {**first, "line_number": 2, "hcpcs_code": "97110", "line_from_date": d("2025-03-05")}
    unrelated = visit("B1", "2025-03-10", dx="E119")  # diabetes: not a qualifying service for LBP
    result = _episodes(engine_for("duckdb"), world([first, second_line, unrelated], [bene("B1")]))
    assert result["trigger_event"] == []


def test_header_diagnosis_qualifies_a_line_without_line_diagnosis(engine_for):
    a, b = visit("B1", "2025-03-01", dx=None), visit("B1", "2025-03-15", dx=None)
    dx = [{"claim_id": a["claim_id"], "bene_id": "B1", "dx_position": 1, "icd10_code": "M54.16"},
          {"claim_id": b["claim_id"], "bene_id": "B1", "dx_position": 2, "icd10_code": "M5117"}]
    result = _episodes(engine_for("duckdb"), world([a, b], [bene("B1")], diagnoses=dx))
    assert len(result["trigger_event"]) == 1
    only_line = _episodes(engine_for("duckdb"), world([a, b], [bene("B1")], diagnoses=dx),
                          **{"episodes.dx_match_scope": "line"})
    assert only_line["trigger_event"] == []


def test_reaffirming_service_extends_window_and_a_gap_closes_it(engine_for):
    # Trigger 2024-02-01 confirmed 2024-02-20; reaffirm 2025-01-15 extends the end to 2026-01-14.
    # Next visit 2026-03-01 is after the window closed; with its own confirm 2026-03-15 it opens window 2,
    # which runs to 2026-03-15 + 364 = 2027-03-14.
    lines = [visit("B1", day) for day in ("2024-02-01", "2024-02-20", "2025-01-15", "2026-03-01", "2026-03-15")]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]))
    assert _windows(result, "B1") == [
        (d("2024-02-01"), d("2026-01-14"), "window"),
        (d("2026-03-01"), d("2027-03-14"), "window"),
    ]
    fixed = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]), **{"episodes.reaffirm_extends_window": False})
    # Without extension: 2024-02-01..2025-01-30; the 2026-03-01 trigger opens 2026-03-01..2027-02-28.
    assert _windows(fixed, "B1") == [
        (d("2024-02-01"), d("2025-01-30"), "window"), (d("2026-03-01"), d("2027-02-28"), "window")]


def test_segmentation_across_years_assigns_episode_to_the_year_it_ends(engine_for):
    # Window 2024-02-01..2026-01-14 (as above). Segments: [2024-02-01, 2025-01-30] ends in 2025;
    # [2025-01-31, 2026-01-14] (349 days) ends in 2026. Window 2 (2026-03-01..2027-03-14) gives
    # [2026-03-01, 2027-02-28] and a 14-day tail [2027-03-01, 2027-03-14], both ending in 2027.
    lines = [visit("B1", day) for day in ("2024-02-01", "2024-02-20", "2025-01-15", "2026-03-01", "2026-03-15")]
    tables = world(lines, [bene("B1")])
    for py, expected in (
        (2025, [(d("2024-02-01"), d("2025-01-30"), 365, 0)]),
        (2026, [(d("2025-01-31"), d("2026-01-14"), 349, 1)]),
        (2027, [(d("2026-03-01"), d("2027-02-28"), 365, 0), (d("2027-03-01"), d("2027-03-14"), 14, 1)]),
    ):
        result = _episodes(engine_for("duckdb"), tables, py=py)
        got = sorted((r["episode_start_date"], r["episode_end_date"], r["episode_days"], r["segment_index"])
                     for r in result["episode"])
        assert got == expected, py
        assert all(r["performance_year"] == py for r in result["episode"])


def test_death_truncates_window_and_episode(engine_for):
    lines = [visit("B1", "2026-01-10"), visit("B1", "2026-02-01")]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1", death="2026-06-30")]))
    assert _windows(result, "B1") == [(d("2026-01-10"), d("2026-06-30"), "death")]
    (episode,) = result["episode"]
    assert (episode["episode_end_date"], episode["episode_days"], episode["episode_end_reason"]) == (
        d("2026-06-30"), 172, "death")


def test_loss_of_ffs_eligibility_truncates_window(engine_for):
    lines = [visit("B1", "2026-01-10"), visit("B1", "2026-02-01")]
    enrollment = ffs_months("B1", gaps=("2026-09", "2026-10"))
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")], enrollment=enrollment))
    assert _windows(result, "B1") == [(d("2026-01-10"), d("2026-08-31"), "eligibility")]


def test_short_episode_is_kept_with_reason(engine_for):
    lines = [visit("B1", "2026-12-01"), visit("B1", "2026-12-05")]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1", death="2026-12-20")]))
    (episode,) = result["episode"]
    assert episode["episode_days"] == 20
    assert episode["exclusion_reason"] == "episode shorter than 30 days"


def test_two_tins_each_get_their_own_window(engine_for):
    lines = [visit("B1", "2026-01-10", tin=TIN_A), visit("B1", "2026-01-20", tin=TIN_A),
             visit("B1", "2026-02-10", tin=TIN_B, npi_n=2), visit("B1", "2026-03-01", tin=TIN_B, npi_n=2)]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]), py=2027)
    full = [r for r in result["episode"] if r["exclusion_reason"] is None]
    assert sorted(r["billing_tin"] for r in full) == [TIN_A, TIN_B]


@pytest.mark.parametrize("pos, counted", [("02", True), ("11", True)])
def test_telehealth_counts_by_default(engine_for, pos, counted):
    lines = [visit("B1", "2026-01-10", pos=pos), visit("B1", "2026-01-20", pos=pos)]
    result = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]))
    assert bool(result["trigger_event"]) is counted
    if pos == "02":
        off = _episodes(engine_for("duckdb"), world(lines, [bene("B1")]), **{"episodes.count_telehealth": False})
        assert off["trigger_event"] == []

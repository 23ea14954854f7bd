"""Golden cases for the cost measure score (ebcm.md §8) and the 20-episode case minimum (§512.730(d))."""

from __future__ import annotations

import ibis
import pytest

from openasm.cost.measure_score import compute_measure_scores
from openasm.rules import load_rules


def _rows(entity_episodes: dict[tuple[str, str | None], list[tuple[float, float]]], outliers=()):
    """entity -> [(winsorized O, adjusted E)]; each entity's episodes get distinct ids."""
    records = []
    for (level, npi), episodes in entity_episodes.items():
        for i, (o, e) in enumerate(episodes):
            episode_id = f"{level}-{npi}-{i}" if level == "tin_npi" else f"tin_npi-{npi or 'X'}-{i}"
            records.append({"entity_level": level, "billing_tin": "111111111", "rendering_npi": npi,
                            "episode_id": episode_id, "measure_id": "COST_LBP_1", "expected_cost_adjusted": e,
                            "winsorized_cost": o, "is_outlier": episode_id in outliers})
    entity = ibis.memtable(records)
    expected = ibis.memtable([{"episode_id": r["episode_id"], "observed_cost": r["winsorized_cost"]} for r in records])
    return entity, expected


def test_score_is_mean_ratio_times_national_mean_with_case_minimum(engine_for):
    engine = engine_for("duckdb")
    # NPI A: 20 episodes O=1000, E=800 (ratio 1.25); NPI B: 19 episodes O=600, E=600 (ratio 1).
    # TIN-NPI universe national mean O = (20*1000 + 19*600) / 39 = 805.128...
    # A: 1.25 x 805.128 = 1006.41; B: 1.0 x 805.128 (below the case minimum: not scored).
    entity, expected = _rows({("tin_npi", "A"): [(1000.0, 800.0)] * 20, ("tin_npi", "B"): [(600.0, 600.0)] * 19})
    out = engine.fetch(compute_measure_scores(episode_entity_expected=entity, episode_expected=expected,
                                              rules=load_rules(2027))).to_pylist()
    by_npi = {r["rendering_npi"]: r for r in out}
    national = (20 * 1000 + 19 * 600) / 39
    assert by_npi["A"]["national_mean_observed_cost"] == pytest.approx(national)
    assert by_npi["A"]["score_amount"] == pytest.approx(1.25 * national)
    assert (by_npi["A"]["n_episodes"], by_npi["A"]["meets_case_minimum"]) == (20, True)
    assert (by_npi["B"]["n_episodes"], by_npi["B"]["meets_case_minimum"]) == (19, False)


def test_outlier_episodes_do_not_count(engine_for):
    engine = engine_for("duckdb")
    entity, expected = _rows({("tin_npi", "A"): [(1000.0, 1000.0)] * 20 + [(90000.0, 1000.0)]},
                             outliers={"tin_npi-A-20"})
    (row,) = engine.fetch(compute_measure_scores(episode_entity_expected=entity, episode_expected=expected,
                                                 rules=load_rules(2027))).to_pylist()
    assert row["n_episodes"] == 20 and row["score_amount"] == pytest.approx(1000.0)

"""Cost category score per participant (§512.730(d)-(e), asm-model.md §4): points × 10 from the cost stage's
`measure_score`, the entity level, case minimum and unscorable reasons, the §9 worked example, the real demo
output, and DuckDB/PySpark parity."""

from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openasm.engine import connect
from openasm.rules import RulesError, load_rules
from openasm.scoring.cost_category import COST_CATEGORY_COLUMNS, max_cost_points, score_cost_category
from tests.conftest import assert_tables_equal

RULES = load_rules(2027)
DEMO_MEASURE_SCORE = Path(__file__).resolve().parents[2] / "demo-output" / "run" / "outputs" / "measure_score.parquet"

PARTICIPANTS = [  # performance_year, npi, tin, cohort, is_participant
    (2027, "1000000001", "111111111", "hf", True),    # §9 step 2: 34 episodes, 6.80 points → 68.0
    (2027, "1000000002", "111111111", "lbp", True),   # 12 episodes < 20: below case minimum
    (2027, "1000000003", "222222222", "hf", True),    # no row of its own (only a TIN row exists)
    (2027, "1000000004", "222222222", "lbp", True),   # 25 episodes but no knots: no benchmark
    (2027, "1000000005", "333333333", "lbp", True),   # 10.0 points → 100.0; its HF row is ignored
    (2027, "1000000006", "333333333", "xx", True),    # cohort with no cost measure
    (2027, "1000000007", "333333333", "hf", False),   # not a participant: not scored
    (2028, "1000000008", "333333333", "hf", True),    # another performance year: not in this run
]
MEASURE_SCORE = [  # measure_id, entity_level, billing_tin, rendering_npi, n_episodes, meets_case_minimum, points
    ("COST_HF_1", "tin_npi", "111111111", "1000000001", 34, True, 6.80),
    ("COST_LBP_1", "tin_npi", "111111111", "1000000002", 12, False, None),
    ("COST_HF_1", "tin", "222222222", None, 80, True, 8.0),
    ("COST_LBP_1", "tin_npi", "222222222", "1000000004", 25, True, None),
    ("COST_LBP_1", "tin_npi", "333333333", "1000000005", 60, True, 10.0),
    ("COST_HF_1", "tin_npi", "333333333", "1000000005", 40, True, 2.0),
    ("COST_HF_1", "tin", "333333333", None, 90, True, 4.5),
]


def participant_table(rows=PARTICIPANTS):
    return ibis.memtable(pa.table({
        "performance_year": pa.array([r[0] for r in rows], pa.int32()), "npi": [r[1] for r in rows],
        "tin": [r[2] for r in rows], "cohort": [r[3] for r in rows], "is_participant": [r[4] for r in rows],
    }))


def measure_score_table(rows=MEASURE_SCORE):
    return ibis.memtable(pa.table({
        "measure_id": [r[0] for r in rows], "entity_level": [r[1] for r in rows],
        "billing_tin": [r[2] for r in rows], "rendering_npi": pa.array([r[3] for r in rows], pa.string()),
        "n_episodes": pa.array([r[4] for r in rows], pa.int64()), "meets_case_minimum": [r[5] for r in rows],
        "achievement_points": pa.array([r[6] for r in rows], pa.float64()),
    }))


def _score(rules=RULES, engine=None, participant=None, measure_score=None):
    expr = score_cost_category(participant=participant if participant is not None else participant_table(),
                               measure_score=measure_score if measure_score is not None else measure_score_table(),
                               rules=rules)
    own = engine or connect("duckdb")
    try:
        return own.fetch(expr)
    finally:
        if engine is None:
            own.close()


def test_max_points_come_from_the_band_table():
    assert max_cost_points(RULES) == 10.0  # §512.730(e)(1): 1-10 points


def test_cost_category_hand_computed():
    table = _score()
    assert tuple(table.column_names) == COST_CATEGORY_COLUMNS
    got = {r["npi"]: r for r in table.to_pylist()}
    assert set(got) == {f"100000000{i}" for i in range(1, 7)}  # not-participant and PY2028 rows left out
    expect = {  # npi: (measure, episodes, points, cost score = points / 10 × 100, status)
        "1000000001": ("COST_HF_1", 34, 6.80, 68.0, "scored"),          # 6.80 × 10 = 68.0 (§9 step 2)
        "1000000002": ("COST_LBP_1", 12, None, None, "below_case_minimum"),
        "1000000003": ("COST_HF_1", 0, None, None, "no_attributed_episodes"),
        "1000000004": ("COST_LBP_1", 25, None, None, "no_benchmark"),
        "1000000005": ("COST_LBP_1", 60, 10.0, 100.0, "scored"),        # 10 × 10 = 100
        "1000000006": (None, 0, None, None, "unknown_cohort"),
    }
    for npi, (measure, episodes, points, score, status) in expect.items():
        row = got[npi]
        assert (row["cost_measure_id"], row["cost_n_episodes"], row["cost_status"]) == (measure, episodes, status)
        assert row["cost_achievement_points"] == (None if points is None else pytest.approx(points))
        assert row["cost_score_pct"] == (None if score is None else pytest.approx(score, abs=1e-12))
        assert row["is_cost_scorable"] == (status == "scored")
        assert row["cost_entity_level"] == "tin_npi" and row["performance_year"] == 2027


def test_tin_level_scoring_follows_the_parameter():
    got = {r["npi"]: r for r in _score(load_rules(2027, overrides={"scoring.cost_entity_level": "tin"})).to_pylist()}
    assert got["1000000003"]["cost_score_pct"] == pytest.approx(80.0)   # TIN 222222222 HF: 8.0 × 10
    assert got["1000000001"]["cost_status"] == "no_attributed_episodes"  # no TIN row for 111111111
    assert got["1000000005"]["cost_status"] == "no_attributed_episodes"  # TIN 333333333 has only an HF row


def test_override_outside_allowed_values_is_rejected():
    with pytest.raises(RulesError):
        load_rules(2027, overrides={"scoring.cost_entity_level": "npi"})


@pytest.mark.skipif(not DEMO_MEASURE_SCORE.is_file(), reason="demo output not built")
def test_real_cost_stage_output():
    """Every scored TIN/NPI row of the demo run becomes a participant scored at 10 × its points."""
    demo = pq.read_table(DEMO_MEASURE_SCORE)
    rows = [r for r in demo.to_pylist() if r["entity_level"] == "tin_npi"]
    cohort = {"COST_HF_1": "hf", "COST_LBP_1": "lbp"}
    participants = [(2027, r["rendering_npi"], r["billing_tin"], cohort[r["measure_id"]], True) for r in rows]
    got = {(r["npi"], r["tin"], r["cohort"]): r for r in _score(participant=participant_table(participants),
                                                                 measure_score=ibis.memtable(demo)).to_pylist()}
    assert len(got) == len(rows)
    for r in rows:
        row = got[(r["rendering_npi"], r["billing_tin"], cohort[r["measure_id"]])]
        if r["meets_case_minimum"] and r["achievement_points"] is not None:
            assert row["cost_score_pct"] == pytest.approx(10 * r["achievement_points"])
            assert 10.0 <= row["cost_score_pct"] <= 100.0
        else:
            assert row["cost_score_pct"] is None and row["cost_status"] != "scored"


def test_cost_category_on_each_backend(backend, engine_for):
    engine = engine_for(backend)
    participant = engine.save("participant", participant_table())
    measure_score = engine.save("measure_score", measure_score_table())
    assert_tables_equal(_score(engine=engine, participant=participant, measure_score=measure_score), _score())

"""Run tables for participant A of the asm-model.md §9 worked example (PY2027 → PaY 2029, HF, RL 9%)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from openasm.engine import connect
from openasm.payment.adjustment import compute_payment_adjustment
from openasm.rules import load_rules
from tests.episodes.factory import npi

A, B, C, D, E, F = (npi(n) for n in range(11, 17))
TIN = "111111111"
WORKED = {A: (54.1, 300_000.0), B: (82.0, 450_000.0), C: (47.5, 250_000.0), D: (65.0, 500_000.0),
          E: (30.0, 200_000.0), F: (0.0, 150_000.0)}
MEASURES = [("492", "administrative_claims", None, 7.00, 7), ("008", "mips_cqm", 0.923, 8.46, 8),
            ("005", "mips_cqm", 0.85, 6.16, 6), ("236", "mips_cqm", 0.70, 5.00, 5),
            ("377", "mips_cqm", 0.31, 3.48, 3)]  # §9 step 1: 30.10 / 50 points


def participant_score() -> list[dict]:
    rows = []
    for who, (fs, _) in WORKED.items():
        row = {"performance_year": 2027, "cohort": "hf", "npi": who, "tin": TIN, "quality_score_pct": None,
               "cost_score_pct": None, "quality_weight_used": 0.5, "cost_weight_used": 0.5,
               "ia_deduction_points": 0.0, "pi_deduction_points": 0.0, "bonus_points": 0.0, "raw_score": fs,
               "final_score": fs, "is_neutral": False, "neutral_reason": None, "min_submission_met": fs > 0}
        rows.append(row)
    # A: §9 steps 1-3: 0.5 × 60.2 + 0.5 × 68.0 − 0 − 10 = 54.1
    rows[0].update(quality_score_pct=60.2, cost_score_pct=68.0, pi_deduction_points=10.0, raw_score=54.1)
    return rows


def quality_measure_score() -> list[dict]:
    return [{"performance_year": 2027, "tin": TIN, "npi": A, "cohort": "hf", "measure_id": m, "collection_type": ct,
             "performance_rate": rate, "data_completeness": 0.88, "case_count": 40, "decile": decile,
             "achievement_points": points, "status": "scored", "is_counted": True,
             "benchmark_source": "asm_cohort_py"} for m, ct, rate, points, decile in MEASURES]


def quality_category_score() -> list[dict]:
    return [{"performance_year": 2027, "npi": A, "tin": TIN, "cohort": "hf", "points_earned": 30.10,
             "points_available": 50.0, "quality_score_pct": 60.2, "min_submission_met": True}]


def measure_score() -> list[dict]:
    return [{"measure_id": "COST_HF_1", "entity_level": "tin_npi", "billing_tin": TIN, "rendering_npi": A,
             "n_episodes": 34, "mean_observed_cost": 12_000.0, "mean_expected_cost": 13_000.0,
             "score_amount": 13_841.0, "meets_case_minimum": True, "achievement_points": 6.8},
            {"measure_id": "COST_HF_1", "entity_level": "tin", "billing_tin": TIN, "rendering_npi": None,
             "n_episodes": 300, "mean_observed_cost": 12_500.0, "mean_expected_cost": 13_000.0,
             "score_amount": 14_000.0, "meets_case_minimum": True, "achievement_points": 6.0}]


@lru_cache(maxsize=1)
def _computed_adjustment() -> tuple[dict, ...]:
    table = ibis.memtable({
        "performance_year": [2027] * 6, "cohort": ["hf"] * 6, "npi": list(WORKED), "tin": [TIN] * 6,
        "final_score": [v[0] for v in WORKED.values()], "part_b_paid_amount": [v[1] for v in WORKED.values()],
        "is_neutral": [False] * 6,
    })
    engine = connect("duckdb")
    try:
        adjustment = compute_payment_adjustment(participant_score=table, rules=load_rules(2027))
        return tuple(engine.fetch(adjustment).to_pylist())
    finally:
        engine.close()


def payment_adjustment() -> list[dict]:
    """compute_payment_adjustment on the §9 cohort (fresh copies of the rows)."""
    return [dict(r) for r in _computed_adjustment()]


def adjustment_dollars(adjustments: list[dict]) -> list[dict]:
    """§9 step 5: A's covered services of $320,000 in 2029."""
    af = next(r["adjustment_factor"] for r in adjustments if r["npi"] == A)
    return [{"performance_year": 2027, "payment_year": 2029, "cohort": "hf", "npi": A, "billing_tin": TIN,
             "adjustment_factor": af, "multiplier": 1 + af, "payment_year_paid_amount": 320_000.0,
             "payment_year_adjustment_amount": af * 320_000.0, "adjusted_paid_amount": 320_000.0 * (1 + af),
             "is_estimate": False, "estimate_basis": "payment_year_claims"}]


def tables() -> dict[str, list[dict]]:
    adjustments = payment_adjustment()
    return {"participant_score": participant_score(), "quality_measure_score": quality_measure_score(),
            "quality_category_score": quality_category_score(), "measure_score": measure_score(),
            "payment_adjustment": adjustments, "adjustment_dollars": adjustment_dollars(adjustments)}


def write_run(run_dir: Path, skip: tuple[str, ...] = (), **changes: list[dict]) -> Path:
    """A run folder with outputs/<table>.parquet for every table not in `skip` (`changes` replace tables)."""
    out = run_dir / "outputs"
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in {**tables(), **changes}.items():
        if name not in skip:
            pq.write_table(pa.Table.from_pylist(rows), out / f"{name}.parquet")
    return run_dir

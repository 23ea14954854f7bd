"""The `openasm explain` chain of a what-if scenario: the run's rows with the scenario's measure points, category
scores, deductions, final score and payment numbers, explained by `openasm.explain` (decide and explain are
siblings, so the two meet here, a layer above both)."""

from __future__ import annotations

import numpy as np

from openasm.decide.evaluate import Outcome
from openasm.decide.whatif import Decision
from openasm.explain.chain import Explanation, explain_participant


def explain_scenario(decision: Decision, outcome: Outcome, k: int = 0) -> Explanation:
    """The `openasm explain` chain of subject NPI k under `outcome` (a 1-scenario Outcome): the run's rows with
    the scenario's measure points, category scores, deductions, final score and payment numbers."""
    subject, run = decision.subject, decision.run
    npi = subject.npis[k]
    score = next(r for r in run.rows("payment_adjustment") if str(r["npi"]) == npi)
    q = subject.quality
    measures = []
    points_by_row = {r: float(outcome.measure_points[0, r]) for r in range(q.measure_id.size) if q.owner[r] == k}
    status_by_row = {r: str(outcome.measure_status[0, r]) for r in points_by_row}
    winners = [r for r in run.rows("quality_measure_score") if str(r["npi"]) == npi and r["is_winner"]]
    for r, row in zip(sorted(points_by_row), winners):
        points = points_by_row[r]
        measures.append({**row, "achievement_points": None if np.isnan(points) else points,
                         "status": status_by_row[r]})
    counted = [m for m in measures if m["achievement_points"] is not None]
    final = float(outcome.final_score[0, k])
    af = float(outcome.adjustment_factor[0, k])
    changed = {
        **score, "quality_score_pct": _num(outcome.quality_pct[0, k]), "cost_score_pct": _num(outcome.cost_pct[0, k]),
        "quality_points_earned": sum(m["achievement_points"] for m in counted if m.get("is_counted")),
        "ia_deduction_points": float(outcome.ia_deduction[0, k]),
        "pi_deduction_points": float(outcome.pi_deduction[0, k]),
        "final_score": _num(final), "exchange_midpoint": _num(outcome.midpoint[0, k]),
        "transformed_final_score": _num(outcome.transformed_final_score[0, k]),
        "scaling_factor": _num(outcome.scaling_factor[0, k]), "pool_amount": _num(outcome.pool[0, k]),
        "adjustment_factor": af, "multiplier": 1.0 + af,
        "adjustment_amount": af * float(score["part_b_paid_amount"] or 0.0),
    }
    changed["raw_score"] = None if changed["final_score"] is None else (
        (changed["quality_weight_used"] or 0.0) * (changed["quality_score_pct"] or 0.0)
        + (changed["cost_weight_used"] or 0.0) * (changed["cost_score_pct"] or 0.0)
        - changed["ia_deduction_points"] - changed["pi_deduction_points"])
    dollars = [{"npi": npi, "payment_year": run.rules.payment_year, "billing_tin": subject.tins[k],
                "payment_year_paid_amount": float(subject.payment_year_paid[k]),
                "payment_year_adjustment_amount": float(outcome.dollars[0, k]), "is_estimate": True,
                "estimate_basis": "what-if"}]
    return explain_participant(npi=npi, rules=run.rules, participant_score=[changed], quality_measure_score=measures,
                               measure_score=run.rows("measure_score"), payment_adjustment=[changed],
                               adjustment_dollars=dollars)


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


"""The outlook of a practice, as data: in or out and why, final score with its range, dollars at risk for
2027–2031, what moves it most, the timeline of deadlines and payment years, and the assumptions (every
default-evidence value) it rests on. The dashboard's outlook page, the board PDF and the static report's first
section all read this one structure.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from openasm.decide.montecarlo import Simulation, rank_levers
from openasm.decide.whatif import Decision
from openasm.payment.projection import projection_of_year
from openasm.rules import load_rules

OUTLOOK_SECTIONS = ("quality.", "scoring.", "ia_pi.", "payment.", "decide.", "model.", "operations.", "report.")


def _participation(decision: Decision) -> list[dict]:
    rows = {str(r["npi"]): r for r in decision.run.rows("participant")
            if r.get("performance_year") == decision.run.rules.performance_year}
    out = []
    for npi in decision.subject.npis:
        r = rows.get(npi, {})
        out.append({"npi": npi, "is_participant": bool(r.get("is_participant", True)),
                    "reason": r.get("reason") or "in the payment_adjustment table",
                    "reason_detail": r.get("reason_detail") or ""})
    return out


def _projection(decision: Decision) -> list[dict]:
    """Per payment year: worst / expected / best dollars of the subject NPIs (payment_projection)."""
    npis = set(decision.subject.npis)
    totals: dict[int, dict[str, float]] = defaultdict(dict)
    for r in projection_of_year(decision.run.rows("payment_projection"), decision.run.rules.performance_year):
        if r["subject_level"] == "npi" and str(r["subject_id"]) in npis:
            year = int(r["payment_year"])
            totals[year][r["scenario"]] = totals[year].get(r["scenario"], 0.0) + float(
                r["payment_year_adjustment_amount"] or 0.0)
            totals[year]["risk_level"] = float(r["risk_level"])
            totals[year]["performance_year"] = int(r["performance_year"])
    return [{"payment_year": y, **v} for y, v in sorted(totals.items())]


def timeline(performance_year: int) -> list[dict]:
    """Deadlines and payment years of every performance year from `performance_year` on
    (`model.performance_years`, `operations.submission_window`, `payment.risk_level` at PaY = PY + 2)."""
    rows = []
    for year in [int(y) for y in load_rules(performance_year).value("model.performance_years")]:
        if year < performance_year:
            continue
        rules = load_rules(year)
        window = rules.value("operations.submission_window")
        submit_year = year + int(window["year_offset"])
        rows.append({"performance_year": year, "payment_year": rules.payment_year,
                     "submission_opens": f"{submit_year}-{window['start']}",
                     "submission_closes": f"{submit_year}-{window['end']}",
                     "risk_level": float(rules.value("payment.risk_level"))})
    return rows


def assumptions(decision: Decision, extra: tuple[str, ...] = ()) -> list[dict]:
    """Every rules value with evidence `default` (or an override) that the run or this outlook used, in the
    sections the outlook's numbers rest on directly (scoring, payment, the Monte Carlo priors); the grouping and
    cost-model defaults behind the category scores are listed in the run's manifest and on the rules page."""
    used = {r["name"] for r in decision.run.manifest.get("rules_used", [])} | set(extra)
    rows = decision.run.rules.manifest_rows(only_used=False)
    return [r for r in rows if r["name"] in used and r["evidence"] in ("default", "override")
            and r["name"].startswith(OUTLOOK_SECTIONS)]


def build_outlook(decision: Decision, simulation: Simulation | None = None) -> dict[str, Any]:
    """The outlook of the decision's subject (one NPI or a TIN), with the Monte Carlo range when given."""
    base = decision.evaluate({})
    run, subject = decision.run, decision.subject
    summary = simulation.summary() if simulation is not None else None
    levers = summary["levers"] if summary else rank_levers(decision, float(np.nanmean(base.midpoint)))
    decide_names = tuple(r.name for r in run.rules.all() if r.name.startswith("decide."))
    return {
        "subject": {"npis": subject.npis, "tins": sorted(set(subject.tins)), "cohorts": sorted(set(subject.cohorts))},
        "performance_year": run.rules.performance_year, "payment_year": run.rules.payment_year,
        "participation": _participation(decision),
        "final_score": float(np.nanmean(base.final_score[0])),
        "quality_pct": float(np.nanmean(base.quality_pct[0])) if not np.isnan(base.quality_pct[0]).all() else None,
        "cost_pct": float(np.nanmean(base.cost_pct[0])) if not np.isnan(base.cost_pct[0]).all() else None,
        "cohort_median": float(np.nanmean(base.midpoint[0])),
        "adjustment_factor": float(base.total_dollars[0] / subject.payment_year_paid.sum())
        if subject.payment_year_paid.sum() else float(base.adjustment_factor[0, 0]),
        "dollars": float(base.total_dollars[0]), "payment_year_paid": float(subject.payment_year_paid.sum()),
        "simulation": summary, "levers": levers[:3], "all_levers": levers, "projection": _projection(decision),
        "timeline": timeline(run.rules.performance_year),
        "assumptions": assumptions(decision, decide_names if simulation is not None else ()),
    }

"""The model page (model.html): participation, the cohort's final scores, the exchange curve, each participant's
adjustment and dollars, the pool invariant, and the 2027–2031 projection."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from openasm.payment.adjustment import pool_invariant_notes
from openasm.payment.calendar import model_calendar, model_obligations
from openasm.payment.exchange import PaymentRules, transformed_final_score
from openasm.payment.projection import projection_of_year
from openasm.report import plots
from openasm.report.render import esc, fmt_count, fmt_money, html_table, read_rows
from openasm.rules import RulesForYear


def _num(value: Any, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pct(value: Any, digits: int = 2) -> str:
    return "" if value is None else f"{100 * value:+.{digits}f}%"


def section_participation(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "participant")
    if rows is None:
        return None
    mine = [r for r in rows if r["performance_year"] == rules.performance_year]
    counts = Counter((r["cohort"] or "-", r["reason"]) for r in mine)
    body = [[esc(c), esc(reason), fmt_count(n, rules)] for (c, reason), n in sorted(counts.items())]
    areas = (manifest.get("participation") or {}).get("selected_areas") or {}
    note = ("<p class='bad'>Selected areas: the shipped ILLUSTRATIVE list, not the CMS list.</p>"
            if areas.get("evidence") == "default" else "")
    compared = read_rows(run_dir, "participant_list_comparison") or []
    agreement = Counter(r["agreement"] for r in compared if r["performance_year"] == rules.performance_year)
    listed = "".join(f"<li>{esc(k)}: {fmt_count(v, rules)}</li>" for k, v in sorted(agreement.items()))
    return ("<h2 id='participation'>Participation (§512.710)</h2>" + note
            + html_table(["cohort", "reason", "clinicians"], body, [False, False, True])
            + (f"<p>Computed participants against the CMS participant list:</p><ul>{listed}</ul>" if listed else ""))


def section_final_scores(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "participant_score")
    if rows is None:
        return None
    charts = []
    for cohort in sorted({r["cohort"] for r in rows if r["cohort"]}):
        scores = [r["final_score"] for r in rows if r["cohort"] == cohort and r["final_score"] is not None]
        charts.append(f"<h3>{esc(cohort.upper())}: {fmt_count(len(scores), rules)} scored participants</h3>"
                      + plots.histogram(scores, low=0, high=100, bins=20, x_label="final score"))
    body = [[esc(r["npi"]), esc(r["cohort"]), _num(r["quality_score_pct"]), _num(r["cost_score_pct"]),
             f"{_num(r['quality_weight_used'])} / {_num(r['cost_weight_used'])}", _num(r["ia_deduction_points"], 0),
             _num(r["pi_deduction_points"], 0), _num(r["bonus_points"]), _num(r["final_score"]),
             esc(r["neutral_reason"] or r["zero_score_reason"] or "")]
            for r in sorted(rows, key=lambda r: (r["cohort"] or "", -(r["final_score"] or -1)))]
    return ("<h2 id='scores'>Final scores (§512.745)</h2>" + "".join(charts)
            + html_table(["NPI", "cohort", "quality", "cost", "weights Q / C", "IA −", "PI −", "bonus", "final score",
                      "note"], body, [False, False, True, True, True, True, True, True, True, False]))


def section_exchange_curve(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "payment_adjustment")
    if not rows:
        return None
    low, high = (float(v) for v in rules.value("payment.exchange_range"))
    slope = float(rules.value("payment.exchange_slope_k"))
    pay = PaymentRules.from_rules(rules)
    scores = np.linspace(0.0, 100.0, 201)
    curves = {}
    for cohort in sorted({r["cohort"] for r in rows}):
        midpoints = [r["exchange_midpoint"] for r in rows if r["cohort"] == cohort and r["exchange_midpoint"]]
        if midpoints:  # the engine's own formula, drawn at the cohort's midpoint
            curves[cohort.upper()] = (midpoints[0], transformed_final_score(scores, midpoints[0], pay))
    return ("<h2 id='exchange'>Exchange function (§512.750(c)(1)(ii))</h2>"
            f"<p>Transformed final score TFS = {low:g} + {high - low:g} / (1 + e<sup>−{slope:g}(FS − m)</sup>), "
            "m = the cohort median of positive final scores (payment.exchange_* rules; evidence in the rules "
            "section).</p>"
            + plots.exchange_curve(scores, curves))


def section_adjustments(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "payment_adjustment")
    if rows is None:
        return None
    dollars: dict[str, float] = defaultdict(float)
    estimated: set[str] = set()
    for d in read_rows(run_dir, "adjustment_dollars") or []:
        dollars[d["npi"]] += d["payment_year_adjustment_amount"] or 0.0
        if d["is_estimate"]:
            estimated.add(d["npi"])
    body = [[esc(r["npi"]), esc(r["cohort"]), _num(r["final_score"]), _num(r["transformed_final_score"], 3),
             _num(r["scaling_factor"], 4), _pct(r["adjustment_factor"]), _num(r["multiplier"], 4),
             fmt_money(r["part_b_paid_amount"]), fmt_money(dollars.get(r["npi"]))
             + (" (est.)" if r["npi"] in estimated else "")]
            for r in sorted(rows, key=lambda r: (r["cohort"], -(r["adjustment_factor"] or 0)))]
    pools = {r["cohort"]: (r["pool_amount"], r["risk_level"], r["payment_year"]) for r in rows}
    pool_text = "; ".join(f"{c.upper()}: pool {fmt_money(p)} at risk level {rl:.0%} for payment year {py}"
                          for c, (p, rl, py) in sorted(pools.items()))
    by_tin = [[esc(t["billing_tin"]), fmt_count(t["participant_count"], rules),
               fmt_money(t["payment_year_paid_amount"]),
               fmt_money(t["payment_year_adjustment_amount"]), _pct(t["effective_adjustment_rate"]),
               "yes" if t["has_estimate"] else ""] for t in read_rows(run_dir, "adjustment_dollars_by_tin") or []]
    invariant = read_rows(run_dir, "pool_invariant_check") or []
    checks = [[esc(c["cohort"]), fmt_money(c["net_adjustment"]), fmt_money(c["expected_net_adjustment"]),
               "yes" if c["applies"] else "no", "<span class='ok'>holds</span>" if c["holds"]
               else "<span class='bad'>differs</span>", fmt_money(c.get("unpaid_pool_amount"))] for c in invariant]
    notes = "".join(f"<p class='bad'>{esc(n)}</p>" for n in pool_invariant_notes([c for c in invariant
                                                                                 if not c["applies"]]))
    return ("<h2 id='payment'>Payment adjustments (§512.750)</h2>"
            f"<p>{esc(pool_text)}. Dollars = adjustment factor × the participant's covered professional services "
            "paid in the payment year (estimated from the performance year when the claims do not reach it).</p>"
            + html_table(["NPI", "cohort", "final score", "TFS", "scaling factor", "adjustment", "multiplier",
                      "Part B paid (PY)", "dollars (PaY)"], body, [False, False] + [True] * 7)
            + "<h3>Per practice (TIN)</h3>"
            + html_table(["TIN", "participants", "paid (PaY)", "adjustment (PaY)", "effective rate", "estimate"], by_tin,
                     [False, True, True, True, True, False])
            + "<h3>Pool invariant Σ AF·PB = −retention·RL·ΣPB</h3>"
            + html_table(["cohort", "Σ AF·PB", "−retention·RL·ΣPB", "applies", "result", "pool not paid out"],
                         checks, [False, True, True, False, False, True]) + notes)


def section_projection(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = projection_of_year(read_rows(run_dir, "payment_projection") or [], rules.performance_year)
    if not rows:
        return None
    totals: dict[tuple[str, int], float] = defaultdict(float)
    factors: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in rows:
        totals[(r["scenario"], r["payment_year"])] += r["payment_year_adjustment_amount"] or 0.0
        factors[(r["scenario"], r["payment_year"])].append(r["adjustment_factor"] or 0.0)
    years = sorted({r["payment_year"] for r in rows})
    scenarios = [s for s in ("worst", "expected", "best") if any(k[0] == s for k in totals)]
    body = [[str(y)] + [f"{fmt_money(totals[(s, y)])} ({_pct(sum(factors[(s, y)]) / len(factors[(s, y)]), 1)})"
                        for s in scenarios] for y in years]
    series = {s: [(y, totals[(s, y)]) for y in years] for s in scenarios}
    return ("<h2 id='projection'>Projection 2027–2031 (payment years 2029–2033)</h2>"
            "<p>All participants together: worst = final score 0 every year, expected = today's score with the "
            "rules' trend, best = 100; risk level of each payment year, lock-in assumed "
            "(payment.projection_* rules, evidence default).</p>"
            + html_table(["payment year"] + [f"{s} (mean adjustment)" for s in scenarios], body,
                     [False] + [True] * len(scenarios))
            + plots.line_chart(series, x_label="payment year", y_label="dollars", dollars=True))


def section_calendar(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    """The performance year's dates and obligations (payment.calendar), shown whenever the model page is."""
    if read_rows(run_dir, "participant") is None:
        return None
    dates = [[esc(d.event), esc(d.starts), esc(d.ends), esc(", ".join(d.rules))] for d in model_calendar(rules)]
    duties = [[esc(o.subject), esc(o.value), esc(o.rule)] for o in model_obligations(rules)]
    return (f"<h2 id='calendar'>Calendar and obligations (performance year {rules.performance_year})</h2>"
            + html_table(["what", "from", "until", "rule"], dates, [False] * 4)
            + html_table(["obligation", "value", "rule"], duties, [False] * 3))


MODEL_SECTIONS = [section_participation, section_final_scores, section_exchange_curve, section_adjustments,
                  section_projection, section_calendar]

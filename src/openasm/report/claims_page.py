"""The run summary page (index.html): ingest accounting, quarantine reasons, claim versions, spend by setting
and specialty, episodes, episode cost, cost drivers, cost measure scores and the rules in force."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openasm.report.render import (
    Section,
    bar,
    esc,
    fmt_count,
    fmt_money,
    html_table,
    read_rows,
)
from openasm.rules import RulesForYear


def section_row_counts(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "ingest_summary")
    if rows is None:
        return None
    total_read = sum(r["read"] for r in rows)
    total_q = sum(r["quarantined"] for r in rows)
    ok = all(r["reconciles"] for r in rows)
    cards = (
        f"<div class='cards'><div class='card'>rows read<b>{fmt_count(total_read, rules)}</b></div>"
        f"<div class='card'>accepted<b>{fmt_count(total_read - total_q, rules)}</b></div>"
        f"<div class='card'>quarantined<b>{fmt_count(total_q, rules)}</b></div>"
        f"<div class='card'>accepted + quarantined = read<b class='{'ok' if ok else 'bad'}'>"
        f"{'reconciles' if ok else 'DOES NOT reconcile'}</b></div></div>"
    )
    body = [
        [esc(r["table_name"] + ("" if r["provided"] else " (not provided)")), fmt_count(r["file_count"], rules),
         fmt_count(r["read"], rules), fmt_count(r["accepted"], rules), fmt_count(r["quarantined"], rules),
         "<span class='ok'>yes</span>" if r["reconciles"] else "<span class='bad'>no</span>"]
        for r in rows
    ]
    ignored = manifest.get("ingest", {}).get("ignored_entries", [])
    note = f"<p>Entries in the input folder that are not canonical tables (not read): {esc(', '.join(ignored))}</p>" \
        if ignored else ""
    return "<h2 id='rows'>Row counts and validation</h2>" + cards + html_table(
        ["table", "files", "read", "accepted", "quarantined", "reconciles"], body,
        [False, True, True, True, True, False]) + note


def section_quarantine(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "quarantine_reasons")
    if rows is None:
        return None
    body = [[esc(r["table_name"]), esc(r["column_name"]), esc(r["reason"]), fmt_count(r["row_count"],
                                                                                      rules)] for r in rows]
    text = ("<p>Each rejected row is in <code>outputs/quarantine.csv</code> with its file, row number (1 = first "
            "data row after the header), column, reason and raw value.</p>")
    if not body:
        return "<h2 id='quarantine'>Quarantine reasons</h2><p>No row was quarantined.</p>"
    return "<h2 id='quarantine'>Quarantine reasons</h2>" + text + html_table(
        ["table", "column", "reason", "rows"], body, [False, False, False, True])


def section_claim_versions(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "claim_versions")
    if rows is None:
        return None
    body = [[esc(r["table_name"]), esc(r["final_action_status"]), fmt_count(r["claim_count"], rules),
             fmt_count(r["line_count"], rules)]
            for r in rows]
    text = ("<p>Adjustments replace the claim they point to and cancels void it; only <b>final</b> claims count "
            "in spend. Nothing is dropped: every version keeps its status.</p>")
    return "<h2 id='versions'>Claim versions (final action)</h2>" + text + html_table(
        ["table", "status", "claims", "lines"], body, [False, False, True, True])


def section_spend_by_setting(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "spend_by_setting")
    if rows is None:
        return None
    body = [[esc(r["setting"]), fmt_count(r["claim_count"], rules), fmt_count(r["bene_count"], rules),
             fmt_money(r["allowed_amount"]),
             fmt_money(r["paid_amount"]), f"{r['allowed_share']:.1%}", bar(r["allowed_share"])] for r in rows]
    return "<h2 id='setting'>Claim spend by setting</h2>" + html_table(
        ["setting", "claims", "beneficiaries", "allowed", "paid", "share", ""], body,
        [False, True, True, True, True, True, False])


def section_spend_by_specialty(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "spend_by_specialty")
    if rows is None:
        return None
    total = sum(r["allowed_amount"] or 0 for r in rows) or 1.0
    body = [[esc(r["specialty_code"]), esc(r["specialty_name"]), fmt_count(r["npi_count"], rules),
             fmt_count(r["line_count"], rules),
             fmt_money(r["allowed_amount"]), bar((r["allowed_amount"] or 0) / total)] for r in rows]
    return ("<h2 id='specialty'>Part B professional spend by specialty</h2><p>Carrier and DME final-action lines, "
            "by the specialty code on the line.</p>") + html_table(
        ["code", "specialty", "NPIs", "lines", "allowed", ""], body, [False, False, True, True, True, False])


def section_rules(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = rules.manifest_rows(only_used=False)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["evidence"]] = counts.get(row["evidence"], 0) + 1
    used = {r["name"] for r in manifest.get("rules_used", [])}
    summary = " · ".join(f"<span class='tag {esc(k)}'>{esc(k)}</span> {v}" for k, v in sorted(counts.items()))
    body = [
        [esc(r["name"]) + (" <b>(used)</b>" if r["name"] in used else ""), esc(r["value"]), esc(r["unit"]),
         esc(r["key_year"]), f"<span class='tag {esc(r['evidence'])}'>{esc(r['evidence'])}</span>",
         esc(r["citation"])]
        for r in rows
    ]
    text = (f"<p>Every regulatory number for performance year {rules.performance_year} (payment year "
            f"{rules.payment_year}), with the year its value was set and its evidence: <b>reg</b> = regulation text, "
            f"<b>secondary</b> = published summary, <b>default</b> = openasm's choice where the rule is silent. "
            f"{summary}</p>")
    return "<h2 id='rules'>Rules in force</h2>" + text + html_table(
        ["parameter", "value", "unit", "from year", "evidence", "citation"], body,
        [False, False, False, True, False, False])


def _quantiles(values: list[float], qs=(0.1, 0.25, 0.5, 0.75, 0.9)) -> list[float]:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return [float("nan")] * len(qs)
    out = []
    for q in qs:  # linear interpolation between order statistics
        pos = q * (len(ordered) - 1)
        low = int(pos)
        high = min(low + 1, len(ordered) - 1)
        out.append(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))
    return out


def section_episodes(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "episode_detail")
    if rows is None:
        return None
    measures = sorted({r["measure_id"] for r in rows})
    body, reasons = [], {}
    for measure in measures:
        mine = [r for r in rows if r["measure_id"] == measure]
        scored = [r for r in mine if r["exclusion_reason"] is None]
        attributed = sum(1 for r in scored if r["attributed_npi_count"] > 0)
        body.append([esc(measure), fmt_count(len(mine), rules), fmt_count(len(scored), rules),
                     fmt_count(len(mine) - len(scored), rules),
                     fmt_count(attributed, rules),
                     f"{sum(r['episode_days'] for r in scored) / max(1, len(scored)):.0f}"])
        for r in mine:
            if r["exclusion_reason"] is not None:
                reasons[(measure, r["exclusion_reason"])] = reasons.get((measure, r["exclusion_reason"]), 0) + 1
    reason_rows = [[esc(m), esc(reason), fmt_count(n, rules)] for (m, reason), n in sorted(reasons.items())]
    return (f"<h2 id='episodes'>Episodes (performance year {rules.performance_year})</h2>"
            "<p>Episodes end in the performance year; excluded episodes keep their first reason "
            "(<code>outputs/episode_exclusion.csv</code> lists every reason).</p>"
            + html_table(["measure", "episodes", "scored", "excluded", "scored with an attributed NPI", "mean days"],
                     body, [False, True, True, True, True, True])
            + "<h3>Exclusion reasons (first reason per episode)</h3>"
            + html_table(["measure", "reason", "episodes"], reason_rows, [False, False, True]))


def section_cost_distribution(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "episode_detail")
    drivers = read_rows(run_dir, "cost_drivers")
    if rows is None:
        return None
    national = rules.value("cost.national_average_cost_per_episode")
    body = []
    for measure in sorted({r["measure_id"] for r in rows}):
        costs = [r["observed_cost"] for r in rows if r["measure_id"] == measure and r["exclusion_reason"] is None]
        mean = sum(costs) / len(costs) if costs else float("nan")
        unstd = sum(r["unstandardized_amount"] for r in rows if r["measure_id"] == measure)
        raw = sum(r["observed_raw_amount"] for r in rows if r["measure_id"] == measure) or 1.0
        body.append([esc(measure), fmt_count(len(costs), rules), fmt_money(mean), fmt_money(national.get(measure))]
                    + [fmt_money(q) for q in _quantiles(costs)] + [f"{unstd / raw:.1%}"])
    html_out = ("<h2 id='cost'>Episode cost</h2><p>Scaled observed cost (standardized, annualized to 365 days) "
                "of scored episodes, beside CMS's published national average cost per episode "
                "(<code>cost.national_average_cost_per_episode</code>). The last column is the share of assigned "
                "dollars that rest on the allowed amount because the input had no standardized amount.</p>"
                + html_table(["measure", "episodes", "mean", "national average", "p10", "p25", "median", "p75",
                              "p90", "unstandardized"], body, [False] + [True] * 9))
    if drivers:
        driver_rows = [[esc(r["measure_id"]), esc(r["service_category"]), fmt_count(r["episode_count"], rules),
                        fmt_money(r["std_cost_amount"]), f"{r['cost_share']:.1%}", bar(r["cost_share"])]
                       for r in sorted(drivers, key=lambda r: (r["measure_id"], -r["std_cost_amount"]))]
        html_out += "<h3>Top cost drivers (service categories)</h3>" + html_table(
            ["measure", "category", "episodes", "cost", "share", ""], driver_rows,
            [False, False, True, True, True, False])
    return html_out


def section_measure_scores(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "measure_score")
    if rows is None:
        return None
    body = []
    for measure in sorted({r["measure_id"] for r in rows}):
        for level in ("tin", "tin_npi"):
            mine = [r for r in rows if r["measure_id"] == measure and r["entity_level"] == level]
            scored = [r for r in mine if r["meets_case_minimum"]]
            scores = [r["score_amount"] for r in scored]
            points = [r["achievement_points"] for r in scored if r["achievement_points"] is not None]
            mean = sum(scores) / len(scores) if scores else float("nan")
            sd = (sum((x - mean) ** 2 for x in scores) / (len(scores) - 1)) ** 0.5 if len(scores) > 1 else float("nan")
            body.append([esc(measure), esc(level), fmt_count(len(mine), rules), fmt_count(len(scored), rules),
                         fmt_money(mean),
                         f"{sd / mean:.2f}" if scores else "", f"{sum(points) / len(points):.2f}" if points else ""])
    top = sorted((r for r in rows if r["meets_case_minimum"] and r["entity_level"] == "tin_npi"),
                 key=lambda r: -(r["mean_oe_ratio"] or 0))[:10]
    top_rows = [[esc(r["measure_id"]), esc(r["billing_tin"]), esc(r["rendering_npi"]),
                 fmt_count(r["n_episodes"], rules),
                 fmt_money(r["score_amount"]), f"{r['mean_oe_ratio']:.2f}",
                 "" if r["achievement_points"] is None else f"{r['achievement_points']:.2f}"] for r in top]
    minimum = rules.value("cost.case_minimum")
    return (f"<h2 id='scores'>Cost measure scores</h2><p>Score = mean observed/expected ratio × national mean "
            f"observed cost; entities with fewer than {minimum} episodes are not scored. Points 1–10 (lower cost, "
            f"more points) from the {esc(rules.value('cost.benchmark_source'))} benchmark.</p>"
            + html_table(["measure", "level", "entities", f"≥ {minimum} episodes", "mean score", "SD / mean",
                      "mean points"], body, [False, False, True, True, True, True, True])
            + "<h3>Clinicians with the highest observed/expected cost (TIN-NPI)</h3>"
            + html_table(["measure", "TIN", "NPI", "episodes", "score", "O/E", "points"], top_rows,
                     [False, False, False, True, True, True, True]))


CLAIMS_SECTIONS: list[Section] = [
    section_row_counts,
    section_quarantine,
    section_claim_versions,
    section_spend_by_setting,
    section_spend_by_specialty,
    section_episodes,
    section_cost_distribution,
    section_measure_scores,
    section_rules,
]

"""Readable HTML summary of a run, built only from its finished output tables and manifest.

Each section is a function from the run's outputs to an HTML fragment; a section whose tables are absent is
left out, so later stages add their pages by adding sections here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from openasm import __version__
from openasm.pipeline import MANIFEST, OUTPUTS
from openasm.rules import RulesForYear

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;
line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:2px solid #dde3ea;
padding-bottom:.3rem}.sub{color:#5b6877;margin-top:0}table{border-collapse:collapse;width:100%;font-size:.88rem;
margin:.6rem 0}th,td{border-bottom:1px solid #e6eaef;padding:.32rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#3b7dd8;height:.7rem;border-radius:2px}.ok{color:#1e7d32;font-weight:600}.bad{color:#b3261e;
font-weight:600}.tag{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.78rem}
.tag.reg{background:#dff3e3}.tag.secondary{background:#fff1cc}.tag.default{background:#fde2e1}
.tag.override{background:#e5dcff}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f4f6f9;
border-radius:6px;padding:.7rem 1rem;min-width:10rem}.card b{display:block;font-size:1.3rem}
nav a{margin-right:1rem}
"""


def _read_output(run_dir: Path, name: str) -> list[dict[str, Any]] | None:
    path = Path(run_dir) / OUTPUTS / f"{name}.parquet"
    if not path.exists():
        return None
    return pq.read_table(path).to_pylist()


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _money(value: Any) -> str:
    if value is None:
        return ""
    return f"{'−' if value < 0 else ''}${abs(value):,.0f}"


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{c}</td>" if n else f"<td>{c}</td>" for c, n in zip(row, numeric)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar(share: float) -> str:
    return f"<div class='bar' style='width:{max(0.0, min(1.0, share)) * 100:.1f}%'></div>"


def section_row_counts(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "ingest_summary")
    if rows is None:
        return None
    total_read = sum(r["read"] for r in rows)
    total_q = sum(r["quarantined"] for r in rows)
    ok = all(r["reconciles"] for r in rows)
    cards = (
        f"<div class='cards'><div class='card'>rows read<b>{total_read:,}</b></div>"
        f"<div class='card'>accepted<b>{total_read - total_q:,}</b></div>"
        f"<div class='card'>quarantined<b>{total_q:,}</b></div>"
        f"<div class='card'>accepted + quarantined = read<b class='{'ok' if ok else 'bad'}'>"
        f"{'reconciles' if ok else 'DOES NOT reconcile'}</b></div></div>"
    )
    body = [
        [_esc(r["table_name"] + ("" if r["provided"] else " (not provided)")), _count(r["file_count"]),
         _count(r["read"]), _count(r["accepted"]), _count(r["quarantined"]),
         "<span class='ok'>yes</span>" if r["reconciles"] else "<span class='bad'>no</span>"]
        for r in rows
    ]
    ignored = manifest.get("ingest", {}).get("ignored_entries", [])
    note = f"<p>Entries in the input folder that are not canonical tables (not read): {_esc(', '.join(ignored))}</p>" \
        if ignored else ""
    return "<h2 id='rows'>Row counts and validation</h2>" + cards + _table(
        ["table", "files", "read", "accepted", "quarantined", "reconciles"], body,
        [False, True, True, True, True, False]) + note


def section_quarantine(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "quarantine_reasons")
    if rows is None:
        return None
    body = [[_esc(r["table_name"]), _esc(r["column_name"]), _esc(r["reason"]), _count(r["row_count"])] for r in rows]
    text = ("<p>Each rejected row is in <code>outputs/quarantine.csv</code> with its file, row number (1 = first "
            "data row after the header), column, reason and raw value.</p>")
    if not body:
        return "<h2 id='quarantine'>Quarantine reasons</h2><p>No row was quarantined.</p>"
    return "<h2 id='quarantine'>Quarantine reasons</h2>" + text + _table(
        ["table", "column", "reason", "rows"], body, [False, False, False, True])


def section_claim_versions(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "claim_versions")
    if rows is None:
        return None
    body = [[_esc(r["table_name"]), _esc(r["final_action_status"]), _count(r["claim_count"]), _count(r["line_count"])]
            for r in rows]
    text = ("<p>Adjustments replace the claim they point to and cancels void it; only <b>final</b> claims count "
            "in spend. Nothing is dropped: every version keeps its status.</p>")
    return "<h2 id='versions'>Claim versions (final action)</h2>" + text + _table(
        ["table", "status", "claims", "lines"], body, [False, False, True, True])


def section_spend_by_setting(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "spend_by_setting")
    if rows is None:
        return None
    body = [[_esc(r["setting"]), _count(r["claim_count"]), _count(r["bene_count"]), _money(r["allowed_amount"]),
             _money(r["paid_amount"]), f"{r['allowed_share']:.1%}", _bar(r["allowed_share"])] for r in rows]
    return "<h2 id='setting'>Claim spend by setting</h2>" + _table(
        ["setting", "claims", "beneficiaries", "allowed", "paid", "share", ""], body,
        [False, True, True, True, True, True, False])


def section_spend_by_specialty(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "spend_by_specialty")
    if rows is None:
        return None
    total = sum(r["allowed_amount"] or 0 for r in rows) or 1.0
    body = [[_esc(r["specialty_code"]), _esc(r["specialty_name"]), _count(r["npi_count"]), _count(r["line_count"]),
             _money(r["allowed_amount"]), _bar((r["allowed_amount"] or 0) / total)] for r in rows]
    return ("<h2 id='specialty'>Part B professional spend by specialty</h2><p>Carrier and DME final-action lines, "
            "by the specialty code on the line.</p>") + _table(
        ["code", "specialty", "NPIs", "lines", "allowed", ""], body, [False, False, True, True, True, False])


def section_rules(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = rules.manifest_rows(only_used=False)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["evidence"]] = counts.get(row["evidence"], 0) + 1
    used = {r["name"] for r in manifest.get("rules_used", [])}
    summary = " · ".join(f"<span class='tag {_esc(k)}'>{_esc(k)}</span> {v}" for k, v in sorted(counts.items()))
    body = [
        [_esc(r["name"]) + (" <b>(used)</b>" if r["name"] in used else ""), _esc(r["value"]), _esc(r["unit"]),
         _esc(r["key_year"]), f"<span class='tag {_esc(r['evidence'])}'>{_esc(r['evidence'])}</span>",
         _esc(r["citation"])]
        for r in rows
    ]
    text = (f"<p>Every regulatory number for performance year {rules.performance_year} (payment year "
            f"{rules.payment_year}), with the year its value was set and its evidence: <b>reg</b> = regulation text, "
            f"<b>secondary</b> = published summary, <b>default</b> = openasm's choice where the rule is silent. "
            f"{summary}</p>")
    return "<h2 id='rules'>Rules in force</h2>" + text + _table(
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
    rows = _read_output(run_dir, "episode_detail")
    if rows is None:
        return None
    measures = sorted({r["measure_id"] for r in rows})
    body, reasons = [], {}
    for measure in measures:
        mine = [r for r in rows if r["measure_id"] == measure]
        scored = [r for r in mine if r["exclusion_reason"] is None]
        attributed = sum(1 for r in scored if r["attributed_npi_count"] > 0)
        body.append([_esc(measure), _count(len(mine)), _count(len(scored)), _count(len(mine) - len(scored)),
                     _count(attributed), f"{sum(r['episode_days'] for r in scored) / max(1, len(scored)):.0f}"])
        for r in mine:
            if r["exclusion_reason"] is not None:
                reasons[(measure, r["exclusion_reason"])] = reasons.get((measure, r["exclusion_reason"]), 0) + 1
    reason_rows = [[_esc(m), _esc(reason), _count(n)] for (m, reason), n in sorted(reasons.items())]
    return (f"<h2 id='episodes'>Episodes (performance year {rules.performance_year})</h2>"
            "<p>Episodes end in the performance year; excluded episodes keep their first reason "
            "(<code>outputs/episode_exclusion.csv</code> lists every reason).</p>"
            + _table(["measure", "episodes", "scored", "excluded", "scored with an attributed NPI", "mean days"],
                     body, [False, True, True, True, True, True])
            + "<h3>Exclusion reasons (first reason per episode)</h3>"
            + _table(["measure", "reason", "episodes"], reason_rows, [False, False, True]))


def section_cost_distribution(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "episode_detail")
    drivers = _read_output(run_dir, "cost_drivers")
    if rows is None:
        return None
    body = []
    for measure in sorted({r["measure_id"] for r in rows}):
        costs = [r["observed_cost"] for r in rows if r["measure_id"] == measure and r["exclusion_reason"] is None]
        mean = sum(costs) / len(costs) if costs else float("nan")
        unstd = sum(r["unstandardized_amount"] for r in rows if r["measure_id"] == measure)
        raw = sum(r["observed_raw_amount"] for r in rows if r["measure_id"] == measure) or 1.0
        body.append([_esc(measure), _count(len(costs)), _money(mean)] + [_money(q) for q in _quantiles(costs)]
                    + [f"{unstd / raw:.1%}"])
    html_out = ("<h2 id='cost'>Episode cost</h2><p>Scaled observed cost (standardized, annualized to 365 days) "
                "of scored episodes. The last column is the share of assigned dollars that rest on the allowed "
                "amount because the input had no standardized amount.</p>"
                + _table(["measure", "episodes", "mean", "p10", "p25", "median", "p75", "p90", "unstandardized"],
                         body, [False] + [True] * 8))
    if drivers:
        driver_rows = [[_esc(r["measure_id"]), _esc(r["service_category"]), _count(r["episode_count"]),
                        _money(r["std_cost_amount"]), f"{r['cost_share']:.1%}", _bar(r["cost_share"])]
                       for r in sorted(drivers, key=lambda r: (r["measure_id"], -r["std_cost_amount"]))]
        html_out += "<h3>Top cost drivers (service categories)</h3>" + _table(
            ["measure", "category", "episodes", "cost", "share", ""], driver_rows,
            [False, False, True, True, True, False])
    return html_out


def section_measure_scores(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = _read_output(run_dir, "measure_score")
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
            body.append([_esc(measure), _esc(level), _count(len(mine)), _count(len(scored)), _money(mean),
                         f"{sd / mean:.2f}" if scores else "", f"{sum(points) / len(points):.2f}" if points else ""])
    top = sorted((r for r in rows if r["meets_case_minimum"] and r["entity_level"] == "tin_npi"),
                 key=lambda r: -(r["mean_oe_ratio"] or 0))[:10]
    top_rows = [[_esc(r["measure_id"]), _esc(r["billing_tin"]), _esc(r["rendering_npi"]), _count(r["n_episodes"]),
                 _money(r["score_amount"]), f"{r['mean_oe_ratio']:.2f}",
                 "" if r["achievement_points"] is None else f"{r['achievement_points']:.2f}"] for r in top]
    minimum = rules.value("cost.case_minimum")
    return (f"<h2 id='scores'>Cost measure scores</h2><p>Score = mean observed/expected ratio × national mean "
            f"observed cost; entities with fewer than {minimum} episodes are not scored. Points 1–10 (lower cost, "
            f"more points) from the {_esc(rules.value('cost.benchmark_source'))} benchmark.</p>"
            + _table(["measure", "level", "entities", f"≥ {minimum} episodes", "mean score", "SD / mean",
                      "mean points"], body, [False, False, True, True, True, True, True])
            + "<h3>Clinicians with the highest observed/expected cost (TIN-NPI)</h3>"
            + _table(["measure", "TIN", "NPI", "episodes", "score", "O/E", "points"], top_rows,
                     [False, False, False, True, True, True, True]))


SECTIONS: list[Callable[[Path, dict[str, Any], RulesForYear], str | None]] = [
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


PAGES = (("index.html", "run summary"), ("quality.html", "quality"), ("model.html", "scores and payment"))


def _page_sections() -> dict[str, list[Callable[[Path, dict[str, Any], RulesForYear], str | None]]]:
    from openasm.report.model_page import MODEL_SECTIONS
    from openasm.report.quality_page import QUALITY_SECTIONS

    return {"index.html": SECTIONS, "quality.html": QUALITY_SECTIONS, "model.html": MODEL_SECTIONS}


def write_report(run_dir: Path, out_dir: Path, rules: RulesForYear) -> Path:
    """Write `<out_dir>/index.html` for the run in `run_dir`, plus quality.html and model.html when the run has
    those stages' outputs. Returns the index page."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    manifest_path = run_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    ingest = manifest.get("ingest", {})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pages = {name: [f for f in (section(run_dir, manifest, rules) for section in sections) if f]
             for name, sections in _page_sections().items()}
    written = [name for name, _title in PAGES if name == "index.html" or pages[name]]
    nav = "<nav>" + "".join(f"<a href='{name}'><b>{_esc(title)}</b></a>" for name, title in PAGES
                            if name in written) + "</nav>"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, title in PAGES:
        if name not in written:
            continue
        local = ("<nav><a href='#rows'>rows</a><a href='#quarantine'>quarantine</a><a href='#versions'>claim "
                 "versions</a><a href='#setting'>spend by setting</a><a href='#specialty'>by specialty</a><a "
                 "href='#episodes'>episodes</a><a href='#cost'>episode cost</a><a href='#scores'>cost scores</a><a "
                 "href='#rules'>rules</a></nav>") if name == "index.html" else ""
        header = (f"<h1>openasm {_esc(title)}</h1><p class='sub'>openasm {__version__} · backend "
                  f"{_esc(manifest.get('backend', '?'))} · input {_esc(ingest.get('input_dir', '?'))} · "
                  f"performance year {rules.performance_year} (payment year {rules.payment_year}) · written "
                  f"{stamp}</p>{nav}{local}")
        page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>openasm {_esc(title)}</title>"
                f"<style>{CSS}</style></head><body>{header}{''.join(pages[name])}</body></html>")
        (out_dir / name).write_text(page, encoding="utf-8")
    return out_dir / "index.html"

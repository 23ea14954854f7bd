"""The quality page (quality.html): EHR ingest, measure rates against the MIPS benchmark deciles, participants'
measure points, and the gap counts a practice works from."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from openasm.report.render import esc, fmt_count, html_table, read_rows
from openasm.rules import RulesForYear

DECILE_KEYS = ("p10", "p20", "p30", "p40", "p50", "p60", "p70", "p80", "p90")
COLLECTION = {"electronicHealthRecord": "eCQM", "registry": "MIPS CQM", "claims": "Part B claims",
              "administrativeClaims": "admin claims"}


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:.1f}%"


def benchmark_decile(rate: float, row: dict, inverse: bool) -> int:
    """The decile a rate falls in (quality.md §2.3: highest decile whose bound it reaches; inverse reversed)."""
    bounds = [row[k] for k in DECILE_KEYS]
    if inverse:
        return max([1] + [10 - i for i, bound in enumerate(bounds) if bound is not None and rate <= bound])
    return max([1] + [i + 2 for i, bound in enumerate(bounds) if bound is not None and rate >= bound])


def section_fhir_ingest(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "fhir_ingest_summary")
    if rows is None:
        return None
    body = [[esc(r["resource_type"]), fmt_count(r["accepted"], rules), fmt_count(r["quarantined"],
                                                                                 rules)] for r in rows]
    reasons = Counter(r["reason"] for r in (read_rows(run_dir, "fhir_quarantine") or [])
                      if r.get("action", "quarantined") == "quarantined")
    listed = "".join(f"<li>{esc(k)}: {fmt_count(v, rules)}</li>" for k, v in reasons.most_common())
    return ("<h2 id='ehr'>EHR data (FHIR)</h2><p>Every resource read is accepted into the clinical tables or "
            "quarantined with its file, line and reason (outputs/fhir_quarantine.csv).</p>"
            + html_table(["resource type", "accepted", "quarantined"], body, [False, True, True])
            + (f"<ul>{listed}</ul>" if listed else ""))


def _benchmarks(rules: RulesForYear, benchmark_py: int) -> dict[tuple[str, str], dict]:
    table = rules.code_list("quality__mips_benchmarks").to_pylist()
    out = {}
    for row in table:
        if int(row["performance_year"]) == benchmark_py and not row.get("exclusion_reason"):
            out[(row["measure_id"], row["collection_type"])] = {
                **row, **{k: float(row[k]) if row[k] not in (None, "") else None for k in DECILE_KEYS}}
    return out


def section_measure_rates(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "measure_aggregate")
    if rows is None:
        return None
    benchmark_py = 2026
    benchmarks = _benchmarks(rules, benchmark_py)
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["entity_level"] == "tin_npi" and r["stratum"] == "overall" and not r["is_proxy"]:
            grouped[(r["measure_id"], r["collection_type"])].append(r)
    body = []
    for (measure, collection), mine in sorted(grouped.items()):
        met = sum(r["performance_met"] or 0 for r in mine)
        counted = met + sum(r["performance_not_met"] or 0 for r in mine)
        rates = sorted(r["performance_rate"] for r in mine if r["performance_rate"] is not None)
        pooled = 100.0 * met / counted if counted else (sum(rates) / len(rates) if rates else None)
        median = rates[len(rates) // 2] if rates else None
        bench = benchmarks.get((measure, collection))
        inverse = bool(bench and str(bench["is_inverse"]).lower() == "true")
        decile = benchmark_decile(median, bench, inverse) if bench and median is not None else None
        cuts = " / ".join("" if bench is None or bench[k] is None else f"{bench[k]:g}" for k in ("p10", "p50", "p90"))
        body.append([esc(measure), esc(COLLECTION.get(collection, collection)), fmt_count(len(mine), rules),
                     fmt_count(counted, rules) if counted else "", _pct(pooled), _pct(median),
                     esc(cuts) if bench else "no benchmark", "" if decile is None else str(decile),
                     "inverse" if inverse else ""])
    return (f"<h2 id='rates'>Measure rates against the PY{benchmark_py} MIPS benchmarks</h2>"
            "<p>Per clinician (TIN/NPI). Pooled rate = Σ met / Σ (met + not met); the decile is where the median "
            "clinician's rate falls among the benchmark's cut points (for inverse measures a lower rate is better). "
            "Q492 comes from CMS and has no counts.</p>"
            + html_table(["measure", "collection", "clinicians", "cases", "pooled rate", "median rate",
                      "benchmark p10 / p50 / p90", "decile of median", ""], body,
                     [False, False, True, True, True, True, False, True, False]))


def section_participant_points(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "quality_measure_score")
    categories = read_rows(run_dir, "quality_category_score")
    if rows is None or categories is None:
        return None
    body = [[esc(r["npi"]), esc(r["cohort"]), esc(r["measure_id"]),
             esc(COLLECTION.get(r["collection_type"], r["collection_type"])), _pct(r["performance_rate"]),
             fmt_count(r["case_count"], rules), "" if r["decile"] is None else str(r["decile"]),
             "" if r["achievement_points"] is None else f"{r['achievement_points']:.2f}", esc(r["status"])]
            for r in sorted(rows, key=lambda r: (r["npi"] or "", r["measure_id"]))
            if r.get("is_winner", True) and r["stratum"] == "overall"]
    summary = [[esc(c["npi"]), esc(c["cohort"]), f"{c['points_earned'] or 0:.2f} / {c['points_available'] or 0:.0f}",
                _pct(c["quality_score_pct"]), "yes" if c["min_submission_met"] else "<span class='bad'>no</span>"]
               for c in sorted(categories, key=lambda c: c["npi"] or "")]
    return ("<h2 id='points'>Participants' quality points</h2>"
            + html_table(["NPI", "cohort", "points / available", "quality score", "minimum submission met"], summary,
                     [False, False, True, True, False])
            + "<h3>By measure</h3>"
            + html_table(["NPI", "cohort", "measure", "collection", "rate", "cases", "decile", "points", "status"], body,
                     [False, False, False, False, True, True, True, True, False]))


def _reason_kind(reason: str | None) -> str:
    """Group gap reasons that differ only in the numbers they quote (a BP, a BMI, a count)."""
    return re.sub(r"\d+(\.\d+)?", "#", reason or "")


def section_gaps(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    rows = read_rows(run_dir, "measure_gap")
    if rows is None:
        return None
    counts = Counter((r["measure_id"], _reason_kind(r["gap_reason"])) for r in rows)
    body = [[esc(m), esc(reason), fmt_count(n, rules)] for (m, reason), n in sorted(counts.items(),
                                                                                    key=lambda x: (x[0][0],
                                                                                                          -x[1]))]
    return ("<h2 id='gaps'>Care gaps</h2><p>Patients in a measure's denominator who miss the numerator (for the "
            "inverse Q238, patients with the high-risk orders), with why; the full list with patient, clinician, "
            "encounter and evidence is outputs/measure_gap.csv — what a practice works from each week.</p>"
            + html_table(["measure", "reason (# = a value from the record)", "patients"], body, [False, False, True]))


def section_feeds(run_dir: Path, manifest: dict[str, Any], rules: RulesForYear) -> str | None:
    quarantine = read_rows(run_dir, "quality_feed_quarantine")
    proxy = read_rows(run_dir, "q492_proxy")
    if quarantine is None and proxy is None:
        return None
    parts = ["<h2 id='feeds'>Q220 and Q492 feeds</h2>"]
    if quarantine:
        body = [[esc(r.get("feed")), esc(r.get("source_row")), esc(r.get("column")),
                 esc(r.get("reason"))] for r in quarantine]
        parts.append("<p>Rows of the feed files that could not be used:</p>"
                     + html_table(["feed", "row", "column", "reason"], body, [False, True, False, False]))
    if proxy:
        rates = sorted(r["performance_rate"] for r in proxy if r.get("performance_rate") is not None)
        parts.append(f"<p>Q492 claims proxy (monitoring only, unadjusted, never scored): "
                     f"{fmt_count(len(proxy), rules)} "
                     f"clinicians, median {rates[len(rates) // 2]:.1f} admissions per 100 person-years.</p>"
                     if rates else "")
    return "".join(parts)


QUALITY_SECTIONS = [section_fhir_ingest, section_measure_rates, section_participant_points, section_gaps,
                    section_feeds]

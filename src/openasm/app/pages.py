"""Data of the dashboard pages, from a run's finished tables (pure: no web framework here).

Every function takes the `Dashboard` state (run tables, the subject's decision) and returns a dict for its
template. Counts pass through the template's `count` filter (small-cell suppression); patient-level pages are
flagged `phi` and carry the PHI label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from openasm.decide.levers import measure_label
from openasm.decide.outlook import build_outlook
from openasm.decide.run_tables import RunTables
from openasm.decide.whatif import Decision, break_even, decision_for, parse_target
from openasm.disclosure import PHI_LABEL, SmallCellPolicy
from openasm.report import plots
from openasm.schema.run_folder import read_output


@dataclass
class Dashboard:
    """The state of one served run: its tables and the decisions of the subjects looked at so far."""

    run: RunTables
    policy: SmallCellPolicy
    default_subject: dict
    decisions: dict = field(default_factory=dict)
    simulations: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    def subject(self, npi: str | None, tin: str | None) -> dict:
        return {"npi": npi} if npi else {"tin": tin} if tin else dict(self.default_subject)

    def decision(self, subject: dict) -> Decision:
        key = tuple(sorted(subject.items()))
        if key not in self.decisions:
            self.decisions[key] = decision_for(self.run, **subject)
        return self.decisions[key]

    def table(self, name: str) -> list[dict]:
        """Rows of an output table (read once; empty when absent)."""
        if name not in self._cache:
            table = read_output(self.run.run_dir, name)
            self._cache[name] = [] if table is None else table.to_pylist()
        return self._cache[name]


def subject_label(subject: dict) -> str:
    return f"NPI {subject['npi']}" if "npi" in subject else f"practice TIN {subject['tin']}"


def subjects(board: Dashboard) -> list[dict]:
    """The choices of the subject selector: every TIN, then every scored NPI."""
    rows = board.run.rows("payment_adjustment")
    tins = sorted({str(r["tin"]) for r in rows})
    return [{"tin": t, "label": f"TIN {t}"} for t in tins] + [
        {"npi": str(r["npi"]), "label": f"NPI {r['npi']} ({r['cohort']})"} for r in rows if not r["is_neutral"]]


def outlook_page(board: Dashboard, subject: dict) -> dict:
    decision = board.decision(subject)
    key = tuple(sorted(subject.items()))
    outlook = build_outlook(decision, board.simulations.get(key))
    series = {s: [(y["payment_year"], y.get(s, 0.0)) for y in outlook["projection"]]
              for s in ("worst", "expected", "best")}
    chart = plots.line_chart(series, x_label="payment year", y_label="dollars", dollars=True) \
        if outlook["projection"] else ""
    return {"o": outlook, "projection_chart": chart}


def quality_page(board: Dashboard, subject: dict) -> dict:
    npis = set(board.decision(subject).subject.npis)
    bench = {(r["performance_year"], r["measure_id"], r["collection_type"]): r
             for r in board.table("quality_benchmark")}
    rows = []
    for r in board.table("quality_measure_score"):
        if str(r["npi"]) in npis and r["is_winner"]:
            b = bench.get((r["performance_year"], r["measure_id"], r["collection_type"]), {})
            rows.append({**r, "label": measure_label(r["measure_id"]), "p10": b.get("p10"), "p50": b.get("p50"),
                         "p90": b.get("p90")})
    rows.sort(key=lambda r: (str(r["npi"]), r["label"]))
    gaps = Counter((r["measure_id"], str(r["npi"])) for r in board.table("measure_gap") if str(r["npi"]) in npis)
    gap_rows = [{"measure_id": m, "label": measure_label(m), "npi": n, "patients": c}
                for (m, n), c in sorted(gaps.items())]
    points = defaultdict(list)
    for r in rows:
        if r["achievement_points"] is not None:
            points[r["label"]].append(r["achievement_points"])
    chart = plots.histogram([p for v in points.values() for p in v], low=0, high=10, bins=10,
                            x_label="achievement points per measure") if points else ""
    return {"rows": rows, "gaps": gap_rows, "chart": chart}


def gap_page(board: Dashboard, subject: dict, measure_id: str, npi: str) -> dict:
    npis = set(board.decision(subject).subject.npis)
    patients = [r for r in board.table("measure_gap")
                if r["measure_id"] == measure_id and str(r["npi"]) == npi and npi in npis]
    return {"patients": patients, "measure": measure_label(measure_id), "npi": npi, "phi": PHI_LABEL}


def cost_page(board: Dashboard, subject: dict) -> dict:
    decision = board.decision(subject)
    npis, tins = set(decision.subject.npis), set(decision.subject.tins)
    mine = {r["episode_id"] for r in board.table("episode_attribution")
            if r["is_attributed"] and str(r["rendering_npi"]) in npis and str(r["billing_tin"]) in tins}
    episodes = [r for r in board.table("episode_detail") if r["episode_id"] in mine
                and r["performance_year"] == board.run.rules.performance_year and r["exclusion_reason"] is None]
    scored = {r["episode_id"] for r in episodes}
    by_category: dict[str, float] = defaultdict(float)
    for r in board.table("episode_cost_by_category"):
        if r["episode_id"] in scored:
            by_category[r["service_category"] or "other"] += r["std_cost_amount"] or 0.0
    by_provider: dict[str, list] = defaultdict(lambda: [0.0, set()])
    for r in board.table("episode_cost_line"):
        if r["episode_id"] in scored:
            entry = by_provider[str(r["rendering_npi"] or r["billing_tin"] or "—")]
            entry[0] += r["std_cost_amount"] or 0.0
            entry[1].add(r["episode_id"])
    providers = sorted(({"provider": k, "cost": v[0], "episodes": len(v[1])} for k, v in by_provider.items()),
                       key=lambda p: -p["cost"])[:15]
    total = sum(by_category.values()) or 1.0
    categories = sorted(({"category": k, "cost": v, "share": v / total} for k, v in by_category.items()),
                        key=lambda c: -c["cost"])
    costliest = sorted(episodes, key=lambda r: -(r["observed_cost"] or 0.0))[:10]
    chart = plots.histogram([r["observed_cost"] for r in episodes if r["observed_cost"] is not None],
                            low=0, high=max([r["observed_cost"] or 0.0 for r in episodes] + [1.0]), bins=20,
                            x_label="observed episode cost (standardized, annualized)") if episodes else ""
    return {"episodes": len(episodes), "categories": categories, "providers": providers, "costliest": costliest,
            "chart": chart}


def episode_page(board: Dashboard, episode_id: str) -> dict:
    lines = sorted((r for r in board.table("episode_cost_line") if r["episode_id"] == episode_id),
                   key=lambda r: (str(r["service_date"]), str(r["claim_id"]), r["line_number"] or 0))
    detail = next((r for r in board.table("episode_detail") if r["episode_id"] == episode_id), None)
    return {"episode_id": episode_id, "lines": lines, "detail": detail, "phi": PHI_LABEL}


def whatif_page(board: Dashboard, subject: dict) -> dict:
    decision = board.decision(subject)
    marks = {b.lever: b for b in break_even(decision, parse_target("af>=0"), grid=101, rounds=2)}
    baseline = decision.evaluate({})
    levers = [{"lever": lever, "mark": marks.get(name)} for name, lever in decision.levers.items()]
    return {"levers": levers, "baseline": baseline}


def whatif_result(board: Dashboard, subject: dict, settings: dict[str, float]) -> dict:
    """JSON of the what-if API: the scenario's numbers and their differences from the baseline."""
    decision = board.decision(subject)
    scenario, baseline = decision.evaluate(settings), decision.evaluate({})

    def pair(name: str) -> dict:
        new, old = getattr(scenario, name)[0], getattr(baseline, name)[0]
        return {"scenario": [None if v != v else float(v) for v in new],
                "baseline": [None if v != v else float(v) for v in old]}

    return {"npis": decision.subject.npis, **{n: pair(n) for n in (
        "quality_pct", "cost_pct", "final_score", "transformed_final_score", "adjustment_factor", "dollars")},
            "total_dollars": {"scenario": float(scenario.total_dollars[0]),
                              "baseline": float(baseline.total_dollars[0])}}


def rules_page(board: Dashboard) -> dict:
    used = {r["name"] for r in board.run.manifest.get("rules_used", [])}
    rows = board.run.rules.manifest_rows(only_used=False)
    evidence = Counter(r["evidence"] for r in rows)
    return {"rows": rows, "used": used, "evidence": sorted(evidence.items())}

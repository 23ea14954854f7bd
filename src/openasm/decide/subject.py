"""The practice whose decisions are weighed (one NPI, or every participant NPI of a TIN) and its cohort, as arrays
taken from a run's finished tables (`RunTables`).

Quality: one row per (NPI, measure) that counts for the NPI (the winning submission, or the not-reported row),
with its rate, data completeness, case count and the benchmark it was scored against. Cost: the measure_score row
the cost category used. IA/PI, EUC, practice size and bonuses as stored. Cohort: every participant of the
subject's cohorts with final score, Part B paid and neutral flag, as the payment stage used them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.cost.points import has_knot_values, knot_pairs
from openasm.decide.run_tables import RunTables
from openasm.payment.dollars import growth_over_lag
from openasm.scoring.quality_benchmarks import KEY
from openasm.scoring.quality_points import ADMIN_CLAIMS, PERCENTILE_KEYS, pcol


class SubjectError(ValueError):
    """The NPI or TIN is not a scored participant of the run."""


def _f(value) -> float:
    return np.nan if value is None else float(value)


@dataclass
class QualityRows:
    """R rows; `owner` is the index of the subject NPI each row belongs to."""

    owner: np.ndarray
    measure_id: np.ndarray
    is_reported: np.ndarray  # an eligible submission (levers apply); else a not-reported / not-calculated row
    rate: np.ndarray  # 0-100
    data_completeness: np.ndarray
    case_count: np.ndarray
    is_admin: np.ndarray
    uses_cms_points: np.ndarray
    cms_points: np.ndarray
    has_benchmark: np.ndarray
    meets_dc: np.ndarray
    meets_case_min: np.ndarray
    cap_applies: np.ndarray
    stored_counted: np.ndarray
    stored_points: np.ndarray
    benchmark: dict  # is_inverse and p1 … p99 arrays


@dataclass
class Subject:
    """Arrays of the subject NPIs (K) and of their cohort participants."""

    npis: list[str]
    tins: list[str]
    cohorts: list[str]
    quality: QualityRows
    other_submission: np.ndarray  # (K,) another eligible submission meets data completeness
    score: dict  # (K,) arrays of the stored participant_score/payment_adjustment columns
    cost_knots: list  # per K: [(knot value, points)] or None
    cost_national_mean: np.ndarray
    cost_oe: np.ndarray
    cost_episodes: np.ndarray
    has_cost_row: np.ndarray
    cost_category_share: list  # per K: {service category: share of the NPI's scored episode cost}
    payment_year_paid: np.ndarray  # (K,) covered services paid in the payment year (estimated where no claims)
    stored_dollars: np.ndarray  # (K,)
    cohort_rows: dict  # cohort -> dict(npi, final_score, part_b, is_neutral, subject_index (K,) or -1)


def _payment_rows(run: RunTables, npis: list[str]) -> list[dict]:
    by_npi = {str(r["npi"]): r for r in run.rows("payment_adjustment")
              if r.get("performance_year") in (None, run.rules.performance_year)}
    missing = [n for n in npis if n not in by_npi]
    if missing:
        raise SubjectError(f"NPI {missing[0]} has no payment_adjustment row for performance year "
                           f"{run.rules.performance_year} in {run.run_dir}")
    return [by_npi[n] for n in npis]


def subject_npis(run: RunTables, npi: str | None = None, tin: str | None = None) -> list[str]:
    """The participant NPIs a subject stands for: the NPI itself, or every participant NPI billing under the TIN."""
    if (npi is None) == (tin is None):
        raise SubjectError("name exactly one subject: an NPI or a TIN")
    rows = run.rows("payment_adjustment")
    if npi is not None:
        return [str(npi)]
    npis = sorted({str(r["npi"]) for r in rows if str(r.get("tin")) == str(tin)})
    if not npis:
        raise SubjectError(f"TIN {tin} has no participant in the run's payment_adjustment table")
    return npis


def _quality_rows(run: RunTables, npis: list[str]) -> tuple[QualityRows, np.ndarray]:
    bench = {tuple(r[k] for k in KEY): r for r in run.rows("quality_benchmark")}
    cap_removed = {(r["performance_year"], r["measure_id"], r["collection_type"]): r.get("is_seven_point_cap_removed")
                   for r in run.rows("quality_measure_row")}
    cap = run.rules.value("quality.topped_out_cap_points")
    index = {n: k for k, n in enumerate(npis)}
    rows, other = [], np.zeros(len(npis), dtype=bool)
    for r in run.rows("quality_measure_score"):
        k = index.get(str(r["npi"]))
        if k is None:
            continue
        if r["is_eligible"] and not r["is_winner"]:
            other[k] |= bool(r["meets_dc"]) and r["collection_type"] != ADMIN_CLAIMS
        if r["is_winner"]:
            rows.append((k, r))
    cols: dict[str, list] = {c: [] for c in QualityRows.__dataclass_fields__ if c != "benchmark"}
    benchmark: dict[str, list] = {"is_inverse": [], **{pcol(p): [] for p in PERCENTILE_KEYS}}
    for k, r in rows:
        b = bench.get(tuple(r[c] for c in KEY), {})
        key = (r["performance_year"], r["measure_id"], r["collection_type"])
        cols["owner"].append(k)
        cols["measure_id"].append(str(r["measure_id"]))
        cols["is_reported"].append(bool(r["is_eligible"]))
        cols["rate"].append(_f(r["performance_rate"]))
        cols["data_completeness"].append(_f(r["data_completeness"]))
        cols["case_count"].append(_f(r["case_count"]))
        cols["is_admin"].append(r["collection_type"] == ADMIN_CLAIMS)
        cols["uses_cms_points"].append(r["benchmark_source"] == "cms_supplied")
        cols["cms_points"].append(_f(r["points_before_cap"]))
        cols["has_benchmark"].append(bool(r["has_benchmark"]))
        cols["meets_dc"].append(bool(r["meets_dc"]))
        cols["meets_case_min"].append(bool(r["meets_case_min"]))
        cols["cap_applies"].append(cap is not None and r["benchmark_source"] == "mips_historical"
                                   and bool(b.get("is_topped_out_by_program")) and not cap_removed.get(key))
        cols["stored_counted"].append(bool(r["is_counted"]))
        cols["stored_points"].append(_f(r["achievement_points"]))
        benchmark["is_inverse"].append(bool(r["is_inverse"]))
        for p in PERCENTILE_KEYS:
            benchmark[pcol(p)].append(_f(b.get(pcol(p))))
    arrays = {c: np.asarray(v, dtype=float if c in ("rate", "data_completeness", "case_count", "cms_points",
                                                      "stored_points") else None) for c, v in cols.items()}
    arrays["owner"] = np.asarray(cols["owner"], dtype=int)
    arrays["measure_id"] = np.asarray(cols["measure_id"], dtype=object)
    for c in ("is_reported", "is_admin", "uses_cms_points", "has_benchmark", "meets_dc", "meets_case_min",
              "cap_applies", "stored_counted"):
        arrays[c] = np.asarray(cols[c], dtype=bool)
    bench_arrays = {"is_inverse": np.asarray(benchmark["is_inverse"], dtype=bool),
                    **{c: np.asarray(v, dtype=float) for c, v in benchmark.items() if c != "is_inverse"}}
    return QualityRows(**arrays, benchmark=bench_arrays), other


def _cost_row(run: RunTables, score: dict) -> dict | None:
    level = score.get("cost_entity_level") or run.rules.value("scoring.cost_entity_level")
    for r in run.rows("measure_score"):
        if (r["measure_id"] == score.get("cost_measure_id") and r["entity_level"] == level
                and str(r["billing_tin"]) == str(score.get("tin"))
                and (level == "tin" or str(r["rendering_npi"]) == str(score.get("npi")))):
            return r
    return None


def category_shares(run: RunTables, npis: list[str], tins: list[str]) -> list[dict[str, float]]:
    """Per subject NPI, each service category's share of the standardized cost of its attributed, scored episodes
    of the performance year (episode_attribution, episode_detail, episode_cost_by_category)."""
    scored = {r["episode_id"] for r in run.rows("episode_detail")
              if r["performance_year"] == run.rules.performance_year and r["exclusion_reason"] is None}
    owner: dict[str, set[int]] = {}
    for r in run.rows("episode_attribution"):
        for k, (npi, tin) in enumerate(zip(npis, tins)):
            if r["is_attributed"] and str(r["rendering_npi"]) == npi and str(r["billing_tin"]) == tin \
                    and r["episode_id"] in scored:
                owner.setdefault(r["episode_id"], set()).add(k)
    cost = [dict() for _ in npis]
    for r in run.rows("episode_cost_by_category"):
        for k in owner.get(r["episode_id"], ()):
            category = str(r["service_category"] or "other")
            cost[k][category] = cost[k].get(category, 0.0) + float(r["std_cost_amount"] or 0.0)
    return [{c: v / total for c, v in mine.items()} if (total := sum(mine.values())) > 0 else {} for mine in cost]


def load_subject(run: RunTables, npi: str | None = None, tin: str | None = None) -> Subject:
    """The subject's arrays and its cohorts' participants, from the run's finished tables."""
    npis = subject_npis(run, npi, tin)
    pay = _payment_rows(run, npis)
    score_columns = ("tin", "cohort", "quality_status", "is_euc_quality", "is_euc_cost", "is_euc_ia", "is_euc_pi",
                     "ia1_met", "ia2_met", "pi_met", "has_pi_special_status", "is_small_practice",
                     "is_solo_practice", "complex_patient_bonus_points", "final_score", "quality_score_pct",
                     "cost_score_pct", "adjustment_factor", "part_b_paid_amount", "is_neutral",
                     "transformed_final_score", "exchange_midpoint", "scaling_factor", "pool_amount",
                     "cost_measure_id", "cost_entity_level", "npi", "min_submission_met")
    score = {c: np.asarray([r.get(c) for r in pay], dtype=object) for c in score_columns}
    quality, other = _quality_rows(run, npis)
    knots_by_measure = {r["measure_id"]: {k: v for k, v in r.items() if k != "measure_id"}
                        for r in run.rows("cost_benchmark_knots")}
    knots_by_measure = {m: row for m, row in knots_by_measure.items() if has_knot_values(row, run.rules)}
    cost_rows = [_cost_row(run, {c: r.get(c) for c in score_columns}) for r in pay]
    knots = [knot_pairs(knots_by_measure[r["measure_id"]], run.rules)
             if r is not None and r["measure_id"] in knots_by_measure else None for r in cost_rows]
    dollars: dict[str, list[float]] = {}
    for d in run.rows("adjustment_dollars"):
        dollars.setdefault(str(d["npi"]), []).append(d)
    growth = growth_over_lag(run.rules)
    paid = [sum(_f(d["payment_year_paid_amount"]) for d in dollars[n]) if n in dollars
            else _f(r["part_b_paid_amount"]) * growth for n, r in zip(npis, pay)]
    stored = [sum(_f(d["payment_year_adjustment_amount"]) for d in dollars[n]) if n in dollars
              else _f(r["adjustment_factor"]) * p for n, r, p in zip(npis, pay, paid)]
    cohort_rows = {}
    all_pay = [r for r in run.rows("payment_adjustment")
               if r.get("performance_year") in (None, run.rules.performance_year)]
    for cohort in sorted({str(r["cohort"]) for r in pay}):
        mine = [r for r in all_pay if str(r["cohort"]) == cohort]
        where = {str(r["npi"]): i for i, r in enumerate(mine)}
        cohort_rows[cohort] = {
            "npi": [str(r["npi"]) for r in mine],
            "final_score": np.asarray([_f(r["final_score"]) for r in mine]),
            "part_b": np.asarray([_f(r["part_b_paid_amount"]) for r in mine]),
            "is_neutral": np.asarray([bool(r["is_neutral"]) for r in mine]),
            "subject_index": np.asarray([where[n] if str(pay[k]["cohort"]) == cohort else -1
                                         for k, n in enumerate(npis)]),
        }
    return Subject(
        npis=npis, tins=[str(r["tin"]) for r in pay], cohorts=[str(r["cohort"]) for r in pay], quality=quality,
        other_submission=other, score=score, cost_knots=knots,
        cost_national_mean=np.asarray([_f(r["national_mean_observed_cost"]) if r else np.nan for r in cost_rows]),
        cost_oe=np.asarray([_f(r["mean_oe_ratio"]) if r else np.nan for r in cost_rows]),
        cost_episodes=np.asarray([_f(r["n_episodes"]) if r else 0.0 for r in cost_rows]),
        has_cost_row=np.asarray([r is not None for r in cost_rows]),
        cost_category_share=category_shares(run, npis, [str(r["tin"]) for r in pay]),
        payment_year_paid=np.asarray(paid), stored_dollars=np.asarray(stored), cohort_rows=cohort_rows,
    )

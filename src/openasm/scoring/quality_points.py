"""Quality achievement points: performance rate, data completeness and case minimum of each reported result, and
decile plus partial points against a benchmark (quality.md §2.1, §2.3; 42 CFR 414.1380(b)(1) as applied by
42 CFR 512.725).

Every function here adds columns to an Ibis table; nothing executes. Benchmarks are the wide rows of
`quality_benchmarks.BENCHMARK_SCHEMA` (`p1`, `p10` … `p90`, `p99`): values ascend for direct and inverse
measures alike, and a rate sits in the highest decile whose bound it reaches, so an empty decile (two equal
percentiles) is never chosen and the chosen decile always has a non-zero width.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from openasm import array_ops as ops
from openasm.rules import RulesError, RulesForYear
from openasm.scoring.formulas import (  # noqa: F401 (MAX_MEASURE_POINTS re-exported)
    MAX_MEASURE_POINTS,
    decile_and_band,
    decile_points,
    oriented_rate_and_bounds,
    topped_out_points,
)

PERCENTILE_KEYS = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)
DECILE_KEYS = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ADMIN_CLAIMS = "administrativeClaims"
MIPS_SOURCE = "mips_historical"


def pcol(key: int) -> str:
    """Column of the benchmark value at percentile key `key` (1, 10, …, 90, 99)."""
    return f"p{key}"


# ------------------------------------------------------------------------------------------ §2.1 inputs
def prepare_measure_results(*, measure_aggregate: ir.Table, rules: RulesForYear) -> ir.Table:
    """§2.1 (quality.md), 42 CFR 414.1380(b)(1), 414.1340: rate, data completeness and case minimum per result.

    Input: `measure_aggregate` (eligible_population, performance_met, performance_not_met, exclusions, exceptions,
    performance_rate, data_completeness, case_count, cms_scored_flag, collection_type). Adds:
    - `counts_valid`: PM + PNM + DENEX + DENEXCEP ≤ EP (aggregates breaking it are rejected);
    - `scoring_rate`: 100 × PM / (PM + PNM), null when PM + PNM = 0; results without counts (CMS-delivered Q492)
      keep their `performance_rate`;
    - `scoring_data_completeness`: `data_completeness`, else (PM + PNM + DENEX + DENEXCEP) / EP;
    - `meets_dc`: DC ≥ `quality.data_completeness_threshold`; administrative-claims results always pass
      (asm-model §3.2 item 3: not applied to Q492), and so does an empty eligible population (DC undefined; the
      result then fails the case minimum);
    - `scoring_case_count`: by `quality.case_count_basis` (PM + PNM or EP), else the delivered `case_count`;
    - `meets_case_min`: the CMS scored flag when supplied, else case count ≥ `quality.case_minimum` with a rate.
    """
    threshold = float(rules.value("quality.data_completeness_threshold"))
    case_minimum = int(rules.value("quality.case_minimum"))
    basis = rules.value("quality.case_count_basis")
    t = measure_aggregate
    pm, pnm = t.performance_met.cast("float64"), t.performance_not_met.cast("float64")
    denex, denexcep = t.exclusions.cast("float64"), t.exceptions.cast("float64")
    ep = t.eligible_population.cast("float64")
    reported = pm.fill_null(0.0) + pnm.fill_null(0.0) + denex.fill_null(0.0) + denexcep.fill_null(0.0)
    has_counts = pm.notnull() & pnm.notnull()
    rate = ibis.cases(
        (has_counts & ((pm + pnm) > 0), 100.0 * pm / (pm + pnm).nullif(0.0)),
        (has_counts, ibis.null("float64")),
        else_=t.performance_rate.cast("float64"),
    )
    dc = t.data_completeness.cast("float64").fill_null(reported / ep.nullif(0.0))
    if basis == "performance_met_plus_not_met":
        counted = ibis.ifelse(has_counts, pm + pnm, ibis.null("float64"))
    elif basis == "eligible_population":
        counted = ep
    else:
        raise RulesError(f"quality.case_count_basis: unsupported value {basis!r}")
    case_count = counted.cast("int64").fill_null(t.case_count.cast("int64"))
    t = t.mutate(
        counts_valid=ep.isnull() | (reported <= ep),
        scoring_rate=rate,
        scoring_data_completeness=dc,
        scoring_case_count=case_count,
    )
    # An empty eligible population has nothing to complete: it passes here and fails the case minimum instead.
    vacuous = t.scoring_data_completeness.isnull() & (t.eligible_population == 0).fill_null(False)
    return t.mutate(
        meets_dc=(t.collection_type == ADMIN_CLAIMS) | vacuous
        | (t.scoring_data_completeness >= threshold).fill_null(False),
        meets_case_min=ibis.ifelse(
            t.cms_scored_flag.notnull(),
            t.cms_scored_flag,
            (t.scoring_case_count >= case_minimum).fill_null(False) & t.scoring_rate.notnull(),
        ),
    )


# ------------------------------------------------------------------------------------------ §2.3 deciles
def _anchor(columns: Any, choice: str, name: str, fixed: float, key: int) -> Any:
    if choice in ("zero", "hundred"):
        return fixed
    if choice == f"p{key}":
        return ops.fill_null(columns[pcol(key)], fixed)  # legacy `deciles` benchmarks carry no p1/p99
    raise RulesError(f"quality.{name}: unsupported value {choice!r}")


def rate_axis(columns: Any, rate: Any, rules: RulesForYear) -> tuple[Any, dict[int, Any]]:
    """§2.3: a rate and its decile bounds on one ascending axis (`formulas.oriented_rate_and_bounds`), with the
    decile-1 anchors of `quality.decile1_floor_direct` / `quality.decile1_ceiling_inverse`. `columns` is an Ibis
    table or a mapping of numpy arrays with is_inverse and the benchmark columns p1 … p99."""
    floor = _anchor(columns, rules.value("quality.decile1_floor_direct"), "decile1_floor_direct", 0.0, 1)
    ceiling = _anchor(columns, rules.value("quality.decile1_ceiling_inverse"), "decile1_ceiling_inverse", 100.0, 99)
    return oriented_rate_and_bounds(rate, columns["is_inverse"], {k: columns[pcol(k)] for k in DECILE_KEYS},
                                    floor, ceiling)


def add_decile_points(table: ir.Table, *, rules: RulesForYear, rate_column: str = "scoring_rate") -> ir.Table:
    """§2.3 (quality.md), 42 CFR 414.1380(b)(1)(i): decile and partial points of `rate_column` against the
    benchmark columns `p1` … `p99` of the same row, direct or inverse by `is_inverse`.

    Direct: L_1 = `quality.decile1_floor_direct`, L_k = P(10(k−1)); k = max{k : rate ≥ L_k}, else 1.
    Inverse: U_1 = `quality.decile1_ceiling_inverse`, U_k = P(110 − 10k); k = max{k : rate ≤ U_k}, else 1.
    Decile k = 2..9 earns k + (rate − L_k) / (L_{k+1} − L_k) (inverse: k + (U_k − rate) / (U_k − U_{k+1})),
    decile 10 earns 10, decile 1 interpolates from the anchor, clamped to [1, 2) (1.0 when that band is empty).
    Flat benchmarks (P(x) = x) need no special case. Adds `decile` (int32) and `points_before_cap` (float64);
    both null where the rate or the benchmark is null.

    An inverse measure is scored as a direct one on x = −rate with bounds −U_k (rate ≤ U_k ⇔ −rate ≥ −U_k, and the
    interpolation is the same), so one expression serves both. With ascending bounds the set {k : x ≥ B_k} is
    2..k, hence k = 1 + #{k ≥ 2 : x ≥ B_k}.
    """
    inverse = table.is_inverse
    x, bound = rate_axis(table, table[rate_column].cast("float64"), rules)
    # Materialised step by step so each bound is one column reference in the SQL, not a repeated expression.
    t = table.mutate(_x=x.cast("float64"), **{f"_b{k}": v.cast("float64") for k, v in bound.items()})
    b = {k: t[f"_b{k}"] for k in bound}
    decile, lower, upper = decile_and_band(t._x, b)
    t = t.mutate(_decile=decile, _lower=lower, _upper=upper)
    points = decile_points(t._x, t._decile, t._lower, t._upper, t._b1, t._b2)
    usable = t._x.notnull() & t[pcol(10)].notnull() & t[pcol(90)].notnull() & inverse.notnull()
    t = t.mutate(
        decile=ibis.ifelse(usable, t._decile.cast("int32"), ibis.null("int32")),
        points_before_cap=ibis.ifelse(usable, points.cast("float64"), ibis.null("float64")),
    )
    return t.drop("_x", "_decile", "_lower", "_upper", *[f"_b{k}" for k in bound])


def apply_topped_out_cap(table: ir.Table, *, rules: RulesForYear) -> ir.Table:
    """§2.3 7-point cap (42 CFR 414.1380(b)(1)(i)(C) analog): points = min(points, `quality.topped_out_cap_points`)
    when the benchmark is MIPS-sourced, `is_topped_out_by_program` and the measure's `is_seven_point_cap_removed`
    is false. A null cap (ASM default) caps nothing.

    Needs `points_before_cap`, `benchmark_source`, `is_topped_out_by_program`, `is_seven_point_cap_removed`.
    Adds `achievement_points` and `capped_flag` (true only where the cap lowered the points).
    """
    cap = rules.value("quality.topped_out_cap_points")
    points = table.points_before_cap
    if cap is None:
        return table.mutate(achievement_points=points, capped_flag=ibis.literal(False))
    eligible = ((table.benchmark_source == MIPS_SOURCE) & table.is_topped_out_by_program.fill_null(False)
                & ~table.is_seven_point_cap_removed.fill_null(False)).fill_null(False)
    capped = (eligible & (points > float(cap))).fill_null(False)
    return table.mutate(achievement_points=topped_out_points(points, eligible, float(cap)).cast("float64"),
                        capped_flag=capped)


def round_half_up(value: ir.NumericValue, decimals: int) -> ir.NumericValue:
    """Half-up rounding for display (quality.md §2.5, `quality.display_decimals`); values are ≥ 0 here."""
    scale = 10.0 ** int(decimals)
    # The 1e-9 nudge keeps binary representation error (66.505 × 100 = 6650.4999…) from rounding half down.
    return ((value * scale + 0.5 + 1e-9).floor().cast("float64") / scale).cast("float64")

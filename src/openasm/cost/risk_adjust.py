"""Risk adjustment of the cost measures: national OLS per measure on the risk features (`risk_features`),
winsorization, expected-cost floor, renormalization and the outlier flag (ebcm.md §7.2-§7.3, §12 steps 10-11).

The design matrix stays in the engine as a sparse long table (episode_id, feature, value). X'X and X'y are sums
over a self-join of that table on episode_id, grouped by feature pair, so they scale with the backend (Spark);
only the features × features normal equations come to numpy, are solved with `lstsq` (collinear or empty
columns cannot crash it), and go back in as a coefficient memtable that the engine joins to the features to
predict Ê = Σ value × coefficient.

Small samples (`cost.ra_min_episodes_per_feature`): a measure whose fit set has fewer episodes than that many per
candidate feature is fitted on a reduced model — the intercept plus the features present on the most episodes, as
many as the sample supports (intercept only: Ê = mean winsorized observed cost). The coefficient table marks
which features are in the model (`is_in_model`) and the fit size, and `describe_risk_model_fit` says per measure
which model was used, so the runner reports it.

Percentiles use Ibis `quantile`, which compiles to DuckDB `quantile_cont` and Spark `percentile`: both exact,
with linear interpolation between order statistics (h = (n − 1) p, numpy's default "linear"), so the two
backends agree.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from openasm.cost.risk_features import INTERCEPT
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_mean, exact_sum

MIN_SAMPLE_RULE = "cost.ra_min_episodes_per_feature"


def _check_model(rules: RulesForYear) -> None:
    if rules.value("cost.ra_model") != "ols":
        raise ValueError(f"cost.ra_model: unsupported value {rules.value('cost.ra_model')!r}")
    if rules.value("cost.ra_fit_scope") != "national_per_measure":
        raise ValueError(f"cost.ra_fit_scope: unsupported value {rules.value('cost.ra_fit_scope')!r}")


def winsorize_observed(*, episode_observed: ir.Table, rules: RulesForYear) -> ir.Table:
    """ebcm §7.2: y = min(O, p`cost.obs_winsor_upper_pct`(O)), the percentile national per measure.

    Episodes without an observed cost are left out. Grain: episode. Columns: episode_id, measure_id,
    observed_cost, winsorized_cost.
    """
    pct = float(rules.value("cost.obs_winsor_upper_pct")) / 100.0
    obs = episode_observed.filter(episode_observed.observed_cost.notnull()).select(
        "episode_id", "measure_id", observed_cost=episode_observed.observed_cost.cast("float64")
    )
    cap = obs.group_by(_cap_measure=obs.measure_id).agg(_cap=obs.observed_cost.quantile(pct))
    capped = obs.join(cap, obs.measure_id == cap._cap_measure)
    return capped.select("episode_id", "measure_id", "observed_cost",
                         winsorized_cost=ibis.least(capped.observed_cost, capped._cap))


def normal_equations(*, fit_set: ir.Table, risk_feature: ir.Table) -> tuple[ir.Table, ir.Table]:
    """X'X (upper triangle, feature_a ≤ feature_b) and X'y per measure, summed in the engine.

    fit_set: episode_id, measure_id, winsorized_cost. Returns (xtx: measure_id, feature_a, feature_b, xtx;
    xty: measure_id, feature, xty, n_episodes_with_feature — episodes with a non-zero value).
    """
    y = fit_set.select(_y_episode=fit_set.episode_id, measure_id=fit_set.measure_id, _y=fit_set.winsorized_cost)
    x = risk_feature.join(y, risk_feature.episode_id == y._y_episode).select(
        "episode_id", "measure_id", "feature", "value", "_y"
    )
    left = x.select("episode_id", "measure_id", feature_a=x.feature, _va=x.value)
    right = x.select(_r_episode=x.episode_id, feature_b=x.feature, _vb=x.value)
    pairs = left.join(right, (left.episode_id == right._r_episode) & (left.feature_a <= right.feature_b))
    xtx = pairs.group_by("measure_id", "feature_a", "feature_b").agg(xtx=exact_sum(pairs._va * pairs._vb))
    xty = x.group_by("measure_id", "feature").agg(
        xty=exact_sum(x.value * x._y), n_episodes_with_feature=(x.value != 0).cast("int64").sum()
    )
    return xtx, xty


def model_features(candidates: list[dict], fit_episode_count: int, min_per_feature: float) -> set[str]:
    """The features a measure's model is fitted on (`cost.ra_min_episodes_per_feature` = m): every candidate
    (feature with a non-zero value) when the fit has ≥ m episodes per candidate; else the reduced model of
    max(1, ⌊n / m⌋) features — the intercept, then the candidates present on the most episodes (ties by name)."""
    if min_per_feature <= 0 or fit_episode_count >= min_per_feature * len(candidates):
        return {r["feature"] for r in candidates}
    size = max(1, int(fit_episode_count // min_per_feature))
    ranked = sorted(candidates, key=lambda r: (r["feature"] != INTERCEPT, -r["n_episodes_with_feature"], r["feature"]))
    return {r["feature"] for r in ranked[:size]}


def solve_coefficients(xtx: pa.Table, xty: pa.Table, fit_episode_count: dict[str, int] | None = None,
                       min_per_feature: float = 0.0) -> pa.Table:
    """OLS coefficients per measure from the normal equations (numpy `lstsq`, minimum-norm when singular), on the
    features `model_features` keeps for the measure's fit size (`fit_episode_count`; all when not given).

    Features with no non-zero value are dropped; candidates left out of a reduced model keep a row with a null
    coefficient. Columns: measure_id, feature, coefficient, n_episodes_with_feature, is_in_model,
    fit_episode_count.
    """
    out: dict[str, list] = {"measure_id": [], "feature": [], "coefficient": [], "n_episodes_with_feature": [],
                            "is_in_model": [], "fit_episode_count": []}
    xty_rows = xty.to_pylist()
    xtx_rows = xtx.to_pylist()
    sizes = fit_episode_count or {}
    for measure in sorted({r["measure_id"] for r in xty_rows}):
        candidates = sorted((r for r in xty_rows if r["measure_id"] == measure and r["n_episodes_with_feature"] > 0),
                            key=lambda r: r["feature"])
        n = sizes.get(measure)
        kept = model_features(candidates, n, min_per_feature) if n is not None else {r["feature"] for r in candidates}
        rows = [r for r in candidates if r["feature"] in kept]
        index = {r["feature"]: i for i, r in enumerate(rows)}
        a = np.zeros((len(rows), len(rows)))
        for r in xtx_rows:
            if r["measure_id"] == measure and r["feature_a"] in index and r["feature_b"] in index:
                i, j = index[r["feature_a"]], index[r["feature_b"]]
                a[i, j] = a[j, i] = r["xtx"]
        b = np.array([r["xty"] for r in rows], dtype=float)
        coef = dict(zip(index, np.linalg.lstsq(a, b, rcond=None)[0])) if rows else {}
        for r in candidates:
            out["measure_id"].append(measure)
            out["feature"].append(r["feature"])
            out["coefficient"].append(float(coef[r["feature"]]) if r["feature"] in coef else None)
            out["n_episodes_with_feature"].append(int(r["n_episodes_with_feature"]))
            out["is_in_model"].append(r["feature"] in coef)
            out["fit_episode_count"].append(n)
    return pa.table({
        "measure_id": pa.array(out["measure_id"], pa.string()), "feature": pa.array(out["feature"], pa.string()),
        "coefficient": pa.array(out["coefficient"], pa.float64()),
        "n_episodes_with_feature": pa.array(out["n_episodes_with_feature"], pa.int64()),
        "is_in_model": pa.array(out["is_in_model"], pa.bool_()),
        "fit_episode_count": pa.array(out["fit_episode_count"], pa.int64()),
    })


def describe_risk_model_fit(coefficient: pa.Table, rules: RulesForYear) -> list[dict]:
    """Per measure, the model `fit_expected_cost` used: fit_episode_count, candidate_feature_count,
    model_feature_count, min_episodes_per_feature (`cost.ra_min_episodes_per_feature`), min_fit_episodes (that ×
    candidates) and model (full | reduced | intercept_only)."""
    min_per_feature = float(rules.value(MIN_SAMPLE_RULE))
    by_measure: dict[str, list[dict]] = {}
    for row in coefficient.to_pylist():
        by_measure.setdefault(row["measure_id"], []).append(row)
    out = []
    for measure, rows in sorted(by_measure.items()):
        used = [r["feature"] for r in rows if r["is_in_model"]]
        n, minimum = rows[0]["fit_episode_count"], min_per_feature * len(rows)
        model = "full" if n is None or n >= minimum else "intercept_only" if used == [INTERCEPT] else "reduced"
        out.append({"measure_id": measure, "fit_episode_count": n, "candidate_feature_count": len(rows),
                    "model_feature_count": len(used), "min_episodes_per_feature": min_per_feature,
                    "min_fit_episodes": minimum, "model": model})
    return out


def _predict(fit_all: ir.Table, risk_feature: ir.Table, coefficient: ir.Table) -> ir.Table:
    """fit_all + raw prediction `_raw` = Σ value × coefficient (0 for an episode with no known feature)."""
    keys = fit_all.select(_k_episode=fit_all.episode_id, _k_measure=fit_all.measure_id)
    keyed = risk_feature.join(keys, risk_feature.episode_id == keys._k_episode)
    in_model = coefficient.filter(coefficient.is_in_model)
    scored = keyed.join(
        in_model, (keyed._k_measure == in_model.measure_id) & (keyed.feature == in_model.feature)
    )
    pred = scored.group_by(_p_episode=scored.episode_id).agg(_raw=exact_sum(scored.value * scored.coefficient))
    joined = fit_all.left_join(pred, fit_all.episode_id == pred._p_episode)
    return joined.mutate(_raw=joined._raw.fill_null(0.0)).drop("_p_episode")


def _floor_and_renormalize(pred: ir.Table, basis: ir.Table, rules: RulesForYear) -> ir.Table:
    """Ê = max(raw, p`exp_floor_pct`(raw), `exp_floor_min_share_of_mean` × mean(y)); then × mean(y)/mean(Ê) if
    `renormalize_expected`. Percentile and means are taken over `basis` (a filter of `pred`), national per measure."""
    floor_q = float(rules.value("cost.exp_floor_pct")) / 100.0
    min_share = float(rules.value("cost.exp_floor_min_share_of_mean"))
    floors = basis.group_by(_f_measure=basis.measure_id).agg(
        _pct_floor=basis._raw.quantile(floor_q), _mean_y=exact_mean(basis.winsorized_cost)
    )
    # A least-squares prediction can be negative in a small or unusual population; E must stay positive.
    floors = floors.mutate(_floor=ibis.greatest(floors._pct_floor, floors._mean_y * min_share)).drop(
        "_pct_floor", "_mean_y")
    pred = pred.join(floors, pred.measure_id == floors._f_measure).drop("_f_measure")
    pred = pred.mutate(_floored=ibis.greatest(pred._raw, pred._floor))
    if not rules.value("cost.renormalize_expected"):
        return pred.mutate(expected_cost=pred._floored)
    base = basis.join(floors, basis.measure_id == floors._f_measure)
    base = base.mutate(_floored=ibis.greatest(base._raw, base._floor))
    means = base.group_by(_m_measure=base.measure_id).agg(
        _mean_y=exact_mean(base.winsorized_cost), _mean_e=exact_mean(base._floored)
    )
    pred = pred.join(means, pred.measure_id == means._m_measure).drop("_m_measure")
    return pred.mutate(expected_cost=pred._floored * pred._mean_y / pred._mean_e)


def _flag_outliers(expected: ir.Table, rules: RulesForYear) -> ir.Table:
    lo, hi = (float(p) / 100.0 for p in rules.value("cost.outlier_trim_pct"))
    metric = rules.value("cost.outlier_metric")
    if metric not in ("residual", "ratio"):
        raise ValueError(f"cost.outlier_metric: unsupported value {metric!r}")
    expected = expected.mutate(
        residual=expected.winsorized_cost - expected.expected_cost,
        oe_ratio=expected.winsorized_cost / expected.expected_cost,
    )
    value = expected.residual if metric == "residual" else expected.oe_ratio
    expected = expected.mutate(_metric=value)
    bounds = expected.group_by(_o_measure=expected.measure_id).agg(
        _lo=expected._metric.quantile(lo), _hi=expected._metric.quantile(hi)
    )
    flagged = expected.join(bounds, expected.measure_id == bounds._o_measure)
    outside = (flagged._metric < flagged._lo) | (flagged._metric > flagged._hi)
    return flagged.mutate(is_outlier=outside.fill_null(False))


OUTPUT_COLUMNS = ("episode_id", "measure_id", "observed_cost", "winsorized_cost", "expected_cost", "residual",
                  "oe_ratio", "is_outlier")


def fit_expected_cost(
    *, episode_observed: ir.Table, risk_feature: ir.Table, rules: RulesForYear,
    execute: Callable[[ir.Table], pa.Table] | None = None,
) -> tuple[ir.Table, ir.Table]:
    """ebcm §7.1-§7.3 (§12 steps 10-11): national OLS per measure of the winsorized observed cost on the features.

    y = min(O, p`obs_winsor_upper_pct`(O)); X'X and X'y summed in the engine (`normal_equations`), solved in numpy
    (`solve_coefficients`); Ê = Σ value × coefficient in the engine; Ê = max(Ê, p`exp_floor_pct`(Ê)); when
    `renormalize_expected`, Ê × mean(y)/mean(Ê); outlier when the metric (`outlier_metric`: residual y − Ê, or
    ratio y/Ê) lies outside the `outlier_trim_pct` percentiles — the row is kept with `is_outlier` true. With
    `refit_after_trim`, the model is refitted on the non-outliers and Ê, floor and renormalization recomputed
    from them (floor/means over the non-outliers); the outlier flags of the first fit stand. Each fit keeps the
    features `model_features` allows for its size (`cost.ra_min_episodes_per_feature`; the reduced model below it).

    This stage executes once per fit (the normal equations, features² rows) through `execute` (default
    `expr.to_pyarrow()`, i.e. the backend the inputs are bound to; pass `engine.con.to_pyarrow` for in-memory
    inputs on Spark). Inputs should be materialised tables: the returned expressions re-read them.
    episode_observed: episode_id, measure_id, observed_cost (one row per scored episode); risk_feature: episode_id,
    feature, value (one row per episode × feature).
    Returns (episode_expected: episode_id, measure_id, observed_cost, winsorized_cost, expected_cost, residual,
    oe_ratio, is_outlier — grain episode; coefficient: measure_id, feature, coefficient, n_episodes_with_feature,
    is_in_model, fit_episode_count).
    """
    _check_model(rules)
    run = execute or (lambda expr: expr.to_pyarrow())
    fit_all = winsorize_observed(episode_observed=episode_observed, rules=rules)

    min_per_feature = float(rules.value(MIN_SAMPLE_RULE))

    def fit(fit_set: ir.Table) -> pa.Table:
        xtx, xty = normal_equations(fit_set=fit_set, risk_feature=risk_feature)
        sizes = run(fit_set.group_by("measure_id").agg(fit_episode_count=fit_set.count())).to_pylist()
        return solve_coefficients(run(xtx), run(xty), {r["measure_id"]: int(r["fit_episode_count"]) for r in sizes},
                                  min_per_feature)

    coef = fit(fit_all)
    pred = _predict(fit_all, risk_feature, ibis.memtable(coef))
    result = _flag_outliers(_floor_and_renormalize(pred, pred, rules), rules)
    if rules.value("cost.refit_after_trim"):
        flags = result.select(_t_episode=result.episode_id, _first_outlier=result.is_outlier)
        kept = fit_all.join(flags, fit_all.episode_id == flags._t_episode)
        keep_set = kept.filter(~kept._first_outlier).select(
            "episode_id", "measure_id", "observed_cost", "winsorized_cost"
        )
        coef = fit(keep_set)
        pred = _predict(fit_all, risk_feature, ibis.memtable(coef))
        pred = pred.join(flags, pred.episode_id == flags._t_episode)
        refit = _floor_and_renormalize(pred, pred.filter(~pred._first_outlier), rules)
        refit = refit.mutate(
            residual=refit.winsorized_cost - refit.expected_cost,
            oe_ratio=refit.winsorized_cost / refit.expected_cost,
            is_outlier=refit._first_outlier,
        )
        result = refit
    return result.select(*OUTPUT_COLUMNS), ibis.memtable(coef)

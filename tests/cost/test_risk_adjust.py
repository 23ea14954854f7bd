"""Risk adjustment (ebcm §7.1-§7.4): features, engine-side OLS, winsorization/floor/renormalization, outlier flag,
specialty adjustment. Arithmetic of the golden cases is in the comments."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pyarrow as pa
import pytest

from openasm.cost.risk_adjust import describe_risk_model_fit, fit_expected_cost
from openasm.cost.risk_features import build_risk_features
from openasm.cost.specialty_adjust import adjust_for_specialty
from tests.conftest import assert_tables_equal
from tests.cost.conftest import run
from tests.episodes.factory import ffs_months, table

START = dt.date(2027, 3, 1)
NO_TRIM = {"cost.obs_winsor_upper_pct": 100, "cost.exp_floor_pct": 0, "cost.renormalize_expected": False,
           "cost.outlier_trim_pct": [0, 100]}


def _before(days: int) -> dt.date:
    return START - dt.timedelta(days=days)


def _observed(rows: list[tuple[str, str, float]]) -> ibis.Table:
    return ibis.memtable(pa.table({"episode_id": [r[0] for r in rows], "measure_id": [r[1] for r in rows],
                                   "observed_cost": pa.array([r[2] for r in rows], pa.float64())}))


def _features(rows: list[tuple[str, str, float]]) -> ibis.Table:
    return ibis.memtable(pa.table({"episode_id": [r[0] for r in rows], "feature": [r[1] for r in rows],
                                   "value": pa.array([r[2] for r in rows], pa.float64())}))


def _fetch(expr, engine=None) -> list[dict]:
    return run(engine, expr) if engine is not None else expr.to_pyarrow().to_pylist()


# ------------------------------------------------------------------------------------------ features
def _feature_world():
    lines = [
        # B1 (HF): inpatient stay with principal I50.22 in the lookback; SNF claim covering 106 days of it.
        {"claim_id": "IP1", "line_number": 1, "bene_id": "B1", "claim_type": "inpatient", "claim_from_date": _before(40),
         "claim_thru_date": _before(35), "admission_date": _before(40), "drg_code": "291", "allowed_amount": 9000.0},
        {"claim_id": "SNF1", "line_number": 1, "bene_id": "B1", "claim_type": "snf", "claim_from_date": _before(110),
         "claim_thru_date": _before(5), "allowed_amount": 20000.0},
        # B2 (LBP): line diagnosis M54.16 and a laminectomy (63030) in the lookback.
        {"claim_id": "CR1", "line_number": 1, "bene_id": "B2", "claim_type": "carrier", "claim_from_date": _before(20),
         "claim_thru_date": _before(20), "line_from_date": _before(20), "hcpcs_code": "63030",
         "line_dx_code": "M54.16", "allowed_amount": 900.0},
        # B3 (HF): an HF stay the day before the window (start − 121) does not count.
        {"claim_id": "IP3", "line_number": 1, "bene_id": "B3", "claim_type": "inpatient", "claim_from_date": _before(125),
         "claim_thru_date": _before(121), "admission_date": _before(125), "drg_code": "291", "allowed_amount": 9000.0},
    ]
    dxs = [{"claim_id": "IP1", "bene_id": "B1", "dx_position": 1, "icd10_code": "I50.22"},
           {"claim_id": "IP3", "bene_id": "B3", "dx_position": 1, "icd10_code": "I50.22"}]
    benes = [
        {"bene_id": "B1", "birth_date": dt.date(1955, 1, 15), "sex": "F", "orec": "1"},   # 72 at start → age_70_74
        {"bene_id": "B2", "birth_date": dt.date(1962, 3, 2), "sex": "M", "orec": "0"},    # 64 (birthday next day)
        {"bene_id": "B3", "birth_date": dt.date(1960, 3, 1), "sex": "M", "orec": "0"},    # 67 → reference band
    ]
    enrollment = [m for b in ("B1", "B2", "B3") for m in ffs_months(b, "2026-06", "2027-12")]
    for m in enrollment:
        if m["bene_id"] == "B2" and m["year_month"] == "2026-11":
            m["is_esrd"] = True  # 2026-11 overlaps the lookback [2026-10-31, 2027-02-28]
        if m["bene_id"] == "B1":
            m["dual_status_code"] = "02"
    episodes = ibis.memtable(pa.table({
        "episode_id": ["E1", "E2", "E3"], "measure_id": ["COST_HF_1", "COST_LBP_1", "COST_HF_1"],
        "bene_id": ["B1", "B2", "B3"], "episode_start_date": pa.array([START] * 3, pa.date32()),
    }))
    hcc_flags = ibis.memtable({"episode_id": ["E1", "E1"], "hcc": ["HCC226", "HCC37"],
                               "hcc_label": ["Heart failure", "Diabetes"]})
    return dict(episode=episodes, hcc_flags=hcc_flags, beneficiary=table("beneficiary", benes),
                enrollment=table("enrollment", enrollment), claim_line=table("claim_line", lines),
                claim_diagnosis=table("claim_diagnosis", dxs))


def _feature_sets(rows: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows:
        assert r["value"] == 1.0
        out.setdefault(r["episode_id"], set()).add(r["feature"])
    return out


def test_features_golden(rules, backend, engine_for) -> None:
    engine = engine_for(backend)
    got = _feature_sets(_fetch(build_risk_features(**_feature_world(), rules=rules), engine))
    assert got == {
        # HCC226 + HCC37 → DIABETES_HF_V28, 2 HCCs → band 2-3; orec 1; 106 SNF days ≥ 90; one HF stay.
        "E1": {"intercept", "HCC226", "HCC37", "DIABETES_HF_V28", "hcc_count_2_3", "age_70_74", "disability_orec",
               "long_term_institutional", "prior_hf_admission"},
        # ESRD month in the lookback; M54.16; 63030; age 64 (turns 65 on 2027-03-02).
        "E2": {"intercept", "age_lt65", "esrd", "radiculopathy_or_stenosis", "prior_spine_surgery"},
        "E3": {"intercept"},
    }


def test_dual_feature_only_when_switched_on(rules) -> None:
    got = _feature_sets(_fetch(build_risk_features(**_feature_world(),
                                                   rules=rules.with_overrides({"cost.ra_include_dual": True}))))
    assert "dual" in got["E1"] and "dual" not in got["E2"]


# ------------------------------------------------------------------------------------------ OLS
def _synthetic(seed: int, n: int, betas: dict[str, dict[str, float]], noise: float = 0.0):
    """Binary features (p = 0.3) plus intercept; y = X·beta (+ noise). Returns observed, features, dense X, y."""
    rng = np.random.default_rng(seed)
    obs, feats, dense = [], [], {}
    for measure, beta in betas.items():
        names = sorted(beta)
        x = (rng.random((n, len(names))) < 0.3).astype(float)
        x[:, names.index("intercept")] = 1.0
        y = x @ np.array([beta[f] for f in names]) + noise * rng.standard_normal(n)
        for i in range(n):
            eid = f"{measure}-{i:03d}"
            obs.append((eid, measure, float(y[i])))
            feats += [(eid, f, 1.0) for j, f in enumerate(names) if x[i, j]]
        dense[measure] = (names, x, y)
    return _observed(obs), _features(feats), dense


BETAS = {
    "COST_HF_1": {"intercept": 12000.0, "HCC226": 3500.0, "age_85p": -800.0, "esrd": 9000.0, "prior_hf_admission": 4200.0},
    "COST_LBP_1": {"intercept": 1800.0, "HCC37": 250.0, "radiculopathy_or_stenosis": 600.0},
}


def test_ols_recovers_known_coefficients(rules) -> None:
    observed, features, dense = _synthetic(7, 300, BETAS)
    expected, coef = fit_expected_cost(episode_observed=observed, risk_feature=features,
                                       rules=rules.with_overrides(NO_TRIM))
    got = {(r["measure_id"], r["feature"]): r for r in coef.to_pyarrow().to_pylist()}
    for measure, beta in BETAS.items():
        names, x, y = dense[measure]
        lstsq = np.linalg.lstsq(x, y, rcond=None)[0]
        for j, name in enumerate(names):
            assert got[(measure, name)]["coefficient"] == pytest.approx(beta[name], abs=1e-6)
            assert got[(measure, name)]["coefficient"] == pytest.approx(lstsq[j], abs=1e-6)
            assert got[(measure, name)]["n_episodes_with_feature"] == int(x[:, j].sum())
    rows = expected.to_pyarrow().to_pylist()
    assert len(rows) == 600 and not any(r["is_outlier"] for r in rows)
    for r in rows:  # no noise: Ê = y exactly
        assert r["expected_cost"] == pytest.approx(r["observed_cost"], abs=1e-6)
        assert r["winsorized_cost"] == r["observed_cost"]


def test_collinear_and_empty_features_do_not_crash(rules) -> None:
    observed, features, _ = _synthetic(11, 80, {"COST_HF_1": BETAS["COST_HF_1"]})
    rows = features.to_pyarrow().to_pylist()
    extra = [(r["episode_id"], "HCC226_copy", 1.0) for r in rows if r["feature"] == "HCC226"]
    extra += [(r["episode_id"], "always_zero", 0.0) for r in rows if r["feature"] == "intercept"]
    both = _features([(r["episode_id"], r["feature"], r["value"]) for r in rows] + extra)
    expected, coef = fit_expected_cost(episode_observed=observed, risk_feature=both, rules=rules.with_overrides(NO_TRIM))
    got = {r["feature"]: r["coefficient"] for r in coef.to_pyarrow().to_pylist()}
    assert "always_zero" not in got
    # Minimum-norm solution splits the duplicated effect evenly; fitted values stay exact.
    assert got["HCC226"] == pytest.approx(1750.0, abs=1e-6) and got["HCC226_copy"] == pytest.approx(1750.0, abs=1e-6)
    for r in expected.to_pyarrow().to_pylist():
        assert r["expected_cost"] == pytest.approx(r["observed_cost"], abs=1e-6)


def test_winsorize_floor_renormalize_outliers_golden(rules) -> None:
    """Five HF episodes, features intercept + g (g = 1 on E1, E2). Percentiles interpolate linearly, h = (n − 1)p.

    Winsorize at p99 of O = [100, 200, 300, 400, 10000]: h = 3.96 → 400 + 0.96 × 9600 = 9616 → y5 = 9616.
    OLS = group means: g = 1 → (100 + 200)/2 = 150; g = 0 → (300 + 400 + 9616)/3 = 10316/3 = 3438.667.
    Floor at p30 (override) of Ê = [150, 150, 3438.667 × 3]: h = 1.2 → 150 + 0.2 × (10316/3 − 150) = 2423.2/3.
    mean(y) = 10616/5 = 2123.2; mean(Ê floored) = (2 × 2423.2/3 + 10316)/5 = 35794.4/15.
    Renormalize × 2123.2 / (35794.4/15) = 31848/35794.4.
    Residuals y − Ê: E3 (300 − 3059.5) is the lowest and E5 (9616 − 3059.5) the highest; with five values linear
    p1/p99 lie strictly inside the range, so exactly E3 and E5 are outliers.
    """
    observed = _observed([("E1", "COST_HF_1", 100.0), ("E2", "COST_HF_1", 200.0), ("E3", "COST_HF_1", 300.0),
                          ("E4", "COST_HF_1", 400.0), ("E5", "COST_HF_1", 10000.0)])
    features = _features([(e, "intercept", 1.0) for e in ("E1", "E2", "E3", "E4", "E5")]
                         + [("E1", "g", 1.0), ("E2", "g", 1.0)])
    # Five episodes for two features are below the minimum regression sample (10 per feature); switched off here
    # to check the full model's arithmetic (the fallback is tested below).
    expected, _ = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules.with_overrides(
        {"cost.exp_floor_pct": 30, "cost.ra_min_episodes_per_feature": 0}))
    rows = {r["episode_id"]: r for r in expected.to_pyarrow().to_pylist()}
    scale = 31848 / 35794.4
    e_low, e_high = 2423.2 / 3 * scale, 10316 / 3 * scale
    want = {"E1": (100, e_low, False), "E2": (200, e_low, False), "E3": (300, e_high, True),
            "E4": (400, e_high, False), "E5": (9616, e_high, True)}
    for eid, (y, e, outlier) in want.items():
        assert rows[eid]["winsorized_cost"] == pytest.approx(y, rel=1e-12)
        assert rows[eid]["expected_cost"] == pytest.approx(e, rel=1e-9)
        assert rows[eid]["residual"] == pytest.approx(y - e, rel=1e-9)
        assert rows[eid]["is_outlier"] is outlier, eid
    assert sum(r["expected_cost"] for r in rows.values()) == pytest.approx(10616, rel=1e-12)


def test_below_the_minimum_sample_expected_is_the_mean(rules) -> None:
    """The same five episodes with the shipped minimum (10 episodes per feature; 2 candidates need 20): the model
    is the intercept alone, so Ê = mean(y) = 10616/5 = 2123.2 for every episode (floor and renormalization leave
    a constant unchanged), and the fit says so."""
    observed = _observed([(f"E{i}", "COST_HF_1", y) for i, y in enumerate((100.0, 200.0, 300.0, 400.0, 10000.0), 1)])
    features = _features([(f"E{i}", "intercept", 1.0) for i in range(1, 6)] + [("E1", "g", 1.0), ("E2", "g", 1.0)])
    expected, coef = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules)
    for row in expected.to_pyarrow().to_pylist():
        assert row["expected_cost"] == pytest.approx(2123.2, rel=1e-12)
    coefficients = {r["feature"]: r for r in coef.to_pyarrow().to_pylist()}
    assert coefficients["intercept"]["coefficient"] == pytest.approx(2123.2, rel=1e-12)
    assert coefficients["g"]["coefficient"] is None and not coefficients["g"]["is_in_model"]
    assert {r["fit_episode_count"] for r in coefficients.values()} == {5}
    assert describe_risk_model_fit(coef.to_pyarrow(), rules) == [{
        "measure_id": "COST_HF_1", "fit_episode_count": 5, "candidate_feature_count": 2, "model_feature_count": 1,
        "min_episodes_per_feature": 10.0, "min_fit_episodes": 20.0, "model": "intercept_only"}]


def test_reduced_model_keeps_the_most_common_features(rules) -> None:
    """40 HF episodes for 5 candidates (need 50): ⌊40/10⌋ = 4 features — the intercept and the three present on
    the most episodes; the coefficients are OLS on those columns alone. LBP (3 candidates, 40 ≥ 30) is full."""
    observed, features, dense = _synthetic(17, 40, BETAS, noise=500.0)
    _, coef = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules.with_overrides(NO_TRIM))
    names, x, y = dense["COST_HF_1"]
    counts = {name: int(x[:, j].sum()) for j, name in enumerate(names)}
    kept = ["intercept"] + sorted((n for n in names if n != "intercept"), key=lambda n: (-counts[n], n))[:3]
    columns = [names.index(n) for n in kept]
    want = dict(zip(kept, np.linalg.lstsq(x[:, columns], y, rcond=None)[0]))
    got = {r["feature"]: r for r in coef.to_pyarrow().to_pylist() if r["measure_id"] == "COST_HF_1"}
    assert {f for f, r in got.items() if r["is_in_model"]} == set(kept) and len(got) == 5
    for feature in kept:
        assert got[feature]["coefficient"] == pytest.approx(want[feature], rel=1e-9)
    fits = {f["measure_id"]: f["model"] for f in describe_risk_model_fit(coef.to_pyarrow(), rules)}
    assert fits == {"COST_HF_1": "reduced", "COST_LBP_1": "full"}


def test_renormalized_mean_expected_equals_mean_y(rules) -> None:
    observed, features, _ = _synthetic(3, 200, BETAS, noise=2500.0)
    expected, _ = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules)
    rows = expected.to_pyarrow().to_pylist()
    for measure in BETAS:
        mine = [r for r in rows if r["measure_id"] == measure]
        assert np.mean([r["expected_cost"] for r in mine]) == pytest.approx(np.mean([r["winsorized_cost"] for r in mine]), rel=1e-12)
        assert max(r["winsorized_cost"] for r in mine) < max(r["observed_cost"] for r in mine)  # p99 cap bites
        assert 0 < sum(r["is_outlier"] for r in mine) <= 6  # below p1 or above p99 of 200


def test_ratio_metric_and_refit_after_trim(rules) -> None:
    observed, features, _ = _synthetic(5, 150, BETAS, noise=2000.0)
    overrides = {"cost.outlier_metric": "ratio", "cost.refit_after_trim": True}
    expected, coef = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules.with_overrides(overrides))
    rows = expected.to_pyarrow().to_pylist()
    assert len(rows) == 300 and any(r["is_outlier"] for r in rows)
    for measure in BETAS:
        kept = [r for r in rows if r["measure_id"] == measure and not r["is_outlier"]]
        # after the refit, renormalization holds over the episodes the model was refitted on
        assert np.mean([r["expected_cost"] for r in kept]) == pytest.approx(np.mean([r["winsorized_cost"] for r in kept]), rel=1e-12)
    assert coef.to_pyarrow().num_rows == 8


def test_fit_is_the_same_on_both_backends(rules, backend, engine_for) -> None:
    engine = engine_for(backend)
    observed, features, _ = _synthetic(13, 40, BETAS, noise=1500.0)
    expected, coef = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules,
                                       execute=engine.con.to_pyarrow)
    got_expected, got_coef = engine.con.to_pyarrow(expected), engine.con.to_pyarrow(coef)
    ref_expected, ref_coef = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules)
    assert_tables_equal(got_expected, ref_expected.to_pyarrow(), float_tol=1e-9)
    assert_tables_equal(got_coef, ref_coef.to_pyarrow(), float_tol=1e-9)


# ------------------------------------------------------------------------------------------ specialty
def test_specialty_adjustment_golden(rules, backend, engine_for) -> None:
    """f_06 = (120 + 300)/(80 + 320) = 1.05 (E1, E2 via N1); f_11 = (300 + 200)/(320 + 100) = 500/420 (E2 via N2,
    E3 via N3; E5 is an outlier and left out). TIN A units: 1.05, 1.05, 500/420 → F_A = (2.1 + 500/420)/3.
    TIN B units: E3/N3 = 500/420, E4 has no attributed NPI = 1 → F_B = (500/420 + 1)/2."""
    engine = engine_for(backend)
    expected = ibis.memtable(pa.table({
        "episode_id": ["E1", "E2", "E3", "E4", "E5"], "measure_id": ["COST_HF_1"] * 5,
        "winsorized_cost": [120.0, 300.0, 200.0, 50.0, 1000.0], "expected_cost": [80.0, 320.0, 100.0, 100.0, 100.0],
        "is_outlier": [False, False, False, False, True],
    }))
    attribution = ibis.memtable(pa.table({
        "episode_id": ["E1", "E2", "E2", "E3", "E4", "E5"], "measure_id": ["COST_HF_1"] * 6,
        "billing_tin": ["A", "A", "A", "B", "B", "B"], "rendering_npi": ["N1", "N1", "N2", "N3", "N4", "N3"],
        "service_share": [1.0, 0.5, 0.5, 1.0, 0.2, 1.0], "is_attributed": [True, True, True, True, False, True],
    }))
    specialty = ibis.memtable({"rendering_npi": ["N1", "N2", "N3", "N4"], "specialty_code": ["06", "11", "11", "06"]})
    out = adjust_for_specialty(episode_expected=expected, episode_attribution=attribution,
                               clinician_specialty=specialty, rules=rules)
    got = {(r["entity_level"], r["billing_tin"], r["rendering_npi"], r["episode_id"]): r for r in _fetch(out, engine)}
    f06, f11 = 1.05, 500 / 420
    fa, fb = (2 * f06 + f11) / 3, (f11 + 1) / 2
    want = {
        ("tin_npi", "A", "N1", "E1"): 80 * f06, ("tin_npi", "A", "N1", "E2"): 320 * f06,
        ("tin_npi", "A", "N2", "E2"): 320 * f11, ("tin_npi", "B", "N3", "E3"): 100 * f11,
        ("tin_npi", "B", "N3", "E5"): 100 * f11,
        ("tin", "A", None, "E1"): 80 * fa, ("tin", "A", None, "E2"): 320 * fa,
        ("tin", "B", None, "E3"): 100 * fb, ("tin", "B", None, "E4"): 100 * fb, ("tin", "B", None, "E5"): 100 * fb,
    }
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key]["expected_cost_adjusted"] == pytest.approx(value, rel=1e-12), key
    assert got[("tin_npi", "B", "N3", "E5")]["is_outlier"] is True

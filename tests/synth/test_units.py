"""Building blocks: vectorized NPI check digits, MBI ids, pools, the cost mixture and its parameters."""

from __future__ import annotations

import numpy as np

from openasm.rules import load_rules
from openasm.schema.formats import NPI_PATTERN, TIN_PATTERN, is_valid_npi, npi_check_digit
from openasm.synth.ids import mbi_ids, npi_check_digits, npi_values, tin_values
from openasm.synth.params import load_synth_params, mixture_quantile
from openasm.synth.pools import Pool


def test_vectorized_check_digit_matches_formats():
    bases = np.random.default_rng(1).integers(100_000_000, 300_000_000, 500)
    digits = npi_check_digits(bases)
    assert all(str(d) == npi_check_digit(str(b)) for b, d in zip(bases, digits, strict=True))
    assert npi_check_digits(np.array([123456789]))[0] == 3  # CMS worked example 1234567893


def test_npis_and_tins_are_distinct_and_well_formed():
    import re

    npis = [str(v) for v in npi_values(np.arange(5000), seed=3)]
    assert len(set(npis)) == 5000 and all(re.match(NPI_PATTERN, n) and is_valid_npi(n) for n in npis)
    tins = [f"{v:09d}" for v in tin_values(np.arange(5000), np.zeros(5000, int), seed=3)]
    assert len(set(tins)) == 5000 and all(re.match(TIN_PATTERN, t) for t in tins)


def test_mbi_ids_are_distinct():
    ids = mbi_ids(np.arange(100_000), seed=9).to_pylist()
    assert len(set(ids)) == 100_000 and all(len(i) == 11 and i[0] != "0" for i in ids)


def test_pool_draws_in_area_and_falls_back_to_the_nation():
    pool = Pool(members=np.array([10, 11, 12]), area=np.array([0, 0, 2]), weight=np.array([1.0, 3.0, 1.0]),
                n_areas=3)
    rng = np.random.default_rng(0)
    got = pool.draw(np.zeros(4000, int), rng)
    assert set(got) == {10, 11} and 0.7 < (got == 11).mean() < 0.8
    assert set(pool.draw(np.full(100, 1), rng)) <= {10, 11, 12}  # area 1 has no member
    assert set(pool.draw(np.full(50, 2), rng)) == {12}
    share = pool.expected_share(np.array([0.5, 0.25, 0.25]))
    assert abs(share.sum() - 1.0) < 1e-9


def test_mixture_mean_after_cap_is_the_py2024_average():
    params = load_synth_params(2025, 2027, load_rules(2027))
    rng = np.random.default_rng(5)
    for cohort, target in (("hf", 14164.73), ("lbp", 1845.34)):
        mix = params.mixture[cohort]
        comp = rng.random(2_000_000) < mix["weight"][1]
        draw = np.asarray(mix["median"])[comp.astype(int)] * np.exp(
            np.asarray(mix["sigma"])[comp.astype(int)] * rng.standard_normal(comp.size))
        assert abs(np.minimum(draw, params.cap[cohort]).mean() / target - 1) < 0.02
        assert abs(mixture_quantile(mix["weight"], mix["median"], mix["sigma"], 0.5)
                   - np.median(draw)) / np.median(draw) < 0.01
    assert params.year_scale["hf"][2025] == params.year_scale["hf"][2027] > 1.05


def test_parameters_come_from_rules_and_overrides_apply():
    rules = load_rules(2027, overrides={"synth.target_mean_cost.hf": 20000.0})
    params = load_synth_params(2025, 2027, rules)
    assert params.year_scale["hf"][2026] == 20000.0 / 20000.0
    used = {row["name"] for row in params.manifest_rows}
    assert {"synth.mixture", "synth.clinician_sigma", "synth.prevalence", "synth.messiness"} <= used

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


def test_assignment_settings_follow_the_cost_stage():
    from openasm.cost.assign import HCPCS_RULE_SETTINGS
    from openasm.synth.assigned import HCPCS_RULE_SETTINGS as SYNTH_SETTINGS

    assert SYNTH_SETTINGS == HCPCS_RULE_SETTINGS


def test_assigned_lines_follow_the_measure_rules():
    from openasm.synth import codes
    from openasm.synth.assigned import assigned_fills, assigned_lines
    from openasm.synth.batch import LineSpec, make_batch
    from openasm.synth.services import CT

    params = load_synth_params(2025, 2027, load_rules(2027))
    rng = np.random.default_rng(0)
    hf_dx = np.array([[codes.DX.idx("I5022")]])
    lbp_dx = np.array([[codes.DX.idx("M5450")]])
    office = make_batch(rng, 1, hf_dx, [LineSpec(hcpcs=(c,)) for c in ("99214", "93306", "93000", "99223", "36415")],
                        bene=0, ctype=CT["carrier"], cfrom=100, clin=0)
    assert assigned_lines(office, params.assignment["hf"]).tolist() == [True, True, False, False, False]
    assert not assigned_lines(office, params.assignment["lbp"]).any()  # no LBP diagnosis
    ed = make_batch(rng, 1, hf_dx, [LineSpec(rev="0450", hcpcs=("99284",), price=(400.0, 400.0), dx=False),
                                    LineSpec(rev="0300", hcpcs=("80053",), price=(20.0, 20.0), dx=False)],
                    bene=0, ctype=CT["outpatient"], cfrom=100, fac=0)
    assert assigned_lines(ed, params.assignment["hf"]).tolist() == [True, False]
    stay = make_batch(rng, 1, hf_dx, [LineSpec(rev="0120", price=(9000.0, 9000.0), dx=False)], bene=0,
                      ctype=CT["inpatient"], cfrom=100, cthru=104, drg=codes.DRG.idx("291"))
    assert assigned_lines(stay, params.assignment["hf"]).all()
    therapy = make_batch(rng, 1, lbp_dx, [LineSpec(hcpcs=("97110",)), LineSpec(hcpcs=("72148",)),
                                          LineSpec(hcpcs=("85025",))], bene=0, ctype=CT["carrier"], cfrom=5, clin=0)
    assert assigned_lines(therapy, params.assignment["lbp"]).tolist() == [True, True, False]
    kinds = {codes.NDC_CLASS[d[0]]: i for i, d in enumerate(codes.DRUGS)}
    ndc = np.array([kinds["loop_diuretic"], kinds["nsaid"], kinds["statin"]])
    assert assigned_fills(ndc, params.assignment["hf"]).tolist() == [True, False, False]
    assert assigned_fills(ndc, params.assignment["lbp"]).tolist() == [False, True, False]


def test_care_year_cost_sits_on_assigned_services():
    """Assigned HF services of a care year sum to its drawn cost (in service-year dollars); others keep list prices."""
    from openasm.synth import chunk as chunk_mod
    from openasm.synth.assigned import assigned_fills, assigned_lines
    from openasm.synth.batch import Batch
    from openasm.synth.careyears import build_care_years
    from openasm.synth.population import Calendar, build_population
    from openasm.synth.practices import build_world
    from openasm.synth.services import Ctx, concat_fills

    params = load_synth_params(2025, 2027, load_rules(2027))
    cal = Calendar.build(2025, 2027)
    world = build_world(3000, 4, params)
    rng = np.random.default_rng(4)
    pop = build_population(0, 3000, cal, params, world, rng)
    ctx = Ctx(rng, pop, world, params, cal, world.fac_offset)
    cys = build_care_years(ctx)
    batches, fills = chunk_mod.hf_care(ctx, cys["hf"])
    batch, fill = Batch.concat(batches), concat_fills(fills)
    list_price = batch.lines["cost"].copy()
    chunk_mod._rescale(batch, fill, cys, params, cal, world)
    rule = params.assignment["hf"]
    on = assigned_lines(batch, rule)
    f_on = assigned_fills(fill["ndc"], rule)
    scale = np.array([params.year_scale["hf"][y] for y in range(2025, 2028)])
    line_cy = batch.claims["cy"][batch.lines["claim"]]
    price_year = batch.lines["cost"] / scale[cal.year_of(batch.lines["lfrom"])]
    total = (np.bincount(line_cy[on], weights=price_year[on], minlength=cys["hf"].n)
             + np.bincount(fill["cy"][f_on], weights=(fill["cost"] / scale[cal.year_of(fill["fill"])])[f_on],
                           minlength=cys["hf"].n))
    assert cys["hf"].n > 100
    assert np.allclose(total, cys["hf"].cost, rtol=1e-9)
    assert (~on).any() and np.array_equal(batch.lines["cost"][~on], list_price[~on])

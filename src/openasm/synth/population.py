"""Beneficiaries of one chunk: demographics, monthly coverage, death, conditions, comorbidities.

Dates are int days since 1970-01-01. Monthly coverage is an (n, months) matrix per flag; claims are only
kept on days whose month has FFS Part A (institutional) or Part B (carrier, DME) and that are on or before
death. HF is a chronic condition with a care relationship anchored before or during the period; LBP comes
as chains of 365-day care years that start in the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.synth import codes
from openasm.synth.params import SynthParams
from openasm.synth.practices import World

NO_DATE = np.int64(2**31 - 1)
DUAL_CODES = ("00", "01", "02", "03", "04", "05", "06", "08")
DUAL_W = (0.0, 0.12, 0.40, 0.08, 0.10, 0.0, 0.05, 0.25)
RACE_CODES = ("0", "1", "2", "3", "4", "5", "6")
RACE_W = (0.014, 0.75, 0.10, 0.02, 0.04, 0.07, 0.006)
SEXES = ("M", "F", "U")
EPOCH = np.datetime64("1970-01-01", "D")


@dataclass
class Calendar:
    """Days and months of the world."""

    first_year: int
    last_year: int
    d0: int
    d1: int
    month_start: np.ndarray  # day of the first of each month, plus one past the end
    year_start: np.ndarray   # first day of each year, plus one past the end

    @classmethod
    def build(cls, first_year: int, last_year: int) -> Calendar:
        months = np.arange(np.datetime64(f"{first_year}-01", "M"), np.datetime64(f"{last_year + 1}-02", "M"))
        month_start = (months.astype("datetime64[D]") - EPOCH).astype(np.int64)
        years = np.arange(first_year, last_year + 2)
        year_start = np.array([(np.datetime64(f"{y}-01-01", "D") - EPOCH).astype(np.int64) for y in years])
        return cls(first_year, last_year, int(year_start[0]), int(year_start[-1] - 1), month_start, year_start)

    @property
    def n_months(self) -> int:
        return len(self.month_start) - 1

    @property
    def n_years(self) -> int:
        return self.last_year - self.first_year + 1

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Month index of each day (-1 outside the world)."""
        m = np.searchsorted(self.month_start, day, side="right") - 1
        return np.where((day >= self.d0) & (day <= self.d1), m, -1)

    def year_of(self, day: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.year_start, day, side="right") - 1, 0, self.n_years - 1)

    def year_month_labels(self) -> list[str]:
        months = np.arange(np.datetime64(f"{self.first_year}-01", "M"), np.datetime64(f"{self.last_year + 1}-01", "M"))
        return [str(m) for m in months]


@dataclass
class Population:
    """One chunk of beneficiaries (local index 0..n-1)."""

    n: int
    global_index: np.ndarray
    birth: np.ndarray
    age0: np.ndarray
    sex: np.ndarray
    death: np.ndarray
    orec: np.ndarray
    esrd: np.ndarray
    dual: np.ndarray
    race: np.ndarray
    area: np.ndarray
    zip_row: np.ndarray
    covered: np.ndarray   # (n, M) entitled and alive in the month
    ma: np.ndarray
    part_b: np.ndarray
    part_d: np.ndarray
    hospice: np.ndarray
    hospice_from: np.ndarray
    msp: np.ndarray
    ffs_a: np.ndarray
    ffs_b: np.ndarray
    ffs_d: np.ndarray
    hf_anchor: np.ndarray
    lbp_start: np.ndarray
    lbp_years: np.ndarray
    comorb: np.ndarray   # (n, 4) dx index, -1 none
    frailty: np.ndarray
    pcp: np.ndarray
    hospital: np.ndarray


def _uniform_day(rng, lo, hi) -> np.ndarray:
    """A uniform integer day in [lo, hi] (arrays)."""
    return lo + (rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def build_population(start: int, n: int, cal: Calendar, params: SynthParams, world: World,
                     rng: np.random.Generator) -> Population:
    pop = params.population
    Y, M = cal.n_years, cal.n_months
    under65 = rng.random(n) < pop["under65_share"]
    aging_in = ~under65 & (rng.random(n) < pop["aging_in_share"])
    age0 = np.where(under65, 65.0 - 45.0 * rng.beta(1.3, 3.0, n),
                    np.minimum(65.0 + rng.gamma(1.3, 9.0, n), 104.0))
    age0 = np.where(aging_in, 65.0 - rng.uniform(0.01, Y, n), age0)
    birth = cal.d0 - np.rint(age0 * 365.25).astype(np.int64)
    female_p = np.where(under65, pop["female_share_under65"], pop["female_share_aged"])
    sex = np.where(rng.random(n) < female_p, 1, 0)
    sex = np.where(rng.random(n) < pop["unknown_sex_share"], 2, sex)
    esrd = rng.random(n) < np.where(under65, 3.0, 0.75) * pop["esrd_share"]
    orec = np.where(under65, np.where(esrd, np.where(rng.random(n) < 0.3, 3, 2), 1),
                    np.where(rng.random(n) < pop["disabled_origin_share_aged"], 1, 0))
    is_dual = rng.random(n) < np.where(under65, pop["dual_share_under65"], pop["dual_share_aged"])
    dual = np.where(is_dual, rng.choice(len(DUAL_CODES), n, p=np.asarray(DUAL_W) / sum(DUAL_W)), 0)
    race = rng.choice(len(RACE_CODES), n, p=np.asarray(RACE_W) / sum(RACE_W))
    area = rng.choice(world.n_areas, n, p=world.area_weight)
    ref = world.area_ref[area]
    zip_row = world.areas.zip_start[ref] + (rng.random(n) * world.areas.zip_count[ref]).astype(np.int64)

    # conditions: HF (prevalent at start or incident), LBP chains
    dyn_hf = params.dynamics["hf"]
    age_mult = np.exp(dyn_hf["age_slope"] * (age0 - 76.0))
    age_mult /= age_mult.mean()
    prevalent = rng.random(n) < params.prevalence["hf"] * age_mult
    incident = rng.random((n, Y)) < (dyn_hf["annual_incidence"] * age_mult)[:, None]
    inc_year = np.argmax(incident, axis=1)
    has_inc = ~prevalent & incident.any(axis=1)
    inc_day = _uniform_day(rng, cal.year_start[inc_year], cal.year_start[inc_year + 1] - 1)
    hf_anchor = np.where(prevalent, cal.d0 - rng.integers(1, 731, n), np.where(has_inc, inc_day, NO_DATE))
    hf_any = hf_anchor != NO_DATE

    share = params.prevalence["lbp"]
    persist = params.dynamics["lbp"]["persistence"]
    q_later = share * (1 - persist) / (1 - share)
    start_p = np.full(Y, q_later)
    start_p[0] = share
    starts = rng.random((n, Y)) < start_p[None, :]
    has_lbp = starts.any(axis=1)
    lbp_year = np.argmax(starts, axis=1)
    lbp_start = np.where(has_lbp, _uniform_day(rng, cal.year_start[lbp_year], cal.year_start[lbp_year + 1] - 1),
                         NO_DATE)
    lbp_years = np.where(has_lbp, rng.geometric(1 - persist, n), 0)

    # death
    hazard = np.exp(pop["mortality_age_slope"] * (age0 - 78.0)) * np.where(hf_any, dyn_hf["mortality_multiplier"], 1)
    hazard = np.minimum(pop["annual_mortality"] * hazard / hazard.mean(), 0.6)
    dies = rng.random((n, Y)) < hazard[:, None]
    death_year = np.argmax(dies, axis=1)
    death = np.where(dies.any(axis=1),
                     _uniform_day(rng, cal.year_start[death_year], cal.year_start[death_year + 1] - 1), NO_DATE)
    death = np.maximum(death, birth + 1)

    # monthly coverage
    ms = cal.month_start[:-1]
    entitled_from = np.where(aging_in, cal.month_start[np.clip(cal.month_of(birth + int(65 * 365.25)), 0, M - 1)],
                             cal.d0)
    alive = ms[None, :] <= death[:, None]
    covered = alive & (ms[None, :] >= entitled_from[:, None])
    sw = pop["ma_switch_share"]
    u = rng.random(n)
    pattern = np.select([u < pop["ma_share"] - sw / 2, u < pop["ma_share"], u < pop["ma_share"] + sw / 2],
                        [1, 2, 3], 0)  # 0 FFS, 1 MA, 2 FFS->MA, 3 MA->FFS
    jan = rng.integers(1, Y, n) * 12 if Y > 1 else np.zeros(n, dtype=np.int64)
    switch_m = np.where(rng.random(n) < 0.8, jan, rng.integers(1, M, n)) if M > 1 else np.zeros(n, np.int64)
    after = np.arange(M)[None, :] >= switch_m[:, None]
    ma = np.select([pattern[:, None] == 1, pattern[:, None] == 2, pattern[:, None] == 3],
                   [np.ones((n, M), bool), after, ~after], np.zeros((n, M), bool)) & covered
    b_flag = rng.random(n) < pop["part_b_share_ffs"]
    part_b = covered & (ma | b_flag[:, None])
    part_d = covered & np.where(ma, (rng.random(n) < pop["part_d_share_ma"])[:, None],
                                (rng.random(n) < pop["part_d_share_ffs"])[:, None])
    msp = covered & ((rng.random(n) < pop["msp_share"]) & ~under65)[:, None]
    ffs_a = covered & ~ma
    ffs_b = ffs_a & part_b
    ffs_d = ffs_a & part_d
    elects = (death <= cal.d1) & (rng.random(n) < pop["hospice_share_of_decedents"])
    hospice_from = death - rng.integers(3, 91, n)
    me = cal.month_start[1:]
    hospice = elects[:, None] & (me[None, :] > hospice_from[:, None]) & alive & ffs_a
    elects &= hospice.any(axis=1)

    comorb = _comorbidities(rng, n, hf_any, esrd)
    us = params.unrelated
    frailty = rng.gamma(us["frailty_shape"], 1.0 / us["frailty_shape"], n)
    frailty *= np.clip(1 + us["age_slope"] * (age0 - 75.0), 0.5, 2.0) * np.where(hf_any, 1.3, 1.0)
    pcp = world.pools["pcp"].draw(area, rng)
    hospital = world.fac_pools["hospital"].draw(area, rng)
    return Population(
        n=n, global_index=np.arange(start, start + n), birth=birth, age0=age0, sex=sex, death=death, orec=orec,
        esrd=esrd, dual=dual, race=race, area=area, zip_row=zip_row, covered=covered, ma=ma, part_b=part_b,
        part_d=part_d, hospice=hospice, hospice_from=np.where(elects, hospice_from, NO_DATE), msp=msp,
        ffs_a=ffs_a, ffs_b=ffs_b, ffs_d=ffs_d, hf_anchor=hf_anchor,
        lbp_start=lbp_start, lbp_years=lbp_years, comorb=comorb, frailty=frailty, pcp=pcp, hospital=hospital,
    )


def _comorbidities(rng: np.random.Generator, n: int, hf: np.ndarray, esrd: np.ndarray) -> np.ndarray:
    """Up to four chronic diagnoses per beneficiary, in random order (ESRD first when present)."""
    prev = np.asarray(codes.COMORBIDITY_PREV)
    boost = np.isin(np.asarray(codes.COMORBIDITY_DX), ["E119", "N1831", "I4891", "I2510", "J449"])
    p = np.where(hf[:, None] & boost[None, :], np.minimum(prev * 1.8, 0.9), prev[None, :])
    has = rng.random((n, len(prev))) < p
    key = np.where(has, rng.random((n, len(prev))), 2.0)
    top = np.argsort(key, axis=1)[:, :4]
    dx_index = np.asarray(codes.DX.many(codes.COMORBIDITY_DX))
    out = np.where(np.take_along_axis(key, top, axis=1) < 2.0, dx_index[top], -1)
    out[esrd, 1:] = out[esrd, :3]
    out[esrd, 0] = codes.DX.idx("N186")
    return out

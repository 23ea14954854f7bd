"""One chunk of beneficiaries end to end: population, care, cost rescaling, eligibility, claim versions.

Order of operations (all vectorized): draw the population and its care years; generate every service;
rescale each care year's assigned condition services (Parts A, B and D that the measure's assignment rules
cover) so their standardized amounts sum to the drawn annual cost, then scale to the service year's dollars;
drop services outside coverage (FFS Part A for institutional claims, FFS Part B for carrier/DME, Part D for
fills) or after death; order claims and give them ids; add adjustment and cancel versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.synth.assigned import COHORT_CODE, assigned_fills, assigned_lines
from openasm.synth.batch import NA, Batch
from openasm.synth.care_hf import hf_care
from openasm.synth.care_lbp import lbp_care
from openasm.synth.care_other import other_care
from openasm.synth.careyears import CareYears, build_care_years
from openasm.synth.params import SynthParams
from openasm.synth.population import Calendar, Population, build_population
from openasm.synth.practices import World
from openasm.synth.services import INSTITUTIONAL_TYPES, Ctx, concat_fills

ORIGINAL, ADJUSTMENT, CANCEL = 0, 1, 2


@dataclass
class Versions:
    """Claim versions in output order: originals by rank, then adjustments and cancels."""

    claim: np.ndarray      # index into the (filtered, ordered) claims of the batch
    rank: np.ndarray       # claim id number within the chunk
    original: np.ndarray   # rank of the claim modified, or -1
    kind: np.ndarray       # ORIGINAL / ADJUSTMENT / CANCEL; -1 = original with a null type
    processed: np.ndarray
    factor: np.ndarray     # amount multiplier of this version


@dataclass
class ChunkData:
    pop: Population
    batch: Batch          # eligible claims, ordered; claim i has rank i
    versions: Versions
    fills: dict           # eligible fills, ordered
    fill_versions: Versions
    care_years: dict[str, CareYears]


def generate_chunk(chunk_index: int, start: int, n: int, cal: Calendar, params: SynthParams, world: World,
                   seed: int) -> ChunkData:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, chunk_index)))
    pop = build_population(start, n, cal, params, world, rng)
    ctx = Ctx(rng, pop, world, params, cal, world.fac_offset)
    cys = build_care_years(ctx)
    batches, fills = [], []
    for care, cy in ((hf_care, cys["hf"]), (lbp_care, cys["lbp"])):
        b, f = care(ctx, cy)
        batches += b
        fills += f
    b, f = other_care(ctx)
    batch = Batch.concat(batches + b)
    fill = concat_fills(fills + f)
    del batches, fills, b, f
    _rescale(batch, fill, cys, params, cal, world)
    batch = _order(batch.select(_eligible_claims(batch, pop, cal)))
    keep = _eligible_fills(fill, pop, cal)
    fill = {k: v[keep] for k, v in fill.items()}
    order = np.lexsort((np.arange(len(fill["bene"])), fill["ndc"], fill["fill"], fill["bene"]))
    fill = {k: v[order] for k, v in fill.items()}
    mess = params.messiness
    lag = params.payment["processing_lag_days"]
    versions = _versions(rng, batch.claims["cthru"], batch.claims["protect"], mess["adjustment_share"],
                         mess["cancel_share"], lag, mess)
    fill_versions = _versions(rng, fill["fill"], np.zeros(len(fill["fill"]), bool),
                              mess["pharmacy_adjustment_share"], mess["pharmacy_cancel_share"], lag, mess)
    return ChunkData(pop, batch, versions, fill, fill_versions, cys)


def _rescale(batch: Batch, fill: dict, cys: dict[str, CareYears], params: SynthParams, cal: Calendar,
             world: World) -> None:
    """A care year's assigned condition services sum to its drawn cost, then go to the service year's dollars.

    Only services the measure assigns carry the drawn cost (`assigned.py`); the condition's other services
    (hospitalist and ED physician visits, ECGs, device checks, ED ancillaries) keep their list prices.
    Services billed by a provider-pool clinician (physical therapy, chiropractic) then carry that
    clinician's own style effect (mean 1 over the pool's patients, so the expected cost is unchanged).
    """
    target = np.concatenate([cys["hf"].cost, cys["lbp"].cost])
    claim_cohort = batch.claims["cohort"][batch.lines["claim"]]
    line_cy = batch.claims["cy"][batch.lines["claim"]]
    on = np.zeros(len(line_cy), dtype=bool)
    f_on = np.zeros(len(fill["cy"]), dtype=bool)
    for name, code in COHORT_CODE.items():
        rule = params.assignment[name]
        care = np.flatnonzero((line_cy >= 0) & (claim_cohort == code))
        on[care] = assigned_lines(batch, rule, care)
        f_care = np.flatnonzero((fill["cy"] >= 0) & (fill["cohort"] == code))
        f_on[f_care] = assigned_fills(fill["ndc"][f_care], rule)
    total = (np.bincount(line_cy[on], weights=batch.lines["cost"][on], minlength=len(target))
             + np.bincount(fill["cy"][f_on], weights=fill["cost"][f_on], minlength=len(target)))
    factor = target / np.maximum(total, 1e-9)
    batch.lines["cost"][on] *= factor[line_cy[on]]
    fill["cost"][f_on] *= factor[fill["cy"][f_on]]
    clin = batch.lines["clin"]
    for name, code in COHORT_CODE.items():
        styled = on & (claim_cohort == code) & (clin >= 0)
        batch.lines["cost"][styled] *= world.provider_effect[name][clin[styled]]
        scale = np.array([params.year_scale[name][y] for y in range(cal.first_year, cal.last_year + 1)])
        lines = on & (claim_cohort == code)
        batch.lines["cost"][lines] *= scale[cal.year_of(batch.lines["lfrom"][lines])]
        fl = f_on & (fill["cohort"] == code)
        fill["cost"][fl] *= scale[cal.year_of(fill["fill"][fl])]


def _covered(pop: Population, bene: np.ndarray, day: np.ndarray, matrix: np.ndarray, cal: Calendar) -> np.ndarray:
    month = cal.month_of(day)
    return (month >= 0) & matrix[bene, np.maximum(month, 0)]


def _eligible_claims(batch: Batch, pop: Population, cal: Calendar) -> np.ndarray:
    c = batch.claims
    bene, first, last = c["bene"], c["cfrom"], c["cthru"]
    institutional = np.isin(c["ctype"], INSTITUTIONAL_TYPES)
    ok = (first <= last) & (last <= pop.death[bene]) & (np.bincount(batch.lines["claim"], minlength=len(bene)) > 0)
    for day in (first, (first + last) // 2, last):
        ok &= np.where(institutional, _covered(pop, bene, day, pop.ffs_a, cal),
                       _covered(pop, bene, day, pop.ffs_b, cal))
    return ok


def _eligible_fills(fill: dict, pop: Population, cal: Calendar) -> np.ndarray:
    return _covered(pop, fill["bene"], fill["fill"], pop.ffs_d, cal) & (fill["fill"] <= pop.death[fill["bene"]])


def _order(batch: Batch) -> Batch:
    """Claims by beneficiary, from date, type (stable); lines stay in their claim's order."""
    c = batch.claims
    n = len(c["bene"])
    order = np.lexsort((np.arange(n), c["ctype"], c["cfrom"], c["bene"]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    claims = {k: v[order] for k, v in c.items()}
    line_order = np.lexsort((np.arange(len(batch.lines["claim"])), rank[batch.lines["claim"]]))
    lines = {k: v[line_order] for k, v in batch.lines.items()}
    lines["claim"] = rank[lines["claim"]]
    return Batch(claims, lines, batch.dx[order])


def _versions(rng, thru: np.ndarray, protect: np.ndarray, adj_share: float, cancel_share: float,
              lag: list[int], mess: dict) -> Versions:
    """Originals plus adjustment / cancel versions of some (never a cancel of a protected claim)."""
    n = len(thru)
    processed = thru + rng.integers(lag[0], lag[1] + 1, n)
    u = rng.random(n)
    adjusted = u < adj_share
    cancelled = ~adjusted & (u < adj_share + cancel_share) & ~protect
    kind = np.where(rng.random(n) < mess["null_share"]["claim_adjustment_type"], NA, ORIGINAL)
    a = np.flatnonzero(adjusted)
    c = np.flatnonzero(cancelled)
    later = mess["adjustment_lag_days"]
    change = mess["adjustment_amount_change"]
    new_claims = np.concatenate([a, c])
    order = np.argsort(new_claims, kind="stable")
    new_claims = new_claims[order]
    new_kind = np.concatenate([np.full(len(a), ADJUSTMENT), np.full(len(c), CANCEL)])[order]
    new_factor = np.concatenate([rng.uniform(change[0], change[1], len(a)), np.full(len(c), -1.0)])[order]
    new_processed = processed[new_claims] + rng.integers(later[0], later[1] + 1, len(new_claims))
    return Versions(
        claim=np.concatenate([np.arange(n), new_claims]),
        rank=np.arange(n + len(new_claims)),
        original=np.concatenate([np.full(n, NA), new_claims]),
        kind=np.concatenate([kind, new_kind]),
        processed=np.concatenate([processed, new_processed]),
        factor=np.concatenate([np.ones(n), new_factor]),
    )

"""Condition patient-years ("care years") and their drawn annual cost.

A care year is 365 days of a condition relationship, starting at the relationship's anchor (HF) or at the
onset of an LBP care chain, then every 365 days. Each care year draws a mixture component and an annual
cost (ebcm §11.2: two-component lognormal, capped at the mixture's p99, times the managing clinician's
practice-style effect, times `episode_basis_factor`); the assigned services drawn for it are later rescaled
so that their standardized amounts sum to that cost. Care years are aligned with how episodes are cut (365
days from the trigger), so an episode opened by the care year's first visit observes its cost; the scored
episodes of a year also include short TAW tails and TINs joining mid-year, which observe less, and
`episode_basis_factor` sizes care years so that the mean over scored episodes is the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.synth import codes
from openasm.synth.batch import NA
from openasm.synth.population import NO_DATE
from openasm.synth.services import Ctx, choose_idx, expand

YEAR = 365


@dataclass
class CareYears:
    cohort: str
    id: np.ndarray          # chunk-unique care-year id
    bene: np.ndarray
    start: np.ndarray
    first: np.ndarray       # first care year of a relationship that begins inside the world
    manager: np.ndarray     # clinician row managing the patient
    secondary: np.ndarray   # second managing clinician row this year, or -1
    component: np.ndarray   # 0 or 1
    cost: np.ndarray        # drawn annual cost, price-year dollars
    intensity: np.ndarray
    dx: np.ndarray          # patient's condition diagnosis (DX index)

    @property
    def n(self) -> int:
        return len(self.bene)


def _draw_manager(ctx: Ctx, cohort: str, bene: np.ndarray) -> np.ndarray:
    """Managing clinician row per patient from the cohort's pool mix ('pcp' = the patient's own PCP)."""
    pools = ctx.params.managers[cohort]["pools"]
    names = list(pools)
    w = np.array([pools[k] for k in names], dtype=float)
    pick = ctx.rng.choice(len(names), size=len(bene), p=w / w.sum())
    out = np.full(len(bene), NA, dtype=np.int64)
    for i, name in enumerate(names):
        sel = np.flatnonzero(pick == i)
        if name == "pcp":
            out[sel] = ctx.pop.pcp[bene[sel]]
        else:
            pool = {"app": f"{cohort}_app"}.get(name, name)
            out[sel] = ctx.clinician(pool, bene[sel])
    return out


def _costs(ctx: Ctx, cohort: str, manager: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mix = ctx.params.mixture[cohort]
    rng = ctx.rng
    comp = (rng.random(n) < mix["weight"][1]).astype(np.int8)
    median = np.asarray(mix["median"])[comp]
    sigma = np.asarray(mix["sigma"])[comp]
    draw = np.minimum(median * np.exp(sigma * rng.standard_normal(n)), ctx.params.cap[cohort])
    effect = ctx.world.person_effect[cohort][ctx.world.row_person[manager]]
    cost = draw * effect * ctx.params.episode_basis[cohort]
    exponent = ctx.params.service[cohort]["intensity_exponent"]
    intensity = np.clip((draw / median) ** exponent, 0.6, 1.8)
    return comp, cost, intensity


def _secondary(ctx: Ctx, cohort: str, bene: np.ndarray, manager: np.ndarray) -> np.ndarray:
    cfg = ctx.params.managers[cohort]
    has = ctx.rng.random(len(bene)) < cfg["secondary_share"]
    second = np.where(has, ctx.clinician(cfg["secondary_pool"], bene), NA)
    same_tin = ctx.world.row_prac[np.maximum(second, 0)] == ctx.world.row_prac[manager]
    return np.where(same_tin, NA, second)


def build_care_years(ctx: Ctx, id_offset: int = 0) -> dict[str, CareYears]:
    """HF and LBP care years overlapping the world, for beneficiaries with any FFS Part B month."""
    pop, cal = ctx.pop, ctx.cal
    ffs_any = pop.ffs_b.any(axis=1)
    end = np.minimum(pop.death, cal.d1)
    out: dict[str, CareYears] = {}

    # HF: chronic, one relationship per patient from its anchor until death or the end of the world
    hf_bene = np.flatnonzero((pop.hf_anchor != NO_DATE) & ffs_any)
    anchor = pop.hf_anchor[hf_bene]
    k_lo = np.maximum(0, (cal.d0 - anchor) // YEAR)
    k_hi = (end[hf_bene] - anchor) // YEAR
    count = np.maximum(0, k_hi - k_lo + 1)
    parent, j = expand(count)
    hf_manager = _draw_manager(ctx, "hf", hf_bene)
    k = k_lo[parent] + j
    out["hf"] = _assemble(ctx, "hf", hf_bene[parent], anchor[parent] + YEAR * k, (k == 0) & (anchor[parent] >= cal.d0),
                          hf_manager[parent], codes.HF_CHRONIC_DX, codes.HF_CHRONIC_W, hf_bene, parent, id_offset)

    # LBP: chains of care years starting inside the world
    lbp_bene = np.flatnonzero((pop.lbp_start != NO_DATE) & ffs_any)
    parent, k = expand(pop.lbp_years[lbp_bene])
    start = pop.lbp_start[lbp_bene][parent] + YEAR * k
    keep = start <= end[lbp_bene][parent]
    parent, k, start = parent[keep], k[keep], start[keep]
    lbp_manager = _draw_manager(ctx, "lbp", lbp_bene)
    out["lbp"] = _assemble(ctx, "lbp", lbp_bene[parent], start, k == 0, lbp_manager[parent], codes.LBP_DX,
                           codes.LBP_W, lbp_bene, parent, id_offset + out["hf"].n)
    return out


def _assemble(ctx, cohort, bene, start, first, manager, dx_codes, dx_w, patients, parent, id_offset) -> CareYears:
    n = len(bene)
    comp, cost, intensity = _costs(ctx, cohort, manager, n)
    patient_dx = choose_idx(ctx.rng, dx_codes, dx_w, len(patients), codes.DX)
    return CareYears(
        cohort=cohort, id=id_offset + np.arange(n), bene=bene, start=start, first=first, manager=manager,
        secondary=_secondary(ctx, cohort, bene, manager), component=comp, cost=cost, intensity=intensity,
        dx=patient_dx[parent],
    )

"""Claim builders shared by condition and unrelated care: office visits, ED visits, stays, post-acute, fills."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.synth import codes
from openasm.synth.batch import COHORT, NA, Batch, LineSpec, make_batch
from openasm.synth.params import SynthParams
from openasm.synth.population import Calendar, Population
from openasm.synth.practices import World

CT = {name: i for i, name in enumerate(codes.CLAIM_TYPE.codes)}
INSTITUTIONAL_TYPES = np.array([CT[t] for t in ("inpatient", "outpatient", "snf", "home_health", "hospice")])
POS11, POS22, POS21, POS23, POS81, POS12 = (codes.POS.idx(p) for p in ("11", "22", "21", "23", "81", "12"))
TELE = np.array(codes.POS.many(("02", "10")))


@dataclass
class Ctx:
    """What every builder needs."""

    rng: np.random.Generator
    pop: Population
    world: World
    params: SynthParams
    cal: Calendar
    fac_offset: dict[str, int]

    def facility(self, kind: str, bene: np.ndarray) -> np.ndarray:
        """A facility of `kind` in each beneficiary's area (global facility index)."""
        return self.world.fac_pools[kind].draw(self.pop.area[bene], self.rng) + self.fac_offset[kind]

    def hospital(self, bene: np.ndarray) -> np.ndarray:
        return self.pop.hospital[bene] + self.fac_offset["hospital"]

    def clinician(self, pool: str, bene: np.ndarray) -> np.ndarray:
        return self.world.pools[pool].draw(self.pop.area[bene], self.rng)

    def uniform(self, lo: float, hi: float, n: int) -> np.ndarray:
        return lo + self.rng.random(n) * (hi - lo)


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-parent counts: the parent of each child and the child's rank 0..count-1."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return parent, np.arange(len(parent)) - first[parent]


def claim_dx(pop: Population, bene: np.ndarray, principal: np.ndarray) -> np.ndarray:
    """(n, 4) diagnoses: the principal, then the beneficiary's chronic conditions other than it."""
    rest = pop.comorb[bene, :3].copy()
    rest[rest == principal[:, None]] = NA
    return np.column_stack([principal, rest]).astype(np.int32)


def choose_idx(rng: np.random.Generator, choices: tuple[str, ...], weights, n: int, vocab: codes.Vocab) -> np.ndarray:
    idx = np.asarray(vocab.many(choices))
    w = np.ones(len(choices)) if weights is None else np.asarray(weights, dtype=float)
    return idx[rng.choice(len(choices), size=n, p=w / w.sum())]


def office_visits(ctx: Ctx, bene, day, clin, principal, new_patient, telehealth_share: float,
                  extra: list[LineSpec] | None = None, em_weights=(0.07, 0.38, 0.43, 0.12), **claim) -> Batch:
    """Office / outpatient E/M claims (POS 11, some 22, some telehealth 02/10 with modifier 95)."""
    rng = ctx.rng
    n = len(bene)
    est = choose_idx(rng, codes.EM_ESTABLISHED, em_weights, n, codes.HCPCS)
    new = choose_idx(rng, codes.EM_NEW, (0.3, 0.5, 0.2), n, codes.HCPCS)
    em = np.where(new_patient, new, est)
    u = rng.random(n)
    tele = u < telehealth_share
    pos = np.where(tele, TELE[rng.integers(0, 2, n)], np.where(u > 0.95, POS22, POS11))
    mod = np.where(tele & (rng.random(n) < 0.5), codes.MOD.idx("95"), NA)
    specs = [LineSpec(hcpcs_idx=em, mod1=mod),
             LineSpec(p=0.3 * ~new_patient, hcpcs=("G2211",))]
    for spec in extra or []:
        if isinstance(spec.p, np.ndarray) and spec.p.dtype == bool:
            spec.p = spec.p & ~tele
        else:
            spec.p = np.asarray(spec.p) * ~tele
        specs.append(spec)
    return make_batch(rng, n, claim_dx(ctx.pop, bene, principal), specs, bene=bene, ctype=CT["carrier"],
                      cfrom=day, clin=clin, pos=pos, **claim)


def ed_visit(ctx: Ctx, bene, day, principal, level_w=(0.05, 0.3, 0.4, 0.25), imaging=("71046",),
             **claim) -> list[Batch]:
    """An ED visit: the hospital's outpatient claim (revenue 0450 + ancillaries) and the ED physician's claim."""
    rng, n = ctx.rng, len(bene)
    levels = ("99282", "99283", "99284", "99285")
    pick = rng.choice(4, size=n, p=np.asarray(level_w) / np.sum(level_w))
    table = ctx.params.facility["ed_facility"]
    lo = np.array([table[c][0] for c in levels])[pick]
    hi = np.array([table[c][1] for c in levels])[pick]
    level_idx = np.asarray(codes.HCPCS.many(levels))[pick]
    fp = ctx.params.facility
    dx = claim_dx(ctx.pop, bene, principal)
    facility = make_batch(rng, n, dx, [
        LineSpec(rev="0450", hcpcs_idx=level_idx, price=lo + rng.random(n) * (hi - lo), dx=False),
        LineSpec(rev="0300", hcpcs=("80053",), price=tuple(fp["op_lab_line"]), dx=False),
        LineSpec(p=0.6, rev="0300", hcpcs=("85025",), price=tuple(fp["op_lab_line"]), dx=False),
        LineSpec(p=0.7, rev="0324", hcpcs=imaging, price=tuple(fp["op_imaging_line"]), dx=False),
        LineSpec(p=0.6, rev="0730", price=tuple(fp["op_ecg_line"]), dx=False),
    ], bene=bene, ctype=CT["outpatient"], cfrom=day, tob=codes.TOB.idx("131"), fac=ctx.hospital(bene), **claim)
    prof = make_batch(rng, n, dx, [LineSpec(hcpcs_idx=level_idx)], bene=bene, ctype=CT["carrier"], cfrom=day,
                      clin=ctx.clinician("ed", bene), pos=POS23, **claim)
    return [facility, prof]


IP_LINES = (("0120", 1.0, 0.45), ("0250", 1.0, 0.15), ("0300", 1.0, 0.10), ("0320", 0.8, 0.05),
            ("0480", 0.4, 0.05), ("0730", 0.9, 0.03), ("0270", 0.7, 0.07), ("0410", 0.3, 0.05))


def inpatient_stay(ctx: Ctx, bene, adm, los, drg_idx, price, principal, via_ed, consult_clin=None,
                   extra_lines: list[LineSpec] | None = None, **claim) -> list[Batch]:
    """An IPPS stay (revenue lines sharing the DRG amount), the hospitalist's daily visits, ED physician."""
    rng, n = ctx.rng, len(bene)
    dis = adm + los
    dx = claim_dx(ctx.pop, bene, principal)
    specs = [LineSpec(p=p, rev=rev, price=price * share / np.maximum(1.0, los if rev == "0120" else 1.0),
                      units=los.astype(float) if rev == "0120" else 1.0, span=True, dx=False)
             for rev, p, share in IP_LINES]
    specs.append(LineSpec(p=via_ed, rev="0450", price=price * 0.05, span=True, dx=False))
    specs.extend(extra_lines or [])
    out = [make_batch(rng, n, dx, specs, bene=bene, ctype=CT["inpatient"], cfrom=adm, cthru=dis, adm=adm,
                      dis=dis, drg=drg_idx, tob=codes.TOB.idx("111"), fac=ctx.hospital(bene), **claim)]
    visits = [LineSpec(hcpcs=("99223",)),
              LineSpec(p=los >= 2, hcpcs=("99232", "99233"), hw=(0.6, 0.4), offset=1),
              LineSpec(p=los >= 3, hcpcs=("99232", "99233"), hw=(0.7, 0.3), offset=2),
              LineSpec(p=los >= 5, hcpcs=("99232",), offset=np.maximum(los - 1, 0)),
              LineSpec(hcpcs=("99238", "99239"), hw=(0.4, 0.6), offset=los)]
    out.append(make_batch(rng, n, dx, visits, bene=bene, ctype=CT["carrier"], cfrom=adm, cthru=dis,
                          clin=ctx.clinician("hospitalist", bene), pos=POS21, **claim))
    if consult_clin is not None:
        keep = consult_clin >= 0
        k = np.flatnonzero(keep)
        out.append(make_batch(rng, len(k), dx[k], [LineSpec(hcpcs=("99223", "99233"), hw=(0.5, 0.5))],
                              bene=bene[k], ctype=CT["carrier"], cfrom=np.minimum(adm[k] + 1, dis[k]),
                              clin=consult_clin[k], pos=POS21, **_subset(claim, k)))
    e = np.flatnonzero(via_ed)
    out.append(make_batch(rng, len(e), dx[e], [LineSpec(hcpcs=("99284", "99285"), hw=(0.4, 0.6))],
                          bene=bene[e], ctype=CT["carrier"], cfrom=adm[e], clin=ctx.clinician("ed", bene[e]),
                          pos=POS23, **_subset(claim, e)))
    return out


def post_acute(ctx: Ctx, bene, discharge, principal, snf_los: tuple[int, int], snf_share: float,
               **claim) -> list[Batch]:
    """SNF stay from the discharge day, or a 30-day home-health period starting within a week."""
    rng, n = ctx.rng, len(bene)
    fp = ctx.params.facility
    snf = rng.random(n) < snf_share
    dx = claim_dx(ctx.pop, bene, principal)
    s = np.flatnonzero(snf)
    los = rng.integers(snf_los[0], snf_los[1] + 1, len(s))
    per_diem = ctx.uniform(*fp["snf_per_diem"], len(s))
    cs = _subset(claim, s)
    snf_batch = make_batch(rng, len(s), dx[s], [
        LineSpec(rev="0022", units=los.astype(float), price=per_diem * 0.7, span=True, dx=False),
        LineSpec(rev="0250", price=per_diem * los * 0.1, span=True, dx=False),
        LineSpec(rev="0420", units=np.ceil(los / 2), price=per_diem * 0.25, span=True, dx=False),
        LineSpec(p=0.7, rev="0430", units=np.ceil(los / 3), price=per_diem * 0.2, span=True, dx=False),
    ], bene=bene[s], ctype=CT["snf"], cfrom=discharge[s], cthru=discharge[s] + los, adm=discharge[s],
        dis=discharge[s] + los, tob=codes.TOB.idx("211"), fac=ctx.facility("snf", bene[s]), **cs)
    h = np.flatnonzero(~snf)
    start = discharge[h] + rng.integers(1, 8, len(h))
    ch = _subset(claim, h)
    hh_batch = make_batch(rng, len(h), dx[h], [
        LineSpec(rev="0023", price=tuple(fp["hh_period"]), span=True, dx=False),
        LineSpec(rev="0551", hcpcs=("G0299",), units=(4, 10), price=0.0, span=True, dx=False),
        LineSpec(p=0.8, rev="0421", hcpcs=("G0151",), units=(2, 8), price=0.0, span=True, dx=False),
    ], bene=bene[h], ctype=CT["home_health"], cfrom=start, cthru=start + 29, tob=codes.TOB.idx("329"),
        fac=ctx.facility("hha", bene[h]), **ch)
    return [snf_batch, hh_batch]


def _subset(claim: dict, idx: np.ndarray) -> dict:
    return {k: (v[idx] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in claim.items()}


# ---------------------------------------------------------------- Part D fills
FILL_FIELDS = ("bene", "fill", "ndc", "days", "qty", "clin", "cost", "cy", "cohort")
DRUG_PRICE = np.array([d[2] for d in codes.DRUGS])
DRUG_UNITS = np.array([d[3] for d in codes.DRUGS])
DRUGS_BY_CLASS = {cls: np.array([i for i, d in enumerate(codes.DRUGS) if codes.NDC_CLASS[d[0]] == cls])
                  for cls in codes.NDC_CLASS.values()}


def make_fills(ctx: Ctx, bene, first_fill, drug, days, n_fills, spacing, clin, cy=NA, cohort="none") -> dict:
    """Repeated fills: n_fills per course, every `spacing` days from `first_fill` (all arrays per course)."""
    parent, j = expand(n_fills)
    k = len(parent)
    fill = first_fill[parent] + np.rint(j * spacing[parent]).astype(np.int64)
    ds = days[parent]
    d = drug[parent]
    cost = DRUG_PRICE[d] * ds / 30.0 * ctx.uniform(0.9, 1.1, k) + ctx.params.payment["dispensing_fee"]
    return {
        "bene": bene[parent], "fill": fill, "ndc": d, "days": ds, "qty": np.rint(DRUG_UNITS[d] * ds * 2) / 2,
        "clin": clin[parent], "cost": cost, "cy": np.broadcast_to(np.asarray(cy), (len(bene),))[parent],
        "cohort": np.full(k, COHORT[cohort], np.int8),
    }


def pick_drug(rng: np.random.Generator, cls: str, n: int) -> np.ndarray:
    members = DRUGS_BY_CLASS[cls]
    return members[rng.integers(0, len(members), n)]


def concat_fills(parts: list[dict]) -> dict:
    parts = [p for p in parts if len(p["bene"])]
    if not parts:
        return {f: np.zeros(0, dtype=np.int64 if f not in ("cost", "qty") else float) for f in FILL_FIELDS}
    return {f: np.concatenate([p[f] for p in parts]) for f in FILL_FIELDS}

"""Care unrelated to HF and LBP, for every fee-for-service beneficiary-year.

Primary-care visits for the beneficiary's chronic conditions, annual wellness visits, flu shots, lab panels,
visits to other specialists, imaging, treat-and-release ED visits, hospital clinic visits, admissions for
other DRGs with post-acute care, hospice at the end of life, and Part D fills for chronic conditions.
None of it carries an HF or LBP diagnosis or drug, so it is never assigned to an episode; it makes the
condition spend a minority of the total, as it is in Medicare.
"""

from __future__ import annotations

import numpy as np

from openasm.synth import codes
from openasm.synth.batch import NA, Batch, LineSpec, make_batch
from openasm.synth.care_hf import _w
from openasm.synth.services import (
    CT,
    POS11,
    POS22,
    POS81,
    Ctx,
    choose_idx,
    claim_dx,
    ed_visit,
    expand,
    inpatient_stay,
    make_fills,
    office_visits,
    pick_drug,
    post_acute,
)

SPECIALTY_PROCEDURE = {"18": ("92014", 0.3), "07": ("17000", 0.4), "48": ("11721", 0.6), "10": ("45378", 0.08),
                       "34": ("52000", 0.08)}


def _principal(ctx: Ctx, bene: np.ndarray, acute_share: float, acute_codes: tuple[str, ...]) -> np.ndarray:
    """A chronic condition of the beneficiary, or an acute / wellness diagnosis."""
    rng = ctx.rng
    com = ctx.pop.comorb[bene]
    n_com = (com >= 0).sum(axis=1)
    pick = com[np.arange(len(bene)), (rng.random(len(bene)) * np.maximum(n_com, 1)).astype(np.int64)]
    acute = choose_idx(rng, acute_codes, None, len(bene), codes.DX)
    return np.where((n_com == 0) | (rng.random(len(bene)) < acute_share), acute, pick).astype(np.int32)


def _events(ctx: Ctx, by_bene: np.ndarray, by_year: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events per beneficiary-year on uniform days of the year: (bene, day)."""
    counts = ctx.rng.poisson(mean)
    parent, _ = expand(counts)
    y = by_year[parent]
    lo, hi = ctx.cal.year_start[y], ctx.cal.year_start[y + 1]
    return by_bene[parent], lo + (ctx.rng.random(len(parent)) * (hi - lo)).astype(np.int64)


def other_care(ctx: Ctx) -> tuple[list[Batch], list[dict]]:
    rng, pop, cal = ctx.rng, ctx.pop, ctx.cal
    cfg = ctx.params.unrelated
    ffs_year = pop.ffs_a.reshape(pop.n, cal.n_years, 12).any(axis=2)
    by_bene, by_year = np.nonzero(ffs_year)
    frail = pop.frailty[by_bene]
    out: list[Batch] = []

    b, d = _events(ctx, by_bene, by_year, cfg["pcp_visits"] * frail)
    own = rng.random(len(b)) < cfg["own_pcp_share"]
    clin = np.where(own, pop.pcp[b], ctx.clinician("pcp", b))
    out.append(office_visits(ctx, b, d, clin, _principal(ctx, b, 0.25, codes.ACUTE_OFFICE_DX),
                             np.zeros(len(b), bool), cfg["telehealth_share"], em_weights=(0.08, 0.45, 0.40, 0.07)))

    awv = rng.random(len(by_bene)) < cfg["awv_share"]
    b = by_bene[awv]
    y = by_year[awv]
    d = cal.year_start[y] + rng.integers(0, 365, len(b))
    wellness = choose_idx(rng, codes.WELLNESS_DX, (0.7, 0.3), len(b), codes.DX)
    out.append(make_batch(rng, len(b), claim_dx(pop, b, wellness), [LineSpec(hcpcs=("G0439",))],
                          bene=b, ctype=CT["carrier"], cfrom=d, clin=pop.pcp[b], pos=POS11))
    flu = rng.random(len(by_bene)) < cfg["flu_share"]
    b = by_bene[flu]
    d = cal.year_start[by_year[flu]] + rng.integers(257, 365, len(b))
    out.append(make_batch(rng, len(b), np.full((len(b), 1), codes.DX.idx("Z23")),
                          [LineSpec(hcpcs=("90662",)), LineSpec(hcpcs=("G0008",))],
                          bene=b, ctype=CT["carrier"], cfrom=d, clin=pop.pcp[b], pos=POS11))

    b, d = _events(ctx, by_bene, by_year, cfg["lab_draws"] * frail)
    out.append(make_batch(rng, len(b), claim_dx(pop, b, _principal(ctx, b, 0.2, codes.WELLNESS_DX)), [
        LineSpec(hcpcs=("80053", "80048"), hw=(0.7, 0.3)),
        LineSpec(p=0.6, hcpcs=("85025",)), LineSpec(p=0.35, hcpcs=("80061",)), LineSpec(p=0.2, hcpcs=("83036",)),
        LineSpec(p=0.2, hcpcs=("84443",)), LineSpec(p=0.15, hcpcs=("81001",)), LineSpec(p=0.9, hcpcs=("36415",)),
    ], bene=b, ctype=CT["carrier"], cfrom=d, clin=ctx.clinician("lab", b), pos=POS81))

    b, d = _events(ctx, by_bene, by_year, cfg["specialist_visits"] * frail)
    spec = rng.choice(len(codes.OTHER_SPECIALTIES), len(b), p=_w(codes.OTHER_SPECIALTY_WEIGHTS))
    for s, code in enumerate(codes.OTHER_SPECIALTIES):
        sel = np.flatnonzero(spec == s)
        sb = b[sel]
        principal = choose_idx(rng, codes.SPECIALTY_DX[code], None, len(sel), codes.DX)
        extra = []
        if code in SPECIALTY_PROCEDURE:
            proc, p = SPECIALTY_PROCEDURE[code]
            extra = [LineSpec(p=np.full(len(sel), p), hcpcs=(proc,), mod1="25")]
        out.append(office_visits(ctx, sb, d[sel], ctx.clinician(f"other:{code}", sb), principal,
                                 np.zeros(len(sel), bool), cfg["telehealth_share"], extra=extra))

    b, d = _events(ctx, by_bene, by_year, cfg["imaging"] * frail)
    code = choose_idx(rng, ("71046", "77067", "77080", "74177", "70450", "76700"), (35, 20, 10, 15, 10, 10), len(b),
                      codes.HCPCS)
    hospital_read = rng.random(len(b)) < 0.3
    out.append(make_batch(rng, len(b), claim_dx(pop, b, _principal(ctx, b, 0.4, codes.ED_DX)), [
        LineSpec(hcpcs_idx=code, mod1=np.where(hospital_read, codes.MOD.idx("26"), NA))],
        bene=b, ctype=CT["carrier"], cfrom=d, clin=ctx.clinician("radiology", b),
        pos=np.where(hospital_read, POS22, POS11)))

    b, d = _events(ctx, by_bene, by_year, cfg["ed_visits"] * frail)
    out += ed_visit(ctx, b, d, choose_idx(rng, codes.ED_DX, None, len(b), codes.DX))

    b, d = _events(ctx, by_bene, by_year, cfg["clinic_visits"] * frail)
    fp = ctx.params.facility
    out.append(make_batch(rng, len(b), claim_dx(pop, b, _principal(ctx, b, 0.2, codes.ACUTE_OFFICE_DX)), [
        LineSpec(rev="0510", hcpcs=("G0463",), dx=False),
        LineSpec(p=0.4, rev="0300", hcpcs=("80053",), price=tuple(fp["op_lab_line"]), dx=False),
        LineSpec(p=0.2, rev="0320", hcpcs=("71046",), price=tuple(fp["op_imaging_line"]), dx=False),
    ], bene=b, ctype=CT["outpatient"], cfrom=d, tob=codes.TOB.idx("131"), fac=ctx.hospital(b)))

    out += _admissions(ctx, by_bene, by_year, frail, cfg)
    out.append(_hospice(ctx))
    out.append(_dialysis(ctx))
    out.append(_infusions(ctx, by_bene, by_year, cfg))
    return out, [_chronic_fills(ctx, by_bene, by_year, cfg)]


def _admissions(ctx: Ctx, by_bene, by_year, frail, cfg) -> list[Batch]:
    rng = ctx.rng
    b, d = _events(ctx, by_bene, by_year, cfg["admissions"] * frail)
    drgs = codes.OTHER_DRGS
    pick = rng.choice(len(drgs), len(b), p=_w([x[2] for x in drgs]))
    lo = np.array([x[3] for x in drgs])[pick]
    hi = np.array([x[4] for x in drgs])[pick]
    los_mean = np.array([x[5] for x in drgs])[pick]
    los = np.clip(rng.poisson(los_mean - 1) + 1, 1, 20)
    principal = np.asarray(codes.DX.many([x[1] for x in drgs]))[pick]
    drg = np.asarray(codes.DRG.many([x[0] for x in drgs]))[pick]
    via_ed = rng.random(len(b)) < 0.7
    out = inpatient_stay(ctx, b, d, los, drg, lo + rng.random(len(b)) * (hi - lo), principal, via_ed)
    pa_ = np.flatnonzero(rng.random(len(b)) < cfg["post_acute_share"])
    out += post_acute(ctx, b[pa_], (d + los)[pa_], principal[pa_], (10, 30), 0.6)
    return out


def _hospice(ctx: Ctx) -> Batch:
    """Monthly hospice claims (routine home care per diem) from election to death."""
    pop, cal, rng = ctx.pop, ctx.cal, ctx.rng
    bene, month = np.nonzero(pop.hospice)
    start = np.maximum(cal.month_start[month], pop.hospice_from[bene])
    end = np.minimum(cal.month_start[month + 1] - 1, pop.death[bene])
    keep = end >= start
    bene, start, end = bene[keep], start[keep], end[keep]
    days = (end - start + 1).astype(float)
    principal = np.where(pop.comorb[bene, 0] >= 0, pop.comorb[bene, 0], codes.DX.idx("D649")).astype(np.int32)
    return make_batch(rng, len(bene), claim_dx(pop, bene, principal), [
        LineSpec(rev="0651", hcpcs=("Q5001",), units=days, price=tuple(ctx.params.facility["hospice_per_diem"]),
                 span=True, dx=False)],
        bene=bene, ctype=CT["hospice"], cfrom=start, cthru=end, tob=codes.TOB.idx("811"),
        fac=ctx.facility("hospice", bene))


def _dialysis(ctx: Ctx) -> Batch:
    """Monthly ESRD facility claims (type of bill 72x) for beneficiaries with ESRD, in FFS Part A months."""
    pop, cal, rng = ctx.pop, ctx.cal, ctx.rng
    bene, month = np.nonzero(pop.ffs_a & pop.esrd[:, None])
    start = cal.month_start[month]
    end = np.minimum(cal.month_start[month + 1] - 1, pop.death[bene])
    keep = end >= start
    bene, start, end = bene[keep], start[keep], end[keep]
    treatments = np.maximum(1, np.rint((end - start + 1) * 13 / 30)).astype(float)
    principal = np.full(len(bene), codes.DX.idx("N186"), np.int32)
    return make_batch(rng, len(bene), claim_dx(pop, bene, principal), [
        LineSpec(rev="0821", hcpcs=("90999",), units=treatments,
                 price=tuple(ctx.params.facility["dialysis_per_treatment"]), span=True, dx=False)],
        bene=bene, ctype=CT["outpatient"], cfrom=start, cthru=end, tob=codes.TOB.idx("721"),
        fac=ctx.facility("dialysis", bene))


def _infusions(ctx: Ctx, by_bene, by_year, cfg) -> Batch:
    """Part B cancer drug infusions in the hospital outpatient department for some cancer patients."""
    rng, pop = ctx.rng, ctx.pop
    cancer = np.isin(pop.comorb, codes.DX.many(("C61", "C50911"))).any(axis=1)
    treated = cancer & (rng.random(pop.n) < cfg["infusion_share_of_cancer"])
    rows = np.flatnonzero(treated[by_bene])
    b, d = _events(ctx, by_bene[rows], by_year[rows], np.full(len(rows), float(cfg["infusions_per_year"])))
    fp = ctx.params.facility
    drug = choose_idx(rng, ("J9271", "J9299", "J9035"), (0.5, 0.3, 0.2), len(b), codes.HCPCS)
    principal = np.where(pop.comorb[b] == codes.DX.idx("C61"), codes.DX.idx("C61"), codes.DX.idx("C50911")).max(axis=1)
    return make_batch(rng, len(b), claim_dx(pop, b, principal.astype(np.int32)), [
        LineSpec(rev="0636", hcpcs_idx=drug, price=tuple(fp["infusion_drug"]), dx=False),
        LineSpec(rev="0335", hcpcs=("96413",), price=tuple(fp["infusion_admin"]), dx=False),
    ], bene=b, ctype=CT["outpatient"], cfrom=d, tob=codes.TOB.idx("131"), fac=ctx.hospital(b))


def _chronic_fills(ctx: Ctx, by_bene, by_year, cfg) -> dict:
    """Part D fills for the drug class of each chronic condition (Part D enrollees; kept on Part D months)."""
    rng, pop, cal = ctx.rng, ctx.pop, ctx.cal
    has_d = pop.ffs_d.reshape(pop.n, cal.n_years, 12).any(axis=2)[by_bene, by_year]
    by_bene, by_year = by_bene[has_d], by_year[has_d]
    com = pop.comorb[by_bene]
    dx_to_class = {codes.DX.idx(dx): cls for dx, cls in codes.COMORBIDITY_DRUG.items()}
    parts = []
    for dx_idx, cls in dx_to_class.items():
        rows = np.flatnonzero((com == dx_idx).any(axis=1))
        parts.append((rows, cls))
    rows = np.concatenate([r for r, _ in parts])
    drug = np.concatenate([pick_drug(rng, cls, len(r)) for r, cls in parts])
    days = np.where(rng.random(len(rows)) < cfg["ninety_day_share"], 90, 30)
    adherence = ctx.uniform(*cfg["adherence"], len(rows))
    n_fills = np.maximum(1, np.floor(365 * adherence / days)).astype(np.int64)
    first = cal.year_start[by_year[rows]] + rng.integers(0, 30, len(rows))
    b = by_bene[rows]
    return make_fills(ctx, b, first, drug, days, n_fills, days / adherence, pop.pcp[b])

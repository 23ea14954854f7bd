"""Low-back-pain care inside each care year (ebcm §10.2-10.3, §11.2 service detail).

The care year opens with an E/M visit by the managing TIN/NPI (the trigger) and a confirming visit 7-50
days later (inside the 60-day window), then 0-4 follow-ups. Conservative care adds physical therapy
(evaluation + 97110/97112/97140/97530, GP modifier), chiropractic manipulation (AT modifier), X-ray or MRI,
orthoses/TENS and short Part D courses; the interventional component adds epidural, transforaminal and
facet injections, radiofrequency ablation and EMG. A few patients have lumbar spine surgery (fusion
DRG 453-460 or laminectomy 63047), which is left out of the care-year cost: the measure excludes it.
"""

from __future__ import annotations

import numpy as np

from openasm.synth import codes
from openasm.synth.batch import NA, Batch, LineSpec, make_batch
from openasm.synth.care_hf import _cumsum_by, _range_count, _w
from openasm.synth.careyears import CareYears
from openasm.synth.practices import SPEC
from openasm.synth.services import (
    CT,
    POS11,
    POS12,
    POS21,
    POS22,
    Ctx,
    choose_idx,
    claim_dx,
    ed_visit,
    expand,
    inpatient_stay,
    make_fills,
    office_visits,
    pick_drug,
)

H = codes.HCPCS.idx
PROCEDURALISTS = ("09", "72", "05", "25")


def lbp_care(ctx: Ctx, cy: CareYears) -> tuple[list[Batch], list[dict]]:
    rng = ctx.rng
    cfg = ctx.params.service["lbp"]
    comp = cy.component
    out: list[Batch] = []

    # E/M: trigger at the start of the care year, confirming visit inside 60 days, follow-ups
    n_em = _range_count(ctx, cfg["em_visits"], cy.intensity, 2, 6)
    parent, j = expand(n_em)
    gap_lo, gap_hi = cfg["confirm_gap_days"]
    gaps = np.select([j == 0, j == 1], [np.zeros(len(j), np.int64), rng.integers(gap_lo, gap_hi + 1, len(j))],
                     rng.integers(30, 101, len(j)))
    day = cy.start[parent] + _cumsum_by(parent, gaps)
    out.append(office_visits(ctx, cy.bene[parent], day, cy.manager[parent], cy.dx[parent],
                             cy.first[parent] & (j == 0), cfg["telehealth_share"],
                             em_weights=(0.1, 0.5, 0.35, 0.05), cy=cy.id[parent], cohort=2, protect=True))

    sec = np.flatnonzero(cy.secondary >= 0)
    p2, j2 = expand(np.full(len(sec), 2))
    gaps2 = np.where(j2 == 0, rng.integers(20, 200, len(j2)), rng.integers(gap_lo, gap_hi + 1, len(j2)))
    out.append(office_visits(ctx, cy.bene[sec][p2], cy.start[sec][p2] + _cumsum_by(p2, gaps2), cy.secondary[sec][p2],
                             cy.dx[sec][p2], j2 == 0, cfg["telehealth_share"], em_weights=(0.1, 0.5, 0.35, 0.05),
                             cy=cy.id[sec][p2], cohort=2, protect=True))

    out.append(_physical_therapy(ctx, cy, cfg))
    out.append(_chiropractic(ctx, cy, cfg))

    # imaging: X-ray or MRI early in the care year, by radiology
    im = np.flatnonzero(rng.random(cy.n) < np.asarray(cfg["imaging_share"])[comp])
    mri = rng.random(len(im)) < np.asarray(cfg["mri_share_of_imaging"])[comp[im]]
    code = np.where(mri, choose_idx(rng, ("72148", "72158"), (0.8, 0.2), len(im), codes.HCPCS),
                    choose_idx(rng, ("72100", "72110"), (0.7, 0.3), len(im), codes.HCPCS))
    ib = cy.bene[im]
    out.append(make_batch(rng, len(im), claim_dx(ctx.pop, ib, cy.dx[im]), [LineSpec(hcpcs_idx=code)],
                          bene=ib, ctype=CT["carrier"], cfrom=cy.start[im] + rng.integers(0, 31, len(im)),
                          clin=ctx.clinician("radiology", ib), pos=POS11, cy=cy.id[im], cohort=2))

    out += _interventional(ctx, cy, cfg)

    ed = np.flatnonzero(rng.random(cy.n) < cfg["ed_share"])
    out += ed_visit(ctx, cy.bene[ed], cy.start[ed] + rng.integers(0, 60, len(ed)), cy.dx[ed],
                    level_w=(0.2, 0.5, 0.25, 0.05), imaging=("72100",), cy=cy.id[ed], cohort=2)

    dme = np.flatnonzero(rng.random(cy.n) < cfg["dme_share"])
    item = choose_idx(rng, ("L0637", "L0650", "L0625", "E0720"), (0.35, 0.25, 0.2, 0.2), len(dme), codes.HCPCS)
    db = cy.bene[dme]
    out.append(make_batch(rng, len(dme), claim_dx(ctx.pop, db, cy.dx[dme]), [
        LineSpec(hcpcs_idx=item, mod1=np.where(item == H("E0720"), codes.MOD.idx("NU"), NA))],
        bene=db, ctype=CT["dme"], cfrom=cy.start[dme] + rng.integers(0, 61, len(dme)),
        clin=ctx.clinician("dme", db), pos=POS12, cy=cy.id[dme], cohort=2))

    out += _spine_surgery(ctx, cy, cfg)
    return out, [_lbp_fills(ctx, cy, cfg)]


def _physical_therapy(ctx: Ctx, cy: CareYears, cfg: dict) -> Batch:
    rng = ctx.rng
    who = np.flatnonzero(rng.random(cy.n) < np.asarray(cfg["pt_share"])[cy.component])
    n_visits = _range_count(ctx, cfg["pt_visits"], cy.intensity[who], 4, 20)
    p, j = expand(n_visits)
    c = who[p]
    therapist = ctx.clinician("pt", cy.bene[who])[p]
    day = cy.start[c] + rng.integers(3, 31, len(who))[p] + np.rint(j * 3.5 + rng.random(len(j)) * 1.5).astype(np.int64)
    evaluation = choose_idx(rng, ("97161", "97162", "97163"), (0.4, 0.45, 0.15), len(j), codes.HCPCS)
    first = j == 0
    main = np.where(first, evaluation, H("97110"))
    units = np.where(first, 1.0, rng.integers(1, 4, len(j)).astype(float))
    gp = codes.MOD.idx("GP")
    return make_batch(rng, len(j), claim_dx(ctx.pop, cy.bene[c], cy.dx[c]), [
        LineSpec(hcpcs_idx=main, units=units, mod1=gp),
        LineSpec(p=np.where(first, 0.5, 0.0), hcpcs=("97110",), units=(1, 2), mod1=gp),
        LineSpec(p=np.where(first, 0.0, 0.5), hcpcs=("97140",), mod1=gp),
        LineSpec(p=np.where(first, 0.0, 0.4), hcpcs=("97530",), units=(1, 2), mod1=gp),
        LineSpec(p=np.where(first, 0.0, 0.3), hcpcs=("97112",), mod1=gp),
    ], bene=cy.bene[c], ctype=CT["carrier"], cfrom=day, clin=therapist, pos=POS11, cy=cy.id[c], cohort=2)


def _chiropractic(ctx: Ctx, cy: CareYears, cfg: dict) -> Batch:
    rng = ctx.rng
    who = np.flatnonzero(rng.random(cy.n) < cfg["chiro_share"])
    n_visits = _range_count(ctx, cfg["chiro_visits"], cy.intensity[who], 3, 24)
    p, j = expand(n_visits)
    c = who[p]
    gaps = np.where(j == 0, rng.integers(0, 21, len(j)), rng.integers(3, 8, len(j)))
    day = cy.start[c] + _cumsum_by(p, gaps)
    subluxation = choose_idx(rng, codes.CHIRO_DX, (0.8, 0.2), len(j), codes.DX)
    dx = np.column_stack([subluxation, cy.dx[c], ctx.pop.comorb[cy.bene[c], :2]]).astype(np.int32)
    return make_batch(rng, len(j), dx, [
        LineSpec(hcpcs=("98940", "98941", "98942"), hw=(0.6, 0.35, 0.05), mod1="AT")],
        bene=cy.bene[c], ctype=CT["carrier"], cfrom=day, clin=ctx.clinician("chiro", cy.bene[who])[p],
        pos=POS11, cy=cy.id[c], cohort=2)


def _interventional(ctx: Ctx, cy: CareYears, cfg: dict) -> list[Batch]:
    rng = ctx.rng
    who = np.flatnonzero(cy.component == 1)
    spec = ctx.world.row_specialty(cy.manager[who])
    own = np.isin(spec, SPEC.many(PROCEDURALISTS))
    doctor = np.where(own, cy.manager[who], ctx.clinician("pain_proc", cy.bene[who]))
    n_inj = _range_count(ctx, cfg["injections"], cy.intensity[who], 1, 6)
    p, j = expand(n_inj)
    c = who[p]
    day = cy.start[c] + 20 + _cumsum_by(p, rng.integers(14, 61, len(j)))
    kind = rng.choice(3, len(j), p=[0.45, 0.25, 0.30])  # epidural, transforaminal, facet
    main = np.select([kind == 0, kind == 1], [
        choose_idx(rng, ("62321", "62323"), (0.4, 0.6), len(j), codes.HCPCS), np.full(len(j), H("64483"))],
        np.full(len(j), H("64493")))
    side = choose_idx(rng, ("RT", "LT", "50"), (0.35, 0.35, 0.3), len(j), codes.MOD)
    mod = np.where(kind > 0, side, NA)
    u = rng.random(len(j))
    pos = np.where(u < 0.5, POS11, np.where(u < 0.85, codes.POS.idx("24"), POS22))
    dx = claim_dx(ctx.pop, cy.bene[c], cy.dx[c])
    out = [make_batch(rng, len(j), dx, [
        LineSpec(hcpcs_idx=main, mod1=mod, price=ctx.uniform(300, 900, len(j))),
        LineSpec(p=(kind == 1) & (rng.random(len(j)) < 0.3), hcpcs=("64484",), mod1=mod),
        LineSpec(p=(kind == 2) & (rng.random(len(j)) < 0.6), hcpcs=("64494",), mod1=mod),
        LineSpec(p=(kind == 2) & (rng.random(len(j)) < 0.2), hcpcs=("64495",), mod1=mod),
    ], bene=cy.bene[c], ctype=CT["carrier"], cfrom=day, clin=doctor[p], pos=pos, cy=cy.id[c], cohort=2)]

    last = np.zeros(cy.n, dtype=np.int64)
    np.maximum.at(last, c, day)
    rfa = who[rng.random(len(who)) < cfg["rfa_share"]]
    rdoc = doctor[np.searchsorted(who, rfa)]
    out.append(make_batch(rng, len(rfa), claim_dx(ctx.pop, cy.bene[rfa], cy.dx[rfa]), [
        LineSpec(hcpcs=("64635",)), LineSpec(p=0.7, hcpcs=("64636",))],
        bene=cy.bene[rfa], ctype=CT["carrier"], cfrom=last[rfa] + rng.integers(30, 91, len(rfa)), clin=rdoc,
        pos=POS11, cy=cy.id[rfa], cohort=2))

    emg = np.flatnonzero(rng.random(cy.n) < np.asarray(cfg["emg_share"])[cy.component])
    out.append(make_batch(rng, len(emg), claim_dx(ctx.pop, cy.bene[emg], cy.dx[emg]), [
        LineSpec(hcpcs=("95886",), units=2.0), LineSpec(hcpcs=("95910",))],
        bene=cy.bene[emg], ctype=CT["carrier"], cfrom=cy.start[emg] + rng.integers(10, 61, len(emg)),
        clin=ctx.clinician("emg", cy.bene[emg]), pos=POS11, cy=cy.id[emg], cohort=2))
    return out


def _spine_surgery(ctx: Ctx, cy: CareYears, cfg: dict) -> list[Batch]:
    """Fusion stays and outpatient laminectomies: LBP diagnoses, not part of the care-year cost."""
    rng = ctx.rng
    who = np.flatnonzero(rng.random(cy.n) < cfg["spine_surgery_share"])
    day = cy.start[who] + rng.integers(60, 301, len(who))
    fusion = rng.random(len(who)) < cfg["inpatient_fusion_share"]
    out: list[Batch] = []
    f = who[fusion]
    pick = rng.choice(len(codes.SPINE_DRGS), len(f), p=_w([d[1] for d in codes.SPINE_DRGS]))
    lo = np.array([d[2] for d in codes.SPINE_DRGS])[pick]
    hi = np.array([d[3] for d in codes.SPINE_DRGS])[pick]
    drg = np.asarray(codes.DRG.many([d[0] for d in codes.SPINE_DRGS]))[pick]
    los = rng.integers(2, 6, len(f))
    fb = cy.bene[f]
    tag = {"cohort": 2, "surgery": True}
    out += inpatient_stay(ctx, fb, day[fusion], los, drg, lo + rng.random(len(f)) * (hi - lo), cy.dx[f],
                          np.zeros(len(f), bool), **tag)
    surgeon = ctx.clinician("spine_surgeon", fb)
    out.append(make_batch(rng, len(f), claim_dx(ctx.pop, fb, cy.dx[f]), [
        LineSpec(hcpcs=("22612",)), LineSpec(p=0.3, hcpcs=("22614",)), LineSpec(p=0.9, hcpcs=("22840",))],
        bene=fb, ctype=CT["carrier"], cfrom=day[fusion], clin=surgeon, pos=POS21, **tag))
    o = who[~fusion]
    ob = cy.bene[o]
    dx = claim_dx(ctx.pop, ob, cy.dx[o])
    out.append(make_batch(rng, len(o), dx, [
        LineSpec(rev="0360", hcpcs=("63047",), price=tuple(ctx.params.facility["op_laminectomy"]), dx=False),
        LineSpec(rev="0370", price=(400.0, 700.0), dx=False)],
        bene=ob, ctype=CT["outpatient"], cfrom=day[~fusion], tob=codes.TOB.idx("131"), fac=ctx.hospital(ob), **tag))
    out.append(make_batch(rng, len(o), dx, [LineSpec(hcpcs=("63047",)), LineSpec(p=0.4, hcpcs=("63048",))],
                          bene=ob, ctype=CT["carrier"], cfrom=day[~fusion], clin=ctx.clinician("spine_surgeon", ob),
                          pos=POS22, **tag))
    return out


def _lbp_fills(ctx: Ctx, cy: CareYears, cfg: dict) -> dict:
    rng = ctx.rng
    takes = rng.random(cy.n) < cfg["part_d_share"]
    idx_parts, drug_parts, ds_parts, n_parts = [], [], [], []
    for cls, share in cfg["part_d_class_share"].items():
        idx = np.flatnonzero(takes & (rng.random(cy.n) < share))
        idx_parts.append(idx)
        drug_parts.append(pick_drug(rng, cls, len(idx)))
        ds_parts.append(rng.integers(7, 15, len(idx)) if cls == "opioid" else np.full(len(idx), 30))
        long_course = cls in ("gabapentinoid", "snri")
        n_parts.append(rng.integers(2, 7, len(idx)) if long_course else rng.integers(1, 4, len(idx)))
    idx = np.concatenate(idx_parts)
    days = np.concatenate(ds_parts).astype(np.int64)
    spacing = days + rng.integers(0, 11, len(idx))
    return make_fills(ctx, cy.bene[idx], cy.start[idx] + rng.integers(0, 11, len(idx)), np.concatenate(drug_parts),
                      days, np.concatenate(n_parts), spacing.astype(float), cy.manager[idx], cy=cy.id[idx],
                      cohort="lbp")

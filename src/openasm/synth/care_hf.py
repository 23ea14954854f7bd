"""Heart-failure care inside each care year (ebcm §10.3, §11.2 service detail).

Office E/M visits by the managing clinician's TIN/NPI with an HF diagnosis (4-8 a year, evenly spaced, so a
trigger and a confirming visit always fall within 180 days), ECG and echocardiogram lines, lab draws
(BNP, metabolic panel) by an independent lab, device checks for some, treat-and-release ED visits,
and in the stay component one or more DRG 291-293 admissions with the hospitalist's visits and SNF or home
health after some stays; Part D regimens of HF drugs.
"""

from __future__ import annotations

import numpy as np

from openasm.synth import codes
from openasm.synth.batch import Batch, LineSpec, make_batch
from openasm.synth.careyears import YEAR, CareYears
from openasm.synth.services import (
    CT,
    POS11,
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


def _range_count(ctx: Ctx, rng_pair, intensity, lo: int, hi: int) -> np.ndarray:
    raw = ctx.uniform(rng_pair[0], rng_pair[1] + 1, len(intensity)) * intensity
    return np.clip(np.floor(raw), lo, hi).astype(np.int64)


def hf_care(ctx: Ctx, cy: CareYears) -> tuple[list[Batch], list[dict]]:
    rng = ctx.rng
    cfg = ctx.params.service["hf"]
    batches: list[Batch] = []

    # office E/M visits by the manager, evenly spread over the care year
    n_em = _range_count(ctx, cfg["em_visits"], cy.intensity, 3, 12)
    parent, j = expand(n_em)
    offset = np.floor((j + 0.15 + 0.7 * rng.random(len(j))) * YEAR / n_em[parent]).astype(np.int64)
    first_visit = cy.first[parent] & (j == 0)
    offset = np.where(first_visit, 0, offset)
    day = cy.start[parent] + offset
    echo_visit = rng.integers(0, n_em)
    has_echo = rng.random(cy.n) < cfg["echo_share"]
    echo = has_echo[parent] & (j == echo_visit[parent])
    batches.append(office_visits(
        ctx, cy.bene[parent], day, cy.manager[parent], cy.dx[parent], first_visit, cfg["telehealth_share"],
        extra=[LineSpec(p=np.full(len(j), cfg["ecg_share"]), hcpcs=("93000",)),
               LineSpec(p=echo, hcpcs=("93306",))],
        cy=cy.id[parent], cohort=1, protect=True))

    # a second cardiology relationship in some care years (2-3 visits within 180 days)
    sec = np.flatnonzero(cy.secondary >= 0)
    if len(sec):
        n2 = rng.integers(2, 4, len(sec))
        p2, j2 = expand(n2)
        gaps = np.where(j2 == 0, rng.integers(0, 200, len(j2)), rng.integers(14, 150, len(j2)))
        day2 = cy.start[sec][p2] + _cumsum_by(p2, gaps)
        batches.append(office_visits(
            ctx, cy.bene[sec][p2], day2, cy.secondary[sec][p2], cy.dx[sec][p2], j2 == 0, cfg["telehealth_share"],
            cy=cy.id[sec][p2], cohort=1, protect=True))

    # lab draws on visit days, by an independent laboratory
    n_lab = _range_count(ctx, cfg["lab_draws"], cy.intensity, 1, 8)
    lp, _ = expand(n_lab)
    visit_first = np.cumsum(n_em) - n_em
    pick = visit_first[lp] + (rng.random(len(lp)) * n_em[lp]).astype(np.int64)
    lb = cy.bene[lp]
    batches.append(make_batch(rng, len(lp), claim_dx(ctx.pop, lb, cy.dx[lp]), [
        LineSpec(hcpcs=("80048", "80053"), hw=(0.4, 0.6)),
        LineSpec(p=cfg["bnp_share"], hcpcs=("83880",)),
        LineSpec(p=0.9, hcpcs=("36415",)),
    ], bene=lb, ctype=CT["carrier"], cfrom=day[pick], clin=ctx.clinician("lab", lb), pos=POS81,
        cy=cy.id[lp], cohort=1))

    # device follow-up (ICD/CRT) every quarter by electrophysiology
    dev = np.flatnonzero(rng.random(cy.n) < cfg["device_share"])
    dp, dj = expand(np.full(len(dev), 4))
    db = cy.bene[dev][dp]
    ep = ctx.clinician("ep", cy.bene[dev])[dp]
    batches.append(make_batch(rng, len(dp), claim_dx(ctx.pop, db, cy.dx[dev][dp]), [
        LineSpec(hcpcs=("93295",)), LineSpec(p=0.9, hcpcs=("93296",)),
    ], bene=db, ctype=CT["carrier"], cfrom=cy.start[dev][dp] + 91 * dj + rng.integers(0, 30, len(dp)),
        clin=ep, pos=POS11, cy=cy.id[dev][dp], cohort=1))

    # treat-and-release ED visits
    ed = np.flatnonzero(rng.random(cy.n) < np.asarray(cfg["ed_share"])[cy.component])
    acute = choose_idx(rng, codes.HF_ACUTE_DX, codes.HF_ACUTE_W, len(ed), codes.DX)
    batches += ed_visit(ctx, cy.bene[ed], cy.start[ed] + rng.integers(0, YEAR, len(ed)), acute,
                        cy=cy.id[ed], cohort=1)

    # HF stays (component 2): DRG 291-293, hospitalist visits, cardiology consult, post-acute care
    st = np.flatnonzero(cy.component == 1)
    n_stay = np.minimum(1 + rng.poisson(cfg["extra_stays_mean"], len(st)), 3)
    sp, _ = expand(n_stay)
    s_idx = st[sp]
    los = np.clip(1 + rng.geometric(1.0 / cfg["los_mean"], len(sp)), 1, 20)
    adm = cy.start[s_idx] + (rng.random(len(sp)) * np.maximum(YEAR - los - 1, 1)).astype(np.int64)
    drg_pick = rng.choice(len(codes.HF_DRGS), len(sp), p=_w([d[1] for d in codes.HF_DRGS]))
    lo = np.array([d[2] for d in codes.HF_DRGS])[drg_pick]
    hi = np.array([d[3] for d in codes.HF_DRGS])[drg_pick]
    drg = np.asarray(codes.DRG.many([d[0] for d in codes.HF_DRGS]))[drg_pick]
    acute = choose_idx(rng, codes.HF_ACUTE_DX, codes.HF_ACUTE_W, len(sp), codes.DX)
    via_ed = rng.random(len(sp)) < cfg["stay_via_ed_share"]
    consult = np.where(rng.random(len(sp)) < cfg["cardiology_consult_share"], cy.manager[s_idx], -1)
    sb = cy.bene[s_idx]
    batches += inpatient_stay(ctx, sb, adm, los, drg, lo + rng.random(len(sp)) * (hi - lo), acute, via_ed,
                              consult_clin=consult, cy=cy.id[s_idx], cohort=1)
    pa_ = np.flatnonzero(rng.random(len(sp)) < cfg["post_acute_share"])
    batches += post_acute(ctx, sb[pa_], (adm + los)[pa_], cy.dx[s_idx][pa_], tuple(cfg["snf_los"]),
                          cfg["snf_share_of_post_acute"], cy=cy.id[s_idx][pa_], cohort=1)
    return batches, [_hf_fills(ctx, cy, cfg)]


def _hf_fills(ctx: Ctx, cy: CareYears, cfg: dict) -> dict:
    """HF drug regimen per patient (fixed across the patient's care years), filled through the care year."""
    rng, pop = ctx.rng, ctx.pop
    classes = dict(cfg["part_d_class_share"])
    raas = cfg["raas_split"]
    regimen_u = rng.random((pop.n, len(classes) + 2))  # per patient, shared by the patient's care years
    courses = []
    for c, (cls, share) in enumerate(classes.items()):
        courses.append((np.flatnonzero(regimen_u[cy.bene, c] < share), cls))
    u_raas = regimen_u[cy.bene, len(classes)]
    has_raas = u_raas < cfg["raas_share"]
    which = regimen_u[cy.bene, len(classes) + 1]
    edges = np.cumsum([raas[k] for k in raas]) / sum(raas.values())
    for r, cls in enumerate(raas):
        lo_edge = 0.0 if r == 0 else edges[r - 1]
        courses.append((np.flatnonzero(has_raas & (which >= lo_edge) & (which < edges[r])), cls))
    idx = np.concatenate([c for c, _ in courses])
    drug = np.concatenate([pick_drug(rng, cls, len(c)) for c, cls in courses])
    days = np.where(rng.random(len(idx)) < cfg["ninety_day_share"], 90, 30)
    adherence = ctx.uniform(*cfg["adherence"], len(idx))
    n_fills = np.maximum(1, np.floor(YEAR * adherence / days)).astype(np.int64)
    first = cy.start[idx] + np.where(cy.first[idx], rng.integers(0, 3, len(idx)), rng.integers(0, 20, len(idx)))
    return make_fills(ctx, cy.bene[idx], first, drug, days, n_fills, days / adherence, cy.manager[idx],
                      cy=cy.id[idx], cohort="hf")


def _cumsum_by(parent: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of `values` within each parent (parents contiguous)."""
    total = np.cumsum(values)
    first = np.searchsorted(parent, parent, side="left")
    base = np.where(first > 0, total[np.maximum(first - 1, 0)], 0)
    return total - base


def _w(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v / v.sum()

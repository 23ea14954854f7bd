"""Arrow tables of one chunk, in exactly the canonical contract's columns and types, plus the truth table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from openasm.schema import CANONICAL_TABLES
from openasm.synth import codes
from openasm.synth.batch import NA
from openasm.synth.chunk import ChunkData
from openasm.synth.ids import digit_strings, mbi_ids, take_strings
from openasm.synth.params import SynthParams
from openasm.synth.population import DUAL_CODES, NO_DATE, RACE_CODES, SEXES, Calendar, Population
from openasm.synth.practices import World
from openasm.synth.services import expand

TRUTH_SCHEMA = pa.schema([
    ("bene_id", pa.string()), ("cohort", pa.string()), ("tin", pa.string()), ("npi", pa.string()),
    ("first_visit_date", pa.date32()), ("n_condition_visits", pa.int32()),
])
ADJUSTMENT_TYPES = pa.array(["original", "adjustment", "cancel"], pa.string())


def schema(name: str) -> pa.Schema:
    return CANONICAL_TABLES[name].ibis_schema().to_pyarrow()


def vocab(values) -> pa.Array:
    return pa.array(list(values), pa.string())


def dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    mask = (days == NA) | (days == NO_DATE)
    if null is not None:
        mask = mask | null
    return pa.array(np.where(mask, 0, days).astype(np.int32), type=pa.date32(), mask=mask if mask.any() else None)


def floats(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, type=pa.float64(), mask=null if null is not None and null.any() else None)


def claim_ids(prefix: bytes, chunk_index: int, rank: np.ndarray) -> pa.Array:
    return digit_strings(chunk_index * 10**8 + np.asarray(rank, dtype=np.int64), 13, prefix)


def beneficiary_ids(pop: Population, seed: int) -> pa.Array:
    return mbi_ids(pop.global_index, seed)


def beneficiary_table(pop: Population, cal: Calendar, world: World, bene_ids: pa.Array, params: SynthParams,
                      rng: np.random.Generator) -> pa.Table:
    areas = world.areas
    death = np.where(pop.death <= cal.d1, pop.death, NO_DATE)
    race_null = rng.random(pop.n) < params.messiness["null_share"]["race_code"]
    return pa.Table.from_arrays([
        bene_ids, dates(pop.birth), take_strings(vocab(SEXES), pop.sex), dates(death),
        take_strings(vocab("0123"), pop.orec), pa.array(pop.esrd, pa.bool_()),
        take_strings(vocab(areas.state_fips), pop.zip_row), take_strings(vocab(areas.county_fips), pop.zip_row),
        take_strings(vocab(areas.zip5), pop.zip_row),
        take_strings(vocab(RACE_CODES), np.where(race_null, NA, pop.race)),
    ], schema=schema("beneficiary"))


def enrollment_table(pop: Population, cal: Calendar, bene_ids: pa.Array) -> pa.Table:
    M = cal.n_months
    bene = np.repeat(np.arange(pop.n), M)
    month = np.tile(np.arange(M), pop.n)
    cov = pop.covered.ravel()
    return pa.Table.from_arrays([
        bene_ids.take(pa.array(bene)), vocab(cal.year_month_labels()).take(pa.array(month)),
        pa.array(cov), pa.array(pop.part_b.ravel()), pa.array(pop.part_d.ravel()), pa.array(pop.ma.ravel()),
        take_strings(vocab(DUAL_CODES), np.where(cov, pop.dual[bene], NA)),
        pa.array(cov & pop.esrd[bene]), pa.array(pop.hospice.ravel()), pa.array(pop.msp.ravel()),
    ], schema=schema("enrollment"))


def _version_lines(data: ChunkData) -> tuple[np.ndarray, np.ndarray]:
    """For every output line: its version and its line index in the batch."""
    lines = data.batch.lines
    n_claims = data.batch.n_claims
    count = np.bincount(lines["claim"], minlength=n_claims)
    first = np.cumsum(count) - count
    v = data.versions
    parent, j = expand(count[v.claim])
    return parent, first[v.claim[parent]] + j


def claim_tables(data: ChunkData, world: World, params: SynthParams, cal: Calendar, chunk_index: int,
                 bene_ids: pa.Array, rng: np.random.Generator) -> tuple[pa.Table, pa.Table, dict]:
    """claim_line and claim_diagnosis, plus per-line facts the messiness step needs."""
    pop, batch, v = data.pop, data.batch, data.versions
    c, ln = batch.claims, batch.lines
    nl = len(ln["claim"])
    # amounts of original lines
    bene_of_line = c["bene"][ln["claim"]]
    ctype_of_line = c["ctype"][ln["claim"]]
    pay = params.payment
    ratio = np.array([pay["paid_ratio"][t] for t in codes.CLAIM_TYPE.codes])
    std0 = np.round(ln["cost"], 2)
    allowed0 = np.round(ln["cost"] * world.geo_factor[pop.area[bene_of_line]], 2)
    paid0 = np.round(allowed0 * ratio[ctype_of_line], 2)
    null = params.messiness["null_share"]
    std_null = rng.random(nl) >= pay["standardized_present_share"]
    paid_null = rng.random(nl) < null["paid_amount"]
    carrier = ctype_of_line <= 1
    pos_null = carrier & (rng.random(nl) < null["place_of_service_code"])
    thru_null = rng.random(nl) < null["line_thru_date"]
    month = np.maximum(cal.month_of(c["cfrom"]), 0)
    msp = pop.msp[c["bene"], month]

    ver, line = _version_lines(data)
    claim = ln["claim"][line]
    f = v.factor[ver]
    ids = claim_ids(b"1", chunk_index, v.rank)
    orig = v.original[ver]
    line_number = (np.arange(len(line)) - np.searchsorted(ver, ver, side="left") + 1).astype(np.int32)
    vocab_hcpcs = vocab(codes.HCPCS.codes)
    vocab_mod = vocab(codes.MOD.codes)
    table = pa.Table.from_arrays([
        ids.take(pa.array(ver)), pa.array(line_number), bene_ids.take(pa.array(c["bene"][claim])),
        take_strings(vocab(codes.CLAIM_TYPE.codes), c["ctype"][claim]),
        dates(c["cfrom"][claim]), dates(c["cthru"][claim]), dates(ln["lfrom"][line]),
        dates(ln["lthru"][line], thru_null[line]), dates(c["adm"][claim]), dates(c["dis"][claim]),
        take_strings(ADJUSTMENT_TYPES, v.kind[ver]),
        take_strings(ids, np.where(orig >= 0, orig, NA)), dates(v.processed[ver]),
        take_strings(vocab_hcpcs, ln["hcpcs"][line]), take_strings(vocab_mod, ln["mod1"][line]),
        take_strings(vocab_mod, ln["mod2"][line]), pa.nulls(len(line), pa.string()), pa.nulls(len(line), pa.string()),
        pa.array(ln["units"][line], pa.float64()),
        take_strings(vocab(codes.POS.codes), np.where(pos_null[line], NA, ln["pos"][line])),
        take_strings(vocab(codes.REV.codes), ln["rev"][line]), take_strings(vocab(codes.DRG.codes), c["drg"][claim]),
        take_strings(vocab(codes.TOB.codes), c["tob"][claim]), take_strings(world.fac_ccn_all, c["fac"][claim]),
        take_strings(world.row_npi, ln["clin"][line]), take_strings(world.row_tin, ln["clin"][line]),
        take_strings(world.row_spec, ln["clin"][line]), take_strings(vocab(codes.DX.codes), ln["ldx"][line]),
        floats(np.round(allowed0[line] * f, 2)), floats(np.round(paid0[line] * f, 2), paid_null[line]),
        floats(np.round(std0[line] * f, 2), std_null[line]),
        take_strings(vocab(["A"]), np.where(msp[claim], 0, NA)),
    ], schema=schema("claim_line"))
    diagnosis = _diagnosis_table(data, ids, bene_ids, rng)
    meta = {"version": ver, "kind": v.kind[ver], "original": v.original[ver], "ctype": c["ctype"][claim]}
    return table, diagnosis, meta


def _diagnosis_table(data: ChunkData, ids: pa.Array, bene_ids: pa.Array, rng: np.random.Generator) -> pa.Table:
    v = data.versions
    dx = data.batch.dx[v.claim]
    valid = dx >= 0
    position = np.cumsum(valid, axis=1)
    ver, col = np.nonzero(valid)
    pos = position[ver, col].astype(np.int32)
    inpatient = data.batch.claims["ctype"][v.claim[ver]] == codes.CLAIM_TYPE.idx("inpatient")
    poa_draw = rng.choice(3, len(ver), p=[0.85, 0.1, 0.05])
    poa = np.where(inpatient, np.where(pos == 1, 0, poa_draw), NA)
    return pa.Table.from_arrays([
        ids.take(pa.array(ver)), bene_ids.take(pa.array(data.batch.claims["bene"][v.claim[ver]])), pa.array(pos),
        take_strings(vocab(codes.DX.codes), dx[ver, col]), take_strings(vocab(["Y", "N", "U"]), poa),
    ], schema=schema("claim_diagnosis"))


def pharmacy_table(data: ChunkData, world: World, params: SynthParams, chunk_index: int, bene_ids: pa.Array,
                   rng: np.random.Generator) -> pa.Table:
    fill, v = data.fills, data.fill_versions
    n = len(fill["bene"])
    gross0 = np.round(fill["cost"], 2)
    paid0 = np.round(gross0 * params.payment["part_d_paid_ratio"], 2)
    null = params.messiness["null_share"]
    paid_null = rng.random(n) < null["paid_amount"]
    days_null = rng.random(n) < null["days_supply"]
    ids = claim_ids(b"7", chunk_index, v.rank)
    i = v.claim
    f = v.factor
    gross = np.round(gross0[i] * f, 2)
    return pa.Table.from_arrays([
        ids, bene_ids.take(pa.array(fill["bene"][i])), dates(fill["fill"][i]),
        take_strings(vocab(codes.NDC.codes), fill["ndc"][i]),
        pa.array(fill["days"][i].astype(np.int32), pa.int32(), mask=days_null[i] if days_null.any() else None),
        pa.array(fill["qty"][i], pa.float64()), take_strings(world.row_npi, fill["clin"][i]),
        take_strings(ADJUSTMENT_TYPES, v.kind), take_strings(ids, np.where(v.original >= 0, v.original, NA)),
        floats(gross), floats(gross), floats(np.round(paid0[i] * f, 2), paid_null[i]),
    ], schema=schema("pharmacy_claim"))


def truth_table(data: ChunkData, world: World, params: SynthParams, bene_ids: pa.Array) -> pa.Table:
    """Planted relationships realized in the claims: >= 2 condition E/M visits within the confirm window."""
    c, ln = data.batch.claims, data.batch.lines
    visit = np.flatnonzero(c["protect"])
    if not len(visit):
        return TRUTH_SCHEMA.empty_table()
    first_line = np.searchsorted(ln["claim"], visit)
    bene, cohort, clin, day = c["bene"][visit], c["cohort"][visit], ln["clin"][first_line], c["cfrom"][visit]
    order = np.lexsort((day, clin, cohort, bene))
    bene, cohort, clin, day = bene[order], cohort[order], clin[order], day[order]
    new_group = np.r_[True, (bene[1:] != bene[:-1]) | (cohort[1:] != cohort[:-1]) | (clin[1:] != clin[:-1])]
    group = np.cumsum(new_group) - 1
    gap = np.r_[0, np.diff(day)]
    window = np.array([0, params.confirm_window["hf"], params.confirm_window["lbp"]])[cohort]
    pair = ~new_group & (gap >= max(1, params.confirm_min_gap)) & (gap <= window)
    n_groups = int(group[-1] + 1) if len(group) else 0
    has_pair = np.bincount(group, weights=pair, minlength=n_groups) > 0
    count = np.bincount(group, minlength=n_groups)
    head = np.flatnonzero(new_group)[has_pair]
    names = vocab(["", "hf", "lbp"])
    return pa.Table.from_arrays([
        bene_ids.take(pa.array(bene[head])), names.take(pa.array(cohort[head].astype(np.int32))),
        world.row_tin.take(pa.array(clin[head])), world.row_npi.take(pa.array(clin[head])), dates(day[head]),
        pa.array(count[has_pair].astype(np.int32)),
    ], schema=TRUTH_SCHEMA)

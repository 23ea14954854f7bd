"""The world's supply side, built once per world: areas, practices (TINs), clinicians (NPIs), facilities.

Clinician count is sized to the beneficiary count (`practices.benes_per_clinician`). Each clinician gets a
practice-style cost effect per cohort (lognormal, mean 1; it scales the whole care year of the patients the
clinician manages and, for the provider pools of `provider_style_pools`, the services the clinician bills)
and a panel weight; condition patients are drawn in proportion to a gamma panel weight with a small shape,
which concentrates them on fewer specialists so that, even in a 20k-beneficiary world, some cardiologists
and spine specialists reach 20 episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from openasm.synth import codes
from openasm.synth.geo import Areas, load_areas
from openasm.synth.ids import digit_strings, npi_values, tin_values
from openasm.synth.params import SynthParams
from openasm.synth.pools import Pool

SPECIALTY_CODES = tuple(dict.fromkeys(
    [s for mix in codes.PRACTICE_SPECIALTY_MIX.values() for s in mix if s != "XX"] + list(codes.OTHER_SPECIALTIES)
))
SPEC = codes.Vocab(SPECIALTY_CODES)
CONDITION_SPECS = ("06", "C7", "C3", "21", "D8", "20", "09", "72", "05", "14", "25", "13")
PCP_SPECS = ("01", "08", "11", "38")
APP_SPECS = ("50", "97")
FACILITY_KINDS = {"hospital": (1, 879), "snf": (5000, 6499), "hha": (7000, 8499), "hospice": (1500, 1799),
                  "dialysis": (2300, 2499)}


@dataclass
class World:
    """Everything shared by all beneficiary chunks."""

    areas: Areas
    area_ref: np.ndarray  # selected area -> reference area row
    area_weight: np.ndarray
    geo_factor: np.ndarray
    prac_type: np.ndarray
    prac_area: np.ndarray
    prac_zip: np.ndarray
    prac_tin: np.ndarray
    prac_rhc: np.ndarray
    person_npi: np.ndarray
    person_spec: np.ndarray
    person_effect: dict[str, np.ndarray]
    row_person: np.ndarray
    row_prac: np.ndarray
    pools: dict[str, Pool] = field(default_factory=dict)
    provider_effect: dict[str, np.ndarray] = field(default_factory=dict)  # cohort -> per row (provider pools)
    fac_area: dict[str, np.ndarray] = field(default_factory=dict)
    fac_ccn: dict[str, pa.Array] = field(default_factory=dict)
    fac_pools: dict[str, Pool] = field(default_factory=dict)
    fac_offset: dict[str, int] = field(default_factory=dict)
    fac_ccn_all: pa.Array | None = None
    row_npi: pa.Array | None = None
    row_tin: pa.Array | None = None
    row_spec: pa.Array | None = None

    @property
    def n_areas(self) -> int:
        return len(self.area_ref)

    def row_specialty(self, rows: np.ndarray) -> np.ndarray:
        return self.person_spec[self.row_person[rows]]


def _practice_sizes(rng: np.random.Generator, split: list[float], target: int) -> np.ndarray:
    """Practice sizes (solo / 2-15 / 16-200) drawn until they hold `target` clinicians; the last is trimmed."""
    k = max(target, 1)
    kind = rng.choice(3, size=k, p=np.asarray(split) / np.sum(split))
    small = 2 + np.minimum(rng.geometric(0.25, size=k) - 1, 13)
    large = np.rint(np.exp(rng.uniform(np.log(16), np.log(200), size=k))).astype(np.int64)
    sizes = np.where(kind == 0, 1, np.where(kind == 1, small, large))
    before = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    keep = before < target
    return np.minimum(sizes[keep], target - before[keep])


def build_world(benes: int, seed: int, params: SynthParams) -> World:
    """Areas, practices, clinicians, facilities and draw pools for a world of `benes` beneficiaries."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    pp = params.practices
    areas = load_areas()
    n_sel = int(np.clip(round(np.sqrt(benes) * pp["areas_per_sqrt_bene"]), 3, areas.n))
    keys = np.log(rng.random(areas.n)) / areas.weight  # weighted sampling without replacement
    area_ref = np.sort(np.argsort(-keys)[:n_sel])
    area_weight = areas.weight[area_ref] / areas.weight[area_ref].sum()
    geo_factor = np.exp(rng.normal(0.0, params.payment["geo_factor_sigma"], n_sel))

    n_clin = max(int(pp["min_clinicians"]), int(round(benes / pp["benes_per_clinician"])))
    prac_type, person_prac, person_spec = [], [], []
    n_prac = 0
    for t, ptype in enumerate(codes.PRACTICE_TYPES):
        target = max(1, int(round(pp["type_share"][ptype] * n_clin)))
        sizes = _practice_sizes(rng, pp["size_split"][ptype], target)
        mix = codes.PRACTICE_SPECIALTY_MIX[ptype]
        specs = list(mix)
        w = np.array([mix[s] for s in specs], dtype=float)
        drawn = rng.choice(len(specs), size=int(sizes.sum()), p=w / w.sum())
        owner = np.repeat(np.arange(n_prac, n_prac + len(sizes)), sizes)
        spec_idx = np.array([SPEC.idx(s) if s != "XX" else -1 for s in specs])[drawn]
        if ptype == "other":
            ow = np.asarray(codes.OTHER_SPECIALTY_WEIGHTS, dtype=float)
            own = np.array(SPEC.many(codes.OTHER_SPECIALTIES))[rng.choice(len(ow), size=len(sizes), p=ow / ow.sum())]
            spec_idx = np.where(spec_idx < 0, own[owner - n_prac], spec_idx)
        prac_type.append(np.full(len(sizes), t))
        person_prac.append(owner)
        person_spec.append(spec_idx)
        n_prac += len(sizes)
    prac_type_a = np.concatenate(prac_type)
    person_prac_a = np.concatenate(person_prac)
    person_spec_a = np.concatenate(person_spec)
    n_person = len(person_prac_a)

    prac_area = rng.choice(n_sel, size=n_prac, p=area_weight)
    ref = area_ref[prac_area]
    prac_zip = areas.zip_start[ref] + (rng.random(n_prac) * areas.zip_count[ref]).astype(np.int64)
    prac_tin = tin_values(np.arange(n_prac), rng.integers(0, 57, n_prac), seed)
    pcp_type = codes.PRACTICE_TYPES.index("primary_care")
    prac_rhc = (prac_type_a == pcp_type) & (rng.random(n_prac) < pp["rhc_fqhc_share"])
    person_npi = npi_values(np.arange(n_person), seed)

    # practice-style effects (mean 1) and condition-panel weights
    effect = {}
    for cohort, sigma in params.clinician_sigma.items():
        effect[cohort] = np.exp(rng.normal(-0.5 * sigma**2, sigma, n_person))
    attract = rng.gamma(pp["panel_concentration_shape"], 1.0, n_person)

    # second TIN for some clinicians: another practice of a clinical type in the same area
    clinical = np.isin(prac_type_a, [codes.PRACTICE_TYPES.index(t) for t in (
        "primary_care", "cardiology", "multispecialty", "ortho_spine", "pain", "emergency", "radiology")])
    eligible = clinical[person_prac_a]
    second = eligible & (rng.random(n_person) < pp["second_tin_share"])
    cprac = np.flatnonzero(clinical)
    prac_pool = Pool(cprac, prac_area[cprac], np.bincount(person_prac_a, minlength=n_prac)[cprac], n_sel)
    who = np.flatnonzero(second)
    other = prac_pool.draw(prac_area[person_prac_a[who]], rng)
    ok = other != person_prac_a[who]
    who, other = who[ok], other[ok]
    row_person = np.concatenate([np.arange(n_person), who])
    row_prac = np.concatenate([person_prac_a, other])
    share2 = pp["second_tin_patient_share"]
    row_share = np.concatenate([np.where(np.isin(np.arange(n_person), who), 1 - share2, 1.0),
                                np.full(len(who), share2)])

    world = World(
        areas=areas, area_ref=area_ref, area_weight=area_weight, geo_factor=geo_factor,
        prac_type=prac_type_a, prac_area=prac_area, prac_zip=prac_zip, prac_tin=prac_tin, prac_rhc=prac_rhc,
        person_npi=person_npi, person_spec=person_spec_a, person_effect=effect,
        row_person=row_person, row_prac=row_prac,
    )
    _build_pools(world, attract, row_share, rng)
    _normalize_effects(world, params)
    _build_facilities(world, benes, params, rng, seed)
    world.row_npi = digit_strings(person_npi[row_person], 10)
    world.row_tin = digit_strings(prac_tin[row_prac], 9)
    world.row_spec = pa.array(SPEC.codes, pa.string()).take(pa.array(person_spec_a[row_person].astype(np.int32)))
    return world


def _build_pools(world: World, attract: np.ndarray, row_share: np.ndarray, rng: np.random.Generator) -> None:
    rows = np.arange(len(world.row_person))
    spec = np.asarray(SPEC.codes, dtype=object)[world.person_spec[world.row_person]]
    ptype = np.asarray(codes.PRACTICE_TYPES, dtype=object)[world.prac_type[world.row_prac]]
    area = world.prac_area[world.row_prac]
    panel = attract[world.row_person] * row_share
    plain = rng.gamma(2.0, 0.5, len(world.row_person)) * row_share

    def pool(mask: np.ndarray, weight: np.ndarray) -> Pool:
        return Pool(rows[mask], area[mask], weight[mask], world.n_areas)

    for s in CONDITION_SPECS:
        world.pools[s] = pool(spec == s, panel)
    is_app = np.isin(spec, APP_SPECS)
    world.pools["hf_app"] = pool(is_app & (ptype == "cardiology"), panel)
    world.pools["lbp_app"] = pool(is_app & np.isin(ptype, ["ortho_spine", "pain"]), panel)
    world.pools["spine"] = pool(np.isin(spec, ["20", "09", "72", "25", "14", "05"]), panel)
    world.pools["pcp"] = pool(np.isin(spec, PCP_SPECS) | (is_app & (ptype == "primary_care")), plain)
    world.pools["hospitalist"] = pool(np.isin(spec, ["11", "01", "08"]) & (ptype == "multispecialty"), plain)
    world.pools["ed"] = pool((spec == "93") | (is_app & (ptype == "emergency")), plain)
    world.pools["lab"] = pool(spec == "69", plain)
    world.pools["dme"] = pool(np.isin(spec, ["54", "51"]), plain)
    world.pools["radiology"] = pool(spec == "30", plain)
    world.pools["pt"] = pool(spec == "65", plain)
    world.pools["chiro"] = pool(spec == "35", plain)
    world.pools["pain_proc"] = pool(np.isin(spec, ["09", "72", "05", "25"]), panel)
    world.pools["spine_surgeon"] = pool(np.isin(spec, ["14", "20"]), plain)
    world.pools["emg"] = pool(np.isin(spec, ["25", "13"]), plain)
    world.pools["ep"] = pool(spec == "21", plain)
    for s in codes.OTHER_SPECIALTIES:
        world.pools[f"other:{s}"] = pool(spec == s, plain)
    fallback = {"hf_app": "06", "lbp_app": "spine", "hospitalist": "pcp", "ep": "06", "emg": "spine",
                "pain_proc": "spine", "spine_surgeon": "spine", "D8": "06", "C7": "06", "C3": "06", "21": "06",
                "13": "spine", "14": "spine", "05": "spine", "72": "spine", "09": "spine", "25": "spine",
                "20": "spine"}
    for name, target in fallback.items():
        if world.pools[name].empty:
            world.pools[name] = world.pools[target]
    for name, p in world.pools.items():
        if p.empty:
            world.pools[name] = world.pools["pcp"]


def _normalize_effects(world: World, params: SynthParams) -> None:
    """Scale each cohort's practice-style effects so their expected patient-weighted mean is exactly 1.

    In a small world a handful of specialists carry most patients, so the raw draws (mean 1 over clinicians)
    would shift the world's mean cost; the normalization keeps the calibration target at any size.
    """
    for cohort, cfg in params.managers.items():
        expected = np.zeros(len(world.person_npi))
        for name, share in cfg["pools"].items():
            pool = world.pools["pcp" if name == "pcp" else {"app": f"{cohort}_app"}.get(name, name)]
            np.add.at(expected, world.row_person[pool.sorted_members], share * pool.expected_share(world.area_weight))
        effect = world.person_effect[cohort]
        world.person_effect[cohort] = effect * expected.sum() / (expected * effect).sum()
    _provider_effects(world, params)


def _provider_effects(world: World, params: SynthParams) -> None:
    """Per TIN-NPI row: the style effect on the condition services the row bills (1 outside provider pools).

    Provider pools (physical therapists, chiropractors) never manage a condition, so their effects are
    normalized on their own: expected patient-weighted mean exactly 1 per pool, as for managers. A pool that
    fell back to another pool in a tiny world (no such clinicians) gets no effect.
    """
    n_rows = len(world.row_person)
    for cohort in params.clinician_sigma:
        out = np.ones(n_rows)
        for name in params.provider_pools.get(cohort, []):
            pool = world.pools[name]
            if pool.empty or any(other is pool for key, other in world.pools.items() if key != name):
                continue
            rows = pool.sorted_members
            effect = world.person_effect[cohort][world.row_person[rows]]
            share = pool.expected_share(world.area_weight)
            out[rows] = effect * share.sum() / (share * effect).sum()
        world.provider_effect[cohort] = out


def _build_facilities(world: World, benes: int, params: SynthParams, rng: np.random.Generator, seed: int) -> None:
    pp = params.practices
    per = {"hospital": pp["benes_per_hospital"], "snf": pp["benes_per_snf"], "hha": pp["benes_per_hha"],
           "hospice": pp["benes_per_hospice"], "dialysis": pp["benes_per_dialysis_facility"]}
    areas = world.areas
    offset = 0
    for kind, (lo, hi) in FACILITY_KINDS.items():
        count = np.maximum(1, np.rint(benes * world.area_weight / per[kind]).astype(np.int64))
        fac_area = np.repeat(np.arange(world.n_areas), count)
        state = np.array([int(areas.ccn_state[areas.zip_start[world.area_ref[a]]]) for a in range(world.n_areas)])
        fstate = state[fac_area]
        order = np.argsort(fstate, kind="stable")
        rank = np.empty(len(fstate), dtype=np.int64)
        sorted_state = fstate[order]
        first = np.searchsorted(sorted_state, sorted_state, side="left")
        rank[order] = np.arange(len(fstate)) - first
        span = hi - lo + 1
        suffix = lo + (rank * 7919 + seed % span) % span
        world.fac_area[kind] = fac_area
        world.fac_ccn[kind] = digit_strings(fstate * 10_000 + suffix, 6)
        world.fac_pools[kind] = Pool(np.arange(len(fac_area)), fac_area, rng.gamma(2.0, 0.5, len(fac_area)),
                                     world.n_areas)
        world.fac_offset[kind] = offset
        offset += len(fac_area)
    world.fac_ccn_all = pa.concat_arrays([world.fac_ccn[k] for k in FACILITY_KINDS])

"""Columnar claims under construction: claim-level and line-level numpy arrays of vocabulary indices.

A generator makes `n` claims at once from a template: claim-level arrays plus a list of `LineSpec`s, each
adding at most one line per claim (included with a per-claim probability). Python loops run over specs
only, never over rows. Index -1 means null; `NO_DATE` (-1) marks a missing date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openasm.synth import codes

NA = -1
CLAIM_DEFAULTS: dict[str, tuple[Any, Any]] = {
    "bene": (np.int64, NA), "ctype": (np.int8, 0), "cfrom": (np.int64, NA), "cthru": (np.int64, NA),
    "adm": (np.int64, NA), "dis": (np.int64, NA), "drg": (np.int16, NA), "tob": (np.int8, NA),
    "fac": (np.int64, NA), "clin": (np.int64, NA), "pos": (np.int8, NA), "cy": (np.int64, NA),
    "cohort": (np.int8, 0), "protect": (np.bool_, False), "surgery": (np.bool_, False),
}
LINE_DEFAULTS: dict[str, tuple[Any, Any]] = {
    "claim": (np.int64, NA), "lfrom": (np.int64, NA), "lthru": (np.int64, NA), "hcpcs": (np.int16, NA),
    "mod1": (np.int8, NA), "mod2": (np.int8, NA), "units": (np.float64, 1.0), "pos": (np.int8, NA),
    "rev": (np.int16, NA), "clin": (np.int64, NA), "ldx": (np.int32, NA), "cost": (np.float64, 0.0),
}
N_DX = 4
COHORT = {"none": 0, "hf": 1, "lbp": 2}


@dataclass
class LineSpec:
    """One optional line per claim. Arrays (length n claims) or scalars for every field."""

    p: Any = 1.0                     # inclusion probability or boolean mask
    hcpcs: tuple[str, ...] | None = None
    hw: tuple[float, ...] | None = None  # weights of hcpcs choices
    hcpcs_idx: Any = None            # explicit per-claim hcpcs index (overrides hcpcs)
    rev: str | None = None
    units: Any = 1.0                 # scalar, (lo, hi) inclusive integer range, or array
    price: Any = None                # (lo, hi) per unit, array per claim, or None = HCPCS price table
    mod1: Any = None                 # modifier code, or per-claim index array
    mod2: Any = None
    clin: Any = None                 # per-claim clinician row (default: claim clin)
    offset: Any = 0                  # line date = claim from + offset (array or scalar)
    span: bool = False               # line dates = claim from..thru (institutional lines)
    dx: bool = True                  # line dx = claim's first diagnosis


class Batch:
    """Claims and their lines."""

    def __init__(self, claims: dict[str, np.ndarray], lines: dict[str, np.ndarray], dx: np.ndarray) -> None:
        self.claims, self.lines, self.dx = claims, lines, dx

    @property
    def n_claims(self) -> int:
        return len(self.claims["bene"])

    @staticmethod
    def empty() -> Batch:
        return Batch(_defaults(CLAIM_DEFAULTS, 0), _defaults(LINE_DEFAULTS, 0), np.full((0, N_DX), NA, np.int32))

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        batches = [b for b in batches if b.n_claims]
        if not batches:
            return Batch.empty()
        offsets = np.cumsum([0] + [b.n_claims for b in batches[:-1]])
        claims = {k: np.concatenate([b.claims[k] for b in batches]) for k in CLAIM_DEFAULTS}
        lines = {k: np.concatenate([b.lines[k] for b in batches]) for k in LINE_DEFAULTS if k != "claim"}
        lines["claim"] = np.concatenate([b.lines["claim"] + o for b, o in zip(batches, offsets, strict=True)])
        return Batch(claims, lines, np.concatenate([b.dx for b in batches]))

    def select(self, keep: np.ndarray) -> Batch:
        """Keep the claims where `keep` is true (and their lines), preserving order."""
        new_index = np.cumsum(keep) - 1
        line_keep = keep[self.lines["claim"]]
        claims = {k: v[keep] for k, v in self.claims.items()}
        lines = {k: v[line_keep] for k, v in self.lines.items()}
        lines["claim"] = new_index[lines["claim"]]
        return Batch(claims, lines, self.dx[keep])


def _defaults(spec: dict[str, tuple[Any, Any]], n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, default, dtype=dtype) for k, (dtype, default) in spec.items()}


def _arr(value: Any, n: int, dtype=None) -> np.ndarray:
    out = np.asarray(value)
    if out.ndim == 0:
        out = np.full(n, out)
    return out.astype(dtype) if dtype is not None else out


def _pick_codes(rng, choices: tuple[str, ...], weights, n: int, vocab: codes.Vocab) -> np.ndarray:
    idx = np.asarray(vocab.many(choices))
    if len(choices) == 1:
        return np.full(n, idx[0])
    w = np.ones(len(choices)) if weights is None else np.asarray(weights, dtype=float)
    return idx[rng.choice(len(choices), size=n, p=w / w.sum())]


def _price_table() -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([codes.HCPCS_PRICE[c][0] for c in codes.HCPCS.codes])
    hi = np.array([codes.HCPCS_PRICE[c][1] for c in codes.HCPCS.codes])
    return lo, hi


PRICE_LO, PRICE_HI = _price_table()


def make_batch(rng: np.random.Generator, n: int, dx: np.ndarray, specs: list[LineSpec], **claim: Any) -> Batch:
    """`n` claims with claim-level fields from `claim` (arrays or scalars) and lines from `specs`."""
    claims = _defaults(CLAIM_DEFAULTS, n)
    for key, value in claim.items():
        claims[key] = _arr(value, n, CLAIM_DEFAULTS[key][0])
    if "cthru" not in claim:
        claims["cthru"] = claims["cfrom"].copy()
    dx = np.asarray(dx, dtype=np.int32)
    dx = dx.reshape(n, -1) if dx.ndim != 2 else dx
    if dx.shape[1] < N_DX:
        dx = np.hstack([dx, np.full((n, N_DX - dx.shape[1]), NA, np.int32)])
    parts: list[dict[str, np.ndarray]] = []
    for order, spec in enumerate(specs):
        p = spec.p
        if isinstance(p, np.ndarray) and p.dtype == bool:
            take = np.flatnonzero(p)
        elif np.isscalar(p) and p >= 1.0:
            take = np.arange(n)
        else:
            take = np.flatnonzero(rng.random(n) < _arr(p, n))
        k = len(take)
        if k == 0:
            continue
        line = _defaults(LINE_DEFAULTS, k)
        line["claim"] = take
        if spec.hcpcs_idx is not None:
            line["hcpcs"] = _arr(spec.hcpcs_idx, n, np.int16)[take]
        elif spec.hcpcs is not None:
            line["hcpcs"] = _pick_codes(rng, spec.hcpcs, spec.hw, k, codes.HCPCS).astype(np.int16)
        if spec.rev is not None:
            line["rev"] = np.full(k, codes.REV.idx(spec.rev), np.int16)
        if isinstance(spec.units, tuple):
            units = rng.integers(spec.units[0], spec.units[1] + 1, k).astype(float)
        else:
            units = _arr(spec.units, n, float)[take]
        line["units"] = units
        if spec.price is None:
            h = line["hcpcs"].astype(np.int64)
            unit_price = PRICE_LO[h] + rng.random(k) * (PRICE_HI[h] - PRICE_LO[h])
        elif isinstance(spec.price, tuple):
            unit_price = spec.price[0] + rng.random(k) * (spec.price[1] - spec.price[0])
        else:
            unit_price = _arr(spec.price, n, float)[take]
        line["cost"] = unit_price * units
        for field_name in ("mod1", "mod2"):
            value = getattr(spec, field_name)
            if isinstance(value, str):
                line[field_name] = np.full(k, codes.MOD.idx(value), np.int8)
            elif value is not None:
                line[field_name] = _arr(value, n, np.int8)[take]
        line["clin"] = (claims["clin"] if spec.clin is None else _arr(spec.clin, n, np.int64))[take]
        line["pos"] = claims["pos"][take]
        if spec.span:
            line["lfrom"], line["lthru"] = claims["cfrom"][take], claims["cthru"][take]
        else:
            line["lfrom"] = claims["cfrom"][take] + _arr(spec.offset, n, np.int64)[take]
            line["lthru"] = line["lfrom"]
        if spec.dx:
            line["ldx"] = dx[take, 0]
        line["_order"] = np.full(k, order)
        parts.append(line)
    if not parts:
        return Batch(claims, _defaults(LINE_DEFAULTS, 0), dx)
    lines = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    sort = np.lexsort((lines.pop("_order"), lines["claim"]))
    lines = {key: v[sort] for key, v in lines.items()}
    return Batch(claims, lines, dx)

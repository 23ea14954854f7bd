"""Weighted draws of a clinician (or facility) from the patient's own area, falling back to the nation."""

from __future__ import annotations

import numpy as np


class Pool:
    """Members with weights, segmented by area; `draw` picks one member per patient in the patient's area.

    An area with no member falls back to the national segment (all members). Drawing is a single
    `searchsorted` over per-segment cumulative weights, so it is vectorized over patients.
    """

    def __init__(self, members: np.ndarray, area: np.ndarray, weight: np.ndarray, n_areas: int) -> None:
        members = np.asarray(members, dtype=np.int64)
        area = np.asarray(area, dtype=np.int64)
        weight = np.asarray(weight, dtype=np.float64)
        order = np.lexsort((members, area))
        sorted_members, sorted_area, sorted_weight = members[order], area[order], weight[order]
        self.size = len(members)
        self.n_areas = n_areas
        counts = np.bincount(sorted_area, minlength=n_areas)[:n_areas]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.sorted_members, self.sorted_area, self.sorted_weight = sorted_members, sorted_area, sorted_weight
        self.members = np.concatenate([sorted_members, sorted_members])
        w = np.concatenate([sorted_weight, sorted_weight]) + 1e-12
        self.cum = np.cumsum(w)
        self.seg_start = np.concatenate([starts, [self.size]])
        self.seg_len = np.concatenate([counts, [self.size]])
        end = self.seg_start + self.seg_len
        padded = np.concatenate([[0.0], self.cum])  # padded[i] = total weight before member i
        self.seg_base = padded[self.seg_start]
        self.seg_total = padded[end] - self.seg_base

    def expected_share(self, area_weight: np.ndarray) -> np.ndarray:
        """Probability that a patient (areas weighted by `area_weight`) draws each sorted member."""
        if self.size == 0:
            return np.zeros(0)
        local = self.seg_len[: self.n_areas] > 0
        w = self.sorted_weight + 1e-12
        share = np.where(local[self.sorted_area],
                         area_weight[self.sorted_area] * w / self.seg_total[self.sorted_area], 0.0)
        return share + area_weight[~local].sum() * w / self.seg_total[self.n_areas]

    @property
    def empty(self) -> bool:
        return self.size == 0

    def draw(self, area: np.ndarray, rng: np.random.Generator, national: bool = False) -> np.ndarray:
        """One member per entry of `area` (use national=True to ignore the area)."""
        area = np.asarray(area, dtype=np.int64)
        if self.size == 0:
            return np.full(len(area), -1, dtype=np.int64)
        seg = np.full(len(area), self.n_areas) if national else np.where(
            self.seg_len[area] > 0, area, self.n_areas)
        target = self.seg_base[seg] + rng.random(len(area)) * self.seg_total[seg]
        idx = np.searchsorted(self.cum, target, side="right")
        idx = np.clip(idx, self.seg_start[seg], self.seg_start[seg] + self.seg_len[seg] - 1)
        return self.members[idx]


def pick_one(rng: np.random.Generator, items: list | tuple):
    """One item drawn uniformly (a single integer draw, so seeded outputs stay byte-identical)."""
    return items[int(rng.integers(len(items)))]

"""What-if levers: the inputs of a practice's score and dollars that it can move, named as on the command line.

| lever | meaning | unit |
|---|---|---|
| `quality.<M>.rate` | performance rate of measure M (Q prefix optional) | fraction 0-1 |
| `quality.<M>.dc` | data completeness of M | fraction 0-1 |
| `quality.<M>.cases` | case count of M | cases |
| `cost.<measure>.oe` | mean observed/expected ratio of the cost measure (score = O/E × national mean) | ratio |
| `cost.<measure>.episodes` | attributed episodes | episodes |
| `cost.<measure>.<category>` | change of one service category's cost (em, imaging, …); O/E moves by its share | −1..1 |
| `ia.ia1`, `ia.ia2`, `pi.met` | IA-1, IA-2, PI requirements met | 0/1 |
| `practice.small` | small-practice status | 0/1 |
| `payment.part_b` | Part B covered professional services paid (PY), scaling the payment-year volume | USD |
| `cohort.median` | the cohort midpoint m of the exchange function (the peer draw) | final-score points |

For a TIN subject a lever's baseline is the mean over its NPIs and a new value shifts every NPI by the same
amount (flags are set alike). `favourable` is +1 when raising the lever can only raise the final score (or AF),
−1 when lowering it can, 0 when neither holds (case counts and episodes can bring a measure into the score that
lowers it; Part B volume changes dollars, not the score; a lower cohort median raises every peer's TFS too, and the
scaling factor can then lower the practice's AF).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from openasm.decide.subject import Subject


class LeverError(ValueError):
    """An unknown lever or a value outside its range."""


@dataclass(frozen=True)
class Lever:
    name: str
    label: str
    kind: str  # shift | flag | scale | absolute
    baseline: float
    low: float
    high: float
    step: float
    favourable: int
    unit: str
    moves_score: bool = True


def measure_label(measure_id: str) -> str:
    """Q-numbered label of a quality measure id (stored as the number)."""
    return f"Q{int(measure_id):03d}" if str(measure_id).isdigit() else str(measure_id)


def _measure_key(text: str) -> str:
    text = text.upper().removeprefix("Q")
    return str(int(text)) if text.isdigit() else text


def build_levers(subject: Subject) -> dict[str, Lever]:
    """Every lever the subject has, keyed by name."""
    q = subject.quality
    levers: dict[str, Lever] = {}
    for measure in sorted({m for m, r in zip(q.measure_id, q.is_reported) if r}, key=str):
        mine = (q.measure_id == measure) & q.is_reported
        label = measure_label(measure)
        inverse = bool(q.benchmark["is_inverse"][mine].any())
        if not np.isnan(q.rate[mine]).all() and not q.uses_cms_points[mine].all():
            levers[f"quality.{label}.rate"] = Lever(
                f"quality.{label}.rate", f"{label} performance rate", "shift", float(np.nanmean(q.rate[mine])) / 100,
                0.0, 1.0, 0.005, -1 if inverse else 1, "fraction")
        if not np.isnan(q.data_completeness[mine]).all() and not q.is_admin[mine].all():
            levers[f"quality.{label}.dc"] = Lever(
                f"quality.{label}.dc", f"{label} data completeness", "shift",
                float(np.nanmean(q.data_completeness[mine])), 0.0, 1.0, 0.01, 1, "fraction")
        if not np.isnan(q.case_count[mine]).all() and not q.is_admin[mine].all():
            base = float(np.nanmean(q.case_count[mine]))
            levers[f"quality.{label}.cases"] = Lever(
                f"quality.{label}.cases", f"{label} case count", "shift", base, 0.0, max(100.0, 3 * base), 1.0, 0,
                "cases")
    for k in np.flatnonzero(subject.has_cost_row):
        measure = str(subject.score["cost_measure_id"][k])
        if f"cost.{measure}.oe" in levers:
            continue
        mine = subject.has_cost_row & (subject.score["cost_measure_id"] == measure)
        levers[f"cost.{measure}.oe"] = Lever(
            f"cost.{measure}.oe", f"{measure} observed/expected cost", "shift",
            float(np.nanmean(subject.cost_oe[mine])), 0.2, 3.0, 0.01, -1, "ratio")
        for category in sorted({c for k2 in np.flatnonzero(mine) for c in subject.cost_category_share[k2]}):
            levers[f"cost.{measure}.{category}"] = Lever(
                f"cost.{measure}.{category}", f"{measure} {category.replace('_', ' ')} cost change", "shift", 0.0,
                -1.0, 1.0, 0.01, -1, "fraction")
        base = float(np.mean(subject.cost_episodes[mine]))
        levers[f"cost.{measure}.episodes"] = Lever(
            f"cost.{measure}.episodes", f"{measure} attributed episodes", "shift", base, 0.0, max(100.0, 3 * base),
            1.0, 0, "episodes")
    s = subject.score
    for name, column, label in (("ia.ia1", "ia1_met", "IA-1 met"), ("ia.ia2", "ia2_met", "IA-2 met"),
                                ("pi.met", "pi_met", "PI met")):
        levers[name] = Lever(name, label, "flag", float(np.mean([bool(v) for v in s[column]])), 0.0, 1.0, 1.0, 1,
                             "0/1")
    levers["practice.small"] = Lever("practice.small", "small practice", "flag",
                                     float(np.mean([bool(v) for v in s["is_small_practice"]])), 0.0, 1.0, 1.0, 1,
                                     "0/1")
    part_b = float(np.sum([float(v or 0.0) for v in s["part_b_paid_amount"]]))
    levers["payment.part_b"] = Lever("payment.part_b", "Part B paid (performance year)", "scale", part_b, 0.0,
                                     max(4 * part_b, 1.0), max(part_b / 200, 1.0), 0, "USD", moves_score=False)
    midpoints = [float(v) for v in s["exchange_midpoint"] if v is not None]
    if midpoints:
        # Not monotone: a lower midpoint raises every TFS, and the scaling factor then favours the peers on the
        # steeper part of the curve, so the practice's AF can fall (favourable 0).
        levers["cohort.median"] = Lever("cohort.median", "cohort median final score", "absolute",
                                        float(np.mean(midpoints)), 0.0, 100.0, 0.1, 0, "points", moves_score=False)
    return levers


def parse_setting(text: str) -> tuple[str, float]:
    """`name=value` of a --set option (the measure part is case-insensitive, Q prefix optional)."""
    if "=" not in text:
        raise LeverError(f"--set {text!r}: expected lever=value, e.g. quality.Q134.rate=0.62")
    name, value = (part.strip() for part in text.split("=", 1))
    try:
        number = float(value)
    except ValueError:
        number = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}.get(value.lower(), None)
        if number is None:
            raise LeverError(f"--set {text!r}: {value!r} is not a number") from None
    return canonical_name(name), number


def canonical_name(name: str) -> str:
    """`quality.q134.RATE` → `quality.Q134.rate`."""
    parts = name.split(".")
    if len(parts) == 3 and parts[0].lower() == "quality":
        return f"quality.{measure_label(_measure_key(parts[1]))}.{parts[2].lower()}"
    if len(parts) == 3 and parts[0].lower() == "cost":
        return f"cost.{parts[1].upper()}.{parts[2].lower()}"
    return name.lower()


def check_settings(levers: Mapping[str, Lever], settings: Mapping[str, object]) -> None:
    """Raise LeverError for an unknown lever (listing the known ones) or a value outside its range."""
    for name, value in settings.items():
        if name not in levers:
            raise LeverError(f"unknown lever {name!r}; this subject has: {', '.join(sorted(levers))}")
        lever = levers[name]
        values = np.atleast_1d(np.asarray(value, dtype=float))
        if np.isnan(values).any() or (values < lever.low - 1e-12).any() or (values > lever.high + 1e-12).any():
            raise LeverError(f"{name}: value outside [{lever.low:g}, {lever.high:g}] ({lever.unit})")

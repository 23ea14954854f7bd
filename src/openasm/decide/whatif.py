"""What-if: a practice's scores, AF and dollars under lever settings, against the run's baseline, with the
explain chain, and the break-even solver (asm-model.md §3–§7; 42 CFR 512.725–512.750).

`what_if` returns baseline and scenario side by side (`openasm.app.scenario_chain` turns a scenario into the
chain `openasm explain` prints); `break_even` finds, per lever and holding the others, the
smallest change that reaches a target (AF ≥ 0, final score ≥ the cohort median, or dollars ≥ an amount).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from openasm.decide.evaluate import Outcome, evaluate
from openasm.decide.levers import Lever, LeverError, build_levers, check_settings
from openasm.decide.run_tables import RunTables
from openasm.decide.subject import Subject, load_subject

METRICS = ("quality_pct", "cost_pct", "final_score", "transformed_final_score", "adjustment_factor")
TARGET = re.compile(r"^\s*(af|fs|final_score|dollars)\s*>=\s*(median|-?[0-9.]+)\s*$", re.IGNORECASE)


@dataclass
class Decision:
    """A subject with its levers, ready for what-if questions."""

    run: RunTables
    subject: Subject
    levers: dict[str, Lever]

    def evaluate(self, settings: Mapping[str, object]) -> Outcome:
        check_settings(self.levers, settings)
        return evaluate(self.subject, self.levers, settings, self.run.rules)


def decision_for(run: RunTables, npi: str | None = None, tin: str | None = None) -> Decision:
    """The decision context of one NPI or one TIN of the run."""
    subject = load_subject(run, npi=npi, tin=tin)
    return Decision(run=run, subject=subject, levers=build_levers(subject))


@dataclass(frozen=True)
class WhatIf:
    settings: dict[str, float]
    baseline: Outcome
    scenario: Outcome

    def rows(self, npis: list[str]) -> list[dict]:
        """Per subject NPI and metric: baseline, scenario, difference; plus total dollars."""
        out = []
        for k, npi in enumerate(npis):
            for metric in METRICS + ("multiplier", "dollars"):
                source = "adjustment_factor" if metric == "multiplier" else metric
                base = float(getattr(self.baseline, source)[0, k]) + (metric == "multiplier")
                new = float(getattr(self.scenario, source)[0, k]) + (metric == "multiplier")
                out.append({"npi": npi, "metric": metric, "baseline": base, "scenario": new, "difference": new - base})
        return out


def what_if(decision: Decision, settings: Mapping[str, float]) -> WhatIf:
    """Baseline (every lever at its run value) and the scenario `settings`."""
    return WhatIf(settings=dict(settings), baseline=decision.evaluate({}), scenario=decision.evaluate(settings))


# ------------------------------------------------------------------------------------------ break-even
@dataclass(frozen=True)
class Target:
    metric: str  # adjustment_factor | final_score | dollars
    threshold: float | None  # None: the cohort median
    text: str

    def reached(self, outcome: Outcome) -> np.ndarray:
        """(S,) whether each scenario meets the target (AF and final score of every subject NPI; dollars summed)."""
        if self.metric == "dollars":
            return outcome.total_dollars >= self.threshold - 1e-9
        value = getattr(outcome, self.metric)
        bar = outcome.midpoint if self.threshold is None else self.threshold
        return np.all(value >= bar - 1e-12, axis=1)


def parse_target(text: str) -> Target:
    """`af>=0`, `fs>=median`, `dollars>=5000`."""
    match = TARGET.match(text or "")
    if not match:
        raise LeverError(f"--target {text!r}: expected af>=N, fs>=median, fs>=N or dollars>=N")
    metric = {"af": "adjustment_factor", "fs": "final_score", "final_score": "final_score",
              "dollars": "dollars"}[match.group(1).lower()]
    value = match.group(2).lower()
    if value == "median" and metric != "final_score":
        raise LeverError(f"--target {text!r}: 'median' applies to the final score (fs>=median)")
    return Target(metric=metric, threshold=None if value == "median" else float(value), text=text)


@dataclass(frozen=True)
class BreakEven:
    lever: str
    baseline: float
    value: float | None  # None: not reachable within the lever's range
    change: float | None
    already_met: bool
    note: str


def break_even(decision: Decision, target: Target, settings: Mapping[str, float] | None = None,
               grid: int = 201, rounds: int = 3) -> list[BreakEven]:
    """Per lever, holding the others at `settings` (default baseline): the value nearest the baseline, in the
    lever's favourable direction, at which the target is met. A grid of `grid` values over the range, refined
    `rounds` times around the first success (the target is monotone in a favourable lever). Levers without a
    favourable direction (case counts, episodes, Part B volume, the cohort median) get the grid value nearest the
    baseline, either side, that meets the target."""
    settings = dict(settings or {})
    out = []
    for name, lever in decision.levers.items():
        start = settings.get(name, lever.baseline)
        if lever.favourable == 0:
            out.append(_nearest(decision, target, settings, name, lever, start, grid))
            continue
        here = {**settings, name: start}
        if target.reached(decision.evaluate(here))[0]:
            out.append(BreakEven(name, start, start, 0.0, True, "already met"))
            continue
        end = lever.high if lever.favourable > 0 else lever.low
        low, high = start, end
        found = None
        for _ in range(rounds + 1):
            values = np.linspace(low, high, grid)
            hits = np.flatnonzero(target.reached(decision.evaluate({**settings, name: values})))
            if hits.size == 0:
                break
            first = hits[0]
            found = values[first]
            low, high = values[max(first - 1, 0)], values[first]
            if lever.kind == "flag":
                break
        if found is None:
            out.append(BreakEven(name, start, None, None, False, f"not reached within [{lever.low:g}, {lever.high:g}]"))
        else:
            out.append(BreakEven(name, start, float(found), float(found - start), False, ""))
    return out


def _nearest(decision: Decision, target: Target, settings: Mapping[str, float], name: str, lever: Lever,
             start: float, grid: int) -> BreakEven:
    """Break-even of a lever that is not monotone: the grid value nearest `start` that meets the target."""
    values = np.linspace(lever.low, lever.high, grid)
    reached = target.reached(decision.evaluate({**settings, name: np.append(values, start)}))
    if reached[-1]:
        return BreakEven(name, start, start, 0.0, True, "already met")
    hits = values[reached[:-1]]
    if hits.size == 0:
        return BreakEven(name, start, None, None, False, f"not reached within [{lever.low:g}, {lever.high:g}]")
    found = float(hits[np.argmin(np.abs(hits - start))])
    return BreakEven(name, start, found, found - start, False, "nearest grid value (not monotone)")

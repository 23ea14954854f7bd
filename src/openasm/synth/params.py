"""The generator's calibration parameters, read from `rules/params/synth/` through the rules resolver.

Nothing numeric that calibrates the world lives in Python: the cost mixture, targets, clinician effect,
prevalence, rates and messiness shares are rules files (evidence `default`, or `secondary` for the §11.1
national averages). The per-year target (synthetic_target_mean_by_py) is resolved for every calendar year of
the world, so 2024 services are priced at the PY2024 average and 2025+ at the PY2025 average (held forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from openasm.rules import RulesError, RulesForYear, load_parameter_files, load_rules
from openasm.rules.resolve import resolve_parameter
from openasm.synth.assigned import AssignmentRules, load_assignment_rules

COHORTS = ("hf", "lbp")
TARGET = "synth.target_mean_cost"
FIRST_ASM_PY = 2027
ASSIGNMENT_PARAMS = ("cost.measures", "cost.assignment_rules")


@dataclass(frozen=True)
class SynthParams:
    """Resolved generator parameters for one world."""

    mixture: dict[str, dict[str, list[float]]]
    cap: dict[str, float]  # cost cap (mixture percentile) in price-year dollars
    price_year: int
    year_scale: dict[str, dict[int, float]]  # cohort -> calendar year -> target[year] / target[price year]
    clinician_sigma: dict[str, float]
    episode_basis: dict[str, float]  # cohort -> care-year cost multiplier (scored-episode basis)
    provider_pools: dict[str, list[str]]  # cohort -> pools whose own style scales the services they bill
    prevalence: dict[str, float]
    dynamics: dict[str, dict[str, float]]
    population: dict[str, Any]
    practices: dict[str, Any]
    managers: dict[str, Any]
    service: dict[str, dict[str, Any]]
    facility: dict[str, Any]
    unrelated: dict[str, Any]
    payment: dict[str, Any]
    messiness: dict[str, Any]
    confirm_window: dict[str, int]
    confirm_min_gap: int
    assignment: dict[str, AssignmentRules]  # cohort -> the measure's assignment rules (what a care year's cost is)
    manifest_rows: list[dict[str, Any]] = field(default_factory=list)


def rules_for_world(last_year: int) -> RulesForYear:
    """`load_rules(last_year)`; a world ending before the first ASM PY resolves at that PY (values hold forward)."""
    try:
        return load_rules(last_year)
    except RulesError:
        if last_year >= FIRST_ASM_PY:
            raise
        return load_rules(FIRST_ASM_PY)


def mixture_quantile(weights: list[float], medians: list[float], sigmas: list[float], q: float) -> float:
    """The q-quantile (0..1) of a lognormal mixture, by bisection on its CDF."""
    def cdf(x: float) -> float:
        return sum(
            w * 0.5 * (1.0 + math.erf((math.log(x) - math.log(m)) / (s * math.sqrt(2.0))))
            for w, m, s in zip(weights, medians, sigmas, strict=True)
        )
    lo, hi = 1e-6, max(medians) * math.exp(8 * max(sigmas))
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if cdf(mid) < q:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _target_by_year(rules: RulesForYear, years: list[int]) -> dict[int, dict[str, float]]:
    resolved = rules.resolved(TARGET)
    if resolved.overridden:
        return {y: dict(resolved.value) for y in years}
    param = load_parameter_files(rules.rules_dir)[TARGET]
    return {y: dict(resolve_parameter(TARGET, param, y, 0).value) for y in years}


def load_synth_params(first_year: int, last_year: int, rules: RulesForYear | None = None) -> SynthParams:
    """Resolve every `synth.*` parameter for a world covering first_year..last_year."""
    rules = rules or rules_for_world(last_year)
    value = rules.value
    mixture = value("synth.mixture")
    pct = float(value("synth.cost_cap_percentile")) / 100.0
    cap = {c: mixture_quantile(mixture[c]["weight"], mixture[c]["median"], mixture[c]["sigma"], pct)
           for c in COHORTS}
    price_year = int(value("synth.mixture_price_year"))
    value(TARGET)
    targets = _target_by_year(rules, [price_year, *range(first_year, last_year + 1)])
    year_scale = {
        c: {y: targets[y][c] / targets[price_year][c] for y in range(first_year, last_year + 1)} for c in COHORTS
    }
    params = SynthParams(
        mixture=mixture, cap=cap, price_year=price_year, year_scale=year_scale,
        clinician_sigma=value("synth.clinician_sigma"), episode_basis=value("synth.episode_basis_factor"),
        provider_pools={c: list(v) for c, v in value("synth.provider_style_pools").items()},
        prevalence=value("synth.prevalence"),
        dynamics=value("synth.condition_dynamics"), population=value("synth.population"),
        practices=value("synth.practices"), managers=value("synth.managers"),
        service=value("synth.service_detail"), facility=value("synth.facility_prices"),
        unrelated=value("synth.unrelated_care"), payment=value("synth.payment"),
        messiness=value("synth.messiness"),
        confirm_window=dict(value("episodes.confirm_window_days")),
        confirm_min_gap=int(value("episodes.confirm_min_gap_days")),
        assignment=load_assignment_rules(rules),
    )
    rows = [r for r in rules.manifest_rows()
            if r["name"].startswith(("synth.", "episodes.")) or r["name"] in ASSIGNMENT_PARAMS]
    params.manifest_rows.extend(rows)
    return params

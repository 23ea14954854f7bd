"""The seven eCQMs, one module each (quality.md §4). Each module defines `MEASURE`, an `EcqmMeasure`.

`evaluate(clinical=, value_set_code=, period=, rules=)` returns one row per patient × population group in the
contract of `common.CASE_RESULT_COLUMNS` (use `common.finalize_case_result`). Adding a measure = adding a module and
its name here; the conformance harness and the quality stage find it through `measure_for`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import ibis.expr.types as ir

# eCQM id → module in this package.
MEASURE_MODULES = {
    "CMS156": "cms156", "CMS2": "cms2", "CMS69": "cms69", "CMS144": "cms144", "CMS135": "cms135",
    "CMS165": "cms165", "CMS90": "cms90",
}


@dataclass(frozen=True)
class EcqmMeasure:
    """One eCQM: its QPP id, eCQM id, how many population groups it reports (CMS156: 3; group 1 scored),
    the stratum name of each group, and the evaluation function."""

    measure_id: str
    ecqm_id: str
    strata: tuple[str, ...]
    evaluate: Callable[..., ir.Table]
    title: str = ""


def measure_for(ecqm_id: str) -> EcqmMeasure:
    """The measure definition for an eCQM id (`CMS156`); a clear error when unknown or not yet implemented."""
    key = ecqm_id.upper()
    if key not in MEASURE_MODULES:
        raise KeyError(f"unknown eCQM {ecqm_id!r}; known: {', '.join(MEASURE_MODULES)}")
    module = importlib.import_module(f"{__name__}.{MEASURE_MODULES[key]}")
    return module.MEASURE


def all_measures() -> list[EcqmMeasure]:
    return [measure_for(key) for key in MEASURE_MODULES]

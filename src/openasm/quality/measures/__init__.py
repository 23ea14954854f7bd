"""The eCQMs, one module each (quality.md §4), grouped into measure packages.

A measure package is one release of the eCQM specifications, declared as data in `packages/<package>.yaml`: for each
eCQM the module that implements that version (its `MEASURE`, an `EcqmMeasure`), the measure and CQL library versions,
and the value-set release (a code list). A run picks its package with rule `quality.ecqm_package`, so a later
release is added as a YAML file plus modules for the measures whose logic changed (reviewed as a diff against the
earlier module, which they may import), without touching the earlier package.

`evaluate(clinical=, value_set_code=, period=, rules=)` returns one row per patient × population group in the
contract of `common.CASE_RESULT_COLUMNS` (use `common.finalize_case_result`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import ibis.expr.types as ir
import yaml

from openasm.rules import RulesForYear, load_parameter_files

DEFAULT_PACKAGE = "ecqm-2025"  # used where no run rules are given (conformance suites, unit tests)


@dataclass(frozen=True)
class EcqmMeasure:
    """One eCQM: its QPP id, eCQM id, how many population groups it reports (CMS156: 3; group 1 scored),
    the stratum name of each group, and the evaluation function."""

    measure_id: str
    ecqm_id: str
    strata: tuple[str, ...]
    evaluate: Callable[..., ir.Table]
    title: str = ""


@dataclass(frozen=True)
class PackagedMeasure:
    """A measure as released in one package: its implementation and the versions it implements."""

    ecqm_id: str
    module: str
    measure_version: str
    library: str

    @property
    def measure(self) -> EcqmMeasure:
        return importlib.import_module(self.module).MEASURE


@dataclass(frozen=True)
class MeasurePackage:
    """One release of the eCQMs: the measures (by eCQM id), the value-set release (a code list) and its source."""

    package_id: str
    value_set_code_list: str
    source: str
    measures: dict[str, PackagedMeasure]

    def measure(self, ecqm_id: str) -> EcqmMeasure:
        """The measure for an eCQM id (`CMS156`); a clear error when the package does not have it."""
        key = ecqm_id.upper()
        if key not in self.measures:
            raise KeyError(f"unknown eCQM {ecqm_id!r} in package {self.package_id}; known: {', '.join(self.measures)}")
        return self.measures[key].measure


@lru_cache(maxsize=None)
def load_package(package_id: str = DEFAULT_PACKAGE) -> MeasurePackage:
    """The measure package declared in `packages/<package_id>.yaml`."""
    folder = resources.files(__name__) / "packages"
    path = folder / f"{package_id}.yaml"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
        raise KeyError(f"unknown eCQM measure package {package_id!r}; shipped: {', '.join(known)}")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    measures = {ecqm_id: PackagedMeasure(ecqm_id, f"{__name__}.{entry['module']}", entry["measure_version"],
                                         entry["library"])
                for ecqm_id, entry in spec["measures"].items()}
    return MeasurePackage(package_id, spec["value_set_code_list"], spec["source"], measures)


def package_for(rules: RulesForYear | None) -> MeasurePackage:
    """The run's measure package (rule `quality.ecqm_package`), or the default package without run rules."""
    return load_package(rules.value("quality.ecqm_package") if rules is not None else DEFAULT_PACKAGE)


def measure_for(ecqm_id: str, package_id: str = DEFAULT_PACKAGE) -> EcqmMeasure:
    """The measure definition for an eCQM id in a package."""
    return load_package(package_id).measure(ecqm_id)


def all_measures(package_id: str = DEFAULT_PACKAGE) -> list[EcqmMeasure]:
    package = load_package(package_id)
    return [package.measure(key) for key in package.measures]


def rule_value(rules: RulesForYear | None, name: str) -> Any:
    """A measure's switch from the run's rules; without run rules (conformance suites, unit tests) the parameter's
    first value, which for the eCQM switches is the behaviour of the published ELM."""
    if rules is not None:
        return rules.value(name)
    values = load_parameter_files()[name].values
    return values[min(values)].value

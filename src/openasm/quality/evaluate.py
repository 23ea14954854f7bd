"""Evaluate the eCQMs of a performance year on the clinical tables (quality.md §4): the run's measure package and
measurement period, and one table of patient-level results for every measure of every cohort, in the
`measure_case_result` contract, through `evaluate_measures` (the quality stage and bench/fhir_bench.py call it via
`runs.quality.evaluate_ecqms`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.measures import EcqmMeasure, package_for
from openasm.rules import RulesForYear

Materialise = Callable[[str, ir.Table], ir.Table]


def ecqm_measures_for_year(rules: RulesForYear) -> list[EcqmMeasure]:
    """The eCQMs of the run's measure package (`quality.ecqm_package`) whose QPP id is in a cohort's measure set for
    the year (`quality.measures`); Q220 and Q492 are not eCQMs and come from their own feeds."""
    wanted = {m for ids in rules.value("quality.measures").values() for m in ids}
    package = package_for(rules)
    return [m for m in (package.measure(key) for key in package.measures) if m.measure_id in wanted]


def measurement_period(rules: RulesForYear) -> MeasurementPeriod:
    """§512.725: the calendar performance year, at the evaluation request's UTC offset
    (`quality.ecqm_evaluation_utc_offset`)."""
    return MeasurementPeriod.calendar_year(rules.performance_year,
                                           int(rules.value("quality.ecqm_evaluation_utc_offset")))


def evaluate_measures(*, clinical: ClinicalTables, value_set_code: ir.Table, rules: RulesForYear,
                      materialise: Materialise | None = None) -> ir.Table:
    """§512.725(b)-(c): every eCQM of the year evaluated for its measurement period and unioned (columns per
    `measures.common.CASE_RESULT_COLUMNS`). With `materialise` (an engine's `save`), each measure's result is
    materialised as `quality__int_case_result_<ecqm>` before the union: one small query plan per measure, which
    Spark plans much faster than a union of seven; results several measures share (hospice, palliative care,
    frailty, the HF-LVSD populations) are materialised once, as `quality__int_<name>`."""
    period = measurement_period(rules)
    clinical = clinical.with_materialise(materialise)
    if not rules.value("quality.ecqm_declared_profiles_decide"):
        clinical = clinical.without_declared_profiles()
    results = []
    with _selects_left_unfused():
        for measure in ecqm_measures_for_year(rules):
            result = measure.evaluate(clinical=clinical, value_set_code=value_set_code, period=period, rules=rules)
            if materialise is not None:
                result = materialise(f"quality__int_case_result_{measure.ecqm_id.lower()}", result)
            results.append(result)
    return ibis.union(*results) if len(results) > 1 else results[0]


@contextmanager
def _selects_left_unfused() -> Iterator[None]:
    """Compile without Ibis's merging of consecutive selects: on the measures' deep expression graphs the merging
    took about an eighth of the stage's time, and DuckDB's and Spark's optimisers merge projections anyway."""
    previous = ibis.options.sql.fuse_selects
    ibis.options.sql.fuse_selects = False
    try:
        yield
    finally:
        ibis.options.sql.fuse_selects = previous

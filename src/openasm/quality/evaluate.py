"""Evaluate the eCQMs of a performance year on the clinical tables (quality.md §4): one table of patient-level
results for every measure of every cohort, in the `measure_case_result` contract."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.measures import all_measures
from openasm.rules import RulesForYear


def ecqm_measures_for_year(rules: RulesForYear) -> list:
    """The eCQMs whose QPP id is in a cohort's measure set for the year (`quality.measures`); Q220 and Q492 are
    not eCQMs and come from their own feeds."""
    wanted = {m for ids in rules.value("quality.measures").values() for m in ids}
    return [m for m in all_measures() if m.measure_id in wanted]


def evaluate_measures(*, clinical: ClinicalTables, value_set_code: ir.Table, period: MeasurementPeriod,
                      rules: RulesForYear) -> ir.Table:
    """§512.725(b)-(c): every eCQM of the year evaluated for `period`, unioned (columns per
    `measures.common.CASE_RESULT_COLUMNS`)."""
    results = [m.evaluate(clinical=clinical, value_set_code=value_set_code, period=period, rules=rules)
               for m in ecqm_measures_for_year(rules)]
    return ibis.union(*results) if len(results) > 1 else results[0]

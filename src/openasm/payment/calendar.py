"""The model's calendar and obligations for one performance year, from the rules (asm-model.md §8, §10):
the performance period, the data submission window (§512.720), the payment year (§512.710(a)(1)(i)(C)), the
targeted-review (timely error notice) periods (§512.755), how long records are kept and the limits on
beneficiary incentives and collaborative-care payments (§512.770)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from openasm.rules import RulesForYear


@dataclass(frozen=True)
class ModelDate:
    """A dated span (or a period counted from an event) with the rules it rests on."""

    event: str
    starts: str
    ends: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Obligation:
    """A limit or procedure the model sets, in words, with the rule it rests on."""

    subject: str
    value: str
    rule: str


def _month_day(year: int, text: str) -> dt.date:
    month, day = (int(part) for part in text.split("-"))
    return dt.date(year, month, day)


def model_calendar(rules: RulesForYear) -> list[ModelDate]:
    """The performance year's dates in order: performance period, submission window, the targeted-review
    periods (counted from the score and adjustment report, whose date CMS sets), the payment year and the end
    of record retention."""
    py, pay = rules.performance_year, rules.payment_year
    window = rules.value("operations.submission_window")
    submit_year = py + int(window["year_offset"])
    notice = int(rules.value("operations.ten_notice_days"))
    response = int(rules.value("operations.ten_response_days"))
    reconsider = int(rules.value("operations.ten_reconsideration_days"))
    keep = int(rules.value("operations.record_retention_years"))
    return [
        ModelDate("performance period", dt.date(py, 1, 1).isoformat(), dt.date(py, 12, 31).isoformat(), ()),
        ModelDate("quality, IA and PI data submission", _month_day(submit_year, window["start"]).isoformat(),
                  _month_day(submit_year, window["end"]).isoformat(), ("operations.submission_window",)),
        ModelDate("timely error notice to CMS", "score and adjustment report received",
                  f"{notice} days later", ("operations.ten_notice_days",)),
        ModelDate("CMS response to the notice", "notice filed", f"{response} days later",
                  ("operations.ten_response_days",)),
        ModelDate("reconsideration request", "CMS response", f"{reconsider} days later",
                  ("operations.ten_reconsideration_days",)),
        ModelDate("payment adjustment applied to Part B claims", dt.date(pay, 1, 1).isoformat(),
                  dt.date(pay, 12, 31).isoformat(), ("model.payment_year_lag",)),
        ModelDate("model records kept until", "", dt.date(py + keep, 12, 31).isoformat(),
                  ("operations.record_retention_years",)),
    ]


def model_obligations(rules: RulesForYear) -> list[Obligation]:
    """What the rules allow and require besides the score: error-correction scope, incentive and CCA limits."""
    scope = rules.value("operations.ten_recompute_scope")
    cap_rule = rules.value("operations.cca_payment_cap_rule")
    return [
        Obligation("after a corrected calculation error, CMS recomputes",
                   "only the participant concerned (the cohort is not re-scaled)" if scope == "participant"
                   else "the whole cohort", "operations.ten_recompute_scope"),
        Obligation("in-kind technology incentive per beneficiary and year, at most",
                   f"${float(rules.value('operations.beneficiary_incentive_tech_cap_usd')):,.0f} retail value",
                   "operations.beneficiary_incentive_tech_cap_usd"),
        Obligation("payments to a collaborative-care partner per NPI and year, at most",
                   "the participant's positive adjustment dollars (never below 0)"
                   if cap_rule == "max0_sum_positive_adjustments" else "its net adjustment dollars (never below 0)",
                   "operations.cca_payment_cap_rule"),
    ]

"""Calendar months as engine expressions: the `enrollment.year_month` text ('YYYY-MM') and dates on one scale."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def month_index(year: ir.IntegerValue, month: ir.IntegerValue) -> ir.IntegerValue:
    """Months since year 0: consecutive months differ by one, so spans are counted by subtraction."""
    return year.cast("int64") * 12 + month.cast("int64")


def year_month_index(year_month: ir.StringValue) -> ir.IntegerValue:
    """`month_index` of a 'YYYY-MM' value (shape checked at ingest)."""
    return month_index(year_month.substr(0, 4).cast("int32"), year_month.substr(5, 2).cast("int32"))


def date_month_index(date: ir.DateValue) -> ir.IntegerValue:
    """`month_index` of the month a date falls in."""
    return month_index(date.year(), date.month())


def year_month_start(year_month: ir.StringValue) -> ir.DateValue:
    """First day of a 'YYYY-MM' month."""
    return ibis.date(year_month.substr(0, 4).cast("int32"), year_month.substr(5, 2).cast("int32"), 1)

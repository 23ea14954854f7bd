"""CumulativeMedicationDuration 4.1.000 for MedicationRequests (quality.md §4.1, §4.5): days supplied and the
medicationRequestPeriod, in one place for every measure that asks how long an order covers.

Not in the clinical model, so not used: dispenseRequest.validityPeriod (the third start candidate) and
timing.repeat.timeOfDay (the second doses-per-day candidate); the first dosage instruction stands in for the CQL's
`singleton from dosageInstruction`.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.cql_datetime import Moment

# ToDaily: hours in one unit of the timing period (mo = 30 days, a = 365 days), the units the CQL names.
HOURS_PER_UNIT = {"h": 1.0, "hour": 1.0, "hours": 1.0, "min": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60,
                  "s": 1 / 3600, "second": 1 / 3600, "seconds": 1 / 3600, "d": 24.0, "day": 24.0, "days": 24.0,
                  "wk": 168.0, "week": 168.0, "weeks": 168.0, "mo": 720.0, "month": 720.0, "months": 720.0,
                  "a": 8760.0, "year": 8760.0, "years": 8760.0}
# Numeric dosage columns; Spark can hold a missing float as NaN, which coalesce does not replace.
DOSAGE_NUMBERS = ("expected_supply_days", "dispense_quantity", "refills", "dose_value", "frequency", "period")


def finite(value: ir.FloatingValue) -> ir.FloatingValue:
    """NaN read as null: some backends (PySpark from Arrow memtables) turn missing floats into NaN."""
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value)


def doses_per_day(orders: ir.Table) -> ir.FloatingValue:
    """Coalesce(ToDaily(frequency, period), 1.0): frequency per period converted to per day."""
    hours = ibis.cases(*[(orders.period_unit == unit, ibis.literal(h)) for unit, h in HOURS_PER_UNIT.items()],
                       else_=ibis.null("float64"))
    return (finite(orders.frequency) * 24.0 / (finite(orders.period) * hours)).fill_null(1.0)


def total_days_supplied(orders: ir.Table) -> ir.FloatingValue:
    """Coalesce(expectedSupplyDuration in days, quantity ÷ (dose × doses per day)) × (1 + refills)."""
    per_fill = finite(orders.expected_supply_days).fill_null(
        finite(orders.dispense_quantity) / (finite(orders.dose_value) * doses_per_day(orders)).nullif(0.0))
    return per_fill * (1.0 + finite(orders.refills).fill_null(0.0))


def medication_request_period(orders: ir.Table) -> ir.Table:
    """medicationRequestPeriod as date columns med_period_start/med_period_end (both null when undefined): start =
    date from the first dosage's bounds start, else from authoredOn; [start, start + (total days − 1) days] when
    the supply is known, else [start, date from bounds end] when the bounds have an end, else null."""
    total_days = total_days_supplied(orders)
    start = Moment.of(orders, "bounds_start").date().fill_null(Moment.of(orders, "authored_on").date())
    offset = total_days - 1.0
    whole = ibis.ifelse(offset >= 0, offset.floor(), offset.ceil()).cast("int64")
    end = ibis.cases(
        (start.notnull() & total_days.notnull(), start + whole.as_interval("D")),
        (start.notnull() & orders.bounds_end.notnull(), Moment.of(orders, "bounds_end").date()),
        else_=ibis.null("date"))
    return orders.mutate(med_period_start=ibis.ifelse(end.notnull(), start, ibis.null("date")), med_period_end=end)

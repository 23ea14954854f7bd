"""CQL 1.5 date/time arithmetic on values kept as written (quality.cql_datetime)."""

from __future__ import annotations

from datetime import datetime

import ibis

from openasm.quality.cql_datetime import Moment


def _evaluate(moment: Moment) -> tuple[datetime, ...]:
    row = ibis.memtable({"x": [1]}).select(*(part.name(f"p{i}") for i, part in enumerate(moment.parts())))
    return tuple(row.to_pyarrow().to_pylist()[0].values())


def test_adding_months_clamps_on_the_local_date_then_finds_the_instant() -> None:
    """Local 2027-05-01T02:00+05:00 is 2027-04-30T21:00Z. Minus 9 months moves the local components (CQL §22 Add):
    2026-08-01T02:00+05:00 = 2026-07-31T21:00Z, not 2026-07-30T21:00Z (the UTC date minus 9 months)."""
    earlier = Moment.at(datetime(2027, 5, 1, 2, 0), offset_minutes=300).plus(months=-9)
    low, high, offset, utc_low, utc_high = _evaluate(earlier)
    assert (low, offset, utc_low, utc_high) == (datetime(2026, 8, 1, 2, 0), 300.0, datetime(2026, 7, 31, 21, 0),
                                                 datetime(2026, 7, 31, 21, 0))


def test_adding_days_moves_local_time_and_instant_alike() -> None:
    later = Moment.at(datetime(2027, 12, 31, 21, 0), offset_minutes=-300).plus(days=1)
    low, _high, _offset, utc_low, _utc_high = _evaluate(later)
    assert (low, utc_low) == (datetime(2028, 1, 1, 21, 0), datetime(2028, 1, 2, 2, 0))

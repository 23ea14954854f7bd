"""CQL 1.5 date/time semantics for FHIR values: the one place every eCQM compares dates and times (quality.md §4).

**Representation.** A FHIR date, dateTime or instant is kept from ingest on as it was written
(`parse_fhir_datetime`), in three columns of the clinical tables: `<name>` is the earliest local wall-clock time its
precision allows, `<name>_last` the latest, and `<name>_offset` the UTC offset written with it, in minutes (null when
none was written: a date, or a time without a zone). `2027-12-31T21:00:00-05:00` is (21:00, 21:00, -300);
`2027-03` is (03-01 00:00, 03-31 23:59:59.999999, null). A `Moment` wraps the three as Ibis values.

**Rules**, from the CQL 1.5 specification (https://cql.hl7.org/09-b-cqlreference.html, Comparison Operators —
Equal; Date and Time Operators — Same As, Same Or Before, Same Or After, Before, After; Interval Operators):

1. Values are compared precision by precision from years down; the first precision at which they differ decides;
   where one value has a precision the other lacks, the result is null (uncertain); "seconds and milliseconds are
   combined as a single precision using a decimal", so 14:40:00 equals 14:40:00.000. Equivalently: each value is the
   span of instants its precision allows, and two spans are disjoint (decided), identical (equal) or nested (null).
   With a precision (`same day as`, `during day of`), comparison stops at that precision, and two values that both
   stop short of it (two months) give null.
2. Timezones: "When comparing DateTime values with different timezone offsets, implementations should normalize to
   the timezone offset of the evaluation request timestamp, but only when the comparison precision is hours,
   minutes, seconds, or milliseconds." So `day of` comparisons use each value's calendar date as written (a visit
   at 2027-12-31T21:00-05:00 is on 31 December), and comparisons without a precision use instants on one timeline.
   A DateTime written without an offset takes the evaluation request's (Author's Guide, DateTime literals).
3. The evaluation request's offset is `MeasurementPeriod.utc_offset_minutes` (rule
   `quality.ecqm_evaluation_utc_offset`). The measures' ELM declares the period without an offset, so it is
   expressed in that offset too. fqm-execution, the reference engine, builds the period and its execution timestamp
   at +00:00, which is the default.
4. Intervals follow FHIRHelpers.ToInterval: a Period without a start has an unknown start, one without an end is
   closed at the end of time, a point in time is the interval [x, x]. Unknown boundaries make results null; a
   `where` reads null as false, so callers filter on the nullable results directly and never fill them before a
   `not`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir

DAY = "day"  # the one coarser comparison precision the measures use; None = full precision (instants)
# Stand-ins for CQL's minimum and maximum DateTime (closed null interval boundaries).
BEGINNING_OF_TIME = datetime(1800, 1, 1)
END_OF_TIME = datetime(9999, 12, 31)

_FHIR_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$")
_MICROSECOND = timedelta(microseconds=1)


class InvalidDateTime(ValueError):
    """A value that is not a FHIR date, dateTime or instant, or names a day that does not exist."""


@dataclass(frozen=True)
class FhirDateTime:
    """One FHIR date/dateTime as written: earliest and latest local wall-clock time of its precision, and the UTC
    offset in minutes (None when none was written)."""

    low: datetime
    high: datetime
    offset_minutes: int | None

    @property
    def is_day_or_finer(self) -> bool:
        return self.low.date() == self.high.date()

    def predecessor(self) -> "FhirDateTime":
        """CQL predecessor at the value's own precision (the end of a half-open interval `[a, b)`): one
        millisecond, minute, day, month or year earlier."""
        span = self.high - self.low
        if span == timedelta(0):
            step = timedelta(milliseconds=1)
        elif span < timedelta(days=1):
            step = timedelta(minutes=1)
        elif span < timedelta(days=2):
            step = timedelta(days=1)
        else:
            year, month = self.low.year, self.low.month
            if span > timedelta(days=31):
                low = self.low.replace(year=year - 1)
                return FhirDateTime(low, self.low - _MICROSECOND, None)
            low = datetime(year - (month == 1), 12 if month == 1 else month - 1, 1)
            return FhirDateTime(low, self.low - _MICROSECOND, None)
        return FhirDateTime(self.low - step, self.high - step, self.offset_minutes)


def parse_fhir_datetime(text: object) -> FhirDateTime:
    """Parse a FHIR date/dateTime/instant (`2027`, `2027-03`, `2027-03-10`, `2027-03-10T09:00:00.000-05:00`, with
    minute precision tolerated). Seconds and milliseconds are one precision (CQL), so a time with seconds is exact.
    Raises InvalidDateTime."""
    match = _FHIR_DATETIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidDateTime(f"{text!r} is not a FHIR date or dateTime")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1)
            return FhirDateTime(low, datetime(year + 1, 1, 1) - _MICROSECOND, None)
        month = int(g["m"])
        if g["d"] is None:
            low = datetime(year, month, 1)
            return FhirDateTime(low, low + timedelta(days=calendar.monthrange(year, month)[1]) - _MICROSECOND, None)
        day = datetime(year, month, int(g["d"]))
        if g["H"] is None:
            return FhirDateTime(day, day + timedelta(days=1) - _MICROSECOND, None)
        micro = int((g["f"] or "0")[:6].ljust(6, "0"))
        low = day.replace(hour=int(g["H"]), minute=int(g["M"]), second=int(g["S"] or 0), microsecond=micro)
    except ValueError as err:
        raise InvalidDateTime(f"{text!r} is not a valid date ({err})") from None
    high = low if g["S"] is not None else low + timedelta(minutes=1) - _MICROSECOND
    tz = g["tz"]
    offset = None if tz is None else 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (
        int(tz[1:3]) * 60 + int(tz[4:6]))
    if offset is not None and abs(offset) > 14 * 60:
        raise InvalidDateTime(f"{text!r} has a UTC offset outside -14:00..+14:00")
    return FhirDateTime(low, high, offset)


# --- One CQL DateTime as Ibis values ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Moment:
    """A CQL DateTime: earliest and latest local wall-clock time of its precision, its UTC offset in minutes (null =
    the evaluation request's), and the same span as UTC instants taking a missing offset as +00:00 (`utc_low`,
    `utc_high`, stored at ingest so comparisons need no arithmetic). A null `low` is an unknown value; `known` says
    the value can never be unknown (a literal, or a closed null boundary filled in), which spares a null test."""

    low: ir.TimestampValue
    high: ir.TimestampValue
    offset: ir.NumericValue
    utc_low: ir.TimestampValue
    utc_high: ir.TimestampValue
    known: bool = False

    @classmethod
    def of(cls, table: ir.Table, name: str) -> "Moment":
        """The moment stored in columns `name`, `name_last`, `name_offset`, `name_utc`, `name_utc_last`."""
        return cls(table[name], table[f"{name}_last"], table[f"{name}_offset"], table[f"{name}_utc"],
                   table[f"{name}_utc_last"])

    @classmethod
    def at(cls, when: datetime, offset_minutes: int | None = None) -> "Moment":
        """An exact (millisecond-precision) literal."""
        value = ibis.timestamp(when)
        offset = ibis.null("float64") if offset_minutes is None else ibis.literal(float(offset_minutes))
        utc = ibis.timestamp(when - timedelta(minutes=offset_minutes or 0))
        return cls(value, value, offset, utc, utc, known=True)

    @classmethod
    def of_date(cls, day: ir.DateValue) -> "Moment":
        """A CQL Date used where a DateTime is expected (ToDateTime): day precision, no offset."""
        low = day.cast("timestamp")
        high = low + ibis.interval(days=1) - ibis.interval(microseconds=1)
        return cls(low, high, ibis.null("float64"), low, high)

    @classmethod
    def unknown(cls) -> "Moment":
        null = ibis.null("timestamp")
        return cls(null, null, ibis.null("float64"), null, null)

    def parts(self) -> tuple[ir.Value, ...]:
        return self.low, self.high, self.offset, self.utc_low, self.utc_high

    def columns(self, name: str) -> dict[str, ir.Value]:
        """The five columns to store this moment under `name` (see `of`)."""
        low, high, offset, utc_low, utc_high = self.parts()
        return {name: low.cast("timestamp"), f"{name}_last": high.cast("timestamp"),
                f"{name}_offset": offset.cast("float64"), f"{name}_utc": utc_low.cast("timestamp"),
                f"{name}_utc_last": utc_high.cast("timestamp")}

    def or_else(self, other: "Moment") -> "Moment":
        """CQL Coalesce(self, other). The time parts of a stored moment are null together, so each is coalesced on
        its own; only the offset (null for a value written without one) follows `low`."""
        if self.known:
            return self
        offset = ibis.ifelse(self.low.notnull(), self.offset, other.offset)
        return Moment(ibis.coalesce(self.low, other.low), ibis.coalesce(self.high, other.high), offset,
                      ibis.coalesce(self.utc_low, other.utc_low), ibis.coalesce(self.utc_high, other.utc_high),
                      known=other.known)

    def choose(self, condition: ir.BooleanValue, other: "Moment") -> "Moment":
        """`self` where `condition` holds, else `other`."""
        return Moment(*(ibis.ifelse(condition, mine, theirs) for mine, theirs in zip(self.parts(), other.parts())),
                      known=self.known and other.known)

    def or_beginning(self) -> "Moment":
        """A closed null start boundary: the minimum DateTime."""
        return self.or_else(Moment.at(BEGINNING_OF_TIME))

    def or_end(self) -> "Moment":
        """A closed null end boundary (FHIRHelpers.ToInterval: a Period without an end): the maximum DateTime."""
        return self.or_else(Moment.at(END_OF_TIME))

    def date(self) -> ir.DateValue:
        """CQL `date from`: the calendar date as written (no normalization in CQL 1.5); null below day precision."""
        day = self.low.date()
        return ibis.ifelse(day == self.high.date(), day, ibis.null("date"))

    def plus(self, *, days: int = 0, months: int = 0, years: int = 0) -> "Moment":
        """CQL 1.5 §22 Add: date/time arithmetic on the value's own components (its local time at its offset), by
        calendar units; months clamp to the month's last day. Days move the local time and the UTC instant alike;
        a month step can clamp differently at UTC (local 05-01T02:00+05:00 is 04-30T21:00Z), so the UTC span is
        derived again from the shifted local time."""
        if months or years:
            step = ibis.interval(months=months + 12 * years)
            if days:
                step = step + ibis.interval(days=days)
            low, high = self.low + step, self.high + step
            written = self.offset.notnull() & ~self.offset.isnan()
            shift = ibis.ifelse(written, self.offset, 0.0).cast("int32").as_interval("m")
            return Moment(low, high, self.offset, low - shift, high - shift, known=self.known)
        if not days:
            return self
        step = ibis.interval(days=days)
        return Moment(self.low + step, self.high + step, self.offset, self.utc_low + step, self.utc_high + step,
                      known=self.known)

    def day_span(self) -> tuple[ir.DateValue, ir.DateValue]:
        return self.low.date(), self.high.date()

    def instant_span(self, evaluation_offset: int) -> tuple[ir.TimestampValue, ir.TimestampValue]:
        """Earliest and latest instant, as wall-clock time at UTC: the stored UTC span, moved by the evaluation
        request's offset where none was written."""
        if evaluation_offset == 0:
            return self.utc_low, self.utc_high
        # A missing offset can reach Spark from an Arrow memtable as NaN rather than null.
        unwritten = self.offset.isnull() | self.offset.isnan()
        shift = ibis.interval(minutes=evaluation_offset)
        return (ibis.ifelse(unwritten, self.utc_low - shift, self.utc_low),
                ibis.ifelse(unwritten, self.utc_high - shift, self.utc_high))


def _spans(a: Moment, b: Moment, precision: str | None, evaluation_offset: int):
    """(a_low, a_high, b_low, b_high, equal): spans on one scale and whether the values are equal at `precision`."""
    if precision == DAY:
        (al, ah), (bl, bh) = a.day_span(), b.day_span()
        return al, ah, bl, bh, (al == bl) & (ah == bh) & (al == ah)
    if precision is not None:
        raise ValueError(f"unsupported comparison precision {precision!r} (use 'day' or None)")
    (al, ah), (bl, bh) = a.instant_span(evaluation_offset), b.instant_span(evaluation_offset)
    return al, ah, bl, bh, (al == bl) & (ah == bh)


def _verdict(true_when: ir.BooleanValue, false_when: ir.BooleanValue) -> ir.BooleanValue:
    return ibis.cases((true_when, True), (false_when, False), else_=ibis.null("boolean"))


def before(a: Moment, b: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a before [precision of] b` (Before); null when uncertain."""
    al, ah, bl, bh, equal = _spans(a, b, precision, tz)
    return _verdict(ah < bl, (bh < al) | equal)


def after(a: Moment, b: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a after [precision of] b` (After)."""
    return before(b, a, precision, tz=tz)


def same_or_before(a: Moment, b: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a same [precision] or before b` / `on or before` (SameOrBefore)."""
    al, ah, bl, bh, equal = _spans(a, b, precision, tz)
    return _verdict((ah < bl) | equal, bh < al)


def same_or_after(a: Moment, b: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a same [precision] or after b` / `on or after` (SameOrAfter)."""
    return same_or_before(b, a, precision, tz=tz)


def same_as(a: Moment, b: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a same [precision] as b` (SameAs)."""
    al, ah, bl, bh, equal = _spans(a, b, precision, tz)
    return _verdict(equal, (ah < bl) | (bh < al))


# --- Intervals ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A CQL Interval<DateTime> with closed boundaries. A boundary whose `low` is null is unknown (an open null
    boundary, e.g. a Period without a start); a closed null boundary is stored as the beginning or end of time.
    `start`/`end` are CQL `start of`/`end of` (null when unknown); the operators below compare the closed
    boundaries, where an unknown start lies somewhere up to the end and an unknown end somewhere from the start
    (cql-execution's Uncertainty, so `Interval(null, x]` can still be decided against an interval after x)."""

    start: Moment
    end: Moment

    @classmethod
    def point(cls, moment: Moment) -> "Interval":
        """ToInterval(dateTime): [x, x]."""
        return cls(moment, moment)

    @classmethod
    def period(cls, table: ir.Table, start: str, end: str) -> "Interval":
        """FHIRHelpers.ToInterval(Period) from stored columns: a missing start is unknown, a missing end is closed
        at the end of time."""
        return cls(Moment.of(table, start), Moment.of(table, end).or_end())

    @classmethod
    def of(cls, table: ir.Table, name: str) -> "Interval":
        """The interval stored by `columns(name)`."""
        return cls(Moment.of(table, f"{name}_start"), Moment.of(table, f"{name}_end"))

    def columns(self, name: str) -> dict[str, ir.Value]:
        """Columns `<name>_start*` and `<name>_end*` to carry this interval through a select."""
        return {**self.start.columns(f"{name}_start"), **self.end.columns(f"{name}_end")}

    def closed_start(self) -> Moment:
        if self.start.known:
            return self.start
        begin = Moment.at(BEGINNING_OF_TIME)
        return self.start.or_else(Moment(begin.low, self.end.high, self.end.offset, begin.utc_low, self.end.utc_high))

    def closed_end(self) -> Moment:
        if self.end.known:
            return self.end
        finish = Moment.at(END_OF_TIME)
        return self.end.or_else(Moment(self.start.low, finish.high, self.start.offset, self.start.utc_low,
                                       finish.utc_high))


def during(inner: Interval, outer: Interval, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `inner during [precision of] outer` (IncludedIn): outer starts on or before inner starts and inner ends
    on or before outer ends."""
    return (same_or_before(outer.closed_start(), inner.closed_start(), precision, tz=tz)
            & same_or_before(inner.closed_end(), outer.closed_end(), precision, tz=tz))


def contains(outer: Interval, point: Moment, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `point during/in [precision of] outer` for a point (In); an unknown point gives null."""
    return (same_or_before(outer.closed_start(), point, precision, tz=tz)
            & same_or_before(point, outer.closed_end(), precision, tz=tz))


def overlaps(a: Interval, b: Interval, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a overlaps [precision of] b` (Overlaps): a starts on or before b ends and ends on or after b starts."""
    return (same_or_before(a.closed_start(), b.closed_end(), precision, tz=tz)
            & same_or_after(a.closed_end(), b.closed_start(), precision, tz=tz))


def overlaps_after(a: Interval, b: Interval, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a overlaps after [precision of] b` (OverlapsAfter): a starts on or before b ends and ends after it."""
    return (same_or_before(a.closed_start(), b.closed_end(), precision, tz=tz)
            & after(a.closed_end(), b.closed_end(), precision, tz=tz))


def overlaps_before(a: Interval, b: Interval, precision: str | None = None, *, tz: int = 0) -> ir.BooleanValue:
    """CQL `a overlaps before [precision of] b` (OverlapsBefore): a starts before b starts and ends on or after it."""
    return (before(a.closed_start(), b.closed_start(), precision, tz=tz)
            & same_or_after(a.closed_end(), b.closed_start(), precision, tz=tz))


def within_before(point: Moment, anchor: Moment, days: int, precision: str | None = DAY, *,
                  tz: int = 0) -> ir.BooleanValue:
    """CQL `point <days> days or less on or before [day of] anchor`: point in [anchor − days, anchor]."""
    return contains(Interval(anchor.plus(days=-days), anchor), point, precision, tz=tz)


def within_after(point: Moment, anchor: Moment, days: int, precision: str | None = DAY, *,
                 tz: int = 0) -> ir.BooleanValue:
    """CQL `point <days> days or less on or after [day of] anchor`: point in [anchor, anchor + days]."""
    return contains(Interval(anchor, anchor.plus(days=days)), point, precision, tz=tz)


def calendar_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)

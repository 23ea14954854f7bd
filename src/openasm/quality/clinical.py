"""The clinical tables as one bundle of Ibis tables, and the measurement period (quality.md §4, §7)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.clinical_model import CLINICAL_SCHEMAS
from openasm.quality.cql_datetime import Interval, Moment, calendar_day


@dataclass(frozen=True)
class ClinicalTables:
    """Every clinical table of `clinical_model.CLINICAL_SCHEMAS` as an Ibis table on one backend."""

    patient: ir.Table
    encounter: ir.Table
    condition: ir.Table
    observation: ir.Table
    observation_component: ir.Table
    medication_request: ir.Table
    medication_request_dosage: ir.Table
    procedure: ir.Table
    service_request: ir.Table
    device_request: ir.Table
    allergy_intolerance: ir.Table
    coverage: ir.Table
    practitioner: ir.Table
    organization: ir.Table
    clinical_coding: ir.Table
    not_done: ir.Table
    clinical_reference: ir.Table

    @classmethod
    def from_arrow(cls, tables: dict[str, pa.Table], memtable=ibis.memtable) -> "ClinicalTables":
        """Wrap pyarrow tables (e.g. `FhirReadResult.tables`) as memtables; missing tables are empty."""
        return cls(**{f.name: memtable(tables.get(f.name, CLINICAL_SCHEMAS[f.name].empty_table()))
                      for f in fields(cls)})

    @classmethod
    def from_backend(cls, table) -> "ClinicalTables":
        """Tables saved under their own names on an engine (`table(name)` returns an Ibis table)."""
        return cls(**{f.name: table(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class MeasurementPeriod:
    """The measurement period: a closed interval of calendar days, as CQL DateTimes from 00:00:00.000 on the first
    day to 23:59:59.999 on the last, at the evaluation request's UTC offset (`cql_datetime` rule 3)."""

    start: date
    end: date
    utc_offset_minutes: int = 0

    @classmethod
    def calendar_year(cls, performance_year: int, utc_offset_minutes: int = 0) -> "MeasurementPeriod":
        return cls(date(performance_year, 1, 1), date(performance_year, 12, 31), utc_offset_minutes)

    @property
    def tz(self) -> int:
        """The evaluation request's UTC offset in minutes (the `tz` argument of `cql_datetime` comparisons)."""
        return self.utc_offset_minutes

    @property
    def start_moment(self) -> Moment:
        return Moment.at(calendar_day(self.start), self.utc_offset_minutes)

    @property
    def end_moment(self) -> Moment:
        last = calendar_day(self.end) + timedelta(days=1) - timedelta(milliseconds=1)
        return Moment.at(last, self.utc_offset_minutes)

    @property
    def interval(self) -> Interval:
        """"Measurement Period" as a CQL Interval<DateTime>."""
        return Interval(self.start_moment, self.end_moment)

    @property
    def start_date(self) -> ir.DateScalar:
        """`date from start of "Measurement Period"`."""
        return ibis.date(self.start)

    @property
    def end_date(self) -> ir.DateScalar:
        """`date from end of "Measurement Period"`."""
        return ibis.date(self.end)

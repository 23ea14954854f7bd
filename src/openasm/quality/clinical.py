"""The clinical tables as one bundle of Ibis tables, and the measurement period (quality.md §4, §7)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.clinical_model import CLINICAL_SCHEMAS


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
    """The measurement period, a closed interval of calendar days (CQL `Interval[start, end]` at ms precision)."""

    start: date
    end: date

    @classmethod
    def calendar_year(cls, performance_year: int) -> "MeasurementPeriod":
        return cls(date(performance_year, 1, 1), date(performance_year, 12, 31))

    @property
    def start_ts(self) -> ir.TimestampScalar:
        """First instant of the period."""
        return ibis.timestamp(datetime(self.start.year, self.start.month, self.start.day))

    @property
    def end_ts(self) -> ir.TimestampScalar:
        """Last instant of the period (23:59:59.999 on the end day)."""
        last = datetime(self.end.year, self.end.month, self.end.day) + timedelta(days=1) - timedelta(milliseconds=1)
        return ibis.timestamp(last)

    @property
    def start_date(self) -> ir.DateScalar:
        return ibis.date(self.start)

    @property
    def end_date(self) -> ir.DateScalar:
        return ibis.date(self.end)

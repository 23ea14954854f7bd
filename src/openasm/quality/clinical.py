"""The clinical tables as one bundle of Ibis tables, and the measurement period (quality.md §4, §7)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any

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
    # Results several measures share (see `shared_result`), and how to materialise them (an engine's `save`).
    materialise: Callable[[str, ir.Table], ir.Table] | None = field(default=None, compare=False, repr=False)
    _shared: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_arrow(cls, tables: dict[str, pa.Table], memtable=ibis.memtable) -> "ClinicalTables":
        """Wrap pyarrow tables (e.g. `FhirReadResult.tables`) as memtables; missing tables are empty."""
        return cls(**{name: memtable(tables.get(name, CLINICAL_SCHEMAS[name].empty_table()))
                      for name in CLINICAL_SCHEMAS})

    @classmethod
    def from_backend(cls, table) -> "ClinicalTables":
        """Tables saved under their own names on an engine (`table(name)` returns an Ibis table)."""
        return cls(**{name: table(name) for name in CLINICAL_SCHEMAS})

    def with_materialise(self, materialise: Callable[[str, ir.Table], ir.Table] | None) -> "ClinicalTables":
        """The same tables, materialising each shared result once (a fresh cache)."""
        return dataclasses.replace(self, materialise=materialise, _shared={})

    def shared(self, key: tuple, name: str, build: Callable[[], Any]) -> Any:
        """The result of `build` (a table, or a dataclass of tables), built once per key; materialised as
        `quality__int_<name>` (one table per dataclass field) when a materialiser is set."""
        if key not in self._shared:
            result = build()
            names = self._shared.setdefault("__names__", set())
            name = name if name not in names else f"{name}_{len(names)}"
            names.add(name)
            if self.materialise is not None:
                if isinstance(result, ir.Table):
                    result = self.materialise(f"quality__int_{name}", result)
                else:
                    result = dataclasses.replace(result, **{
                        f.name: self.materialise(f"quality__int_{name}_{f.name}", getattr(result, f.name))
                        for f in fields(result)})
            self._shared[key] = result
        return self._shared[key]


def shared_result(name: str) -> Callable:
    """Mark a stage function taking the clinical tables (positionally or as `clinical=`) whose result is used more
    than once, or is a natural cut in a measure's plan: within one run it is built once per set of arguments and,
    when the run materialises (`ClinicalTables.with_materialise`), stored as a table. Materialised cuts keep each
    query plan small, which is what the SQL compilers and planners pay for."""
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            clinical = kwargs.get("clinical") or next(a for a in args if isinstance(a, ClinicalTables))
            others = tuple(a for a in args if a is not clinical)
            options = tuple(sorted((k, v) for k, v in kwargs.items() if k != "clinical"))
            suffix = "".join(f"_{k}" for k, v in options if v is True)
            return clinical.shared((name, others, options), name + suffix, lambda: fn(*args, **kwargs))
        return run
    return decorate


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

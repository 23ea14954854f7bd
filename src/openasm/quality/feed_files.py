"""Reading the row files of the ingest-only quality feeds (quality.md §5.5: the Q220 episode file, the Q492 CMS
file): CSV or JSON, one record per row, every value checked and every problem named by file, measure, row and
column.

A file that cannot be read at all (not CSV/JSON, a required column missing, an unknown column) raises
`QualityFileError`. A row with a bad value is quarantined with its reason (or raises, in strict mode), so
`rows_read = rows_accepted + rows_quarantined` always holds.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

QUARANTINE_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("source_row", pa.int64()), ("measure_id", pa.string()),
    ("column", pa.string()), ("reason", pa.string())])


class QualityFileError(ValueError):
    """A quality file (QPP JSON, QRDA III, Q220, Q492) that cannot be used; the message names the file and, where
    known, the measure, the field and the row."""


class RowProblem(ValueError):
    """One bad value in one row: the column and what is wrong."""

    def __init__(self, column: str, problem: str):
        super().__init__(f"column '{column}': {problem}")
        self.column = column
        self.problem = problem


@dataclass
class FeedReadResult:
    """Accepted rows (typed pyarrow table) and quarantined rows, with the counts that reconcile."""

    rows: pa.Table
    quarantine: pa.Table
    rows_read: int

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows.num_rows + self.quarantine.num_rows


def iter_records(path: Path, measure_label: str, list_key: str) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """(column names, iterator of (row number, record)) of a CSV (header row; row 1 = first data row) or JSON file
    (a list of objects, or an object holding the list under `list_key`; row = 1-based position)."""
    path = Path(path)
    if not path.is_file():
        raise QualityFileError(f"{path}: {measure_label} file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise QualityFileError(f"{path}: {measure_label} file is empty (no header row)") from None
            body = list(reader)
        records = []
        for number, values in enumerate(body, start=1):
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise QualityFileError(f"{path}: {measure_label} row {number}: {len(values)} values for "
                                       f"{len(header)} columns")
            records.append((number, {k: (v.strip() or None) for k, v in zip(header, values)}))
        return header, iter(records)
    if suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise QualityFileError(f"{path}: not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from err
        items = document.get(list_key) if isinstance(document, dict) else document
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise QualityFileError(f"{path}: {measure_label} JSON must be a list of objects (or an object with a "
                                   f"'{list_key}' list)")
        columns: list[str] = []
        for item in items:
            columns.extend(k for k in item if k not in columns)
        return columns, iter(enumerate(items, start=1))
    raise QualityFileError(f"{path}: unsupported {measure_label} file type '{suffix}' (use .csv or .json)")


def check_columns(path: Path, measure_label: str, columns: Sequence[str], required: Sequence[str],
                  optional: Sequence[str]) -> None:
    """Every required column present; no column the format does not define (a typo must not become a null)."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise QualityFileError(f"{path}: {measure_label} file lacks required column(s) {', '.join(missing)}")
    unknown = [c for c in columns if c not in required and c not in optional]
    if unknown:
        raise QualityFileError(f"{path}: {measure_label} file has unknown column(s) {', '.join(unknown)}; "
                               f"expected {', '.join([*required, *optional])}")


def read_feed(path: Path, *, measure_id: str, measure_label: str, list_key: str, schema: pa.Schema,
              required: Sequence[str], optional: Sequence[str], parse_row: Callable[[dict], dict],
              row_key: Callable[[dict], Any] | None = None, strict: bool = False) -> FeedReadResult:
    """Read a feed file: `parse_row(record)` returns the typed row or raises RowProblem; a repeated `row_key`
    is quarantined as a duplicate. Accepted rows get `source_file` and `source_row`."""
    path = Path(path)
    columns, records = iter_records(path, measure_label, list_key)
    check_columns(path, measure_label, columns, required, optional)
    accepted: list[dict] = []
    quarantined: list[dict] = []
    seen: dict[Any, int] = {}
    read = 0
    for number, record in records:
        read += 1
        try:
            row = parse_row(record)
            key = row_key(row) if row_key is not None else None
            if key is not None and key in seen:
                raise RowProblem(list_key, f"duplicate of row {seen[key]} ({key})")
        except RowProblem as err:
            if strict:
                raise QualityFileError(f"{path}: {measure_label} row {number}, {err}") from err
            quarantined.append({"source_file": str(path), "source_row": number, "measure_id": measure_id,
                                "column": err.column, "reason": err.problem})
            continue
        if key is not None:
            seen[key] = number
        accepted.append({**row, "source_file": str(path), "source_row": number})
    return FeedReadResult(pa.Table.from_pylist(accepted, schema=schema),
                          pa.Table.from_pylist(quarantined, schema=QUARANTINE_SCHEMA), read)


# ------------------------------------------------------------------------------------------- value parsers
def text(record: dict, column: str, *, required: bool = False, pattern: str | None = None) -> str | None:
    """A text value (JSON numbers are taken as their text); `pattern` checks its shape."""
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowProblem(column, "missing value")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowProblem(column, f"expected text, got {value!r}")
    value = str(value).strip()
    if pattern is not None and not re.match(pattern, value):
        raise RowProblem(column, f"{value!r} does not have the expected shape {pattern}")
    return value


def number(record: dict, column: str, *, required: bool = False, minimum: float | None = None) -> float | None:
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowProblem(column, "missing value")
        return None
    if isinstance(value, bool):
        raise RowProblem(column, f"expected a number, got {value!r}")
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise RowProblem(column, f"expected a number, got {value!r}") from None
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise RowProblem(column, f"expected a finite number, got {value!r}")
    if minimum is not None and parsed < minimum:
        raise RowProblem(column, f"{parsed:g} is below {minimum:g}")
    return parsed


def count(record: dict, column: str, *, required: bool = False) -> int | None:
    """A non-negative whole number."""
    parsed = number(record, column, required=required, minimum=0)
    if parsed is None:
        return None
    if parsed != int(parsed):
        raise RowProblem(column, f"expected a whole number, got {record.get(column)!r}")
    return int(parsed)


def flag(record: dict, column: str, *, required: bool = False) -> bool | None:
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowProblem(column, "missing value")
        return None
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "t", "yes", "y", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "0"):
        return False
    raise RowProblem(column, f"expected true or false, got {value!r}")


def iso_date(record: dict, column: str, *, required: bool = False) -> date | None:
    value = text(record, column, required=required)
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10]) if re.match(r"^\d{4}-\d{2}-\d{2}", value) else date.fromisoformat(value)
    except ValueError:
        raise RowProblem(column, f"{value!r} is not a date (YYYY-MM-DD)") from None


def choice(record: dict, column: str, allowed: Sequence[str], *, required: bool = False) -> str | None:
    """A code from a closed set, compared in upper case."""
    value = text(record, column, required=required)
    if value is None:
        return None
    upper = value.upper()
    if upper not in allowed:
        raise RowProblem(column, f"{value!r} is not one of {', '.join(allowed)}")
    return upper

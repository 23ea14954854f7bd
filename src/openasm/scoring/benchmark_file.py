"""A user's MIPS benchmark file in the CMSgov/qpp-measures-data JSON format (quality.md §2.2, §3), validated
strictly: every error names the file, the record and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.rules.schema import FIRST_YEAR, LAST_YEAR
from openasm.scoring.quality_benchmarks import BENCHMARK_SCHEMA, KEY, SUBMISSION_METHODS, UNBOUNDED_METRIC_TYPES
from openasm.scoring.quality_points import DECILE_KEYS, PERCENTILE_KEYS, pcol


class BenchmarkFileError(ValueError):
    """A benchmark file is not in the qpp-measures-data format; the message names file, record and field."""


# ------------------------------------------------------------------------------------------ JSON (qpp format)
def _fail(label: str, index: int | None, field: str | None, problem: str) -> BenchmarkFileError:
    where = label + (f" record {index}" if index is not None else "") + (f" field '{field}'" if field else "")
    return BenchmarkFileError(f"{where}: {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _year(record: dict, field: str, label: str, index: int) -> int:
    value = record.get(field)
    if not _is_number(value) or int(value) != value or not FIRST_YEAR - 10 <= value <= LAST_YEAR:
        raise _fail(label, index, field, f"expected a four-digit year, got {value!r}")
    return int(value)


def _text(record: dict, field: str, label: str, index: int, required: bool = True) -> str | None:
    value = record.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(label, index, field, f"expected a non-empty string, got {value!r}")
    return value


def _flag(record: dict, field: str, label: str, index: int, default: bool | None) -> bool:
    if field not in record and default is not None:
        return default
    value = record.get(field)
    if not isinstance(value, bool):
        raise _fail(label, index, field, f"expected true or false, got {value!r}")
    return value


def _method(record: dict, label: str, index: int) -> str:
    value = _text(record, "submissionMethod", label, index)
    if value not in SUBMISSION_METHODS:
        raise _fail(label, index, "submissionMethod",
                    f"unknown submission method {value!r}; expected one of {', '.join(SUBMISSION_METHODS)}")
    return value


def _cut_points(record: dict, label: str, index: int, inverse: bool, bounded: bool) -> dict[int, float | None]:
    """`percentiles` (keys 1 … 99), or a legacy `deciles` array (≤ PY2022; lower bounds of deciles 2–10,
    descending for inverse measures) converted to P(10) … P(90)."""
    if "percentiles" in record:
        raw = record["percentiles"]
        if not isinstance(raw, dict):
            raise _fail(label, index, "percentiles", f"expected an object keyed 1, 10, ..., 90, 99, got {raw!r}")
        expected = {str(k) for k in PERCENTILE_KEYS}
        missing, unknown = sorted(expected - set(raw), key=int), sorted(set(raw) - expected)
        if missing:
            raise _fail(label, index, "percentiles", f"missing percentile keys {', '.join(missing)}")
        if unknown:
            raise _fail(label, index, "percentiles", f"unknown percentile keys {', '.join(unknown)}")
        values: dict[int, float | None] = {}
        for key in PERCENTILE_KEYS:
            value = raw[str(key)]
            if not _is_number(value):
                raise _fail(label, index, f"percentiles.{key}", f"expected a number, got {value!r}")
            values[key] = float(value)
        fields = {k: f"percentiles.{k}" for k in PERCENTILE_KEYS}
    elif "deciles" in record:
        raw = record["deciles"]
        if not isinstance(raw, list) or len(raw) != len(DECILE_KEYS):
            raise _fail(label, index, "deciles",
                        f"expected a list of {len(DECILE_KEYS)} numbers (lower bounds of deciles 2-10), got {raw!r}")
        for position, value in enumerate(raw):
            if not _is_number(value):
                raise _fail(label, index, f"deciles[{position}]", f"expected a number, got {value!r}")
        ordered = list(reversed(raw)) if inverse else list(raw)  # inverse arrays run from p90 down to p10
        values = {1: None, **{k: float(v) for k, v in zip(DECILE_KEYS, ordered)}, 99: None}
        fields = {k: f"deciles[{(len(DECILE_KEYS) - i - 1) if inverse else i}]" for i, k in enumerate(DECILE_KEYS)}
    else:
        raise _fail(label, index, "percentiles", "missing (and no legacy 'deciles' array)")
    previous: tuple[int, float] | None = None
    for key in PERCENTILE_KEYS:
        value = values[key]
        if value is None:
            continue
        if bounded and not 0 <= value <= 100:
            raise _fail(label, index, fields[key], f"{value} is outside 0-100")
        if previous is not None and value < previous[1]:
            raise _fail(label, index, fields[key],
                        f"{value} is below {fields[previous[0]]} = {previous[1]} (values must ascend)")
        previous = (key, value)
    return values


def parse_benchmark_records(records: Any, *, file_label: str) -> list[dict[str, Any]]:
    """Validate the records of a qpp-measures-data `benchmarks/<PY>.json` file and return one row per record in
    the columns of BENCHMARK_SCHEMA (source = mips_historical). Raises BenchmarkFileError naming the file, the
    0-based record index and the field: wrong types, missing or unknown percentile keys, values that do not
    ascend or (proportion measures) leave 0–100, unknown submission methods, repeated keys."""
    if not isinstance(records, list):
        raise _fail(file_label, None, None, f"expected a JSON array of benchmark records, got {type(records).__name__}")
    rows, seen = [], {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise _fail(file_label, index, None, f"expected an object, got {record!r}")
        measure_id = _text(record, "measureId", file_label, index)
        performance_year = _year(record, "performanceYear", file_label, index)
        benchmark_year = _year(record, "benchmarkYear", file_label, index)
        method = _method(record, file_label, index)
        metric_type = _text(record, "metricType", file_label, index, required=False)
        inverse = _flag(record, "isInverse", file_label, index, default=None)
        average = record.get("averagePerformanceRate")
        if average is not None and not _is_number(average):
            raise _fail(file_label, index, "averagePerformanceRate", f"expected a number or null, got {average!r}")
        cuts = _cut_points(record, file_label, index, inverse, metric_type not in UNBOUNDED_METRIC_TYPES)
        key = (performance_year, measure_id, method)
        if key in seen:
            raise _fail(file_label, index, "submissionMethod",
                        f"repeats measure {measure_id} / {method} / PY{performance_year} of record {seen[key]}")
        seen[key] = index
        rows.append({
            "performance_year": performance_year, "measure_id": measure_id, "collection_type": method,
            "source": "mips_historical", "benchmark_performance_year": performance_year,
            "benchmark_year": benchmark_year, "metric_type": metric_type, "is_inverse": inverse,
            "is_topped_out": _flag(record, "isToppedOut", file_label, index, default=False),
            "is_topped_out_by_program": _flag(record, "isToppedOutByProgram", file_label, index, default=False),
            "is_flat": all(v == k for k, v in cuts.items() if v is not None),
            "average_performance_rate": None if average is None else float(average), "reporter_count": None,
            **{pcol(k): v for k, v in cuts.items()}, "exclusion_reason": None,
        })
    return rows


def parse_exclusion_records(records: Any, *, file_label: str) -> list[dict[str, Any]]:
    """Validate `benchmarks/<PY>/benchmark-exclusion-reasons.json` records (measureId, performanceYear,
    benchmarkYear, submissionMethod, reasonCodes[]) into key rows with `exclusion_reason` = codes joined by '|'."""
    if not isinstance(records, list):
        raise _fail(file_label, None, None, "expected a JSON array of exclusion records")
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise _fail(file_label, index, None, f"expected an object, got {record!r}")
        codes = record.get("reasonCodes")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c for c in codes):
            raise _fail(file_label, index, "reasonCodes", f"expected a non-empty list of codes, got {codes!r}")
        rows.append({
            "performance_year": _year(record, "performanceYear", file_label, index),
            "measure_id": _text(record, "measureId", file_label, index),
            "collection_type": _method(record, file_label, index),
            "benchmark_year": _year(record, "benchmarkYear", file_label, index),
            "exclusion_reason": "|".join(codes),
        })
    return rows


def _load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise BenchmarkFileError(f"{path}: unreadable: {err}") from err
    except json.JSONDecodeError as err:
        raise BenchmarkFileError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from err


def read_mips_benchmark_file(path: Path | str, *, exclusion_reasons_path: Path | str | None = None) -> pa.Table:
    """A user benchmark file in the qpp-measures-data format (plus, optionally, its exclusion-reasons file) as a
    BENCHMARK_SCHEMA table. A key both benchmarked and excluded is an error."""
    rows = parse_benchmark_records(_load_json(Path(path)), file_label=str(path))
    if exclusion_reasons_path is not None:
        benchmarked = {tuple(r[c] for c in KEY) for r in rows}
        label = str(exclusion_reasons_path)
        for index, excluded in enumerate(parse_exclusion_records(_load_json(Path(label)), file_label=label)):
            if tuple(excluded[c] for c in KEY) in benchmarked:
                raise _fail(label, index, "measureId",
                            f"measure {excluded['measure_id']} / {excluded['collection_type']} / "
                            f"PY{excluded['performance_year']} also has a benchmark in {path}")
            rows.append({**{c: None for c in BENCHMARK_SCHEMA.names}, **excluded, "source": "mips_historical",
                         "benchmark_performance_year": excluded["performance_year"],
                         "is_topped_out": False, "is_topped_out_by_program": False, "is_flat": False})
    return pa.Table.from_pylist(rows, schema=BENCHMARK_SCHEMA)

"""Formats and row selection of an explanation: money, percentages of a fraction, points, and the check that a
recomputed number matches the stored one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa


def rows_of(table: pa.Table | Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Rows of a fetched Arrow table or an iterable of dicts."""
    if table is None:
        return []
    if isinstance(table, pa.Table):
        return table.to_pylist()
    return [dict(r) for r in table]


def rows_for(rows: list[dict], npi: str, performance_year: int, npi_column: str = "npi") -> list[dict]:
    return [r for r in rows if str(r.get(npi_column)) == npi
            and ("performance_year" not in r or r["performance_year"] in (None, performance_year))]


def num(value: Any) -> float | None:
    return None if value is None else float(value)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def pct(value: float | None, digits: int, signed: bool = True) -> str:
    """A fraction as a percentage with `digits` decimals of the fraction (6 → 4 decimals of a percent)."""
    if value is None:
        return "—"
    return f"{value * 100:{'+' if signed else ''}.{max(digits - 2, 0)}f}%"


def minus_points(points: float) -> str:
    return f"−{fmt(points, 0)} points" if points else "0 points"


def check_recomputed(label: str, recomputed: float | None, stored: float | None, tol: float) -> str:
    if recomputed is None or stored is None or abs(recomputed - stored) <= tol:
        return ""
    return f"{label}: recomputed {recomputed:.6g} differs from the stored {stored:.6g}"

"""Range checks on a stage's numeric inputs: each value must be finite and within its bounds (nulls pass; a
stage decides what a missing value means). A finding names the row by its key columns and the column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir

Bounds = tuple[float | None, float | None]


def _rule_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"a finite number from {low:g} to {high:g}"
    if low is not None:
        return f"a finite number of at least {low:g}"
    return "a finite number" if high is None else f"a finite number of at most {high:g}"


def range_findings(table: ir.Table, *, key: Sequence[str], bounds: Mapping[str, Bounds]) -> ir.Table:
    """One row per key and column whose value is NaN, infinite or outside its bounds.

    Columns: the key columns, column_name, value (float64), expected (the rule in words)."""
    parts = []
    for column, (low, high) in bounds.items():
        value = table[column].cast("float64")
        bad = value.isnan() | value.isinf()
        if low is not None:
            bad |= value < low
        if high is not None:
            bad |= value > high
        parts.append(table.filter(value.notnull() & bad).select(
            *key, column_name=ibis.literal(column), value=value, expected=ibis.literal(_rule_text(low, high))))
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]

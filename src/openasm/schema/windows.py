"""Window results as plain columns, the one way stages use them on every backend."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def with_group_max(table: ir.Table, value: ir.Value, group_by: ir.Value, name: str) -> ir.Table:
    """`table` with column `name` = the largest `value` in each `group_by` group. Taken as a column so that a later
    filter compares against it: Spark allows no window function inside WHERE."""
    return table.mutate(**{name: value.max().over(ibis.window(group_by=group_by))})

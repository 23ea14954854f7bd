"""Quarantine reasons: how many rows each check kept out, per table and column (the validation summary)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def count_quarantine_reasons(*, quarantine: ir.Table) -> ir.Table:
    """Grain: table x column x reason, with row counts."""
    return quarantine.group_by("table_name", "column_name", "reason").agg(row_count=quarantine.count()).order_by(
        "table_name", ibis.desc("row_count"), "column_name"
    )

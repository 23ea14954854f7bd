"""Helpers for the cost tests: rules for the conformance years and running an expression on one backend."""

from __future__ import annotations

import ibis.expr.types as ir
import pyarrow as pa
import pytest

from openasm.rules import RulesForYear, load_rules

# The cost parameters these stages read have held since PY2024 (the first MIPS year of COST_HF_1/COST_LBP_1).
COST_PARAMETERS = (
    "cost.band_table", "cost.points_interpolation", "cost.sd_ddof", "cost.benchmark_trim", "cost.case_minimum",
    "cost.benchmark_pool",
)


@pytest.fixture(scope="session")
def rules() -> RulesForYear:
    """Rules of PY2027, the first ASM year. PY2024/2025 rules cannot be resolved (ASM parameters start in 2027),
    but every cost parameter used here has the value keyed 2024, so it is the PY2024/2025 value too."""
    resolved = load_rules(2027)
    for name in COST_PARAMETERS:
        assert resolved.resolved(name).key_year == 2024, name
    return resolved


def run(engine, expr: ir.Table) -> list[dict]:
    """Execute `expr` on the engine's backend (memtables included) and return its rows."""
    table: pa.Table = engine.con.to_pyarrow(expr)
    return table.to_pylist()

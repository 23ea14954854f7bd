"""One arithmetic for Ibis columns and numpy arrays.

The scoring and payment formulas (`openasm.scoring.formulas`, `openasm.payment.exchange`) are written once against
the few operations below, so the engine's stages (Ibis expressions, any backend) and the decision tools (numpy
arrays: what-if levers, break-even solver, Monte Carlo over thousands of cohorts) run the very same formula text.
The operation set follows the value passed in: any Ibis expression among the operands selects Ibis, otherwise
numpy. Null is NaN on the numpy side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np


def is_ibis(*values: Any) -> bool:
    """True when any operand is an Ibis expression."""
    return any(isinstance(v, ir.Expr) for v in values)


def where(condition: Any, when_true: Any, when_false: Any) -> Any:
    """Element-wise if/else (SQL CASE WHEN)."""
    if is_ibis(condition, when_true, when_false):
        return ibis.ifelse(condition, when_true, when_false)
    return np.where(condition, when_true, when_false)


def select(branches: Sequence[tuple[Any, Any]], default: Any) -> Any:
    """The first (condition, value) whose condition holds, else `default` (SQL CASE, numpy select)."""
    if is_ibis(default, *[part for branch in branches for part in branch]):
        return ibis.cases(*branches, else_=default)
    return np.select([np.asarray(c, dtype=bool) for c, _ in branches], [v for _, v in branches], default)


def maximum(a: Any, b: Any) -> Any:
    """Element-wise larger value."""
    return ibis.greatest(a, b) if is_ibis(a, b) else np.maximum(a, b)


def minimum(a: Any, b: Any) -> Any:
    """Element-wise smaller value."""
    return ibis.least(a, b) if is_ibis(a, b) else np.minimum(a, b)


def clip(value: Any, low: Any, high: Any) -> Any:
    """`value` held inside [low, high]."""
    return maximum(minimum(value, high), low)


def exp(value: Any) -> Any:
    """Element-wise e**value."""
    return value.exp() if is_ibis(value) else np.exp(value)


def safe_divide(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, null (NaN) where the denominator is 0."""
    if is_ibis(numerator, denominator):
        if not isinstance(denominator, ir.Expr):
            denominator = ibis.literal(float(denominator))
        return numerator / denominator.nullif(0.0)
    denominator = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator == 0.0, np.nan, np.asarray(numerator, dtype=float) / np.where(
            denominator == 0.0, 1.0, denominator))


def is_finite(value: Any) -> Any:
    """Element-wise: a number that is neither null, NaN nor infinite."""
    if is_ibis(value):
        return value.notnull() & ~value.isnan() & ~value.isinf()
    return np.isfinite(np.asarray(value, dtype=float))


def null_float(like: Any = None) -> Any:
    """A float null of the operands' kind (NaN for numpy)."""
    return ibis.null("float64") if is_ibis(like) else np.nan


def as_float(value: Any) -> Any:
    """A boolean or integer operand as float64 (1.0 for true)."""
    return value.cast("float64") if is_ibis(value) else np.asarray(value, dtype=float)


def notnull(value: Any) -> Any:
    """Element-wise: the value is present (not null / not NaN)."""
    return value.notnull() if is_ibis(value) else ~np.isnan(np.asarray(value, dtype=float))


def fill_null(value: Any, fallback: Any) -> Any:
    """Nulls (NaN) replaced by `fallback`."""
    return value.fill_null(fallback) if is_ibis(value) else np.where(np.isnan(value), fallback, value)

"""Sums that do not depend on the order rows reach them, so identical inputs give identical outputs on any
number of threads or Spark partitions.

A float sum run in parallel adds in whatever order the threads finish, and the last bits of the result move
(seen up to 1e-12 relative after least squares). Here each addend is rounded to 1e-14 and summed as
DECIMAL(38, 14), which is exact (24 integer digits: sums of squared dollar costs over millions of episodes fit),
then turned back into float64: a documented rounding far below a cent or a point, and the same result every time.
A group holding NaN or an infinity (a ratio over a zero expected cost) keeps the float sum, as before, since no
decimal holds it; that result does not depend on the order either. Means and standard deviations are built on
these sums.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

EXACT = dt.Decimal(38, 14)


def exact_sum(value: ir.NumericValue) -> ir.FloatingScalar:
    """Σ value (nulls skipped), independent of summation order."""
    x = value.cast("float64")
    non_finite = x.isnan() | x.isinf()
    exact = ibis.ifelse(non_finite, 0.0, x).cast(EXACT).sum().cast("float64")
    return ibis.ifelse(non_finite.any(), x.sum(), exact)


def exact_mean(value: ir.NumericValue) -> ir.FloatingScalar:
    """The mean of the non-null values, on `exact_sum`."""
    return exact_sum(value) / value.count().cast("float64").nullif(0.0)


def exact_std(value: ir.NumericValue, ddof: int = 1) -> ir.FloatingScalar:
    """The standard deviation (ddof 1: sample, 0: population) of the non-null values, on `exact_sum`."""
    n = value.count().cast("float64")
    x = value.cast("float64")
    total, squares = exact_sum(x), exact_sum(x * x)
    variance = (squares - total * total / n.nullif(0.0)) / (n - ddof).nullif(0.0)
    return variance.clip(lower=0.0).sqrt()

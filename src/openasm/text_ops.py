"""Text operations that Ibis lacks in a form every backend runs alike and fast.

`trim_chars(text, chars)`: the text without any of `chars` at either edge. Ibis's own `strip()` trims Python's
whitespace set, which its PySpark compiler writes as a regular expression whose '\\f' Spark reads as the letter f.
The SQL functions that trim a set of characters are DuckDB's `trim(text, chars)` and Spark's `btrim(text, chars)`
(Spark's two-argument `trim` takes the characters first). DuckDB's trim copies every value, so it runs only on
values whose first or last character is at or below the highest of `chars` (most values need no trimming: half
the time of trimming all);
Spark's btrim is cheaper than such a guard, which did not stop a regular expression in the other branch from
being evaluated on every row (5x slower).
"""

from __future__ import annotations

import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.duckdb import DuckDBCompiler
from ibis.backends.sql.compilers.pyspark import PySparkCompiler
from ibis.common.annotations import attribute


class TrimChars(ops.Value):
    """`arg` without any character of `chars` at its start or end (null stays null). `arg` should be a column:
    DuckDB reads it once per character and edge."""

    arg: ops.Value[dt.String]
    chars: str

    dtype = dt.string

    @attribute
    def shape(self):
        return self.arg.shape


def _visit_trim_chars_duckdb(self, op, *, arg, chars):
    # The guard tests the code of the first and last character against the highest of `chars`: a superset of the
    # values to trim, in two comparisons (blanks are all at or below 32) instead of a test per character and edge.
    highest = sge.convert(max(ord(c) for c in chars))
    edged = sg.or_(self.f.ascii(arg) <= highest, self.f.ascii(self.f.array_extract(arg, -1)) <= highest)
    return self.if_(edged, self.f.trim(arg, sge.convert(chars)), arg)


def _visit_trim_chars_spark(self, op, *, arg, chars):
    return self.f.btrim(arg, sge.convert(chars))


# Ibis finds a compiler's rule for an operation as its `visit_<operation>` method.
DuckDBCompiler.visit_TrimChars = _visit_trim_chars_duckdb
PySparkCompiler.visit_TrimChars = _visit_trim_chars_spark


def trim_chars(text: ir.StringValue, chars: str) -> ir.StringValue:
    """`text` without any of `chars` at either edge (`TrimChars`)."""
    return TrimChars(text, chars).to_expr()

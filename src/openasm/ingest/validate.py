"""Validate a raw source table against its contract: every row is accepted or quarantined with a reason.

Stage functions here are pure: Ibis tables in, Ibis tables out. `check_rows` adds typed columns and the
first failure of each row (one query over the source: every cast and check is a column); `duplicate_rows`
finds, by a window over the key, the rows that repeat the key of an earlier row passing every check;
`accepted_rows` and `quarantined_rows` split the checked rows by both, so that accepted + quarantined = read
holds by construction (and is asserted by ingest and the tests).
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from openasm.engine_sources import MALFORMED, ROW_NUMBER, SOURCE_FILE
from openasm.ingest.checks import RowCheck, column_checks, parse_value
from openasm.schema.contract import TableContract, is_identifier

FAIL_COLUMN = "_fail_column"
FAIL_REASON = "_fail_reason"
FAIL_VALUE = "_fail_value"
FAIL_COUNT = "_fail_count"
BENE_KNOWN = "_bene_known"
RECORD_COLUMN = "(record)"

QUARANTINE_SCHEMA = ibis.schema(
    {
        "table_name": "string",
        "source_file": "string",
        "row_number": "int64",
        "column_name": "string",
        "reason": "string",
        "raw_value": "string",
        "failure_count": "int64",
    }
)


def check_rows(*, raw: ir.Table, contract: TableContract, known_bene: ir.Table | None = None) -> ir.Table:
    """Typed contract columns plus the first failing check and the failure count of each row.

    `known_bene` (one column `bene_id`) makes `bene_id` values outside it a failure ("unknown bene_id").
    A raw row whose `_malformed` is set (a record the reader could not parse) fails with that reason first.
    """
    combined = raw.mutate(**{_typed(c.name): parse_value(raw, c) for c in contract.columns})
    check_bene = known_bene is not None and "bene_id" in contract.column_names
    if check_bene:
        known = known_bene.select(_known_bene_id=known_bene["bene_id"]).distinct()
        known = known.mutate(**{BENE_KNOWN: ibis.literal(True)})
        combined = combined.left_join(
            known, combined[_typed("bene_id")] == known["_known_bene_id"]
        ).drop("_known_bene_id")
    checks = column_checks(combined, _TypedAccessor(combined), contract)
    if MALFORMED in raw.columns:
        checks.insert(0, RowCheck(RECORD_COLUMN, combined[MALFORMED].notnull(), combined[MALFORMED],
                                  ibis.null(dt.string)))
    if check_bene:
        bene_id = combined[_typed("bene_id")]
        unknown = bene_id.notnull() & combined[BENE_KNOWN].isnull()
        checks.append(RowCheck("bene_id", unknown, ibis.literal("unknown bene_id (not in beneficiary)"),
                               ibis.null(dt.string)))
    flagged = combined.mutate(
        **{
            FAIL_COLUMN: _first(checks, lambda c: ibis.literal(c.column)),
            FAIL_REASON: _first(checks, lambda c: c.reason),
            FAIL_VALUE: _first(checks, lambda c: c.raw_value.cast("string")),
            FAIL_COUNT: sum((c.failed.fill_null(False).cast("int64") for c in checks), ibis.literal(0, "int64")),
        }
    )
    return flagged.select(
        flagged[ROW_NUMBER].cast("int64").name(ROW_NUMBER),
        flagged[SOURCE_FILE].cast("string").name(SOURCE_FILE),
        *[flagged[_typed(c.name)].cast(c.ibis_type).name(c.name) for c in contract.columns],
        FAIL_COLUMN, FAIL_REASON, FAIL_VALUE, FAIL_COUNT,
    )


def _typed(name: str) -> str:
    return f"_typed__{name}"


class _TypedAccessor:
    """Lets the checks address typed columns by their contract name."""

    def __init__(self, table: ir.Table) -> None:
        self._table = table
        self.columns = [
            name.removeprefix("_typed__") for name in table.columns if name.startswith("_typed__")
        ]

    def __getitem__(self, name: str) -> ir.Value:
        return self._table[_typed(name)]


def _first(checks: list[RowCheck], pick) -> ir.StringValue:
    """Value of the first failing check (checks are ordered as the contract's columns)."""
    return ibis.cases(*[(c.failed.fill_null(False), pick(c)) for c in checks], else_=ibis.null(dt.string))


def duplicate_rows(*, checked: ir.Table, contract: TableContract) -> ir.Table:
    """(`_source_file`, `_row_number`) of each row that passes every check but repeats the key of an earlier
    passing row (by file, then row): a window over the key, on the key and position columns only."""
    passing = checked.filter(checked[FAIL_COUNT] == 0).select(*contract.key, SOURCE_FILE, ROW_NUMBER)
    window = ibis.window(group_by=[passing[k] for k in contract.key],
                         order_by=[passing[SOURCE_FILE], passing[ROW_NUMBER]])
    ranked = passing.mutate(_occurrence=ibis.row_number().over(window))
    return ranked.filter(ranked._occurrence > 0).select(SOURCE_FILE, ROW_NUMBER)


def _same_row(table: ir.Table, duplicates: ir.Table) -> list[ir.BooleanValue]:
    return [table[SOURCE_FILE] == duplicates[SOURCE_FILE], table[ROW_NUMBER] == duplicates[ROW_NUMBER]]


def accepted_rows(*, checked: ir.Table, duplicates: ir.Table, contract: TableContract) -> ir.Table:
    """Rows with no failure and a key not seen before, in the contract's columns and types."""
    ok = checked.filter(checked[FAIL_COUNT] == 0)
    ok = ok.anti_join(duplicates, _same_row(ok, duplicates))
    return ok.select(**{c.name: ok[c.name] for c in contract.columns})


def quarantined_rows(*, checked: ir.Table, duplicates: ir.Table, contract: TableContract) -> ir.Table:
    """One row per rejected input row: table, file, row number, first failing column and reason."""
    passing = checked.filter(checked[FAIL_COUNT] == 0)
    repeats = passing.semi_join(duplicates, _same_row(passing, duplicates))
    key_shown = ibis.null(dt.string) if any(is_identifier(k) for k in contract.key) else ibis.literal("|").join(
        [repeats[k].cast("string").fill_null("") for k in contract.key])
    repeated = repeats.select(
        table_name=ibis.literal(contract.name),
        source_file=repeats[SOURCE_FILE].cast("string"),
        row_number=repeats[ROW_NUMBER].cast("int64"),
        column_name=ibis.literal(",".join(contract.key)),
        reason=ibis.literal(f"duplicate key ({', '.join(contract.key)}) of an earlier row"),
        raw_value=key_shown,
        failure_count=ibis.literal(1, "int64"),
    )
    bad = checked.filter(checked[FAIL_COUNT] > 0)
    failing = bad.select(
        table_name=ibis.literal(contract.name),
        source_file=bad[SOURCE_FILE].cast("string"),
        row_number=bad[ROW_NUMBER].cast("int64"),
        column_name=bad[FAIL_COLUMN],
        reason=bad[FAIL_REASON],
        raw_value=bad[FAIL_VALUE],
        failure_count=bad[FAIL_COUNT].cast("int64"),
    )
    return failing.union(repeated)

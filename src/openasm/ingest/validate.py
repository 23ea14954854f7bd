"""Validate a raw source table against its contract: every row is accepted or quarantined with a reason.

Stage functions here are pure: Ibis tables in, Ibis tables out. `check_rows` adds typed columns and the
first failure of each row (one query over the source: every cast and check is a column); `numbered_rows` tells
apart the rows a connector made from one source record; `duplicate_rows` finds, by a window over the key, the rows that repeat the key of an earlier row passing every check;
`accepted_rows` and `quarantined_rows` split the checked rows by both, so that accepted + quarantined = read
holds by construction (and is asserted by the ingest runner and the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from openasm.engine_sources import MALFORMED, ROW_COPY, ROW_NUMBER, SOURCE_FILE
from openasm.ingest.checks import RowCheck, column_checks, parse_number, parse_value, trimmed
from openasm.schema.contract import TableContract, is_identifier

FAIL_COLUMN = "_fail_column"
FAIL_REASON = "_fail_reason"
FAIL_VALUE = "_fail_value"
FAIL_COUNT = "_fail_count"
BENE_KNOWN = "_bene_known"
RECORD_COLUMN = "(record)"
UNKNOWN_BENE = "unknown bene_id (not in beneficiary)"
TEXT, NUMBER, TYPED, FAILED = "_text__", "_number__", "_typed__", "_failed__"
POSITION = (SOURCE_FILE, ROW_NUMBER, ROW_COPY)

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


def check_rows(*, raw: ir.Table, contract: TableContract, known_bene: ir.Table | None = None,
               text_trimmed: bool = False) -> ir.Table:
    """Typed contract columns plus the first failing check and the failure count of each row.

    `known_bene` (one column `bene_id`) makes `bene_id` values outside it a failure ("unknown bene_id").
    `text_trimmed`: the source trimmed every text value already (a fixed-width cut), so only blanks become null.
    A raw row whose `_malformed` is set (a record the reader could not parse) fails with that reason first.
    The query is built in steps, each a projection of the one before (trimmed text, numbers, typed values,
    one boolean per check, then the first failure and the count), so every cast, regex and check runs
    once per value: a single projection would repeat them (Ibis inlines each step into the next).
    """
    given = [c for c in contract.columns if c.name in raw.columns]
    texts = {c.name: raw[c.name].nullif("") if text_trimmed else trimmed(raw[c.name])
             for c in given if raw[c.name].type().is_string()}
    step = _barrier(raw.mutate(**{TEXT + name: text for name, text in texts.items()}), 0)
    sources = {c.name: step[TEXT + c.name] if c.name in texts else step[c.name] for c in given}
    numbers = {c.name: parse_number(sources[c.name]) for c in given if c.ibis_type.is_numeric()}
    step = _barrier(step.mutate(**{NUMBER + n: v for n, v in numbers.items() if v is not None}), 1)
    sources = {c.name: step[TEXT + c.name] if c.name in texts else step[c.name] for c in given}
    parsed = {c.name: parse_value(sources[c.name], step[NUMBER + c.name] if NUMBER + c.name in step.columns else None,
                                  c) for c in given}
    as_given = {name for name, value in parsed.items() if value.equals(sources[name])}
    step = step.mutate(**{TYPED + name: value for name, value in parsed.items()})
    check_bene = known_bene is not None and "bene_id" in contract.column_names and "bene_id" in raw.columns
    if check_bene:
        known = known_bene.select(_known_bene_id=known_bene["bene_id"]).distinct()
        known = known.mutate(**{BENE_KNOWN: ibis.literal(True)})
        step = step.left_join(known, step[TYPED + "bene_id"] == known["_known_bene_id"]).drop("_known_bene_id")
    step = _barrier(step, 2)
    row = _Row(step, contract, set(texts), as_given)
    checks = column_checks(row, contract)
    if MALFORMED in raw.columns:
        checks.insert(0, RowCheck(RECORD_COLUMN, step[MALFORMED].notnull(), step[MALFORMED], ibis.null(dt.string)))
    if check_bene:
        unknown = step[TYPED + "bene_id"].notnull() & step[BENE_KNOWN].isnull()
        checks.append(RowCheck("bene_id", unknown, ibis.literal(UNKNOWN_BENE),
                               ibis.null(dt.string)))
    step = _barrier(step.mutate(**{f"{FAILED}{i}": c.failed for i, c in enumerate(checks)}), 3)
    flags = [step[f"{FAILED}{i}"] for i in range(len(checks))]
    zero = ibis.literal(0, "int64")
    count = ibis.ifelse(ibis.or_(*flags), sum((flag.fill_null(False).cast("int64") for flag in flags), zero), zero)
    flagged = step.mutate(
        **{
            FAIL_COLUMN: _first(count, flags, [ibis.literal(c.column) for c in checks]),
            FAIL_REASON: _first(count, flags, [c.reason for c in checks]),
            FAIL_VALUE: _first(count, flags, [c.raw_value.cast("string") for c in checks]),
            FAIL_COUNT: count,
        }
    )
    return flagged.select(
        flagged[ROW_NUMBER].cast("int64").name(ROW_NUMBER),
        flagged[SOURCE_FILE].cast("string").name(SOURCE_FILE),
        *([flagged[ROW_COPY].cast("int64").name(ROW_COPY)] if ROW_COPY in raw.columns else []),
        *[(flagged[TYPED + c.name] if c.name in raw.columns else ibis.null(c.ibis_type)).cast(c.ibis_type)
          .name(c.name) for c in contract.columns],
        FAIL_COLUMN, FAIL_REASON, FAIL_VALUE, FAIL_COUNT,
    )


def unknown_bene_rows(*, checked: ir.Table, known_bene: ir.Table) -> ir.Table:
    """The checked rows (as `check_rows` gave them without `known_bene`) whose `bene_id` is not in `known_bene`,
    with that failure added as it would have been: the last check, so it is a row's first failure only when no
    other check failed, and it adds one to the count either way."""
    known = known_bene.select(_known_bene_id=known_bene["bene_id"]).distinct()
    named = checked.filter(checked["bene_id"].notnull())
    unknown = named.anti_join(known, named["bene_id"] == known["_known_bene_id"])
    first = unknown[FAIL_COUNT] == 0
    return unknown.mutate(**{
        FAIL_COLUMN: ibis.ifelse(first, ibis.literal("bene_id"), unknown[FAIL_COLUMN]),
        FAIL_REASON: ibis.ifelse(first, ibis.literal(UNKNOWN_BENE), unknown[FAIL_REASON]),
        FAIL_VALUE: ibis.ifelse(first, ibis.null(dt.string), unknown[FAIL_VALUE]),
        FAIL_COUNT: unknown[FAIL_COUNT] + 1,
    }).select(*checked.columns)


def _barrier(table: ir.Table, level: int) -> ir.Table:
    """End a step: a nondeterministic column stops Ibis from inlining this projection into the next (the
    engines drop the unused column; the projection stays)."""
    return table.mutate(**{f"_step_{level}": ibis.random()})


class _Row:
    """The checks' view of a checked row (`checks.CheckInputs`)."""

    def __init__(self, step: ir.Table, contract: TableContract, text_columns: set[str], as_given: set[str]) -> None:
        self._step, self._texts, self._as_given = step, text_columns, as_given
        self._types = {c.name: c.ibis_type for c in contract.columns}

    def may_fail_parse(self, name: str) -> bool:
        return name not in self._as_given

    def typed(self, name: str) -> ir.Value:
        column = TYPED + name
        return self._step[column] if column in self._step.columns else ibis.null(self._types[name])

    def present(self, name: str) -> ir.BooleanValue:
        if name in self._texts:
            return self._step[TEXT + name].notnull()
        return self._step[name].notnull() if name in self._step.columns else ibis.literal(False)

    def text(self, name: str) -> ir.StringValue:
        if name in self._texts:
            return self._step[TEXT + name]
        return self._step[name].cast("string") if name in self._step.columns else ibis.null(dt.string)


def _first(count: ir.IntegerValue, flags: list[ir.BooleanValue], values: list[ir.Value]) -> ir.StringValue:
    """Value of the first failing check (checks are ordered as the contract's columns); the search runs only
    on rows with a failure."""
    return ibis.ifelse(count > 0, ibis.cases(*zip(flags, values), else_=ibis.null(dt.string)),
                       ibis.null(dt.string))


def numbered_rows(checked: ir.Table, contract: TableContract, unique_positions: bool = False) -> ir.Table:
    """The checked rows with `_row_copy`, so that (`_source_file`, `_row_number`, `_row_copy`) names one row: a
    connector makes several rows from one source record (the lines and diagnoses of one EOB share its file and
    record number), and a key repeat must quarantine that row only, not every row of its record. Store the
    result before `duplicate_rows`: the numbering of rows equal in position and key is then fixed.
    `unique_positions`: every row is alone at its (file, record) or carries the copy number its connector gave it
    (ordered like the key within the record), so no window over all rows is needed."""
    if unique_positions:
        given = checked[ROW_COPY].fill_null(0) if ROW_COPY in checked.columns else ibis.literal(0, "int64")
        return checked.mutate(**{ROW_COPY: given.cast("int64")})
    window = ibis.window(group_by=[checked[SOURCE_FILE], checked[ROW_NUMBER]],
                         order_by=[checked[k] for k in contract.key])
    return checked.mutate(**{ROW_COPY: ibis.row_number().over(window)})


def duplicate_rows(*, checked: ir.Table, contract: TableContract) -> ir.Table:
    """The position (`POSITION`, see `numbered_rows`) of each row that passes every check but repeats the key of
    an earlier passing row (by file, then record): a window over the key, on the key and position columns only,
    of the rows whose key hash is shared (every repeat, and the rare rows whose keys merely collide). Counting
    hashes is a cheap aggregation where the window over every row sorted each key (11.5M diagnoses: 2.2 -> 1.6 s)."""
    passing = checked.filter(checked[FAIL_COUNT] == 0).select(*contract.key, *POSITION)
    hashed = passing.mutate(_key_hash=ibis.struct({k: passing[k] for k in contract.key}).hash())
    shared = hashed.group_by("_key_hash").agg(_rows=hashed.count())
    shared = shared.filter(shared._rows > 1).select("_key_hash")
    candidates = hashed.semi_join(shared, "_key_hash").drop("_key_hash")
    window = ibis.window(group_by=[candidates[k] for k in contract.key],
                         order_by=[candidates[c] for c in POSITION])
    ranked = candidates.mutate(_occurrence=ibis.row_number().over(window))
    return ranked.filter(ranked._occurrence > 0).select(*POSITION)


def _same_row(table: ir.Table, duplicates: ir.Table) -> list[ir.BooleanValue]:
    return [table[c] == duplicates[c] for c in POSITION]


def checked_rows_table(table: str) -> str:
    """Run table of one canonical table's checked rows (every row read, typed, with its failed checks)."""
    return f"ingest__{table}_row"


def accepted_rows(*, checked: ir.Table, duplicates: ir.Table | None, contract: TableContract,
                  also: Sequence[str] = ()) -> ir.Table:
    """Rows with no failure and a key not seen before, in the contract's columns and types (then the columns
    `also` of the checked rows). `duplicates` None: known to be empty (the rows then keep their stored order)."""
    ok = checked.filter(checked[FAIL_COUNT] == 0)
    if duplicates is not None:
        ok = ok.anti_join(duplicates, _same_row(ok, duplicates))
    return ok.select(**{c.name: ok[c.name] for c in contract.columns}, **{c: ok[c] for c in also})


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

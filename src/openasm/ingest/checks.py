"""Row checks for canonical tables, as Ibis expressions that run on any backend.

Each check yields (column, failed?, reason). Parsing is lenient on surrounding blanks and strict on content:
a value that is present but does not parse as the column's type is a failure, never a silent null. Numbers
must be finite ("NaN", "inf", "1e309" are not values), integers whole ("1.6" is not a line number), and
amounts within what float64 holds to the cent. The raw value of an identifier column never reaches the
quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from openasm.schema.contract import Column, TableContract
from openasm.schema.formats import MAX_EXACT_CENTS_AMOUNT, NPI_PREFIX_LUHN_CONSTANT, PATTERNS
from openasm.text_ops import trim_chars

TRUE_WORDS = ("true", "t", "1", "y", "yes")
FALSE_WORDS = ("false", "f", "0", "n", "no")
BLANKS = " \t\r\n"
INTEGER_TEXT = r"^[+-]?[0-9]+$"


@dataclass(frozen=True)
class RowCheck:
    """One failure condition on a row: the column it names, whether it fails, and why."""

    column: str
    failed: ir.BooleanValue
    reason: ir.StringValue
    raw_value: ir.StringValue


def raw_text(raw: ir.Table, name: str) -> ir.StringValue:
    """The source value as trimmed text, null when absent or blank."""
    if name not in raw.columns:
        return ibis.null(dt.string)
    return trimmed(raw[name] if raw[name].type().is_string() else raw[name].cast("string"))


def trimmed(text: ir.StringValue) -> ir.StringValue:
    """Text without surrounding blanks, null when blank."""
    return trim_blanks(text).nullif("")


def trim_blanks(text: ir.StringValue) -> ir.StringValue:
    """Text without the blanks (space, tab, CR, LF) at its edges."""
    return trim_chars(text, BLANKS)


def finite(number: ir.FloatingValue) -> ir.FloatingValue:
    """The number, or null when it is NaN or infinite (not a value a claim can carry)."""
    return ibis.ifelse(number.isnan() | number.isinf(), ibis.null(dt.float64), number)


def whole(number: ir.FloatingValue, target: dt.DataType) -> ir.IntegerValue:
    """The number as `target` when it is finite, whole and in range, else null (no rounding of 1.6 to 2).
    `number` should be a column: it is referenced several times."""
    return ibis.ifelse(number.isnan() | number.isinf() | (number != number.floor()), ibis.null(target),
                       number.try_cast(target))


def parse_number(source: ir.Value) -> ir.FloatingValue | None:
    """Step 1 for numeric columns: the value as float64 (text parsed once), or None for other sources."""
    if source.type().is_string():
        return source.try_cast("float64")
    if source.type().is_numeric():
        return source.cast("float64")
    return None


def parse_value(source: ir.Value, number: ir.FloatingValue | None, column: Column) -> ir.Value:
    """Step 2: the column in its contract type; null when blank or unparseable.

    `source` is the trimmed text of a text column or the typed source column; `number` its float64 value
    from `parse_number` for numeric contract types (columns, so that reusing them costs nothing).
    """
    target = column.ibis_type
    source_type = source.type()
    if source_type == target and not target.is_floating():
        return source
    if target.is_integer() and number is not None:
        if source_type.is_string():
            # Plain digits are cast exactly; other notations ("2.0", "1e3") only when the number is whole.
            return ibis.ifelse(source.re_search(INTEGER_TEXT), source.try_cast(target), whole(number, target))
        return whole(number, target)
    if target.is_floating() and number is not None:
        return finite(number).cast(target)
    if source_type.is_timestamp() and target.is_date():
        return source.cast("date")
    if not source_type.is_string():
        source = source.cast("string")
    if target.is_string():
        return source
    if target.is_boolean():
        lowered = source.lower()
        return ibis.cases(
            (one_of(lowered, TRUE_WORDS), True), (one_of(lowered, FALSE_WORDS), False), else_=ibis.null(dt.boolean)
        )
    return source.try_cast(target)


def one_of(value: ir.Value, values: Sequence[str]) -> ir.BooleanValue:
    """`value` is one of `values` (null for a null value), as a scalar test: DuckDB plans an IN list of five or
    more constants as a join, which would cost the checked rows their file order (`runs.ingest`)."""
    return ibis.array(list(values)).contains(value)


def npi_check_digit_matches(npi: ir.StringValue) -> ir.BooleanValue:
    """Luhn check digit of an NPI with the 80840 prefix (CMS NPI check-digit standard)."""
    total: ir.IntegerValue = ibis.literal(NPI_PREFIX_LUHN_CONSTANT)
    for position in range(9):
        digit = npi.substr(position, 1).try_cast("int32")
        if position % 2 == 0:
            doubled = digit * 2
            digit = ibis.ifelse(doubled > 9, doubled - 9, doubled)
        total = total + digit
    expected = (10 - total % 10) % 10
    return npi.substr(9, 1).try_cast("int32") == expected


def _reason(text: str) -> ir.StringValue:
    return ibis.literal(text)


def shown_value(column: Column, text: ir.StringValue) -> ir.StringValue:
    """What the quarantine may show of a failing value: nothing for identifier columns."""
    return ibis.null(dt.string) if column.is_identifier else text


class CheckInputs(Protocol):
    """What the checks read of a row, per contract column: its typed value, whether a value was given at
    all, and its text as given (for the quarantine)."""

    def typed(self, name: str) -> ir.Value: ...

    def present(self, name: str) -> ir.BooleanValue: ...

    def text(self, name: str) -> ir.StringValue: ...

    def may_fail_parse(self, name: str) -> bool:
        """False when the typed value is the given value itself (a text column's trimmed text, a column already
        of its contract type): its type check cannot fail and is not computed."""
        ...


def column_checks(row: CheckInputs, contract: TableContract) -> list[RowCheck]:
    """Type, requiredness, shape, enum, amount-sign and amount-size checks for every contract column."""
    checks: list[RowCheck] = []
    names = contract.column_names
    claim_type = row.typed("claim_type") if "claim_type" in names else None
    adjustment = row.typed("claim_adjustment_type") if "claim_adjustment_type" in names else None
    for column in contract.columns:
        name = column.name
        text = shown_value(column, row.text(name))
        present = row.present(name)
        value = row.typed(name)
        type_label = column.dtype
        if row.may_fail_parse(name):
            checks.append(RowCheck(name, present & value.isnull(), _reason(f"not a valid {type_label}"), text))
        if column.required:
            checks.append(RowCheck(name, ~present, _reason("required value missing"), text))
        elif column.required_for_claim_types and claim_type is not None:
            needed = one_of(claim_type, column.required_for_claim_types) & ~present
            reason = _reason(f"required on {'/'.join(column.required_for_claim_types)} claims")
            checks.append(RowCheck(name, needed, reason, claim_type))
        if column.allowed is not None:
            bad = value.notnull() & ~one_of(value, column.allowed)
            checks.append(RowCheck(name, bad, _reason(f"not one of {', '.join(column.allowed)}"), text))
        if column.check == "amount":
            negative = value < 0
            if adjustment is not None and contract.negative_allowed_when:
                negative = negative & ~one_of(adjustment.fill_null("original"), contract.negative_allowed_when)
            reason = "negative amount on an original claim" if contract.negative_allowed_when else "negative amount"
            checks.append(RowCheck(name, negative, _reason(reason), text))
            checks.append(RowCheck(name, value.abs() > MAX_EXACT_CENTS_AMOUNT,
                                   _reason("amount too large to hold to the cent (beyond ±2^53 cents)"), text))
        elif column.check is not None:
            pattern = PATTERNS[column.check]
            shape_bad = value.notnull() & ~value.re_search(pattern)
            checks.append(RowCheck(name, shape_bad, _reason(f"not a valid {column.check} code shape"), text))
            if column.check == "npi":
                digit_bad = value.notnull() & value.re_search(pattern) & ~npi_check_digit_matches(value)
                checks.append(RowCheck(name, digit_bad, _reason("NPI check digit is wrong"), text))
    for earlier, later in contract.date_order:
        first, second = row.typed(earlier), row.typed(later)
        out_of_order = first.notnull() & second.notnull() & (second < first)
        checks.append(RowCheck(later, out_of_order, _reason(f"{later} is before {earlier}"),
                               shown_value(contract.column(later), second.cast("string"))))
    return checks

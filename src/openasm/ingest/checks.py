"""Row checks for canonical tables, as Ibis expressions that run on any backend.

Each check yields (column, failed?, reason). Parsing is lenient on surrounding blanks and strict on content:
a value that is present but does not parse as the column's type is a failure, never a silent null. Numbers
must be finite ("NaN", "inf", "1e309" are not values), integers whole ("1.6" is not a line number), and
amounts within what float64 holds to the cent. The raw value of an identifier column never reaches the
quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from openasm.schema.contract import Column, TableContract
from openasm.schema.formats import MAX_EXACT_CENTS_AMOUNT, NPI_PREFIX_LUHN_CONSTANT, PATTERNS

TRUE_WORDS = ("true", "t", "1", "y", "yes")
FALSE_WORDS = ("false", "f", "0", "n", "no")
EDGE_BLANKS = "^[ \t\r\n]+|[ \t\r\n]+$"
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
    col = raw[name]
    text = col if col.type().is_string() else col.cast("string")
    # Not StringValue.strip(): Ibis renders its '\f' as a Spark literal 'f' and strips letters there.
    return text.re_replace(EDGE_BLANKS, "").nullif("")


def finite(number: ir.FloatingValue) -> ir.FloatingValue:
    """The number, or null when it is NaN or infinite (not a value a claim can carry)."""
    return ibis.ifelse(number.isnan() | number.isinf(), ibis.null(dt.float64), number)


def whole(number: ir.FloatingValue, target: dt.DataType) -> ir.IntegerValue:
    """The number as `target` when it is finite, whole and in range, else null (no rounding of 1.6 to 2)."""
    number = finite(number)
    return ibis.ifelse(number == number.floor(), number.try_cast(target), ibis.null(target))


def parse_value(raw: ir.Table, column: Column) -> ir.Value:
    """The column converted to its contract type; null when absent, blank or unparseable."""
    target = column.ibis_type
    if column.name not in raw.columns:
        return ibis.null(target)
    source = raw[column.name]
    source_type = source.type()
    if source_type == target and not target.is_floating():
        return raw_text(raw, column.name) if target.is_string() else source
    if source_type.is_numeric() and target.is_numeric():
        number = source.cast("float64")
        return whole(number, target) if target.is_integer() else finite(number).cast(target)
    if source_type.is_timestamp() and target.is_date():
        return source.cast("date")
    text = raw_text(raw, column.name)
    if target.is_string():
        return text
    if target.is_boolean():
        lowered = text.lower()
        return ibis.cases(
            (lowered.isin(TRUE_WORDS), True), (lowered.isin(FALSE_WORDS), False), else_=ibis.null(dt.boolean)
        )
    if target.is_integer():
        # Plain digits are cast exactly; other notations ("2.0", "1e3") only when the number is whole.
        return ibis.ifelse(text.re_search(INTEGER_TEXT), text.try_cast(target),
                           whole(text.try_cast("float64"), target))
    if target.is_floating():
        return finite(text.try_cast("float64")).cast(target)
    return text.try_cast(target)


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


def column_checks(raw: ir.Table, typed: ir.Table, contract: TableContract) -> list[RowCheck]:
    """Type, requiredness, shape, enum, amount-sign and amount-size checks for every contract column."""
    checks: list[RowCheck] = []
    claim_type = typed["claim_type"] if "claim_type" in typed.columns else None
    adjustment = (
        typed["claim_adjustment_type"] if "claim_adjustment_type" in typed.columns else None
    )
    for column in contract.columns:
        name = column.name
        text = shown_value(column, raw_text(raw, name))
        present = raw_text(raw, name).notnull()
        value = typed[name]
        type_label = column.dtype
        checks.append(RowCheck(name, present & value.isnull(), _reason(f"not a valid {type_label}"), text))
        if column.required:
            checks.append(RowCheck(name, ~present, _reason("required value missing"), text))
        elif column.required_for_claim_types and claim_type is not None:
            needed = claim_type.isin(column.required_for_claim_types) & ~present
            reason = _reason(f"required on {'/'.join(column.required_for_claim_types)} claims")
            checks.append(RowCheck(name, needed, reason, claim_type))
        if column.allowed is not None:
            bad = value.notnull() & ~value.isin(column.allowed)
            checks.append(RowCheck(name, bad, _reason(f"not one of {', '.join(column.allowed)}"), text))
        if column.check == "amount":
            negative = value < 0
            if adjustment is not None and contract.negative_allowed_when:
                negative = negative & ~adjustment.fill_null("original").isin(contract.negative_allowed_when)
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
        out_of_order = typed[earlier].notnull() & typed[later].notnull() & (typed[later] < typed[earlier])
        checks.append(RowCheck(later, out_of_order, _reason(f"{later} is before {earlier}"),
                               shown_value(contract.column(later), typed[later].cast("string"))))
    return checks

"""Source layouts as data, and the Ibis cuts that apply them.

A layout file under `connectors/layouts/` names each source field with its position and width (fixed-width
formats) or its column / path (delimited and JSON formats), its type, the canonical column it feeds and the
tokens that mean null. This module loads those files and turns a table of raw records into canonical-named
text columns: fixed-width fields are substrings of the record cut by the backend (never a Python loop over
records), and records of the wrong length become quarantine rows that name the file and the record number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import ibis
import ibis.expr.types as ir
import yaml

from openasm.engine import ROW_NUMBER, SOURCE_FILE
from openasm.ingest.checks import trim_blanks

LAYOUT_PACKAGE = "openasm.connectors.layouts"


class LayoutError(ValueError):
    """A layout file is malformed (a packaging defect, not a user error)."""


@cache
def load_layout(name: str) -> dict[str, Any]:
    """A layout file (`<name>.yaml`) shipped in the package, parsed."""
    try:
        text = resources.files(LAYOUT_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise LayoutError(f"no shipped layout {name}.yaml") from err
    return yaml.safe_load(text)


@dataclass(frozen=True)
class FixedField:
    """One field of a fixed-width record: 1-based start, width and type (text, integer, decimal, date)."""

    name: str
    start: int
    width: int
    kind: str


@dataclass(frozen=True)
class RecordLayout:
    """One fixed-width record type: its length and fields by name."""

    file_type: str
    title: str
    record_length: int
    fields: dict[str, FixedField]
    null_tokens: tuple[str, ...]
    date_null_tokens: tuple[str, ...]

    def field(self, name: str) -> FixedField:
        if name not in self.fields:
            raise LayoutError(f"{self.file_type} has no field {name}")
        return self.fields[name]


def fixed_width_layouts(name: str) -> dict[str, RecordLayout]:
    """The record layouts of a fixed-width layout file, checked contiguous up to the record length."""
    data = load_layout(name)
    layouts = {}
    for file_type, spec in data["files"].items():
        fields, end = {}, 0
        for field_name, start, width, kind in spec["fields"]:
            if start != end + 1:
                raise LayoutError(f"{name}.yaml {file_type}.{field_name}: starts at {start}, expected {end + 1}")
            fields[field_name] = FixedField(field_name, int(start), int(width), str(kind))
            end = start + width - 1
        if end != spec["record_length"]:
            raise LayoutError(f"{name}.yaml {file_type}: fields end at {end}, record length {spec['record_length']}")
        layouts[file_type] = RecordLayout(file_type, spec["title"], int(spec["record_length"]), fields,
                                          tuple(data.get("null_tokens", ())), tuple(data.get("date_null_tokens", ())))
    return layouts


@ibis.udf.scalar.builtin(name="trim")
def _trim_spaces(text: str) -> str:
    """SQL's one-argument TRIM (spaces only): the same function in DuckDB and Spark SQL."""


def _without_null_tokens(value: ir.StringValue, tokens: tuple[str, ...]) -> ir.StringValue:
    """Null when blank or one of the format's null tokens. NULLIF reads `value` once per token, where a CASE
    would repeat the whole cut-and-trim expression in the SQL."""
    for token in ("", *tokens):
        value = value.nullif(token)
    return value


def cut_field(text: ir.StringValue, layout: RecordLayout, field_name: str, *, spaces_only: bool,
              text_start: int = 1) -> ir.StringValue:
    """One field of a fixed-width record as trimmed text, null for blanks and the format's null tokens. `text`
    is the record, or a span of it that begins at record position `text_start` (see `cut_records`).
    `spaces_only`: the text holds no tab, CR or LF, so SQL TRIM (spaces only: on DuckDB twice as fast on padded
    fields as trimming a set of characters) does what `trim_blanks` would."""
    spec = layout.field(field_name)
    tokens = layout.null_tokens + (layout.date_null_tokens if spec.kind == "date" else ())
    raw = text.substr(spec.start - text_start, spec.width)
    return _without_null_tokens(_trim_spaces(raw) if spaces_only else trim_blanks(raw), tokens)


@dataclass(frozen=True)
class Span:
    """Consecutive fields of a record kept as one untrimmed text (`first` to `last`), to be cut apart later on
    fewer rows (CCLF5's twelve claim diagnoses repeat on every line of a claim)."""

    first: str
    last: str

    def start(self, layout: RecordLayout) -> int:
        return layout.field(self.first).start

    def width(self, layout: RecordLayout) -> int:
        last = layout.field(self.last)
        return last.start + last.width - self.start(layout)


def has_other_blanks(text: ir.StringValue) -> ir.BooleanValue:
    """The text holds a blank other than a space (tab, CR, LF), which SQL TRIM would leave at a field's edge."""
    return text.contains("\t") | text.contains("\r") | text.contains("\n")


def cut_records(lines: ir.Table, layout: RecordLayout, columns: dict[str, str], *, text: str = "line",
                text_start: int = 1, spans: dict[str, Span] | None = None, keep: tuple[str, ...] = (),
                other_blanks: bool = True) -> ir.Table:
    """`columns` (output name -> field name) cut from each record's `text` (the record, or a `Span` of it that
    begins at `text_start`), `spans` as untrimmed text, plus the `keep` columns, `_row_number` and `_source_file`
    (where `lines` has them).
    Records with a tab, CR or LF (rare) are cut apart with `trim_blanks`; the rest with the cheaper SQL TRIM of
    spaces (both give the same values). `other_blanks` False: the caller counted no such record, so every record
    is cut in one pass."""
    spans = spans or {}

    def cut(records: ir.Table, spaces_only: bool) -> ir.Table:
        source = records[text]
        return records.select(
            *keep,
            **{out: cut_field(source, layout, field, spaces_only=spaces_only, text_start=text_start)
               for out, field in columns.items()},
            **{out: source.substr(span.start(layout) - text_start, span.width(layout)) for out, span in spans.items()},
            **{c: records[c] for c in (ROW_NUMBER, SOURCE_FILE) if c in records.columns},
        )

    if not other_blanks:
        return cut(lines, True)
    odd = has_other_blanks(lines[text])
    return cut(lines.filter(~odd), True).union(cut(lines.filter(odd), False))


def fits_record_length(lines: ir.Table, layout: RecordLayout) -> ir.BooleanValue:
    """The record has the layout's length (anything else is a wrong layout or a truncated record)."""
    return lines.line.length() == layout.record_length


def split_by_record_length(lines: ir.Table, layout: RecordLayout, table_name: str) -> tuple[ir.Table, ir.Table]:
    """(records of the layout's length, quarantine rows for the others: wrong length or truncated)."""
    length = lines.line.length()
    good = lines.filter(fits_record_length(lines, layout))
    bad = lines.filter(~fits_record_length(lines, layout))
    rejected = bad.select(
        table_name=ibis.literal(table_name),
        source_file=bad[SOURCE_FILE].cast("string"),
        row_number=bad[ROW_NUMBER].cast("int64"),
        column_name=ibis.literal("(record)"),
        reason=ibis.literal(f"{layout.file_type} record length ") + length.cast("string")
        + ibis.literal(f", expected {layout.record_length} (wrong layout or truncated record)"),
        # The record holds identifiers (claim id, MBI): none of it is copied into the quarantine.
        raw_value=ibis.null("string"),
        failure_count=ibis.literal(1, "int64"),
    )
    return good, rejected


def rejected_rows(rows: ir.Table, table_name: str, column: str, reason: str | ir.StringValue,
                  raw_value: ir.Value | None = None) -> ir.Table:
    """Quarantine rows (the ingest's columns) for connector-level rejections of `rows`."""
    return rows.select(
        table_name=ibis.literal(table_name),
        source_file=rows[SOURCE_FILE].cast("string"),
        row_number=rows[ROW_NUMBER].cast("int64"),
        column_name=ibis.literal(column),
        reason=ibis.literal(reason) if isinstance(reason, str) else reason,
        raw_value=(raw_value if raw_value is not None else ibis.null("string")).cast("string"),
        failure_count=ibis.literal(1, "int64"),
    )


def map_codes(value: ir.StringValue, codes: dict[str, str]) -> ir.StringValue:
    """A source code translated through a code map; an unknown code passes through unchanged so the row
    checks quarantine it with the value that was found."""
    if not codes:
        return value
    return value.cases(*[(str(k), str(v)) for k, v in codes.items()], else_=value)

"""Find CCW research files in a folder and recognise each by its columns (`layouts/rif.yaml`).

A file is CSV (comma- or pipe-delimited, `.csv`, `.txt`, `.psv`) or Parquet with CCW variable names. Canonical
tables sitting beside them (`clinician.csv`, …) are side tables, not research files. Dates come as YYYY-MM-DD,
YYYYMMDD or DD-MON-YYYY; `iso_date` turns each into ISO text and leaves anything else unchanged for the row
checks to quarantine with the value found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir

from openasm.connectors.layout import load_layout, rejected_rows
from openasm.ingest.checks import trimmed
from openasm.engine import ROW_NUMBER, SOURCE_FILE, Engine
from openasm.schema.canonical import CANONICAL_TABLES

SUFFIXES = (".csv", ".txt", ".psv", ".parquet")
# The canonical table whose accounting holds a research-file record that cannot be read at all.
FIRST_TABLE = {"mbsf": "beneficiary", "pde": "pharmacy_claim", "claims_base": "claim_line",
               "claims_line": "claim_line", "claims_extract": "claim_line"}
UNIT_SEPARATOR = "\x1f"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class RifFile:
    path: Path
    kind: str  # mbsf | pde | claims_base | claims_line | claims_extract
    columns: tuple[str, ...]
    delimiter: str | None


def sniff_delimiter(path: Path) -> str | None:
    """`|` when the header line has pipes and no commas; None (comma) otherwise; None for Parquet."""
    if path.suffix.lower() == ".parquet":
        return None
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return "|" if "|" in header and "," not in header else ","


def header_columns(path: Path, delimiter: str) -> list[str]:
    """The names on the header line of a delimited file (pipe files are unquoted)."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return [name.strip() for name in handle.readline().rstrip("\r\n").split(delimiter)]


def read_research_file(engine: Engine, found: RifFile) -> tuple[ir.Table, ir.Table | None]:
    """A research file's rows with `_row_number` (data row, 1 = first after the header) and `_source_file`, and
    its records that cannot be split by the header (None for CSV and Parquet, whose readers refuse them).

    Pipe-delimited extracts are unquoted and may end each row with a spare delimiter, so they are split from
    their lines by the backend, field by header position; a record with another number of fields (a truncated
    last record, a shifted layout) would put values under the wrong names and is returned apart, to be
    quarantined with its file and record number. CSV and Parquet go through the engine's readers."""
    if found.delimiter != "|":
        return engine.read_source(found.path), None
    lines = engine.read_lines(found.path)
    data = lines.filter(lines[ROW_NUMBER] > 1)
    data = data.mutate(**{ROW_NUMBER: data[ROW_NUMBER] - 1})
    count, expected = _fields(data.line).length(), len(found.columns)
    fits = (count == expected) | ((count == expected + 1) & data.line.endswith("|"))
    rows, bad = data.filter(fits), data.filter(~fits)
    fields = _fields(rows.line)
    table = rows.select(**{name: fields[i].nullif("") for i, name in enumerate(found.columns)},
                        **{ROW_NUMBER: rows[ROW_NUMBER], SOURCE_FILE: rows[SOURCE_FILE]})
    rejected = rejected_rows(bad, FIRST_TABLE[found.kind], "(record)",
                             ibis.literal("record has ") + _fields(bad.line).length().cast("string")
                             + ibis.literal(f" fields, the header {expected} (truncated record or another layout)"))
    return table, rejected


def _fields(line: ir.StringValue) -> ir.ArrayValue:
    """A pipe-delimited record's fields. Spark's split takes a regular expression, in which `|` is alternation
    (every character would become a field), so the pipes become a unit separator first, literal on every backend."""
    return line.replace("|", UNIT_SEPARATOR).split(UNIT_SEPARATOR)


def classify(columns: tuple[str, ...]) -> str | None:
    """The research-file kind a header belongs to, from the layout's signatures; None when unknown."""
    files = load_layout("rif")["files"]
    present = {c.upper() for c in columns}
    for kind in ("pde", "mbsf"):
        if set(files[kind]["signature"]) <= present:
            return kind
    claims = files["claims"]
    if not set(claims["signature"]) <= present:
        return None
    has_dates = bool(set(claims["claim_dates"]) & present)
    has_lines = bool(set(claims["line_numbers"]) & present)
    if has_dates and has_lines:
        return "claims_extract"
    if has_dates:
        return "claims_base"
    return "claims_line" if has_lines else None


def find_rif_files(engine: Engine, folder: Path) -> tuple[list[RifFile], list[str]]:
    """Research files under `folder` with their kind, and the entries not read (with the reason)."""
    found, not_read = [], []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix.lower() not in SUFFIXES:
            continue
        if path.stem in CANONICAL_TABLES or path.parent.name in CANONICAL_TABLES:
            continue  # a canonical side table
        delimiter = sniff_delimiter(path)
        columns = tuple(header_columns(path, delimiter) if delimiter == "|" else engine.source_columns(path))
        kind = classify(columns)
        if kind is None:
            not_read.append(f"{path.name} (columns match no research file of rif.yaml)")
            continue
        found.append(RifFile(path, kind, columns, delimiter))
    return found, not_read


def pick(table: ir.Table, names: list[str]) -> ir.StringValue:
    """The first of `names` the table has (any case), as trimmed text; null when none is present."""
    lookup = {c.upper(): c for c in table.columns}
    for name in names:
        if name.upper() in lookup:
            return trimmed(table[lookup[name.upper()]].cast("string"))
    return ibis.null("string")


def iso_date(text: ir.StringValue) -> ir.StringValue:
    """YYYY-MM-DD as is; YYYYMMDD and DD-MON-YYYY / DDMONYYYY (CCW SAS exports, BFD extracts) rewritten to ISO;
    anything else unchanged, so the row checks report the value found."""
    compact = text.re_search(r"^\d{8}$")
    month_name = text.re_extract(r"^(\d{2})-?([A-Za-z]{3})-?(\d{4})$", 2).upper()
    month = month_name.cases(*[(name, f"{i:02d}") for i, name in enumerate(MONTHS, start=1)],
                             else_=ibis.null("string"))
    named = (text.re_extract(r"^(\d{2})-?([A-Za-z]{3})-?(\d{4})$", 3) + "-" + month + "-"
             + text.re_extract(r"^(\d{2})-?([A-Za-z]{3})-?(\d{4})$", 1))
    return ibis.cases(
        (compact, text.substr(0, 4) + "-" + text.substr(4, 2) + "-" + text.substr(6, 2)),
        (month.notnull(), named),
        else_=text,
    )

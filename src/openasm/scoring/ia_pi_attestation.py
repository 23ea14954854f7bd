"""Intake of the improvement activities (IA) and Promoting Interoperability (PI) attestation file
(42 CFR 512.735, 512.740, 512.771; asm-model.md §5, §8.5).

One row (CSV) or record (JSON) per TIN and performance year; IA and PI are reported at TIN level.

Columns (format and examples: `examples/README.md`, `examples/ia_pi_attestation.csv` / `.json`): tin,
performance_year; per component `ia1_` / `ia2_` / `pi_` + attested, start_date, end_date; ia1_elements;
ia2_cca_partner_tin, ia2_cca_effective_date, ia2_cca_elements; pi_cehrt_id, pi_measures (QPP ids of measures
performed and exclusions claimed).

Lists are `;`-separated in CSV and arrays (or `;`-separated strings) in JSON. A JSON file holds a list of
records or `{"attestations": [...]}`; keys are the column names, a missing key is a blank cell. Fields of a
component whose `*_attested` is false are not read.

Checks. A file that cannot be read, a CSV header without the columns above (or with others) raises
`AttestationFileError`. Row findings go to the quarantine table (file, row, column, reason, value):
- `row_rejected`: TIN or performance year malformed, a JSON record that is not an object or has unknown keys,
  a CSV row with the wrong number of fields, or duplicate (tin, performance_year) rows (every copy is rejected).
  The TIN then has no attestation for the year, so both IA activities and PI count as not met.
- `component_not_met`: a bad value or an unmet rule inside one component (IA_1, IA_2 or PI): blank
  `*_attested`, bad or missing dates, period shorter than `ia_pi.ia_min_period_days` /
  `ia_pi.pi_min_period_days` or outside the PY, unknown element or measure names, IA-1 missing an element,
  IA-2 with too few CCA elements or no partner TIN/effective date, PI without a valid CEHRT id, an exclusion
  claimed for a measure also listed as performed. The row is kept; that component's `*_valid` is false.
- `row_other_year`: a valid model year other than the run's; kept out of this run (not an error).
read = accepted + rejected + other-year rows, always. Whether PI objectives are met is decided by
`ia_pi_deductions`, not here: an attestation without, e.g., the PDMP query is valid and earns the deduction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.rules import RulesForYear
from openasm.scoring.attestation_values import (
    cell_text,
    is_blank,
    parse_boolean,
    parse_date,
    parse_names,
    parse_tin,
    parse_year,
    tin_reason,
)

TABLE_NAME = "ia_pi_attestation"
COMPONENTS = ("IA_1", "IA_2", "PI")
PREFIX = {"IA_1": "ia1", "IA_2": "ia2", "PI": "pi"}
COLUMNS = (
    "tin", "performance_year",
    "ia1_attested", "ia1_start_date", "ia1_end_date", "ia1_elements",
    "ia2_attested", "ia2_start_date", "ia2_end_date", "ia2_cca_partner_tin", "ia2_cca_effective_date",
    "ia2_cca_elements",
    "pi_attested", "pi_start_date", "pi_end_date", "pi_cehrt_id", "pi_measures",
)
# ONC CHPL "CMS EHR Certification ID": 15 upper-case letters or digits (a format, not a rule value).
CEHRT_ID_PATTERN = r"^[0-9A-Z]{15}$"
ROW_REJECTED, COMPONENT_NOT_MET, ROW_OTHER_YEAR = "row_rejected", "component_not_met", "row_other_year"

QUARANTINE_SCHEMA = pa.schema([
    ("table_name", pa.string()), ("source_file", pa.string()), ("row_number", pa.int64()),
    ("column_name", pa.string()), ("reason", pa.string()), ("raw_value", pa.string()),
    ("scope", pa.string()), ("disposition", pa.string()),
])
_component_fields = [
    item for c in COMPONENTS for item in (
        (f"{PREFIX[c]}_attested", pa.bool_()), (f"{PREFIX[c]}_start_date", pa.date32()),
        (f"{PREFIX[c]}_end_date", pa.date32()), (f"{PREFIX[c]}_valid", pa.bool_()))
]
ATTESTATION_SCHEMA = pa.schema([
    ("performance_year", pa.int32()), ("tin", pa.string()), ("source_file", pa.string()),
    ("row_number", pa.int64()), *_component_fields, ("ia2_cca_partner_tin", pa.string()),
    ("ia2_cca_effective_date", pa.date32()), ("pi_cehrt_id", pa.string()),
])
ITEM_SCHEMA = pa.schema([("performance_year", pa.int32()), ("tin", pa.string()), ("component", pa.string()),
                         ("item_id", pa.string())])
class AttestationFileError(ValueError):
    """The attestation file cannot be read, or (strict use) it has findings; the message names file, row, column."""


@dataclass(frozen=True)
class AttestationIntake:
    """What `read_attestation` accepted and quarantined; rows_read = accepted + rejected + other-year rows."""

    source_file: str
    rows_read: int
    attestation: pa.Table
    attestation_item: pa.Table
    quarantine: pa.Table

    def _rows(self, disposition: str) -> int:
        return len({r["row_number"] for r in self.quarantine.to_pylist() if r["disposition"] == disposition})

    @property
    def rows_rejected(self) -> int:
        return self._rows(ROW_REJECTED)

    @property
    def rows_other_year(self) -> int:
        return self._rows(ROW_OTHER_YEAR)

    def errors(self) -> list[str]:
        """One message per finding that is an error (rejections and components not met)."""
        return [
            f"{r['source_file']} row {r['row_number']}, column {r['column_name'] or '-'}: {r['reason']}"
            + (f" (value {r['raw_value']!r})" if r["raw_value"] not in (None, "") else "")
            + f" [{r['disposition']}]"
            for r in self.quarantine.to_pylist() if r["disposition"] != ROW_OTHER_YEAR
        ]

    def raise_for_errors(self, limit: int = 50) -> None:
        """Raise AttestationFileError listing the findings, for runs that accept only a clean file."""
        messages = self.errors()
        if messages:
            more = f"\n... and {len(messages) - limit} more" if len(messages) > limit else ""
            raise AttestationFileError(f"{self.source_file}: {len(messages)} attestation finding(s):\n"
                                       + "\n".join(messages[:limit]) + more)


def read_attestation(path: Path | str, rules: RulesForYear) -> AttestationIntake:
    """§512.735(a)-(c), §512.740(a)-(b), §512.771: read and check an attestation file (CSV or JSON) for the
    rules' performance year. Never drops a row without a quarantine record."""
    path = Path(path)
    records = _read_records(path)
    return check_attestation_records(records, source_file=str(path), rules=rules)


def _read_records(path: Path) -> list[tuple[int, Any]]:
    if not path.is_file():
        raise AttestationFileError(f"{path}: attestation file not found")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AttestationFileError(f"{path}: unreadable attestation file: {err}") from err
    if suffix == ".csv":
        return _csv_records(path, text)
    if suffix == ".json":
        return _json_records(path, text)
    raise AttestationFileError(f"{path}: unsupported attestation file type '{suffix}' (use .csv or .json)")


def _csv_records(path: Path, text: str) -> list[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise AttestationFileError(f"{path}: empty file (no header row)")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if missing or unknown or duplicated:
        raise AttestationFileError(
            f"{path}: header row: " + "; ".join(part for part in (
                f"missing column(s) {', '.join(missing)}" if missing else "",
                f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                f"repeated column(s) {', '.join(duplicated)}" if duplicated else "") if part)
            + f" (expected {', '.join(COLUMNS)})")
    records: list[tuple[int, Any]] = []
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            records.append((number, ValueError("blank row")))
        elif len(cells) != len(header):
            records.append((number, ValueError(f"row has {len(cells)} fields, the header has {len(header)}")))
        else:
            records.append((number, dict(zip(header, cells))))
    return records


def _json_records(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise AttestationFileError(f"{path}: not valid JSON ({where}): {err.msg}") from err
    if isinstance(data, dict) and set(data) == {"attestations"}:
        data = data["attestations"]
    if not isinstance(data, list):
        raise AttestationFileError(f"{path}: JSON must be a list of records or {{\"attestations\": [...]}}")
    return list(enumerate(data, start=1))


class _Row:
    """Findings collector for one record."""

    def __init__(self, source_file: str, number: int) -> None:
        self.source_file, self.number = source_file, number
        self.findings: list[dict[str, Any]] = []

    def add(self, column: str, reason: str, raw: Any, scope: str, disposition: str) -> None:
        self.findings.append({
            "table_name": TABLE_NAME, "source_file": self.source_file, "row_number": self.number,
            "column_name": column, "reason": reason, "raw_value": None if raw is None else cell_text(raw),
            "scope": scope, "disposition": disposition,
        })

    def rejected(self) -> bool:
        return any(f["disposition"] == ROW_REJECTED for f in self.findings)


def check_attestation_records(records: list[tuple[int, Any]], *, source_file: str,
                              rules: RulesForYear) -> AttestationIntake:
    """Check parsed records (row number, dict or parse error) and build the intake tables."""
    context = _Context(rules)
    rows: list[tuple[_Row, dict[str, Any] | None]] = []
    for number, record in records:
        row = _Row(source_file, number)
        rows.append((row, context.check_keys(row, record)))
    keyed: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, (row, parsed) in enumerate(rows):
        if parsed is not None and not row.rejected() and parsed["_in_year"]:
            keyed[(parsed["tin"], parsed["performance_year"])].append(index)
    for (tin, year), indexes in keyed.items():
        if len(indexes) > 1:
            numbers = [rows[i][0].number for i in indexes]
            for i in indexes:
                others = ", ".join(str(n) for n in numbers if n != rows[i][0].number)
                rows[i][0].add("tin", f"duplicate tin {tin} and performance_year {year} (also on row {others})",
                               tin, "row", ROW_REJECTED)
    accepted, items, findings = [], [], []
    for row, parsed in rows:
        if parsed is not None and not row.rejected() and parsed["_in_year"]:
            record, row_items = context.check_components(row, parsed)
            accepted.append(record)
            items.extend(row_items)
        findings.extend(row.findings)
    intake = AttestationIntake(
        source_file=source_file, rows_read=len(records),
        attestation=pa.Table.from_pylist(accepted, schema=ATTESTATION_SCHEMA),
        attestation_item=pa.Table.from_pylist(items, schema=ITEM_SCHEMA),
        quarantine=pa.Table.from_pylist(findings, schema=QUARANTINE_SCHEMA),
    )
    assert intake.rows_read == intake.attestation.num_rows + intake.rows_rejected + intake.rows_other_year
    return intake


class _Context:
    """Rule values and code lists the checks use, read once per file."""

    def __init__(self, rules: RulesForYear) -> None:
        self.performance_year = rules.performance_year
        self.model_years = {int(y) for y in rules.value("model.performance_years")}
        self.min_days = {"IA_1": int(rules.value("ia_pi.ia_min_period_days")),
                         "IA_2": int(rules.value("ia_pi.ia_min_period_days")),
                         "PI": int(rules.value("ia_pi.pi_min_period_days"))}
        self.min_cca_elements = int(rules.value("ia_pi.ia2_min_cca_elements"))
        elements = rules.code_list("ia_pi__ia_elements").to_pylist()
        self.elements = {a: [e["element"] for e in elements if e["activity"] == a] for a in ("IA_1", "IA_2")}
        self.required = {a: [e["element"] for e in elements if e["activity"] == a and e["is_required"] == "true"]
                         for a in ("IA_1", "IA_2")}
        measures = rules.code_list("ia_pi__pi_measures").to_pylist()
        self.pi_measures = {m["measure_id"]: m for m in measures}

    def check_keys(self, row: _Row, record: Any) -> dict[str, Any] | None:
        """Row-level checks: record shape, TIN, performance year. None when the row is rejected."""
        if isinstance(record, ValueError):
            row.add("", str(record), None, "row", ROW_REJECTED)
            return None
        if not isinstance(record, dict):
            row.add("", "record is not an object", record, "row", ROW_REJECTED)
            return None
        unknown = sorted(set(record) - set(COLUMNS))
        if unknown:
            row.add(unknown[0], f"unknown field(s) {', '.join(unknown)}", None, "row", ROW_REJECTED)
        fields = {c: record.get(c) for c in COLUMNS}
        tin = parse_tin(fields["tin"])
        if tin is None:
            row.add("tin", tin_reason(fields["tin"]), fields["tin"], "row", ROW_REJECTED)
        year = parse_year(fields["performance_year"])
        if year is None or year not in self.model_years:
            row.add("performance_year", f"performance_year must be one of {sorted(self.model_years)}",
                    fields["performance_year"], "row", ROW_REJECTED)
        if row.rejected():
            return None
        in_year = year == self.performance_year
        if not in_year:
            row.add("performance_year", f"performance year {year}, not this run's {self.performance_year}",
                    year, "row", ROW_OTHER_YEAR)
        return {**fields, "tin": tin, "performance_year": year, "_in_year": in_year}

    def check_components(self, row: _Row, fields: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Component checks (§512.735, §512.740): one accepted record and its listed items."""
        year, tin = fields["performance_year"], fields["tin"]
        record: dict[str, Any] = {"performance_year": year, "tin": tin, "source_file": row.source_file,
                                  "row_number": row.number, "ia2_cca_partner_tin": None,
                                  "ia2_cca_effective_date": None, "pi_cehrt_id": None}
        items: list[dict[str, Any]] = []
        for component in COMPONENTS:
            p = PREFIX[component]
            before = len(row.findings)

            def fail(column: str, reason: str, raw: Any, _c: str = component) -> None:
                row.add(column, reason, raw, _c, COMPONENT_NOT_MET)

            attested = parse_boolean(fields[f"{p}_attested"])
            if attested is None:
                fail(f"{p}_attested", "must be true or false", fields[f"{p}_attested"])
            start, end = (self._period(fields, p, fail) if attested else (None, None))
            if attested:
                listed = self._items(component, fields, fail)
                items.extend({"performance_year": year, "tin": tin, "component": component, "item_id": i}
                             for i in listed)
                self._component_rules(component, fields, listed, end, record, fail)
            record.update({f"{p}_attested": bool(attested), f"{p}_start_date": start, f"{p}_end_date": end,
                           f"{p}_valid": len(row.findings) == before})
        return record, items

    def _period(self, fields: dict[str, Any], p: str, fail) -> tuple[dt.date | None, dt.date | None]:
        component = {v: k for k, v in PREFIX.items()}[p]
        start = parse_date(fields[f"{p}_start_date"], f"{p}_start_date", fail)
        end = parse_date(fields[f"{p}_end_date"], f"{p}_end_date", fail)
        if start is None or end is None:
            return start, end
        year = self.performance_year
        if end < start:
            fail(f"{p}_end_date", f"end date {end} is before start date {start}", fields[f"{p}_end_date"])
        elif start.year != year or end.year != year:
            fail(f"{p}_start_date", f"period {start} to {end} is not inside performance year {year}",
                 fields[f"{p}_start_date"])
        elif (end - start).days + 1 < self.min_days[component]:
            fail(f"{p}_end_date", f"period of {(end - start).days + 1} days is shorter than the "
                 f"{self.min_days[component]} continuous days required", fields[f"{p}_end_date"])
        return start, end

    def _items(self, component: str, fields: dict[str, Any], fail) -> list[str]:
        column = {"IA_1": "ia1_elements", "IA_2": "ia2_cca_elements", "PI": "pi_measures"}[component]
        names = parse_names(fields[column], upper=component == "PI")
        if names is None:
            fail(column, "must be a ;-separated list (CSV) or a list of strings (JSON)", fields[column])
            return []
        known = self.pi_measures if component == "PI" else self.elements[component]
        unknown = [n for n in names if n not in known]
        if unknown:
            list_name = "ia_pi__pi_measures" if component == "PI" else "ia_pi__ia_elements"
            fail(column, f"unknown name(s) {', '.join(unknown)} (not in code list {list_name})", fields[column])
        return [n for n in names if n in known]

    def _component_rules(self, component: str, fields: dict[str, Any], listed: list[str],
                         end: dt.date | None, record: dict[str, Any], fail) -> None:
        if component == "IA_1":
            missing = [e for e in self.required["IA_1"] if e not in listed]
            if missing:
                fail("ia1_elements", f"IA-1 needs every element; missing {', '.join(missing)}",
                     fields["ia1_elements"])
        elif component == "IA_2":
            cca = [e for e in listed if e in self.elements["IA_2"]]
            if len(cca) < self.min_cca_elements:
                fail("ia2_cca_elements", f"IA-2 collaborative care arrangement lists {len(cca)} of the "
                     f"{len(self.elements['IA_2'])} elements; at least {self.min_cca_elements} are required",
                     fields["ia2_cca_elements"])
            partner = parse_tin(fields["ia2_cca_partner_tin"])
            if partner is None:
                fail("ia2_cca_partner_tin", "the primary care practice TIN of the arrangement: "
                     + tin_reason(fields["ia2_cca_partner_tin"]), fields["ia2_cca_partner_tin"])
            effective = parse_date(fields["ia2_cca_effective_date"], "ia2_cca_effective_date", fail)
            if effective is not None and end is not None and effective > end:
                fail("ia2_cca_effective_date", f"arrangement effective {effective}, after the IA-2 period ends "
                     f"({end})", fields["ia2_cca_effective_date"])
            record.update(ia2_cca_partner_tin=partner, ia2_cca_effective_date=effective)
        else:
            cehrt = fields["pi_cehrt_id"]
            cehrt_text = cehrt.strip().upper() if isinstance(cehrt, str) else None
            if is_blank(cehrt):
                fail("pi_cehrt_id", "missing CEHRT id (PI requires certified EHR technology)", cehrt)
            elif cehrt_text is None or not re.match(CEHRT_ID_PATTERN, cehrt_text):
                fail("pi_cehrt_id", "CEHRT id must be 15 letters or digits (CMS EHR certification id)", cehrt)
            else:
                record["pi_cehrt_id"] = cehrt_text
            for name in listed:
                replaced = self.pi_measures[name]["satisfies"]
                if self.pi_measures[name]["role"] == "exclusion" and replaced in listed:
                    fail("pi_measures", f"exclusion {name} is claimed for {replaced}, which is also listed as "
                         "performed", fields["pi_measures"])



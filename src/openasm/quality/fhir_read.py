"""Read FHIR R4 JSON — single resources, arrays of resources, Bundles (nested too), or bulk-export NDJSON, plain or
gzip, one file or many — into clinical tables.

Nothing raises past a resource. Every resource read is accepted into the clinical tables or quarantined with a reason
naming the file, the line (NDJSON line, Bundle entry or array member, 1-based) and the resource id, so
`resources_read = resources_accepted + resources_quarantined`. A file that cannot be decoded, parsed or decompressed
is one quarantine row (in NDJSON only the bad line is lost; a truncated .gz keeps the lines before the break). An
element that is invalid is nulled and reported (action `element_nulled`) while its resource is kept. A second
resource with the type, id and patient of one already read is quarantined (`duplicate_id`). Files under the input
folders that are not FHIR JSON/NDJSON are listed (action `file_not_read`).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.quality.clinical_model import CLINICAL_SCHEMAS, QUARANTINE_SCHEMA
from openasm.quality.fhir_flatten import ClinicalRows, UnusableResource, flatten_resource, identify_resource

FHIR_SUFFIXES = (".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
QUARANTINED = "quarantined"


class FhirInputError(ValueError):
    """The input paths cannot be read at all (missing path, no FHIR files)."""


@dataclass
class FhirReadResult:
    """Clinical tables (pyarrow) plus the quarantine and the reconciliation counts."""

    tables: dict[str, pa.Table]
    quarantine: pa.Table
    resources_read: int = 0
    resources_accepted: int = 0
    accepted_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def resources_quarantined(self) -> int:
        return self.actions().get(QUARANTINED, 0)

    @property
    def elements_nulled(self) -> int:
        return self.actions().get("element_nulled", 0)

    def actions(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.quarantine.column("action").to_pylist():
            counts[action] = counts.get(action, 0) + 1
        return counts


def is_fhir_file(path: Path) -> bool:
    return path.name.lower().endswith(FHIR_SUFFIXES)


def discover_fhir_files(paths: Iterable[Path]) -> list[Path]:
    """The FHIR files under `paths` (files as given; folders searched recursively, suffixes in any case), in a
    stable order."""
    found: list[Path] = []
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise FhirInputError(f"{path}: no such file or folder")
        found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_fhir_file(p)) if path.is_dir()
                     else [path])
    if not found:
        raise FhirInputError("no FHIR files (*.json, *.ndjson, *.jsonl, optionally .gz) under "
                             + ", ".join(str(p) for p in paths))
    return found


def files_not_read(paths: Iterable[Path]) -> list[Path]:
    """Files under the input folders that are not FHIR JSON/NDJSON by name (listed, never silently skipped)."""
    return [p for path in map(Path, paths) if path.is_dir()
            for p in sorted(path.rglob("*")) if p.is_file() and not is_fhir_file(p)]


@dataclass(frozen=True)
class _Item:
    """One thing found in a file: a resource (or what stands in its place) with its line, or a read error."""

    line: int
    resource: Any = None
    reason: str | None = None
    detail: str | None = None


def _members(document: Any, line: int | None) -> Iterator[_Item]:
    """Resources of a parsed JSON document: a Bundle's entries (nested Bundles opened), an array's members, or the
    document itself. `line` fixes the line of every member (NDJSON); otherwise the entry/member number is used."""
    if isinstance(document, list):
        for number, member in enumerate(document, start=1):
            yield from _members(member, line or number) if _is_bundle(member) else iter(
                [_Item(line or number, member)])
        return
    if not _is_bundle(document):
        yield _Item(line or 1, document)
        return
    entries = document.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        yield _Item(line or 1, None, "malformed_bundle", "Bundle.entry is not an array")
        return
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            yield _Item(line or number, None, "missing_resource", "Bundle entry has no resource")
        elif _is_bundle(resource):
            yield from _members(resource, line or number)
        else:
            yield _Item(line or number, resource)


def _is_bundle(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "Bundle"


def _parse(raw: bytes, line_number: int | None) -> Iterator[_Item]:
    """Decode and parse one JSON text (a whole file, or one NDJSON line)."""
    where = line_number or 1
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        yield _Item(where, None, "not_utf8", f"not UTF-8 text (byte {err.start + 1} of the "
                                             f"{'line' if line_number else 'file'})")
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        yield _Item(line_number or err.lineno, None, "malformed_json",
                    f"line {line_number or err.lineno} column {err.colno}: {err.msg}")
        return
    except RecursionError:
        yield _Item(where, None, "too_deep", "JSON nested too deeply to read")
        return
    yield from _members(document, line_number)


def iter_items(path: Path) -> Iterator[_Item]:
    """Every resource (or read error) in one file, never raising on its content."""
    compressed = path.name.lower().endswith(".gz")
    opener = gzip.open if compressed else open
    line = 0
    try:
        with opener(path, "rb") as handle:
            if path.name.lower().endswith(NDJSON_SUFFIXES):
                for line, raw in enumerate(handle, start=1):
                    if raw.strip():
                        yield from _parse(raw, line)
                return
            raw = handle.read()
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        what = ("not a gzip file" if isinstance(err, gzip.BadGzipFile) else
                f"compressed data ends early or is corrupt after line {line}" if compressed else
                f"cannot be read ({type(err).__name__})")
        yield _Item(line + 1 if line else 0, None, "unreadable_file", f"{path.name}: {what}")
        return
    yield from _parse(raw, None)


def _quarantine_row(source: str | None, line: int, resource: Any, reason: str, detail: str, action: str = QUARANTINED,
                    element: str | None = None, label: tuple[str | None, str | None] | None = None) -> dict:
    resource_type, resource_id = label or _label(resource)
    return {"source_file": source, "source_line": line, "resource_type": resource_type, "resource_id": resource_id,
            "element": element, "reason": reason, "detail": detail, "action": action}


def _label(resource: Any) -> tuple[str | None, str | None]:
    if not isinstance(resource, dict):
        return None, None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return (rtype if isinstance(rtype, str) else None), (rid if isinstance(rid, str) else None)


def read_fhir(paths: Iterable[Path], *, progress=None) -> FhirReadResult:
    """Read every FHIR file under `paths` into clinical tables (see module docstring). `progress(n)` is called
    after each file with the number of resources it held."""
    paths = [Path(p) for p in paths]
    files = discover_fhir_files(paths)
    rows = ClinicalRows()
    quarantine: list[dict] = [_quarantine_row(str(p), 0, None, "not_fhir_file_name",
                                              "not read: the name does not end in .json, .ndjson or .jsonl "
                                              "(optionally .gz)", "file_not_read") for p in files_not_read(paths)]
    read = accepted = 0
    by_type: dict[str, int] = {}
    first_seen: dict[tuple, str] = {}
    for path in files:
        source = str(path)
        in_file = 0
        for item in iter_items(path):
            read += 1
            in_file += 1
            if item.reason is not None:
                quarantine.append(_quarantine_row(source, item.line, item.resource, item.reason,
                                                  f"{source}:{item.line}: {item.detail}"))
                continue
            try:
                identity = identify_resource(item.resource)
            except UnusableResource as err:
                quarantine.append(_quarantine_row(source, item.line, item.resource, err.reason,
                                                  f"{source}:{item.line}: {err.detail}"))
                continue
            label = (identity.resource_type, identity.resource_id)
            if identity.key in first_seen:
                quarantine.append(_quarantine_row(
                    source, item.line, None, "duplicate_id",
                    f"{source}:{item.line}: {identity.resource_type} with the same id"
                    f"{' for the same patient' if identity.patient_id else ''} as {first_seen[identity.key]}; "
                    "the first is kept", label=label))
                continue
            first_seen[identity.key] = f"{source}:{item.line}"
            for issue in flatten_resource(item.resource, identity, rows, source, item.line):
                quarantine.append(_quarantine_row(source, item.line, None, issue.reason,
                                                  f"{source}:{item.line}: {issue.detail}", "element_nulled",
                                                  issue.element, label))
            accepted += 1
            by_type[identity.resource_type] = by_type.get(identity.resource_type, 0) + 1
        if progress is not None:
            progress(in_file)
    quarantine.extend(_resolve_medication_references(rows))
    tables = {name: pa.Table.from_pydict(rows.columns[name], schema=schema)
              for name, schema in CLINICAL_SCHEMAS.items()}
    return FhirReadResult(tables=tables, quarantine=pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA),
                          resources_read=read, resources_accepted=accepted, accepted_by_type=by_type)


def _resolve_medication_references(rows: ClinicalRows) -> list[dict]:
    """Copy the codes of a referenced Medication onto the request under element `medication_reference` (whether a
    measure uses them is its own rule); a reference to a Medication that was not read keeps the request but is
    reported (action `kept`)."""
    issues = []
    for patient_id, request_id, medication_id, line in rows.medication_refs:
        codes = rows.medication_codes.get(medication_id)
        if codes is None:
            issues.append(_quarantine_row(
                None, line, None, "unresolved_medication_reference",
                f"MedicationRequest/{request_id} refers to a Medication that was not in the input; its drug codes "
                "are unknown", "kept", "medicationReference", ("MedicationRequest", request_id)))
            continue
        rows.add_codings(patient_id, "MedicationRequest", request_id, "medication_reference", codes)
    return issues

"""Read FHIR R4 JSON — single resources, Bundles, or bulk-export NDJSON, one file or many — into clinical tables.

Every resource read is either flattened into a clinical table or quarantined with a reason naming the file, the line
(NDJSON line, or entry number in a Bundle, 1-based) and the resource id; the counts reconcile:
`resources_read = resources_accepted + resources_quarantined`. A file that is not valid JSON is one quarantine row
(reason `malformed_json`, with the parser's line and column); in NDJSON only the bad line is lost.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.quality.clinical_model import CLINICAL_SCHEMAS, QUARANTINE_SCHEMA
from openasm.quality.fhir_flatten import ClinicalRows, UnusableResource, flatten_resource

FHIR_SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz", ".jsonl")


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
        return sum(1 for action in self.quarantine.column("action").to_pylist() if action == "quarantined")


def discover_fhir_files(paths: Iterable[Path]) -> list[Path]:
    """The FHIR files under `paths` (files as given; folders searched recursively), in a stable order."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FhirInputError(f"{path}: no such file or folder")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(FHIR_SUFFIXES)))
        else:
            found.append(path)
    if not found:
        raise FhirInputError("no FHIR files (*.json, *.ndjson, *.json.gz, *.ndjson.gz) under "
                             + ", ".join(str(p) for p in paths))
    return found


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")


def iter_resources(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line, resource, parse error) for every resource in one file. Bundles yield their entries (line = entry
    number); NDJSON yields one per non-blank line."""
    is_ndjson = path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl"))
    with _open_text(path) as handle:
        if is_ndjson:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line), None
                except json.JSONDecodeError as err:
                    yield number, None, f"line {number} column {err.colno}: {err.msg}"
            return
        text = handle.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        yield err.lineno, None, f"line {err.lineno} column {err.colno}: {err.msg}"
        return
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        for number, entry in enumerate(document.get("entry") or [], start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            yield number, resource, None if resource is not None else "Bundle entry has no resource"
    else:
        yield 1, document, None


def _resource_label(resource: Any) -> tuple[str | None, str | None]:
    if isinstance(resource, dict):
        rid = resource.get("id")
        return resource.get("resourceType"), rid if isinstance(rid, str) else None
    return None, None


def read_fhir(paths: Iterable[Path], *, progress=None) -> FhirReadResult:
    """Read every FHIR file under `paths` into clinical tables (see module docstring). `progress(n)` is called
    after each file with the number of resources it held."""
    rows = ClinicalRows()
    quarantine: list[dict] = []
    read = accepted = 0
    by_type: dict[str, int] = {}
    for path in discover_fhir_files(paths):
        source = str(path)
        in_file = 0
        for line, resource, parse_error in iter_resources(path):
            read += 1
            in_file += 1
            resource_type, resource_id = _resource_label(resource)
            if parse_error is not None:
                quarantine.append({"source_file": source, "source_line": line, "resource_type": resource_type,
                                   "resource_id": resource_id, "reason": "malformed_json", "detail": parse_error,
                                   "action": "quarantined"})
                continue
            try:
                flatten_resource(resource, rows, source, line)
            except UnusableResource as err:
                quarantine.append({"source_file": source, "source_line": line, "resource_type": resource_type,
                                   "resource_id": resource_id, "reason": err.reason,
                                   "detail": f"{source}:{line}: {err.detail}", "action": "quarantined"})
                continue
            accepted += 1
            by_type[resource_type] = by_type.get(resource_type, 0) + 1
        if progress is not None:
            progress(in_file)
    quarantine.extend(_resolve_medication_references(rows))
    tables = {name: pa.Table.from_pydict(rows.columns[name], schema=schema)
              for name, schema in CLINICAL_SCHEMAS.items()}
    quarantine_table = pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA.append(pa.field("action", pa.string())))
    return FhirReadResult(tables=tables, quarantine=quarantine_table, resources_read=read,
                          resources_accepted=accepted, accepted_by_type=by_type)


def _resolve_medication_references(rows: ClinicalRows) -> list[dict]:
    """Copy the codes of a referenced Medication onto the request (element `medication`); a reference to a
    Medication that was not read keeps the request but is reported (action `kept`)."""
    issues = []
    for patient_id, request_id, medication_id, line in rows.medication_refs:
        codes = rows.medication_codes.get(medication_id)
        if codes is None:
            issues.append({"source_file": None, "source_line": line, "resource_type": "MedicationRequest",
                           "resource_id": request_id, "reason": "unresolved_medication_reference",
                           "detail": f"MedicationRequest/{request_id} refers to Medication/{medication_id}, "
                                     "which was not in the input; its drug codes are unknown", "action": "kept"})
            continue
        for system, code in codes:
            rows.add("clinical_coding", patient_id=patient_id, resource_type="MedicationRequest",
                     resource_id=request_id, element="medication", system=system, code=code)
    return issues

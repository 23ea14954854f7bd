"""Typed reading of one FHIR resource's elements (quality.md §7): every value stored in a clinical table is checked
for its FHIR type here, so a wrongly typed or invalid element can never break a table.

An element that is present but unusable (a string where a number belongs, `authoredOn: "2027-02-30"`, a list for
`gender`) reads as null and is recorded as an `ElementIssue` (element path, reason, detail); the resource keeps its
valid elements, as the reference engine does when it nulls a value it cannot convert. Details name the element and
the JSON type found, never the value of an identifier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from openasm.quality.cql_datetime import FhirDateTime, InvalidDateTime, parse_fhir_datetime


@dataclass(frozen=True)
class ElementIssue:
    """One element read as null: `element` is its path (`period.start`, `dosageInstruction[1].timing...`)."""

    element: str
    reason: str
    detail: str


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def moment_values(name: str, value: FhirDateTime | None) -> dict[str, Any]:
    """The five stored columns of a date/time element (see `cql_datetime.Moment`)."""
    if value is None:
        return {name: None, f"{name}_last": None, f"{name}_offset": None, f"{name}_utc": None,
                f"{name}_utc_last": None}
    shift = timedelta(minutes=value.offset_minutes or 0)
    offset = None if value.offset_minutes is None else float(value.offset_minutes)
    return {name: value.low, f"{name}_last": value.high, f"{name}_offset": offset, f"{name}_utc": value.low - shift,
            f"{name}_utc_last": value.high - shift}


class Elements:
    """Typed access to the elements of one resource; problems are collected in `issues`."""

    def __init__(self, resource: dict) -> None:
        self.resource = resource
        self.issues: list[ElementIssue] = []

    def record(self, element: str, reason: str, detail: str) -> None:
        self.issues.append(ElementIssue(element, reason, detail))

    def node(self, path: str, base: Any = None) -> Any:
        """The JSON value at a dotted path (None when absent; a non-object on the way is recorded)."""
        node: Any = self.resource if base is None else base
        if "." not in path and isinstance(node, dict):  # the common case, without the walk's bookkeeping
            return node.get(path)
        walked = []
        for part in path.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                self.record(".".join(walked), "wrong_type", f"{'.'.join(walked)}: expected an object, "
                                                            f"found {_json_type(node)}")
                return None
            walked.append(part)
            node = node.get(part)
        return node

    def _typed(self, path: str, value: Any, accept: tuple[type, ...], expected: str) -> Any:
        if value is None or (isinstance(value, accept) and not (bool not in accept and isinstance(value, bool))):
            return value
        self.record(path, "wrong_type", f"{path}: expected {expected}, found {_json_type(value)}")
        return None

    def string(self, path: str, base: Any = None, label: str | None = None) -> str | None:
        """A FHIR string/code/uri/id element."""
        return self._typed(label or path, self.node(path, base), (str,), "a string")

    def boolean(self, path: str, base: Any = None, label: str | None = None) -> bool | None:
        return self._typed(label or path, self.node(path, base), (bool,), "true or false")

    def number(self, path: str, base: Any = None, label: str | None = None) -> float | None:
        """A FHIR decimal/integer; strings, booleans and non-finite numbers are invalid."""
        value = self._typed(label or path, self.node(path, base), (int, float), "a number")
        if value is None:
            return None
        number = float(value)
        if not math.isfinite(number):
            self.record(label or path, "invalid_number", f"{label or path}: not a finite number")
            return None
        return number

    def moment(self, path: str, base: Any = None, label: str | None = None) -> FhirDateTime | None:
        """A FHIR date/dateTime/instant, as written (precision and offset kept)."""
        value = self.node(path, base)
        if value is None:
            return None
        try:
            return parse_fhir_datetime(value)
        except InvalidDateTime as err:
            reason = "wrong_type" if not isinstance(value, str) else "invalid_datetime"
            self.record(label or path, reason, f"{label or path}: {err}" if isinstance(value, str)
                        else f"{label or path}: expected a date or dateTime string, found {_json_type(value)}")
            return None

    def quantity(self, path: str, base: Any = None) -> tuple[float | None, str | None]:
        """(value, unit) of a Quantity; the unit is its UCUM code, else its printed unit (FHIRHelpers.ToQuantity)."""
        node = self.node(path, base)
        if node is None:
            return None, None
        if not isinstance(node, dict):
            self.record(path, "wrong_type", f"{path}: expected a Quantity object, found {_json_type(node)}")
            return None, None
        value = self.number("value", node, f"{path}.value")
        code = self.string("code", node, f"{path}.code")
        unit = code if code is not None else self.string("unit", node, f"{path}.unit")
        return value, (unit if value is not None else None)

    def objects(self, path: str, base: Any = None) -> list[dict]:
        """The objects of a repeating element (a single object is read as a list of one)."""
        value = self.node(path, base)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        kept = [item for item in items if isinstance(item, dict)]
        if len(kept) != len(items):
            self.record(path, "wrong_type", f"{path}: {len(items) - len(kept)} item(s) are not objects")
        return kept

    def reference_id(self, path: str, base: Any = None) -> str | None:
        """The id in a Reference: `Patient/123` → 123, `urn:uuid:abc` → abc, `#contained` → contained."""
        return reference_id(self.node(path, base))

    def codings(self, path: str, base: Any = None) -> list[tuple[str | None, str]]:
        """(system, code) of a CodeableConcept, a list of them, or a bare Coding (Encounter.class)."""
        out = []
        for concept in self.objects(path, base):
            codings = concept.get("coding") if "coding" in concept else [concept]
            for coding in codings if isinstance(codings, list) else [codings]:
                if not isinstance(coding, dict):
                    continue
                system, code = coding.get("system"), coding.get("code")
                if isinstance(code, (int, float)) and not isinstance(code, bool):
                    code = str(code)
                if isinstance(code, str) and (system is None or isinstance(system, str)):
                    out.append((system, code))
                elif code is not None:
                    self.record(f"{path}.coding", "wrong_type", f"{path}.coding: code or system is not a string")
        return out

    def strings(self, path: str) -> list[str]:
        """The strings of a repeating string/uri/canonical element (e.g. `meta.profile`); others are recorded."""
        value = self.node(path)
        items = [] if value is None else value if isinstance(value, list) else [value]
        kept = [item for item in items if isinstance(item, str) and item]
        if len(kept) != len(items):
            self.record(path, "wrong_type", f"{path}: {len(items) - len(kept)} item(s) are not non-empty strings")
        return kept

    def first_code(self, path: str) -> str | None:
        """The first code of a CodeableConcept (statuses such as clinicalStatus)."""
        codes = self.codings(path)
        return codes[0][1] if codes else None

    def extensions(self, key: str = "extension") -> list[dict]:
        return self.objects(key)


def reference_id(reference: Any) -> str | None:
    """The id in a reference: `Patient/123` → 123, `urn:uuid:abc` → abc, `#contained` → contained."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("urn:uuid:"):
        return text[9:]
    return text.rstrip("/").rsplit("/", 1)[-1].lstrip("#")


def flag(extensions: Iterable[dict], urls: Iterable[str] | str) -> bool:
    """Whether a boolean extension with one of `urls` is true."""
    wanted = (urls,) if isinstance(urls, str) else tuple(urls)
    return any(e.get("url") in wanted and e.get("valueBoolean") is True for e in extensions)

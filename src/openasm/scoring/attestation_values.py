"""Cell parsers of the IA/PI attestation intake (asm-model.md §5, §8.5): TINs, years, booleans, ISO dates and
`;`-separated name lists, each returning None (or reporting through `fail`) for a value it cannot read."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from openasm.schema.formats import TIN_PATTERN

BOOLEANS = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def cell_text(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def parse_tin(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.match(r"^[0-9]{2}-[0-9]{7}$", text):
        text = text.replace("-", "")
    return text if re.match(TIN_PATTERN, text) else None


def tin_reason(value: Any) -> str:
    if is_blank(value):
        return "TIN is missing"
    if not isinstance(value, str):
        return "TIN must be text of 9 digits (quote it in JSON so leading zeros are kept)"
    digits = value.strip()
    if digits.isdigit() and len(digits) < 9:
        return f"TIN must be 9 digits, got {len(digits)} (leading zeros lost?)"
    return "TIN must be 9 digits"


def parse_year(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^\s*[0-9]{4}\s*$", value):
        return int(value)
    return None


def parse_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return BOOLEANS.get(value.strip().lower())
    return None


def parse_date(value: Any, column: str, fail) -> dt.date | None:
    if is_blank(value):
        fail(column, "date is missing", value)
        return None
    text = value.strip() if isinstance(value, str) else None
    try:
        if text is None or not ISO_DATE.match(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(column, "not a date in YYYY-MM-DD form", value)
        return None


def parse_names(value: Any, *, upper: bool) -> list[str] | None:
    """Distinct names of a list cell, in order; None when the value is not a list or a string."""
    if is_blank(value):
        return []
    if isinstance(value, str):
        parts = value.split(";")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = [part for v in value for part in v.split(";")]
    else:
        return None
    cleaned = [p.strip().upper() if upper else p.strip().lower() for p in parts if p.strip()]
    return list(dict.fromkeys(cleaned))

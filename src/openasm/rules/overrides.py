"""Scenario overrides (`--set name=value`): parsed as YAML and checked against the shipped value's shape, unit,
allowed values and code-list names before they replace it (OpenFisca-style reforms, never code forks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from openasm.rules.files import RulesError, list_code_lists
from openasm.rules.schema import NUMERIC_UNITS, check_allowed
from openasm.rules.schema import leaves as leaves_of


def coerce_override(
    name: str, current: Any, new: Any, allowed: list[Any] | None, unit: str | None = None
) -> Any:
    """Check an override has the shape of the shipped value; ints may stand for floats."""
    if isinstance(current, dict):
        if not isinstance(new, dict):
            raise RulesError(f"override {name}: expected a mapping with keys {sorted(current)}")
        unknown = set(new) - set(current)
        if unknown:
            raise RulesError(f"override {name}: unknown keys {sorted(unknown)}; known {sorted(current)}")
        merged = dict(current)
        for key, val in new.items():
            merged[key] = coerce_override(f"{name}.{key}", current[key], val, None, unit)
        if allowed is not None:
            _check_override_allowed(name, merged, allowed)
        return merged
    if current is None:
        # A null default (e.g. "no cap"): accept null, or a value of the parameter's unit.
        if new is not None and unit in NUMERIC_UNITS:
            for leaf in leaves_of(new):
                if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
                    raise RulesError(f"override {name}: expected a number (unit {unit}), got {new!r}")
        if new is not None and allowed is not None:
            _check_override_allowed(name, new, allowed)
        return new
    if isinstance(current, bool):
        if not isinstance(new, bool):
            raise RulesError(f"override {name}: expected true or false, got {new!r}")
        return new
    if isinstance(current, (int, float)):
        if isinstance(new, bool) or not isinstance(new, (int, float)):
            raise RulesError(f"override {name}: expected a number, got {new!r}")
        return float(new) if isinstance(current, float) else new
    if isinstance(current, list):
        if not isinstance(new, list):
            raise RulesError(f"override {name}: expected a list, got {new!r}")
        if unit in NUMERIC_UNITS and any(
            isinstance(leaf, bool) or not isinstance(leaf, (int, float)) for leaf in leaves_of(new)
        ):
            raise RulesError(f"override {name}: expected a list of numbers (unit {unit}), got {new!r}")
        if allowed is not None:
            _check_override_allowed(name, new, allowed)
        return new
    if isinstance(current, str):
        if not isinstance(new, str):
            new = str(new)
    if allowed is not None:
        _check_override_allowed(name, new, allowed)
    return new


def check_override_code_lists(name: str, value: Any, rules_dir: Path) -> None:
    """An override naming a code list must name a shipped one."""
    members = value.values() if isinstance(value, dict) else [value]
    known = set(list_code_lists(rules_dir))
    for member in members:
        if isinstance(member, str) and member not in known:
            raise RulesError(f"override {name}: code list '{member}' not found (no codes/{member}.csv)")


def _check_override_allowed(name: str, value: Any, allowed: list[Any]) -> None:
    try:
        check_allowed(value, allowed, f"override {name}")
    except ValueError as err:
        raise RulesError(str(err)) from err


def parse_override(text: str) -> tuple[str, Any]:
    """`name=value` (value in YAML: `0.1`, `true`, `[a, b]`, `{hf: 90}`); `name.member=value` too."""
    if "=" not in text:
        raise RulesError(f"override '{text}': expected name=value")
    name, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise RulesError(f"override '{text}': value is not valid YAML: {err}") from err
    return name.strip(), value

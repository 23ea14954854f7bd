"""Load the rules tree and resolve it for one performance year.

A parameter's dotted name is its path under `rules/params/` (`payment/risk_level.yaml` →
`payment.risk_level`). Year keys hold forward until the next key. Parameters whose `period` is
`payment_year` are looked up at PY + `model.payment_year_lag` (§512.710(a)(1)(i)(C): PaY = PY + 2).
Every value read through `RulesForYear.value` is recorded so a run can say which numbers it rests on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import ValidationError

from openasm.rules.schema import NUMERIC_UNITS, CodeListSource, ParameterFile, check_allowed
from openasm.rules.schema import leaves as leaves_of

PAYMENT_YEAR_LAG = "model.payment_year_lag"


class RulesError(ValueError):
    """A rules file is invalid, a parameter is missing, or an override does not fit."""


@dataclass(frozen=True)
class ResolvedValue:
    """One parameter's value for a performance year, with the trail behind it."""

    name: str
    value: Any
    unit: str
    period: str
    lookup_year: int
    key_year: int
    evidence: str
    citations: tuple[str, ...]
    description: str
    status: str = "final"
    overridden: bool = False
    shipped_value: Any = None

    def as_row(self) -> dict[str, Any]:
        """Flat record for manifests and reports."""
        return {
            "name": self.name,
            "value": format_value(self.value),
            "unit": self.unit,
            "period": self.period,
            "lookup_year": self.lookup_year,
            "key_year": self.key_year,
            "evidence": "override" if self.overridden else self.evidence,
            "shipped_evidence": self.evidence,
            "shipped_value": format_value(self.shipped_value),
            "status": self.status,
            "citation": "; ".join(self.citations),
            "description": self.description,
        }


def format_value(value: Any) -> str:
    """Compact text of a parameter value (mappings as k=v, lists comma-joined)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _package_rules_dir() -> Path:
    return Path(str(resources.files("openasm.rules")))


def _describe_validation_error(path: str, err: ValidationError) -> str:
    problems = []
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"key '{key}': {item['msg']}")
    return f"rules file {path}: " + "; ".join(problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a mapping key given twice (a repeated year key would silently win)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_parameter_file(path: Path, label: str | None = None) -> ParameterFile:
    """Read and validate one parameter YAML; errors name the file, key and reason."""
    shown = label or str(path)
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RulesError(f"rules file {shown}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise RulesError(f"rules file {shown}: expected a mapping at top level")
    try:
        return ParameterFile.model_validate(raw)
    except ValidationError as err:
        raise RulesError(_describe_validation_error(shown, err)) from err


@lru_cache(maxsize=8)
def load_parameter_files(rules_dir: Path | None = None) -> dict[str, ParameterFile]:
    """All parameter files under `<rules_dir>/params`, keyed by dotted name."""
    base = (rules_dir or _package_rules_dir()) / "params"
    if not base.is_dir():
        raise RulesError(f"rules folder {base} does not exist")
    codes_dir = base.parent / "codes"
    known_lists = {p.stem for p in codes_dir.glob("*.csv")} if codes_dir.is_dir() else None
    params: dict[str, ParameterFile] = {}
    for path in sorted(base.rglob("*.yaml")):
        rel = path.relative_to(base)
        name = ".".join(rel.with_suffix("").parts)
        label = f"params/{rel.as_posix()}"
        params[name] = parse_parameter_file(path, label=label)
        if known_lists is not None:
            _check_code_list_names(label, params[name], known_lists)
    if PAYMENT_YEAR_LAG not in params:
        raise RulesError(f"rules folder {base} lacks {PAYMENT_YEAR_LAG}")
    return params


def code_list_names(param: ParameterFile) -> dict[int, list[str]]:
    """Code lists a `codes` parameter points to, by year key (a string value, or string members of a mapping).

    Lists of strings are literal code sets (e.g. specialty codes), not code-list names.
    """
    if param.unit != "codes":
        return {}
    named: dict[int, list[str]] = {}
    for year, entry in param.values.items():
        members = entry.value.values() if isinstance(entry.value, dict) else [entry.value]
        names = [m for m in members if isinstance(m, str)]
        if names:
            named[year] = names
    return named


def _check_code_list_names(label: str, param: ParameterFile, known: set[str]) -> None:
    """A `codes` parameter whose value is a name must name a shipped `codes/<name>.csv`.

    Skipped for a rules folder without `codes/` (a params-only overlay).
    """
    for year, names in code_list_names(param).items():
        for list_name in names:
            if list_name not in known:
                raise RulesError(
                    f"rules file {label}: key 'values.{year}.value': code list '{list_name}' not found "
                    f"(no codes/{list_name}.csv)"
                )


def _value_on_or_before(name: str, param: ParameterFile, year: int) -> tuple[int, Any]:
    keys = [k for k in param.values if k <= year]
    if not keys:
        first = min(param.values)
        raise RulesError(f"parameter {name} has no value on or before {year} (first key {first})")
    return keys[-1], param.values[keys[-1]]


def resolve_parameter(name: str, param: ParameterFile, performance_year: int, lag: int) -> ResolvedValue:
    """The value in force for `performance_year` (payment-year parameters at PY + lag)."""
    lookup = performance_year + lag if param.period == "payment_year" else performance_year
    key_year, entry = _value_on_or_before(name, param, lookup)
    citations = tuple(ref.label() for ref in (entry.reference or param.reference))
    return ResolvedValue(
        name=name, value=entry.value, unit=param.unit, period=param.period, lookup_year=lookup,
        key_year=key_year, evidence=entry.evidence, citations=citations,
        description=param.description, status=entry.status, shipped_value=entry.value,
    )


def _coerce_override(
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
            merged[key] = _coerce_override(f"{name}.{key}", current[key], val, None, unit)
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


def _check_override_code_lists(name: str, value: Any, rules_dir: Path) -> None:
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


@dataclass(frozen=True)
class RulesForYear:
    """Frozen, typed view of every rule for one performance year; records each value read."""

    performance_year: int
    values: Mapping[str, ResolvedValue]
    rules_dir: Path
    code_list_dir: Path | None = None
    _used: set[str] = field(default_factory=set, compare=False, repr=False)
    _used_code_lists: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def payment_year(self) -> int:
        """PaY = PY + lag (§512.710(a)(1)(i)(C))."""
        return self.performance_year + int(self.values[PAYMENT_YEAR_LAG].value)

    def value(self, name: str) -> Any:
        """The value of `name`, recorded as used by this run."""
        resolved = self.resolved(name)
        self._used.add(name)
        return resolved.value

    def __getitem__(self, name: str) -> Any:
        return self.value(name)

    def cohort_value(self, name: str, cohort: str) -> Any:
        """Member `cohort` (e.g. 'hf', 'lbp') of a parameter broken down by cohort."""
        mapping = self.value(name)
        if not isinstance(mapping, dict) or cohort not in mapping:
            raise RulesError(f"parameter {name} has no value for cohort '{cohort}'")
        return mapping[cohort]

    def resolved(self, name: str) -> ResolvedValue:
        if name not in self.values:
            close = [n for n in self.values if n.split(".")[-1] == name.split(".")[-1]]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RulesError(f"unknown parameter '{name}'{hint}")
        return self.values[name]

    def all(self) -> list[ResolvedValue]:
        return [self.values[name] for name in sorted(self.values)]

    def used(self) -> list[ResolvedValue]:
        return [self.values[name] for name in sorted(self._used)]

    def manifest_rows(self, only_used: bool = True) -> list[dict[str, Any]]:
        """Rows for the run manifest: each value with citation and evidence."""
        return [r.as_row() for r in (self.used() if only_used else self.all())]

    def code_list(self, name: str) -> pa.Table:
        """A shipped code list `rules/codes/<name>.csv` as an Arrow table of strings.

        `name` may also be a `codes` parameter whose value names the list (e.g. `episodes.dx_codes`); the
        parameter is then recorded as used.
        """
        if name in self.values and self.values[name].unit == "codes":
            list_name = self.value(name)
            if not isinstance(list_name, str):
                raise RulesError(f"parameter {name} is a literal code set, not the name of a code list")
            name = list_name
        self._used_code_lists.add(name)
        user_file = self.code_list_dir / f"{name}.csv" if self.code_list_dir is not None else None
        if user_file is not None and user_file.is_file():
            return read_user_code_list(user_file, load_code_list(name, self.rules_dir).column_names)
        return load_code_list(name, self.rules_dir)

    def with_code_lists(self, folder: Path) -> "RulesForYear":
        """A view whose code lists come from `folder` where it holds `<list>.csv` (e.g. the CMS measure codes
        workbook exported sheet by sheet into the shipped columns); other lists stay as shipped. Every CSV in
        the folder must be a known list with the shipped columns."""
        folder = Path(folder)
        if not folder.is_dir():
            raise RulesError(f"code list folder {folder} does not exist")
        known = set(list_code_lists(self.rules_dir))
        for path in sorted(folder.glob("*.csv")):
            if path.stem not in known:
                raise RulesError(f"{path}: not a code list openasm knows; expected one of {', '.join(sorted(known))}")
            read_user_code_list(path, load_code_list(path.stem, self.rules_dir).column_names)
        return RulesForYear(self.performance_year, self.values, self.rules_dir, folder)

    def code_list_rows(self) -> list[dict[str, Any]]:
        """Manifest rows for the code lists read: where each came from (shipped version, or the user file)."""
        rows = []
        for name in sorted(self._used_code_lists):
            user_file = self.code_list_dir / f"{name}.csv" if self.code_list_dir is not None else None
            if user_file is not None and user_file.is_file():
                rows.append({"name": f"codes:{name}", "value": str(user_file), "evidence": "override",
                             "citation": "user-supplied code list"})
            else:
                source = load_code_list_source(self.rules_dir / "codes" / f"{name}.source.yaml")
                rows.append({"name": f"codes:{name}", "value": source.version, "evidence": source.evidence,
                             "citation": "; ".join(ref.label() for ref in source.reference)})
        return rows

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> "RulesForYear":
        """A new view with scenario values substituted (OpenFisca-style reform, never a code fork)."""
        items = overrides.items() if isinstance(overrides, Mapping) else overrides
        params = load_parameter_files(self.rules_dir)
        values = dict(self.values)
        for raw_name, new in items:
            name, member = raw_name, None
            if name not in values and "." in name:
                head, tail = name.rsplit(".", 1)
                if head in values and isinstance(values[head].value, dict):
                    name, member = head, tail
            self.resolved(name)  # unknown names fail here, with a hint
            current = values[name]  # earlier overrides in this call (e.g. another cohort member) stand
            proposed = {member: new} if member is not None else new
            value = _coerce_override(name, current.value, proposed, params[name].allowed, params[name].unit)
            if params[name].unit == "codes":
                _check_override_code_lists(name, value, self.rules_dir)
            values[name] = replace(current, value=value, overridden=True)
        return RulesForYear(self.performance_year, values, self.rules_dir, self.code_list_dir)


def load_rules(
    performance_year: int,
    overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    rules_dir: Path | None = None,
) -> RulesForYear:
    """Resolve every parameter for `performance_year`, then apply `overrides` by name."""
    base = rules_dir or _package_rules_dir()
    params = load_parameter_files(base)
    lag_param = params[PAYMENT_YEAR_LAG]
    _, lag_entry = _value_on_or_before(PAYMENT_YEAR_LAG, lag_param, performance_year)
    lag = int(lag_entry.value)
    values = {name: resolve_parameter(name, p, performance_year, lag) for name, p in params.items()}
    rules = RulesForYear(performance_year, values, base)
    return rules.with_overrides(overrides) if overrides else rules


@lru_cache(maxsize=64)
def load_code_list(name: str, rules_dir: Path | None = None) -> pa.Table:
    """Read `codes/<name>.csv` (all columns text) after checking its `.source.yaml` exists and is valid."""
    base = (rules_dir or _package_rules_dir()) / "codes"
    csv_path = base / f"{name}.csv"
    source_path = base / f"{name}.source.yaml"
    if not csv_path.is_file():
        raise RulesError(f"code list {name}: no file codes/{name}.csv")
    load_code_list_source(source_path)
    text = csv_path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    if reader.fieldnames is None:
        raise RulesError(f"code list codes/{name}.csv is empty")
    for number, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise RulesError(f"code list codes/{name}.csv line {number}: wrong number of fields")
    columns = {col: [row[col] for row in rows] for col in reader.fieldnames}
    return pa.table({col: pa.array(vals, type=pa.string()) for col, vals in columns.items()})


def load_code_list_source(path: Path) -> CodeListSource:
    """Validate a code list's provenance file."""
    if not path.is_file():
        raise RulesError(f"code list {path.name.removesuffix('.source.yaml')}: missing {path.name}")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
        return CodeListSource.model_validate(raw)
    except yaml.YAMLError as err:
        raise RulesError(f"rules file codes/{path.name}: not valid YAML: {err}") from err
    except ValidationError as err:
        raise RulesError(_describe_validation_error(f"codes/{path.name}", err)) from err


def list_code_lists(rules_dir: Path | None = None) -> list[str]:
    """Names of every shipped code list."""
    base = (rules_dir or _package_rules_dir()) / "codes"
    return sorted(p.stem for p in base.glob("*.csv"))


def read_user_code_list(path: Path, columns: list[str]) -> pa.Table:
    """A user code list CSV (all text) that must carry exactly the shipped list's columns, in any order."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise RulesError(f"{path}: unreadable: {err}") from err
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    extra = [c for c in header if c not in columns]
    if missing or extra:
        raise RulesError(f"{path}: columns must be {', '.join(columns)}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unexpected {', '.join(extra)}" if extra else ""))
    rows = list(reader)
    if not rows:
        raise RulesError(f"{path}: no rows")
    for number, row in enumerate(rows, start=2):
        if None in row or any(row[c] is None for c in columns):
            raise RulesError(f"{path} line {number}: wrong number of fields")
    return pa.table({c: pa.array([row[c].strip() for row in rows], type=pa.string()) for c in columns})

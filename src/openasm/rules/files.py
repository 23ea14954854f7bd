"""Read the rules tree: parameter YAML files (validated, duplicate keys refused) and code lists (CSV with a
`.source.yaml` provenance file each); every error names the file, key and reason."""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import ValidationError

from openasm.rules.schema import CodeListSource, ParameterFile

PAYMENT_YEAR_LAG = "model.payment_year_lag"


class RulesError(ValueError):
    """A rules file is invalid, a parameter is missing, or an override does not fit."""


def package_rules_dir() -> Path:
    return Path(str(resources.files("openasm.rules")))


def _describe_validation_error(path: str, err: ValidationError) -> str:
    problems = []
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"key '{key}': {item['msg']}")
    return f"rules file {path}: " + "; ".join(problems)


# libyaml's parser when PyYAML was built with it: every command reads some 200 rules files (pure-Python parser
# 0.18 s, libyaml 0.03 s).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
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
    base = (rules_dir or package_rules_dir()) / "params"
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


@lru_cache(maxsize=64)
def load_code_list(name: str, rules_dir: Path | None = None) -> pa.Table:
    """Read `codes/<name>.csv` (all columns text) after checking its `.source.yaml` exists and is valid."""
    base = (rules_dir or package_rules_dir()) / "codes"
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
    base = (rules_dir or package_rules_dir()) / "codes"
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

"""Load the rules tree and resolve it for one performance year.

A parameter's dotted name is its path under `rules/params/` (`payment/risk_level.yaml` →
`payment.risk_level`). Year keys hold forward until the next key. Parameters whose `period` is
`payment_year` are looked up at PY + `model.payment_year_lag` (§512.710(a)(1)(i)(C): PaY = PY + 2).
Every value read through `RulesForYear.value` is recorded so a run can say which numbers it rests on.

Resolution is lazy: a parameter is resolved when first read, so a stage fails only on a parameter it reads
(grouping a MIPS year 2024–2026 needs no payment rule, whose years start at PaY 2029), and the error names
that parameter. `RulesForYear.unresolved()` lists what has no value for the year.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.rules.files import (
    PAYMENT_YEAR_LAG,
    RulesError,
    list_code_lists,
    load_code_list,
    load_code_list_source,
    load_parameter_files,
    package_rules_dir,
    read_user_code_list,
)
from openasm.rules.overrides import check_override_code_lists, coerce_override
from openasm.rules.schema import ParameterFile


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


def _lag(params: Mapping[str, ParameterFile], performance_year: int) -> int:
    """`model.payment_year_lag` in force for the performance year (PaY = PY + lag)."""
    _, entry = _value_on_or_before(PAYMENT_YEAR_LAG, params[PAYMENT_YEAR_LAG], performance_year)
    return int(entry.value)


class ResolvedValues(Mapping[str, ResolvedValue]):
    """Every parameter of a rules tree for one performance year, each resolved when first read.

    Membership and iteration cover every parameter name without resolving it; reading one that has no value
    for the year raises a RulesError naming it (a payment-year parameter also when the payment-year lag itself
    has no value for the year).
    """

    def __init__(self, params: Mapping[str, ParameterFile], performance_year: int,
                 replaced: Mapping[str, ResolvedValue] | None = None) -> None:
        self._params = params
        self._year = performance_year
        self._replaced: dict[str, ResolvedValue] = dict(replaced or {})
        self._resolved: dict[str, ResolvedValue] = dict(self._replaced)

    def __eq__(self, other: object) -> bool:
        """Same tree, year and overrides (without resolving anything)."""
        if not isinstance(other, ResolvedValues):
            return NotImplemented
        return (self._params is other._params and self._year == other._year
                and self._replaced == other._replaced)

    __hash__ = None  # type: ignore[assignment]  # mutable cache, like a dict

    def __getitem__(self, name: str) -> ResolvedValue:
        if name not in self._resolved:
            if name not in self._params:
                raise KeyError(name)
            param = self._params[name]
            lag = 0
            if param.period == "payment_year":
                try:
                    lag = _lag(self._params, self._year)
                except RulesError as err:
                    raise RulesError(f"parameter {name} is keyed by payment year and cannot be looked up for "
                                     f"performance year {self._year}: {err}") from err
            self._resolved[name] = resolve_parameter(name, param, self._year, lag)
        return self._resolved[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    @property
    def params(self) -> Mapping[str, ParameterFile]:
        return self._params

    def replacing(self, values: Mapping[str, ResolvedValue]) -> "ResolvedValues":
        """A copy with `values` (overrides) standing in for the shipped ones."""
        return ResolvedValues(self._params, self._year, {**self._replaced, **values})


@dataclass(frozen=True)
class RulesForYear:
    """Frozen, typed view of every rule for one performance year (each resolved when first read); records each
    value read."""

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

    def require(self, implemented: Mapping[str, Any]) -> None:
        """Read each named rule (so the run records what it rests on) and refuse a value other than the one the
        calling stage implements, naming the parameter."""
        for name, value in implemented.items():
            if self.value(name) != value:
                raise RulesError(f"{name}={self.value(name)!r} is not implemented (only {value!r})")

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
        """Every parameter that has a value for the year (see `unresolved` for the rest)."""
        out = []
        for name in sorted(self.values):
            try:
                out.append(self.values[name])
            except RulesError:
                continue
        return out

    def unresolved(self) -> dict[str, str]:
        """Parameters with no value for the year, each with the reason (a stage reading one fails with it)."""
        out = {}
        for name in sorted(self.values):
            try:
                self.values[name]
            except RulesError as err:
                out[name] = str(err)
        return out

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
        changed: dict[str, ResolvedValue] = {}
        for raw_name, new in items:
            name, member = raw_name, None
            if name not in self.values and "." in name:
                head, tail = name.rsplit(".", 1)
                if head in self.values and isinstance(self.values[head].value, dict):
                    name, member = head, tail
            self.resolved(name)  # unknown names (with a hint) and names without a value for the year fail here
            current = changed.get(name, self.values[name])  # earlier overrides in this call (a cohort member) stand
            proposed = {member: new} if member is not None else new
            value = coerce_override(name, current.value, proposed, params[name].allowed, params[name].unit)
            if params[name].unit == "codes":
                check_override_code_lists(name, value, self.rules_dir)
            changed[name] = replace(current, value=value, overridden=True)
        values = self.values.replacing(changed) if isinstance(self.values, ResolvedValues) else {
            **self.values, **changed}
        return RulesForYear(self.performance_year, values, self.rules_dir, self.code_list_dir)


def load_rules(
    performance_year: int,
    overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    rules_dir: Path | None = None,
) -> RulesForYear:
    """The rules of `performance_year` (each parameter resolved when first read), with `overrides` applied by
    name (an override of a parameter without a value for the year fails here, naming it)."""
    base = rules_dir or package_rules_dir()
    rules = RulesForYear(performance_year, ResolvedValues(load_parameter_files(base), performance_year), base)
    return rules.with_overrides(overrides) if overrides else rules



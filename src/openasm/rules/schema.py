"""Pydantic models of a rules file: one regulatory parameter, or the source note of a code list.

The schema is the one in ARCHITECTURE.md §3. A parameter file holds a description, a unit, which calendar
its year keys mean (performance or payment year), at least one reference, and values keyed by year; each
value carries its evidence level (`reg` | `secondary` | `default`) and may carry its own reference or note.
Unknown keys are rejected so that a typo never silently becomes a default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Evidence = Literal["reg", "secondary", "default"]
# "/1" fraction; "per_point" rate per final-score point; "rl" multiple of the payment year's risk level;
# "codes" a code-list name (string) or a list of code values; "file" a path to a data file (null: none shipped);
# "month_day" a calendar window such as {start: "01-02", end: "03-31", year_offset: 1}; "table" a list of rows.
Unit = Literal[
    "/1", "usd", "points", "days", "years", "count", "bool", "enum", "codes", "percentile", "sd",
    "table", "text", "year", "per_point", "rl", "file", "month_day",
]
# Units whose values (and every member of a mapping or list value) must be numbers or null.
NUMERIC_UNITS = frozenset({"/1", "usd", "points", "days", "years", "count", "percentile", "sd", "year",
                           "per_point", "rl"})
Period = Literal["performance_year", "payment_year"]

FIRST_YEAR = 2015
LAST_YEAR = 2040


class Reference(BaseModel):
    """Where a value comes from: a CFR section, a URL, or a named document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cfr: str | None = Field(None, description="CFR citation, e.g. '42 CFR 512.730(e)'")
    href: str | None = Field(None, description="URL of the source text")
    title: str | None = Field(None, description="Short human title of the source")

    @model_validator(mode="after")
    def _has_something(self) -> "Reference":
        if not (self.cfr or self.href or self.title):
            raise ValueError("a reference needs at least one of cfr, href or title")
        return self

    def label(self) -> str:
        """One-line citation for tables and manifests."""
        return self.cfr or self.title or self.href or ""


class YearValue(BaseModel):
    """The value in force from one year on, with its evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Any = Field(..., description="Scalar, list, or mapping (mapping keys = breakdown members)")
    evidence: Evidence
    reference: list[Reference] = Field(default_factory=list)
    note: str | None = None
    status: Literal["final", "proposed"] = "final"


class ParameterFile(BaseModel):
    """One parameter: the contents of `rules/params/<section>/<name>.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(..., min_length=10)
    unit: Unit
    period: Period
    reference: list[Reference] = Field(..., min_length=1)
    values: dict[int, YearValue] = Field(..., min_length=1)
    breakdown: str | None = Field(
        None, description="Name of the dimension a mapping value is keyed by, e.g. 'cohort'"
    )
    allowed: list[Any] | None = Field(None, description="For unit enum: the permitted values")
    spec: str | None = Field(None, description="Section of the openasm spec that defines it")

    @field_validator("values")
    @classmethod
    def _years_in_range(cls, values: dict[int, YearValue]) -> dict[int, YearValue]:
        for year in values:
            if not FIRST_YEAR <= year <= LAST_YEAR:
                raise ValueError(f"year key {year} outside {FIRST_YEAR}-{LAST_YEAR}")
        return dict(sorted(values.items()))

    @model_validator(mode="after")
    def _consistent(self) -> "ParameterFile":
        for year, entry in self.values.items():
            if self.breakdown is not None and not isinstance(entry.value, dict):
                raise ValueError(f"{year}: breakdown '{self.breakdown}' needs a mapping value")
            if self.unit == "bool":
                members = entry.value.values() if isinstance(entry.value, dict) else [entry.value]
                if not all(isinstance(v, bool) for v in members):
                    raise ValueError(f"{year}: unit bool needs true/false values")
            if self.unit in NUMERIC_UNITS:
                for leaf in leaves(entry.value):
                    if leaf is not None and (isinstance(leaf, bool) or not isinstance(leaf, (int, float))):
                        raise ValueError(f"{year}: unit {self.unit} needs numbers (or null), got {leaf!r}")
            if self.allowed is not None:
                check_allowed(entry.value, self.allowed, f"{year}")
        return self


def leaves(value: Any) -> list[Any]:
    """Scalar members of a value, looking through mappings (breakdowns) and lists."""
    if isinstance(value, dict):
        return [leaf for member in value.values() for leaf in leaves(member)]
    if isinstance(value, list):
        return [leaf for member in value for leaf in leaves(member)]
    return [value]


def check_allowed(value: Any, allowed: list[Any], where: str) -> None:
    """Raise ValueError when an enum value (or any member of a mapping or list) is not permitted."""
    for member in leaves(value):
        if member not in allowed:
            raise ValueError(f"{where}: {member!r} is not one of {allowed}")


class CodeListSource(BaseModel):
    """The provenance note next to a code list: `rules/codes/<name>.source.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(..., min_length=10)
    columns: dict[str, str] = Field(..., description="column name -> meaning")
    reference: list[Reference] = Field(..., min_length=1)
    evidence: Evidence
    version: str
    retrieved: str | None = Field(None, description="Date the source was read (YYYY-MM-DD)")
    note: str | None = None

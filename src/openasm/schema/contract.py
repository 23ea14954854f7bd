"""How a canonical table is described: columns with type, requiredness, shape check and meaning.

A contract is the single definition of a table the engine reads. Ingest validates against it, the
synthetic generator writes it, connectors map real files (CCLF, research identifiable files) into it, and
the documentation is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import ibis.expr.datatypes as dt

# Named value checks applied during ingest (see openasm.ingest.checks for their definitions).
Check = Literal[
    "npi", "tin", "icd10cm", "hcpcs", "hcpcs_modifier", "ndc", "year_month", "place_of_service",
    "revenue_center", "drg", "specialty_code", "zip5", "cbsa", "state_fips", "amount",
]


IDENTIFIER_SUFFIXES = ("_id", "_npi", "_tin")
IDENTIFIER_NAMES = ("npi", "tin")


def is_identifier(name: str) -> bool:
    """Identifier columns (ids end `_id`/`_npi`/`_tin`, ARCHITECTURE.md §2): their values never reach
    errors, logs or the quarantine's raw_value, only their row numbers and column names."""
    return name in IDENTIFIER_NAMES or name.endswith(IDENTIFIER_SUFFIXES)


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: str
    required: bool
    description: str
    check: Check | None = None
    allowed: tuple[str, ...] | None = None
    # Required only on rows whose `claim_type` is one of these (e.g. HCPCS on carrier lines).
    required_for_claim_types: tuple[str, ...] = ()

    @property
    def ibis_type(self) -> dt.DataType:
        return dt.dtype(self.dtype)

    @property
    def is_identifier(self) -> bool:
        return is_identifier(self.name)


@dataclass(frozen=True)
class TableContract:
    """A canonical table: grain, unique key, columns and cross-column date-order rules."""

    name: str
    grain: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # (earlier, later): a row fails when both are present and earlier > later.
    date_order: tuple[tuple[str, str], ...] = ()
    # Amount columns may be negative on rows whose adjustment type is one of these.
    negative_allowed_when: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name}")

    def ibis_schema(self):
        """The Ibis schema of the accepted (typed) table."""
        import ibis

        return ibis.schema({c.name: c.ibis_type for c in self.columns})

"""Canonical table contracts: the tables the engine reads, defined once."""

from openasm.schema.canonical import CANONICAL_TABLES
from openasm.schema.contract import Column, TableContract

__all__ = ["CANONICAL_TABLES", "Column", "TableContract"]

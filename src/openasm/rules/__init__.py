"""Rules as data: every regulatory number, with its years, unit, citation and evidence level."""

from openasm.rules.resolve import (
    ResolvedValue,
    RulesError,
    RulesForYear,
    list_code_lists,
    load_code_list,
    load_parameter_files,
    load_rules,
    parse_override,
)

__all__ = [
    "ResolvedValue",
    "RulesError",
    "RulesForYear",
    "list_code_lists",
    "load_code_list",
    "load_parameter_files",
    "load_rules",
    "parse_override",
]

"""Rules as data: every regulatory number, with its years, unit, citation and evidence level."""

from openasm.rules.files import RulesError, list_code_lists, load_code_list, load_parameter_files
from openasm.rules.overrides import parse_override
from openasm.rules.resolve import ResolvedValue, RulesForYear, load_rules

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

"""Value-set expansions as a table `value_set_code(oid, system, code)` (quality.md §4, §7).

The shipped expansions are the code list `quality__value_set_codes` (rebuilt by `scripts/build_value_sets.py`);
a folder of FHIR ValueSet resources with `expansion` can be loaded instead (a newer VSAC release). The loader keys a
value set by the OID at the end of its canonical url, not by its file name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from openasm.rules import RulesForYear, load_code_list

VALUE_SET_CODE_SCHEMA = pa.schema([("oid", pa.string()), ("system", pa.string()), ("code", pa.string())])


class ValueSetError(ValueError):
    """A ValueSet file cannot be used."""


def oid_of(url: str) -> str:
    """The OID at the end of a ValueSet canonical url."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def read_value_set_file(path: Path) -> tuple[dict, list[tuple[str, str, str]]]:
    """(summary, member rows) of one FHIR ValueSet JSON file with an expansion."""
    try:
        value_set = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueSetError(f"{path}: line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(value_set, dict) or value_set.get("resourceType") != "ValueSet":
        raise ValueSetError(f"{path}: not a FHIR ValueSet resource")
    if not value_set.get("url"):
        raise ValueSetError(f"{path}: ValueSet has no url, so its OID is unknown")
    members = (value_set.get("expansion") or {}).get("contains")
    if members is None:
        raise ValueSetError(f"{path}: ValueSet {value_set['url']} has no expansion.contains (expand it first)")
    identifier = oid_of(value_set["url"])
    rows = []
    for index, member in enumerate(members):
        if not member.get("system") or not member.get("code"):
            raise ValueSetError(f"{path}: expansion.contains[{index}] lacks system or code")
        rows.append((identifier, member["system"], str(member["code"])))
    summary = {"oid": identifier, "name": value_set.get("name") or value_set.get("title") or "",
               "version": value_set.get("version") or "", "url": value_set["url"], "code_count": len(members)}
    return summary, rows


def read_value_set_folder(folder: Path) -> pa.Table:
    """Every ValueSet JSON file in a folder as one `value_set_code` table (duplicates removed)."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise ValueSetError(f"{folder}: no ValueSet *.json files")
    codes: set[tuple[str, str, str]] = set()
    for path in files:
        codes.update(read_value_set_file(path)[1])
    oids, systems, values = zip(*sorted(codes)) if codes else ((), (), ())
    return pa.Table.from_arrays([pa.array(oids, pa.string()), pa.array(systems, pa.string()),
                                 pa.array(values, pa.string())], schema=VALUE_SET_CODE_SCHEMA)


def value_set_codes(rules: RulesForYear | None = None, folder: Path | None = None) -> pa.Table:
    """The value-set table to use: a user folder of ValueSets, else the rules' code list (which honours
    `--code-lists` overlays), else the shipped one."""
    if folder is not None:
        return read_value_set_folder(folder)
    table = rules.code_list("quality__value_set_codes") if rules is not None else load_code_list(
        "quality__value_set_codes")
    return table.select(["oid", "system", "code"]).cast(VALUE_SET_CODE_SCHEMA)

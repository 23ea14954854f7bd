"""Measure code lists for the grouper, and diagnosis matching (ebcm.md §10).

The lists are small (tens of codes): a diagnosis is tested against one regular expression of the list (exact
codes, and prefix codes that match any code starting with them), compared as `normalize_dx` gives it.
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from openasm.rules import RulesForYear

SERVICE_ROLE_DEFAULT = "trigger_confirm_reaffirm"
SERVICE_ROLE_OPTIONAL = "optional"


def measure_for_cohort(rules: RulesForYear, cohort: str) -> str:
    """The cost measure id scored for a cohort (§512.730(b)-(c))."""
    return rules.cohort_value("cost.measures", cohort)


def condition_dx_codes(rules: RulesForYear, measure_id: str) -> pa.Table:
    """Enabled diagnosis codes of the measure: columns code (no dot, upper case), match (exact | prefix)."""
    codes = rules.code_list("episodes.dx_codes")
    keep = pc.and_(pc.equal(codes["measure"], measure_id), pc.equal(pc.utf8_lower(codes["is_enabled"]), "true"))
    selected = codes.filter(keep)
    return pa.table({
        "code": pc.utf8_upper(pc.replace_substring(selected["code"], ".", "")),
        "match": selected["match"],
    })


def service_codes(rules: RulesForYear, measure_id: str, parameter: str) -> list[str]:
    """HCPCS codes of one service role list (`episodes.trigger_hcpcs`, `confirm_hcpcs`, `reaffirm_hcpcs`).

    Rows of role `optional` count only when listed in `episodes.optional_trigger_hcpcs` (ebcm §10.2).
    """
    codes = rules.code_list(parameter)
    enabled_optional = set(rules.value("episodes.optional_trigger_hcpcs") or [])
    rows = codes.filter(pc.equal(codes["measure"], measure_id)).to_pylist()
    return sorted({
        r["hcpcs_code"] for r in rows
        if r["role"] == SERVICE_ROLE_DEFAULT or (r["role"] == SERVICE_ROLE_OPTIONAL and r["hcpcs_code"] in enabled_optional)
    })


def normalize_dx(dx: ir.StringValue) -> ir.StringValue:
    """ICD-10-CM code without the dot, upper case (claims carry either form)."""
    return dx.replace(".", "").upper()


def starts_with_any(code: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    """Whether `code` starts with one of `prefixes` (null for a null code), as one regular expression: ORed
    prefix tests cost the engine one test per prefix and value (22 treatment prefixes over 8.2M lines: 2.7 s)."""
    if not prefixes:
        return ibis.literal(False)
    return code.re_search("^(?:" + "|".join(re.escape(prefix) for prefix in prefixes) + ")")


def diagnosis_pattern(dx_codes: pa.Table) -> str:
    """One regular expression that matches a diagnosis as `normalize_dx` would compare it: any letter case, dots
    anywhere ignored; exact codes to the end, prefix codes followed by anything."""
    alternatives = []
    for row in dx_codes.to_pylist():
        body = r"\.*".join(re.escape(character) for character in row["code"])
        alternatives.append(r"\.*" + body + (r"\.*\z" if row["match"] == "exact" else ""))
    return "(?i)^(?:" + "|".join(alternatives) + ")"


def diagnosis_matches(dx: ir.StringValue, dx_codes: pa.Table) -> ir.BooleanValue:
    """True where the diagnosis is in the code list (exact codes, or starts with a prefix code), compared as
    `normalize_dx` gives it. One regular expression (`diagnosis_pattern`): the engine tests each value once,
    where IN lists per prefix length inside OR were compared value by value after normalising the code several
    times (8.5M line diagnoses: 1.6 s -> 0.2 s)."""
    if dx_codes.num_rows == 0:
        return ibis.literal(False)
    return dx.re_search(diagnosis_pattern(dx_codes)).fill_null(False)


def diagnosis_filter(dx: ir.StringValue, dx_codes: pa.Table) -> list[ir.BooleanValue]:
    """Filter predicates for the rows whose diagnosis matches the code list (`diagnosis_matches`): first the
    normalised code's first characters (as many as the shortest listed code has) looked up among those of the
    listed codes, a hash lookup that most rows fail, then the full test on the rows that pass (HF diagnoses of
    11.5M rows: 0.26 s -> 0.11 s)."""
    codes = dx_codes["code"].to_pylist()
    if not codes:
        return [ibis.literal(False)]
    length = min(len(code) for code in codes)
    stems = sorted({code[:length] for code in codes})
    return [normalize_dx(dx).substr(0, length).isin(stems), diagnosis_matches(dx, dx_codes)]

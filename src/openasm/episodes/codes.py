"""Measure code lists for the grouper, and diagnosis matching (ebcm.md §10).

The lists are small (tens of codes), so they become IN-lists inside the engine expression: a prefix code
of length L matches when the first L characters of the diagnosis equal it, one test per distinct length.
"""

from __future__ import annotations

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


def diagnosis_matches(dx: ir.StringValue, dx_codes: pa.Table) -> ir.BooleanValue:
    """True where the diagnosis is in the code list (exact codes, or starts with a prefix code).

    The list is tiny, so membership is tested per prefix length: substr(dx, 0, L) IN (codes of length L).
    """
    code = normalize_dx(dx)
    rows = dx_codes.to_pylist()
    exact = sorted({r["code"] for r in rows if r["match"] == "exact"})
    by_length: dict[int, set[str]] = {}
    for r in rows:
        if r["match"] == "prefix":
            by_length.setdefault(len(r["code"]), set()).add(r["code"])
    test = code.isin(exact) if exact else ibis.literal(False)
    for length, prefixes in sorted(by_length.items()):
        test = test | code.substr(0, length).isin(sorted(prefixes))
    return test.fill_null(False)


def diagnosis_filter(dx: ir.StringValue, dx_codes: pa.Table) -> list[ir.BooleanValue]:
    """Filter predicates for the rows whose diagnosis matches the code list (`diagnosis_matches`): first the
    code's first characters, as many as the shortest listed code has, looked up among those of the listed codes,
    then the full test on the rows that pass. The first is one hash lookup; the full test, IN lists inside OR,
    DuckDB evaluates value by value (a diagnosis table of 11.5M rows filtered in half the time)."""
    codes = dx_codes["code"].to_pylist()
    if not codes:
        return [ibis.literal(False)]
    length = min(len(code) for code in codes)
    stems = sorted({code[:length] for code in codes})
    return [normalize_dx(dx).substr(0, length).isin(stems), diagnosis_matches(dx, dx_codes)]

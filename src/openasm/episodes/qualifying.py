"""Qualifying services: Part B carrier lines with a listed HCPCS and a condition diagnosis (ebcm.md §3.1)."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.episodes.codes import diagnosis_filter, diagnosis_matches, service_codes
from openasm.ingest.final_action import STATUS_COLUMN
from openasm.rules import RulesForYear

TELEHEALTH_PLACES_OF_SERVICE = ("02", "10")  # CMS POS codes for telehealth (outside / in the patient's home)


def final_lines(claim_line: ir.Table) -> ir.Table:
    """Final-action lines when the table carries a final-action status, else the table as given."""
    if STATUS_COLUMN in claim_line.columns:
        return claim_line.filter(claim_line[STATUS_COLUMN] == "final")
    return claim_line


def lines_with_condition_dx(lines: ir.Table, claim_diagnosis: ir.Table, dx_codes: pa.Table) -> ir.Table:
    """Lines with the condition diagnosis on the line or anywhere on the claim. The claim test is a lookup in the
    claims with the diagnosis (DuckDB hashes those; a left join hashed the millions of lines instead)."""
    header = claim_diagnosis.filter(*diagnosis_filter(claim_diagnosis.icd10_code, dx_codes))
    return lines.filter(diagnosis_matches(lines.line_dx_code, dx_codes) | lines.claim_id.isin(header.claim_id))


def line_service_date(lines: ir.Table) -> ir.DateValue:
    """A line's service date: the line from-date, else the claim from-date."""
    return lines.line_from_date.fill_null(lines.claim_from_date)


def history_start_date(rules: RulesForYear) -> dt.date:
    """ebcm §3.2: the first day of the claims history attribution windows are built from, the performance year's
    first day minus `episodes.history_lookback_days` (730: from 2025-01-01 for PY2027). A window that began
    earlier starts at its first confirmed trigger inside the history."""
    lookback = int(rules.value("episodes.history_lookback_days"))
    return dt.date(rules.performance_year, 1, 1) - dt.timedelta(days=lookback)


def select_qualifying_services(
    *, claim_line: ir.Table, claim_diagnosis: ir.Table, dx_codes: pa.Table, measure_id: str, rules: RulesForYear
) -> ir.Table:
    """ebcm §3.1: carrier lines whose HCPCS is on a service list and that carry a condition diagnosis.

    Diagnosis scope `episodes.dx_match_scope`: `line_or_header` (line diagnosis or any claim diagnosis) or
    `line`. Telehealth lines count unless `episodes.count_telehealth` is false. Only lines dated on or after
    `history_start_date` count (§3.2 claims history), so no window opens on an older claim.
    Grain: claim line. Columns: measure_id, bene_id, billing_tin, rendering_npi, claim_id, line_number,
    service_date, hcpcs_code, provider_specialty_code, is_trigger, is_confirm, is_reaffirm.
    """
    trigger = service_codes(rules, measure_id, "episodes.trigger_hcpcs")
    confirm = service_codes(rules, measure_id, "episodes.confirm_hcpcs")
    reaffirm = sorted(set(service_codes(rules, measure_id, "episodes.reaffirm_hcpcs")) | set(trigger) | set(confirm))
    listed = sorted(set(trigger) | set(confirm) | set(reaffirm))
    lines = final_lines(claim_line)
    lines = lines.filter(
        (lines.claim_type == "carrier") & lines.hcpcs_code.isin(listed)
        & (line_service_date(lines) >= history_start_date(rules))
    )
    if not rules.value("episodes.count_telehealth"):
        lines = lines.filter(~lines.place_of_service_code.fill_null("").isin(TELEHEALTH_PLACES_OF_SERVICE))
    scope = rules.value("episodes.dx_match_scope")
    if scope == "line_or_header":
        lines = lines_with_condition_dx(lines, claim_diagnosis, dx_codes)
    elif scope == "line":
        lines = lines.filter(diagnosis_matches(lines.line_dx_code, dx_codes))
    else:
        raise ValueError(f"episodes.dx_match_scope: unsupported value {scope!r}")
    service_date = line_service_date(lines)
    return lines.select(
        measure_id=ibis.literal(measure_id),
        bene_id=lines.bene_id,
        billing_tin=lines.billing_tin,
        rendering_npi=lines.rendering_npi,
        claim_id=lines.claim_id,
        line_number=lines.line_number,
        service_date=service_date,
        hcpcs_code=lines.hcpcs_code,
        provider_specialty_code=lines.provider_specialty_code,
        is_trigger=lines.hcpcs_code.isin(trigger),
        is_confirm=lines.hcpcs_code.isin(confirm),
        is_reaffirm=lines.hcpcs_code.isin(reaffirm),
    )

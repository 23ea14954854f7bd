"""Assign standardized cost of clinically related services to episodes (ebcm.md §5, §10.3).

A claim row counts for an episode when it matches one of the measure's assignment rules (setting × code type ×
code × billing specialty group, with the condition diagnosis where the rule asks for it) and its date falls inside
the episode.
Cost is the standardized allowed amount when the input carries it (`cost.standardization_source`), with the
source of every row kept so a user sees how much rests on the fallback.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from openasm.cost.part_d import select_part_d_services
from openasm.episodes.codes import diagnosis_filter
from openasm.episodes.qualifying import final_lines, line_service_date, lines_with_condition_dx
from openasm.rules import RulesForYear
from openasm.schema.sums import exact_sum

# Claim types each hcpcs-rule setting of the assignment list covers.
HCPCS_RULE_SETTINGS = {
    "carrier": ("carrier",),
    "carrier_or_outpatient": ("carrier", "outpatient"),
    "outpatient": ("outpatient",),
    "dme": ("dme",),
    "ed": ("carrier", "outpatient"),  # professional (carrier) and facility (outpatient) ED claims
}
# Revenue centers of emergency department (045x) and observation (0762) care.
ED_OBSERVATION_REVENUE_PREFIX = "045"
OBSERVATION_REVENUE_CENTER = "0762"
CONDITION = "CONDITION"
POST_ACUTE_NOTE = "post_acute_after_assigned_stay"
SPECIALTY_GROUPS = "cost.assignment_specialty_groups"

COST_LINE_COLUMNS = (
    "measure_id", "source_table", "claim_id", "line_number", "bene_id", "claim_type", "service_date", "hcpcs_code",
    "drg_code", "rendering_npi", "billing_tin", "assignment_rule", "std_cost_amount", "cost_source",
    "discharge_date",
)


def assignment_rules(rules: RulesForYear, measure_id: str) -> list[dict]:
    """Assigned rows of `cost.assignment_rules` for one measure."""
    table = rules.code_list("cost.assignment_rules")
    keep = pc.and_(pc.equal(table["measure"], measure_id), pc.equal(pc.utf8_lower(table["is_assigned"]), "true"))
    return table.filter(keep).to_pylist()


def specialty_groups(rules: RulesForYear) -> dict[str, list[str]]:
    """Billing specialty codes of each named group (`cost.assignment_specialty_groups`)."""
    groups: dict[str, set[str]] = {}
    for row in rules.code_list(SPECIALTY_GROUPS).to_pylist():
        groups.setdefault(row["specialty_group"], set()).add(row["specialty_code"])
    return {name: sorted(codes) for name, codes in groups.items()}


def hcpcs_rule_keys(hcpcs_rules: list[dict], groups: dict[str, list[str]]) -> tuple[pa.Table, pa.Table]:
    """§10.3 as two lookup tables keyed on what a line carries: (`_rule_label` "<setting>:hcpcs",
    `_rule_claim_type`, `_rule_hcpcs`) for codes a setting counts from any billing specialty, and the same plus
    `_rule_specialty` for codes it counts only from the specialties of a `billing_specialty_group` (e.g. HF E/M
    only from cardiology or primary care). A (setting, code) is in one table or the other, never both, so a line
    matches at most one key per setting."""
    any_specialty: set[tuple[str, str]] = set()
    by_specialty: set[tuple[str, str, str]] = set()
    for r in hcpcs_rules:
        if r["setting"] not in HCPCS_RULE_SETTINGS:
            continue
        group = r["billing_specialty_group"]
        if not group:
            any_specialty.add((r["setting"], r["code"]))
        elif group not in groups:
            raise ValueError(f"cost.assignment_rules: billing_specialty_group '{group}' is not a group of the "
                             f"{SPECIALTY_GROUPS} list (groups: {', '.join(sorted(groups))})")
        else:
            by_specialty.update((r["setting"], r["code"], specialty) for specialty in groups[group])
    by_specialty = {key for key in by_specialty if key[:2] not in any_specialty}

    def keyed(keys: set[tuple[str, ...]], names: tuple[str, ...]) -> pa.Table:
        rows = sorted((f"{key[0]}:hcpcs", claim_type, *key[1:])
                      for key in keys for claim_type in HCPCS_RULE_SETTINGS[key[0]])
        return pa.table({name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(names)})

    base = ("_rule_label", "_rule_claim_type", "_rule_hcpcs")
    return keyed(any_specialty, base), keyed(by_specialty, (*base, "_rule_specialty"))


def lines_matching_hcpcs_rules(lines: ir.Table, hcpcs_rules: list[dict], groups: dict[str, list[str]]) -> ir.Table:
    """§10.3: each line with the label of every hcpcs-rule setting that counts it (`_rule_label`): its claim type
    is one the setting covers (HCPCS_RULE_SETTINGS) and its HCPCS is on the setting's rules, from any billing
    specialty or from one of the rule's group (`hcpcs_rule_keys`). Two hash joins on small tables: one pass over
    the lines for every setting, where a filter per setting read them once each."""
    any_keys, specialty_keys = (ibis.memtable(keys) for keys in hcpcs_rule_keys(hcpcs_rules, groups))
    by_code = lines.join(any_keys, (lines.claim_type == any_keys._rule_claim_type)
                         & (lines.hcpcs_code == any_keys._rule_hcpcs))
    by_specialty = lines.join(specialty_keys, (lines.claim_type == specialty_keys._rule_claim_type)
                              & (lines.hcpcs_code == specialty_keys._rule_hcpcs)
                              & (lines.provider_specialty_code == specialty_keys._rule_specialty))
    return ibis.union(by_code.select(*lines.columns, "_rule_label"), by_specialty.select(*lines.columns, "_rule_label"))


def standardized_line_cost(lines: ir.Table, rules: RulesForYear) -> tuple[ir.NumericValue, ir.StringValue]:
    """§5: standardized amount when present, else the fallback named by `cost.standardization_source`. Post-acute
    claims are dated by their from-date (`cost.post_acute_date_basis`)."""
    rules.require({"cost.cost_basis": "standardized_allowed", "cost.post_acute_date_basis": "from_date"})
    source = rules.value("cost.standardization_source")
    if source != "input_else_allowed":
        raise ValueError(
            f"cost.standardization_source = {source!r} needs national pricing tables that openasm does not ship; "
            "use input_else_allowed or supply standardized_amount on every line"
        )
    has_standard = lines.standardized_amount.notnull()
    amount = ibis.ifelse(has_standard, lines.standardized_amount, lines.allowed_amount)
    return amount, ibis.ifelse(has_standard, "standardized_input", "allowed_unstandardized")


def _principal_dx_claims(claim_diagnosis: ir.Table, dx_codes: pa.Table) -> ir.Table:
    principal = claim_diagnosis.filter(
        claim_diagnosis.dx_position == 1, *diagnosis_filter(claim_diagnosis.icd10_code, dx_codes)
    )
    return principal.select(_principal_claim=principal.claim_id).distinct()


def _cost_rows(lines: ir.Table, rule_label: ir.StringValue | str, date: ir.DateValue, rules: RulesForYear,
               measure_id: str) -> ir.Table:
    amount, source = standardized_line_cost(lines, rules)
    return lines.select(
        measure_id=ibis.literal(measure_id), source_table=ibis.literal("claim_line"), claim_id=lines.claim_id,
        line_number=lines.line_number, bene_id=lines.bene_id, claim_type=lines.claim_type, service_date=date,
        hcpcs_code=lines.hcpcs_code, drg_code=lines.drg_code, rendering_npi=lines.rendering_npi,
        billing_tin=lines.billing_tin, assignment_rule=ibis.literal(rule_label) if isinstance(rule_label, str) else rule_label,
        std_cost_amount=amount.cast("float64"), cost_source=source, discharge_date=lines.discharge_date,
    )


def select_assigned_services(
    *, claim_line: ir.Table, claim_diagnosis: ir.Table, pharmacy_claim: ir.Table, ndc_class: ir.Table,
    dx_codes: pa.Table, measure_id: str, rules: RulesForYear,
) -> ir.Table:
    """§5 / §10.3: every final-action claim row or Part D fill that a measure's assignment rules cover,
    before any episode window is applied. An hcpcs rule with a `billing_specialty_group` counts a line only when
    its billing specialty is in that group (`lines_matching_hcpcs_rules`). Dating: carrier/DME/outpatient by line date,
    inpatient by admission (`cost.ip_date_basis`), SNF/HHA by from date, Part D by fill date. Hospice only when
    `cost.assign_hospice`.

    Grain: claim line (or fill) x rule kind. Columns: COST_LINE_COLUMNS.
    """
    lines = final_lines(claim_line)
    rows = assignment_rules(rules, measure_id)
    parts: list[ir.Table] = []

    hcpcs_rules = [r for r in rows if r["code_type"] == "hcpcs"]
    grouped = [r for r in rows if r["billing_specialty_group"]]
    if any(r["code_type"] != "hcpcs" for r in grouped):
        raise ValueError("cost.assignment_rules: billing_specialty_group applies to hcpcs rules only")
    groups = specialty_groups(rules) if grouped else {}
    if any(r["setting"] in HCPCS_RULE_SETTINGS for r in hcpcs_rules):
        chosen = lines_with_condition_dx(lines_matching_hcpcs_rules(lines, hcpcs_rules, groups), claim_diagnosis,
                                         dx_codes)
        parts.append(_cost_rows(chosen, chosen._rule_label, line_service_date(chosen), rules, measure_id))

    inpatient = lines.filter(lines.claim_type == "inpatient")
    drgs = sorted({r["code"] for r in rows if r["code_type"] == "drg" and r["setting"] == "inpatient"})
    principal = any(r["code_type"] == "dx_principal" and r["code"] == CONDITION for r in rows)
    if drgs or principal:
        principal_claims = _principal_dx_claims(claim_diagnosis, dx_codes)
        flagged = inpatient.left_join(principal_claims, inpatient.claim_id == principal_claims._principal_claim)
        in_list = flagged.drg_code.isin(drgs) if drgs else ibis.literal(False)
        by_dx = flagged._principal_claim.notnull() if principal else ibis.literal(False)
        stays = flagged.filter(in_list | by_dx).drop("_principal_claim")
        if rules.value("cost.ip_date_basis") != "admission":
            raise ValueError("cost.ip_date_basis: only 'admission' is implemented")
        parts.append(_cost_rows(stays, "inpatient:stay", stays.admission_date.fill_null(stays.claim_from_date),
                                rules, measure_id))

    if any(r["code_type"] == "dx_any" and r["setting"] == "ed_observation" for r in rows):
        outpatient = lines.filter(
            (lines.claim_type == "outpatient")
            & (lines.revenue_center_code.startswith(ED_OBSERVATION_REVENUE_PREFIX)
               | (lines.revenue_center_code == OBSERVATION_REVENUE_CENTER))
        )
        ed = lines_with_condition_dx(outpatient, claim_diagnosis, dx_codes)
        parts.append(_cost_rows(ed, "ed_observation:dx", line_service_date(ed), rules,
                                measure_id))

    if rules.value("cost.assign_hospice"):
        hospice = lines.filter(lines.claim_type == "hospice")
        parts.append(_cost_rows(hospice, "hospice", hospice.claim_from_date, rules, measure_id))

    post_acute_settings = sorted({r["setting"] for r in rows if r["code"] == POST_ACUTE_NOTE})
    if post_acute_settings and parts:
        claim_types = tuple("home_health" if s == "hha" else s for s in post_acute_settings)
        post_acute = lines.filter(lines.claim_type.isin(claim_types))
        parts.append(_cost_rows(post_acute, "post_acute:candidate", post_acute.claim_from_date, rules, measure_id))

    ndc_classes = sorted({r["code"] for r in rows if r["code_type"] == "ndc_class"})
    if ndc_classes:
        parts.append(select_part_d_services(pharmacy_claim=pharmacy_claim, ndc_class=ndc_class, classes=ndc_classes,
                                            rules=rules, measure_id=measure_id))

    if not parts:
        raise ValueError(f"cost.assignment_rules has no assigned rows for {measure_id}")
    return ibis.union(*parts)


def assign_episode_costs(*, episode: ir.Table, assigned_service: ir.Table, rules: RulesForYear) -> ir.Table:
    """§5: assigned rows of the beneficiary dated inside the episode, whichever TIN billed them. Post-acute
    candidates count only when they start within `cost.post_acute_window_days` after the discharge of an
    assigned inpatient stay in the same episode.

    Grain: episode x claim line (or fill). Columns: episode_id, COST_LINE_COLUMNS without discharge_date.
    """
    window_days = int(rules.value("cost.post_acute_window_days"))
    scoped = episode.select(
        "episode_id", _measure=episode.measure_id, _bene=episode.bene_id,
        _start=episode.episode_start_date, _end=episode.episode_end_date,
    )
    joined = scoped.join(
        assigned_service,
        (scoped._measure == assigned_service.measure_id) & (scoped._bene == assigned_service.bene_id)
        & (assigned_service.service_date >= scoped._start) & (assigned_service.service_date <= scoped._end),
    )
    direct = joined.filter(joined.assignment_rule != "post_acute:candidate")
    stays = direct.filter(direct.assignment_rule == "inpatient:stay")
    stays = stays.group_by(_stay_episode=stays.episode_id, _stay_claim=stays.claim_id).agg(
        _discharge=stays.discharge_date.max(), _admit=stays.service_date.min()
    )
    candidates = joined.filter(joined.assignment_rule == "post_acute:candidate")
    matched = candidates.join(
        stays,
        (candidates.episode_id == stays._stay_episode)
        & (candidates.service_date >= stays._discharge.fill_null(stays._admit))
        & (candidates.service_date <= stays._discharge.fill_null(stays._admit) + ibis.interval(days=window_days)),
    )
    post_acute = matched.select(*joined.columns).distinct().mutate(assignment_rule=ibis.literal("post_acute:after_stay"))
    cost = direct.union(post_acute)
    return cost.select("episode_id", *[c for c in COST_LINE_COLUMNS if c != "discharge_date"])


def summarize_observed_cost(*, episode: ir.Table, episode_cost_line: ir.Table, rules: RulesForYear) -> ir.Table:
    """§5: O_raw = sum of assigned standardized cost; scaled observed cost O = O_raw x `cost.scale_to_days` /
    episode days (annualized; null scale disables).

    Grain: episode. Columns: episode_id, measure_id, observed_raw_amount, observed_cost, assigned_line_count,
    unstandardized_amount (the part resting on the allowed-amount fallback).
    """
    totals = episode_cost_line.group_by(_cost_episode=episode_cost_line.episode_id).agg(
        observed_raw_amount=exact_sum(episode_cost_line.std_cost_amount),
        assigned_line_count=episode_cost_line.count(),
        unstandardized_amount=exact_sum(ibis.ifelse(episode_cost_line.cost_source == "allowed_unstandardized",
                                                    episode_cost_line.std_cost_amount, 0.0)),
    )
    joined = episode.left_join(totals, episode.episode_id == totals._cost_episode)
    raw = joined.observed_raw_amount.fill_null(0.0)
    scale = rules.value("cost.scale_to_days")
    observed = raw * float(scale) / joined.episode_days.cast("float64") if scale else raw
    return joined.select(
        "episode_id", "measure_id", observed_raw_amount=raw, observed_cost=observed,
        assigned_line_count=joined.assigned_line_count.fill_null(0).cast("int64"),
        unstandardized_amount=joined.unstandardized_amount.fill_null(0.0),
    )

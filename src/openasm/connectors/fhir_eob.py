"""Flatten BFD / CARIN Blue Button resources (ExplanationOfBenefit, Patient, Coverage) into canonical-named text
rows (paths and codes in `layouts/fhir_eob.yaml`).

One resource is visited once; every value stays text so the canonical row checks judge it (a placeholder such
as `IGNORED_FIELD` or NDC `000000000` is quarantined there, never here). A resource the model cannot use at all
(an unknown EOB type, a cancelled EOB, no patient) becomes one rejection naming its file and record.
"""

from __future__ import annotations

from typing import Any

from openasm.connectors.layout import load_layout

Row = dict[str, Any]


class Rejected(ValueError):
    """The resource cannot be mapped; the message is the quarantine reason."""


def _layout() -> dict:
    return load_layout("fhir_eob")


def _codes(concept: dict | None) -> list[tuple[str, str]]:
    return [(c.get("system", ""), str(c.get("code"))) for c in (concept or {}).get("coding", []) if "code" in c]


def _code(concept: dict | None, system_end: str | None = None) -> str | None:
    for system, code in _codes(concept):
        if system_end is None or system.endswith(system_end):
            return code
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _reference_id(reference: dict | None) -> str | None:
    text = (reference or {}).get("reference") or ""
    return text.rsplit("/", 1)[-1] or None if "/" in text else (text or None)


def _amount(adjudications: list[dict], role: str) -> str | None:
    """The amount of a role: an adjudication coded with one of its CCW variables, else its CARIN category."""
    spec = _layout()["amounts"][role]
    bb = _layout()["bb"]
    for adj in adjudications:
        if any(code.rsplit("/", 1)[-1] in spec["variables"] and code.startswith(bb)
               for _, code in _codes(adj.get("category"))):
            return _text((adj.get("amount") or {}).get("value"))
    for adj in adjudications:
        codes = _codes(adj.get("category"))
        if codes and codes[0][1] in spec["categories"] and not any(c.startswith(bb) for _, c in codes[1:]):
            return _text((adj.get("amount") or {}).get("value"))
    for adj in adjudications:
        codes = _codes(adj.get("category"))
        if codes and codes[0][1] in spec["categories"]:
            return _text((adj.get("amount") or {}).get("value"))
    return None


def _supporting(resource: dict) -> dict[str, Any]:
    """Supporting info by field name (`supporting_info` of the layout)."""
    names = _layout()["supporting_info"]
    out: dict[str, Any] = {}
    for info in resource.get("supportingInfo", []):
        for _, code in _codes(info.get("category")):
            field = names.get(code.rsplit("/", 1)[-1])
            if field and field not in out:
                out[field] = info
    return out


def eob_type(resource: dict) -> str:
    layout = _layout()
    code = _code(resource.get("type"), layout["eob_type_system"])
    if code not in layout["eob_types"]:
        raise Rejected(f"unknown ExplanationOfBenefit type {code!r} (expected one of "
                       f"{', '.join(layout['eob_types'])})")
    return layout["eob_types"][code]


def claim_id(resource: dict) -> str | None:
    for ident in resource.get("identifier", []):
        if ident.get("system") in _layout()["claim_id_systems"]:
            return _text(ident.get("value"))
    return _text(resource.get("id"))


def _care_team(resource: dict) -> dict[int, dict]:
    return {member.get("sequence"): member for member in resource.get("careTeam", [])}


def _rendering(member: dict | None) -> tuple[str | None, str | None, str | None]:
    """(NPI, TIN, specialty) of a care-team member: the NPI identifier, a TAX identifier, the prvdr_spclty code."""
    if member is None:
        return None, None, None
    ident = (member.get("provider") or {}).get("identifier") or {}
    kinds = [c for _, c in _codes(ident.get("type"))]
    npi = _text(ident.get("value")) if "npi" in kinds or ident.get("system") in _layout()["npi_systems"] else None
    tin = _text(ident.get("value")) if "TAX" in kinds else None
    return npi, tin, _code(member.get("qualification"), "prvdr_spclty")


def _performing(team: dict[int, dict], sequences: list[int]) -> dict | None:
    members = [team[s] for s in sequences if s in team] or list(team.values())
    for role in ("rendering", "performing"):
        for member in members:
            if role in [c for _, c in _codes(member.get("role"))]:
                return member
    return None


def flatten_eob(resource: dict) -> tuple[str, list[Row], list[Row]]:
    """(claim type, claim line or pharmacy rows, diagnosis rows) of one ExplanationOfBenefit."""
    if resource.get("status") == "cancelled":
        raise Rejected("ExplanationOfBenefit status cancelled (a voided claim)")
    kind = eob_type(resource)
    bene = _reference_id(resource.get("patient"))
    if bene is None:
        raise Rejected("ExplanationOfBenefit without a patient reference")
    info = _supporting(resource)
    head = {"claim_id": claim_id(resource), "bene_id": bene, "_patient_id": bene}
    if kind == "pharmacy":
        return kind, [_pde_row(resource, head, info)], []
    period = resource.get("billablePeriod") or {}
    admission = (info.get("admission") or {}).get("timingPeriod") or {}
    facility = resource.get("facility") or {}
    tob = (_code({"coding": [e.get("valueCoding", {}) for e in facility.get("extension", [])]}) or "") + (
        _code({"coding": [e.get("valueCoding", {}) for e in resource.get("extension", [])
                          if e.get("url", "").endswith("clm_srvc_clsfctn_type_cd")]}) or "") + (
        _code((info.get("tob_frequency") or {}).get("code")) or "")
    head.update({
        "claim_type": kind, "claim_from_date": _text(period.get("start")), "claim_thru_date": _text(period.get("end")),
        "claim_processed_date": _text((info.get("processed_date") or {}).get("timingDate")),
        "admission_date": _text(admission.get("start")), "discharge_date": _text(admission.get("end")),
        "drg_code": _code((info.get("drg") or {}).get("code")),
        "primary_payer_code": _code((info.get("primary_payer") or {}).get("code")),
        "type_of_bill_code": tob or None, "facility_ccn": _facility_ccn(resource),
    })
    diagnoses = {d.get("sequence"): d for d in resource.get("diagnosis", [])}
    team = _care_team(resource)
    lines = [_item_row(item, head, team, diagnoses) for item in resource.get("item", [])]
    dx_rows = [{"claim_id": head["claim_id"], "bene_id": bene, "_patient_id": bene,
                "dx_position": _text(d.get("sequence")), "icd10_code": _code(d.get("diagnosisCodeableConcept"),
                                                                              "icd-10-cm") or
                _code(d.get("diagnosisCodeableConcept")),
                "present_on_admission": _code(d.get("onAdmission"))} for d in diagnoses.values()]
    return kind, lines, dx_rows


def _facility_ccn(resource: dict) -> str | None:
    ref = (resource.get("provider") or {}).get("reference", "")
    for contained in resource.get("contained", []):
        if ref == f"#{contained.get('id')}":
            for ident in contained.get("identifier", []):
                if "PRN" in [c for _, c in _codes(ident.get("type"))]:
                    return _text(ident.get("value"))
    return None


def _item_row(item: dict, head: Row, team: dict[int, dict], diagnoses: dict) -> Row:
    adjudications = item.get("adjudication", [])
    npi, tin, specialty = _rendering(_performing(team, item.get("careTeamSequence", [])))
    for ext in item.get("extension", []):
        if ext.get("url", "").endswith("/tax_num") and tin is None:
            tin = _code({"coding": [ext.get("valueCoding", {})]})
    served = item.get("servicedPeriod") or {}
    modifiers = [_code(m) for m in item.get("modifier", [])] + [None] * 4
    dx_seq = (item.get("diagnosisSequence") or [None])[0]
    line_dx = next((_code({"coding": [e.get("valueCoding", {})]}) for e in item.get("extension", [])
                    if e.get("url", "").endswith("/line_icd_dgns_cd")), None)
    allowed = _amount(adjudications, "allowed")
    paid = _amount(adjudications, "paid")
    responsibility = _amount(adjudications, "patient_responsibility")
    if allowed is None and responsibility is not None:
        allowed = str(round(float(paid or 0) + float(responsibility), 2))
    return {**head, "line_number": _text(item.get("sequence")),
            "line_from_date": _text(served.get("start") or item.get("servicedDate")),
            "line_thru_date": _text(served.get("end")),
            "hcpcs_code": _code(item.get("productOrService")), **{f"hcpcs_modifier_{i + 1}": modifiers[i] for i in range(4)},
            "service_units": _text((item.get("quantity") or {}).get("value")),
            "place_of_service_code": _code(item.get("locationCodeableConcept")),
            "revenue_center_code": _code(item.get("revenue"), "rev_cntr"),
            "rendering_npi": npi, "billing_tin": tin, "provider_specialty_code": specialty,
            "line_dx_code": line_dx or _code((diagnoses.get(dx_seq) or {}).get("diagnosisCodeableConcept")),
            "allowed_amount": allowed, "paid_amount": paid}


def _pde_row(resource: dict, head: Row, info: dict) -> Row:
    item = (resource.get("item") or [{}])[0]
    adjudications = item.get("adjudication", [])
    prescriber = None
    for member in resource.get("careTeam", []):
        if "prescribing" in [c for _, c in _codes(member.get("role"))]:
            prescriber = _rendering(member)[0]
    gross = _amount(adjudications, "gross_drug_cost")
    days = info.get("days_supply") or {}
    return {**head, "fill_date": _text(item.get("servicedDate")), "ndc_code": _code(item.get("productOrService")),
            "quantity_dispensed": _text((item.get("quantity") or {}).get("value")),
            "days_supply": _text((days.get("valueQuantity") or {}).get("value")), "prescriber_npi": prescriber,
            "allowed_amount": gross, "gross_drug_cost_amount": gross, "paid_amount": _amount(adjudications, "paid")}


def flatten_patient(resource: dict) -> Row:
    layout = _layout()
    current = None
    for ident in resource.get("identifier", []):
        if ident.get("system") == layout["mbi_system"]:
            currency = [c.get("valueCoding", {}).get("code") for coding in (ident.get("type") or {}).get("coding", [])
                        for c in coding.get("extension", [])]
            if current is None or "current" in currency:
                current = _text(ident.get("value"))
    address = (resource.get("address") or [{}])[0]
    race = next((e.get("valueCoding", {}).get("code") for e in resource.get("extension", [])
                 if e.get("url", "").endswith("/race")), None)
    return {"_patient_id": _text(resource.get("id")), "bene_id": current or _text(resource.get("id")),
            "birth_date": _text(resource.get("birthDate")),
            "sex": layout["codes"]["sex"].get(resource.get("gender"), resource.get("gender")),
            "death_date": _text(resource.get("deceasedDateTime"))[:10] if resource.get("deceasedDateTime") else None,
            "state_fips": layout["state_fips"].get(address.get("state"), address.get("state")),
            "zip5": (address.get("postalCode") or "")[:5] or None, "race_code": _text(race)}


def flatten_coverage(resource: dict) -> list[Row]:
    """Twelve month rows of one Coverage (one part, one reference year); flags only for the part it covers."""
    layout = _layout()
    ext = {e.get("url", "").rsplit("/", 1)[-1]: e for e in resource.get("extension", [])}
    year = (ext.get("rfrnc_yr") or {}).get("valueDate")
    part = (_text(resource.get("id")) or "").split("-")[1:2]
    part = part[0] if part else None
    codes, monthly = layout["codes"], layout["coverage_monthly"]
    rows = []
    for month in range(1, 13):
        nn = f"{month:02d}"

        def value(kind: str, nn: str = nn) -> str | None:
            return _code({"coding": [(ext.get(monthly[kind].format(nn=nn)) or {}).get("valueCoding", {})]})

        buyin, hmo, contract, dual = value("buyin"), value("hmo"), value("part_d_contract"), value("dual")
        rows.append({"_patient_id": _reference_id(resource.get("beneficiary")), "_part": part,
                     "year_month": f"{year}-{nn}" if year else None,
                     "_a": None if part != "a" or buyin is None else buyin in codes["part_a_buyin"],
                     "_b": None if part != "b" or buyin is None else buyin in codes["part_b_buyin"],
                     "_c": None if part != "c" or hmo is None else hmo in codes["medicare_advantage_hmo"],
                     "_d": None if part != "d" or contract is None else contract not in codes["part_d_no_contract"],
                     "dual_status_code": dual,
                     "_status": _code({"coding": [(ext.get("ms_cd") or {}).get("valueCoding", {})]})})
    return rows

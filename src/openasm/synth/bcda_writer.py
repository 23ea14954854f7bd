"""Write a synthetic world as BFD FHIR resources: a BCDA bulk export (NDJSON per resource type) or Blue Button
2.0 per-patient responses (one folder per patient with paged EOB Bundles, Patient and Coverage).

Resources follow the CARIN Blue Button profiles as BFD fills them (`connectors/layouts/fhir_eob.yaml`): claim id
and Part D event id identifiers, eob-type codes, care team with the performing NPI and its specialty, the TIN as
the line's tax_num extension, amounts as adjudications coded with their CCW variables, institutional payment
and patient responsibility per revenue centre, Coverage per part and reference year with monthly extensions.
Only final action claims are written (BFD serves those); a professional claim with more than
`split_items` lines is split across two EOBs with the same claim id.
"""

from __future__ import annotations

from openasm.connectors.layout import load_layout

BB = "https://bluebutton.cms.gov/resources/variables/"
EOB_TYPE = {"carrier": "CARRIER", "dme": "DME", "inpatient": "INPATIENT", "outpatient": "OUTPATIENT", "snf": "SNF",
            "home_health": "HHA", "hospice": "HOSPICE"}


def _coding(system: str, code) -> dict:
    return {"coding": [{"system": system, "code": str(code)}]}


def _adjudication(category: str, variable: str, value) -> dict:
    return {"category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": category},
                                    {"system": "https://bluebutton.cms.gov/resources/codesystem/adjudication",
                                     "code": BB + variable}]}, "amount": {"value": value, "currency": "USD"}}


def _info(sequence: int, category: str, **value) -> dict:
    return {"sequence": sequence, "category": {"coding": [
        {"system": "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType", "code": category}]}, **value}


def _day(value) -> str | None:
    return None if value is None else value.isoformat()


def patient_id(bene_id: str) -> str:
    return f"bene-{bene_id}"


def claim_eobs(lines: list[dict], diagnoses: list[dict], split_items: int) -> list[dict]:
    """The EOB(s) of one claim (all its lines)."""
    head = lines[0]
    kind = head["claim_type"]
    eob = {"resourceType": "ExplanationOfBenefit", "id": f"{kind}-{head['claim_id']}", "status": "active",
           "identifier": [{"system": BB + "clm_id", "value": head["claim_id"]}],
           "type": {"coding": [{"system": load_layout("fhir_eob")["eob_type_system"], "code": EOB_TYPE[kind]}]},
           "patient": {"reference": f"Patient/{patient_id(head['bene_id'])}"},
           "billablePeriod": {"start": _day(head["claim_from_date"]), "end": _day(head["claim_thru_date"])}}
    info = [_info(1, "clmrecvddate", timingDate=_day(head["claim_processed_date"]))]
    if head["primary_payer_code"] is not None:
        info.append(_info(2, "info", code=_coding(BB + "nch_prmry_pyr_cd", head["primary_payer_code"]))
                    | {"category": _coding(BB, BB + "nch_prmry_pyr_cd")})
    team: dict[tuple, int] = {}
    items = []
    institutional = kind not in ("carrier", "dme")
    if institutional:
        tob = head["type_of_bill_code"] or "   "
        eob["facility"] = {"extension": [{"url": BB + "clm_fac_type_cd", "valueCoding": {"code": tob[0]}}]}
        eob["extension"] = [{"url": BB + "clm_srvc_clsfctn_type_cd", "valueCoding": {"code": tob[1]}}]
        info.append(_info(3, "typeofbill", code=_coding(BB + "clm_freq_cd", tob[2])))
        eob["contained"] = [{"resourceType": "Organization", "id": "provider-org", "identifier": [
            {"type": _coding("http://terminology.hl7.org/CodeSystem/v2-0203", "PRN"), "value": head["facility_ccn"]}]}]
        eob["provider"] = {"reference": "#provider-org"}
        if head["admission_date"] is not None:
            info.append(_info(4, "admissionperiod", timingPeriod={"start": _day(head["admission_date"]),
                                                                  "end": _day(head["discharge_date"])}))
        if head["drg_code"] is not None:
            info.append(_info(5, "info", code=_coding(BB + "clm_drg_cd", head["drg_code"]))
                        | {"category": _coding(BB, BB + "clm_drg_cd")})
    for line in lines:
        item = {"sequence": line["line_number"], "quantity": {"value": line["service_units"]}}
        if line["hcpcs_code"] is not None:
            item["productOrService"] = _coding("https://bluebutton.cms.gov/resources/codesystem/hcpcs", line["hcpcs_code"])
        item["modifier"] = [_coding("https://bluebutton.cms.gov/resources/codesystem/hcpcs", line[f"hcpcs_modifier_{i}"])
                            for i in range(1, 5) if line[f"hcpcs_modifier_{i}"] is not None]
        if line["line_thru_date"] is not None:
            item["servicedPeriod"] = {"start": _day(line["line_from_date"]), "end": _day(line["line_thru_date"])}
        elif line["line_from_date"] is not None:
            item["servicedDate"] = _day(line["line_from_date"])
        if institutional:
            item["revenue"] = _coding(BB + "rev_cntr", line["revenue_center_code"])
            paid = line["paid_amount"]
            responsibility = None if line["allowed_amount"] is None else round(line["allowed_amount"] - (paid or 0), 2)
            item["adjudication"] = [a for a in (
                paid is not None and _adjudication("submitted", "rev_cntr_pmt_amt_amt", paid),
                responsibility is not None and _adjudication("paidbypatient", "rev_cntr_ptnt_rspnsblty_pmt",
                                                             responsibility)) if a]
        else:
            key = (line["rendering_npi"], line["provider_specialty_code"])
            team.setdefault(key, len(team) + 1)
            item["careTeamSequence"] = [team[key]]
            if line["place_of_service_code"] is not None:
                item["locationCodeableConcept"] = _coding(BB + "line_place_of_srvc_cd", line["place_of_service_code"])
            item["extension"] = [{"url": BB + "tax_num", "valueCoding": {"code": line["billing_tin"]}}] if line[
                "billing_tin"] is not None else []
            if line["line_dx_code"] is not None:
                item["extension"].append({"url": BB + "line_icd_dgns_cd", "valueCoding": {"code": line["line_dx_code"]}})
            item["adjudication"] = [a for a in (
                line["allowed_amount"] is not None and _adjudication("eligible", "line_alowd_chrg_amt",
                                                                      line["allowed_amount"]),
                line["paid_amount"] is not None and _adjudication("benefit", "line_nch_pmt_amt", line["paid_amount"]))
                if a]
        items.append(item)
    eob["careTeam"] = [{"sequence": seq, "role": _coding("http://hl7.org/fhir/us/carin-bb/CodeSystem/"
                                                         "C4BBClaimCareTeamRole", "performing"),
                        "provider": {"identifier": {"type": _coding("http://hl7.org/fhir/us/carin-bb/CodeSystem/"
                                                                    "C4BBIdentifierType", "npi"), "value": npi}},
                        **({"qualification": _coding(BB + "prvdr_spclty", spec)} if spec is not None else {})}
                       for (npi, spec), seq in team.items() if npi is not None]
    eob["supportingInfo"] = info
    eob["diagnosis"] = [{"sequence": d["dx_position"], "diagnosisCodeableConcept": _coding(
        "http://hl7.org/fhir/sid/icd-10-cm", d["icd10_code"]), **({"onAdmission": _coding(
            "https://www.cms.gov/Medicare/Coding/ICD10", d["present_on_admission"])} if d["present_on_admission"]
        else {})} for d in diagnoses if d["icd10_code"] is not None]
    if not institutional and len(items) > split_items:
        first, second = dict(eob, item=items[:split_items]), dict(eob, item=items[split_items:], diagnosis=[])
        second["id"] = eob["id"] + "-part-2"
        return [first, second]
    return [dict(eob, item=items)]

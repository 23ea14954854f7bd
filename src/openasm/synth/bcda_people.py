"""Patient, Coverage and Part D EOB resources of a synthetic world, and the two FHIR writers (BCDA bulk NDJSON,
Blue Button per-patient Bundles) that assemble them with the claim EOBs of `bcda_writer`."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from openasm.connectors.layout import load_layout
from openasm.synth.bcda_writer import BB, _adjudication, _coding, _day, _info, claim_eobs, patient_id
from openasm.synth.rif_writer import final_versions

GENDER = {"M": "male", "F": "female", "U": "unknown"}


@dataclass
class FhirWriteSummary:
    out_dir: Path
    resources: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


def patient_resource(bene: dict) -> dict:
    usps = {v: k for k, v in load_layout("fhir_eob")["state_fips"].items()}
    resource = {"resourceType": "Patient", "id": patient_id(bene["bene_id"]),
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-mbi", "value": bene["bene_id"], "type": {
                    "coding": [{"code": "MC", "extension": [{"url": "https://bluebutton.cms.gov/resources/codesystem/"
                                                             "identifier-currency", "valueCoding": {"code": "current"}}]}]}}],
                "gender": GENDER.get(bene["sex"], bene["sex"]), "birthDate": _day(bene["birth_date"]),
                "address": [{"state": usps.get(bene["state_fips"], bene["state_fips"]), "postalCode": bene["zip5"]}]}
    if bene["death_date"] is not None:
        resource["deceasedDateTime"] = _day(bene["death_date"])
    if bene["race_code"] is not None:
        resource["extension"] = [{"url": BB + "race", "valueCoding": {"system": BB + "race", "code": bene["race_code"]}}]
    return resource


def coverage_resources(bene_id: str, year: str, months: dict[str, dict]) -> list[dict]:
    """Part A, B, C and D Coverage of one reference year with their monthly extensions."""
    out = []
    for part in ("a", "b", "c", "d"):
        ext = [{"url": BB + "rfrnc_yr", "valueDate": year}]
        for nn in (f"{m:02d}" for m in range(1, 13)):
            m = months.get(nn)
            if m is None:
                continue
            a, b = m["has_part_a"], m["has_part_b"]
            if part in ("a", "b") and a is not None and b is not None:
                buyin = {(True, True): "3", (True, False): "1", (False, True): "2", (False, False): "0"}[(a, b)]
                ext.append({"url": BB + f"buyin{nn}", "valueCoding": {"code": buyin}})
            if part == "c" and m["is_medicare_advantage"] is not None:
                ext.append({"url": BB + f"hmo_ind_{nn}", "valueCoding": {"code": "C" if m["is_medicare_advantage"] else "0"}})
            if part == "d" and m["has_part_d"] is not None:
                ext.append({"url": BB + f"ptdcntrct{nn}", "valueCoding": {"code": "S0001" if m["has_part_d"] else "N"}})
            if m["dual_status_code"] is not None:
                ext.append({"url": BB + f"dual_{nn}", "valueCoding": {"code": m["dual_status_code"]}})
        out.append({"resourceType": "Coverage", "id": f"part-{part}-{patient_id(bene_id)}-{year}", "status": "active",
                    "beneficiary": {"reference": f"Patient/{patient_id(bene_id)}"}, "extension": ext})
    return out


def pde_resource(fill: dict) -> dict:
    return {"resourceType": "ExplanationOfBenefit", "id": f"pde-{fill['claim_id']}", "status": "active",
            "identifier": [{"system": BB + "pde_id", "value": fill["claim_id"]}],
            "type": {"coding": [{"system": load_layout("fhir_eob")["eob_type_system"], "code": "PDE"}]},
            "patient": {"reference": f"Patient/{patient_id(fill['bene_id'])}"},
            "careTeam": [{"sequence": 1, "role": _coding("http://hl7.org/fhir/us/carin-bb/CodeSystem/"
                                                         "C4BBClaimCareTeamRole", "prescribing"),
                          "provider": {"identifier": {"type": _coding("x", "npi"), "value": fill["prescriber_npi"]}}}]
            if fill["prescriber_npi"] is not None else [],
            "supportingInfo": [_info(1, "dayssupply", valueQuantity={"value": fill["days_supply"]})]
            if fill["days_supply"] is not None else [],
            "item": [{"sequence": 1, "servicedDate": _day(fill["fill_date"]),
                      "productOrService": _coding("http://hl7.org/fhir/sid/ndc", fill["ndc_code"]),
                      "quantity": {"value": fill["quantity_dispensed"]},
                      "adjudication": [a for a in (
                          fill["allowed_amount"] is not None and _adjudication("drugcost", "tot_rx_cst_amt",
                                                                               fill["allowed_amount"]),
                          fill["paid_amount"] is not None and _adjudication("benefit", "cvrd_d_plan_pd_amt",
                                                                            fill["paid_amount"])) if a]}]}


def world_resources(world: Path, split_items: int, summary: FhirWriteSummary) -> dict[str, list[dict]]:
    """Every resource of the world by patient id (Patient, Coverage, EOBs), final action claims only."""
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for bene in pq.read_table(world / "beneficiary").to_pylist():
        by_patient[bene["bene_id"]].append(patient_resource(bene))
    months: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    dropped = 0
    for row in pq.read_table(world / "enrollment").to_pylist():
        text = row["year_month"] or ""
        slot = months[(row["bene_id"], text[:4])]
        if len(text) != 7 or not text[5:7].isdigit() or not 1 <= int(text[5:7]) <= 12 or text[5:7] in slot:
            dropped += 1
            continue
        slot[text[5:7]] = row
    summary.dropped["enrollment_rows"] = dropped
    for (bene_id, year), slot in months.items():
        if slot:
            by_patient[bene_id].extend(coverage_resources(bene_id, year, slot))
    lines: dict[str, list[dict]] = defaultdict(list)
    for line in final_versions(world, "claim_line").to_pylist():
        lines[line["claim_id"]].append(line)
    diagnoses: dict[str, list[dict]] = defaultdict(list)
    for dx in pq.read_table(world / "claim_diagnosis").to_pylist():
        diagnoses[dx["claim_id"]].append(dx)
    for claim, claim_lines in lines.items():
        # An EOB's diagnoses belong to its patient: a diagnosis row of another beneficiary cannot be written.
        own = [d for d in diagnoses.get(claim, []) if d["bene_id"] == claim_lines[0]["bene_id"]]
        summary.dropped["diagnosis_rows"] = summary.dropped.get("diagnosis_rows", 0) + len(
            diagnoses.get(claim, [])) - len(own)
        for eob in claim_eobs(claim_lines, own, split_items):
            by_patient[claim_lines[0]["bene_id"]].append(eob)
    for fill in final_versions(world, "pharmacy_claim").to_pylist():
        by_patient[fill["bene_id"]].append(pde_resource(fill))
    return by_patient


def _fresh(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def write_bcda(world: Path, out: Path, side_tables: tuple[str, ...] = ("clinician",),
               split_items: int = 3) -> FhirWriteSummary:
    """A BCDA bulk export: one NDJSON file per resource type."""
    out, summary = _fresh(Path(out)), FhirWriteSummary(Path(out))
    handles = {}
    try:
        for resources in world_resources(Path(world), split_items, summary).values():
            for resource in resources:
                kind = resource["resourceType"]
                if kind not in handles:
                    handles[kind] = (out / f"{kind}.ndjson").open("w", encoding="utf-8")
                handles[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
                summary.resources[kind] = summary.resources.get(kind, 0) + 1
    finally:
        for handle in handles.values():
            handle.close()
    for name in side_tables:
        shutil.copytree(Path(world) / name, out / name)
    return summary


def write_bluebutton(world: Path, out: Path, side_tables: tuple[str, ...] = ("clinician",), page_size: int = 10,
                     split_items: int = 3) -> FhirWriteSummary:
    """Blue Button 2.0 / DPC responses: per patient a folder with patient.json, coverage.json and the EOB search
    results in pages of `page_size` (eob-page-N.json), each a searchset Bundle."""
    out, summary = _fresh(Path(out)), FhirWriteSummary(Path(out))
    for number, resources in enumerate(world_resources(Path(world), split_items, summary).values()):
        folder = out / f"patient-{number:06d}"
        folder.mkdir()
        groups = {"patient": [r for r in resources if r["resourceType"] == "Patient"],
                  "coverage": [r for r in resources if r["resourceType"] == "Coverage"]}
        eobs = [r for r in resources if r["resourceType"] == "ExplanationOfBenefit"]
        for page in range(0, len(eobs), page_size):
            groups[f"eob-page-{page // page_size + 1}"] = eobs[page:page + page_size]
        for name, group in groups.items():
            if group:
                bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(group),
                          "entry": [{"resource": r} for r in group]}
                (folder / f"{name}.json").write_text(json.dumps(bundle), encoding="utf-8")
                for r in group:
                    summary.resources[r["resourceType"]] = summary.resources.get(r["resourceType"], 0) + 1
    for name in side_tables:
        shutil.copytree(Path(world) / name, out / name)
    return summary

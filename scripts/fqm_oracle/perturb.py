"""Perturbations of a FHIR NDJSON export for the fqm-execution differential, beyond `mutate_fhir.py`'s boundary and
dateonly modes: both engines then read the same perturbed files, so each mode probes one kind of semantics.

    python scripts/fqm_oracle/perturb.py FHIR_IN FHIR_OUT --mode statuses|units|negation|references|precision
                                          [--share 0.3] [--seed 1]

statuses:   status, clinicalStatus and verificationStatus values that count and that do not (and code case variants)
units:      quantities rewritten in another UCUM unit (value converted), the same unit written another way, or a
            unit UCUM does not know
negation:   requests marked doNotPerform (with a medical reason), observations marked not done, procedures not-done
references: inline medication codes moved to a referenced Medication, and referenced ones inlined
precision:  dateTimes truncated to the minute, the second (no milliseconds), the day, the month or the year
Each resource is changed with probability `share`, decided by a hash of its id (the same resources every run).
"""

from __future__ import annotations

import argparse
import json
import random
import zlib
from pathlib import Path

MEDICAL_REASON = {"system": "http://snomed.info/sct", "code": "183932001"}  # in Medical Reason (B.1007)
DO_NOT_PERFORM_REASON = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-doNotPerformReason"
NOT_DONE = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDone"
NOT_DONE_REASON = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason"
STATUSES = {
    "Encounter": ["finished", "in-progress", "arrived", "triaged", "onleave", "cancelled", "planned",
                  "entered-in-error"],
    "Observation": ["final", "amended", "corrected", "preliminary", "registered", "cancelled", "entered-in-error"],
    "MedicationRequest": ["active", "completed", "on-hold", "stopped", "draft", "cancelled", "Completed"],
    "ServiceRequest": ["active", "completed", "revoked", "draft", "on-hold", "Completed"],
    "DeviceRequest": ["active", "completed", "revoked", "draft"],
    "Procedure": ["completed", "in-progress", "not-done", "stopped", "Completed", "COMPLETED"],
}
CLINICAL = ["active", "recurrence", "relapse", "inactive", "remission", "resolved"]
VERIFICATION = ["confirmed", "unconfirmed", "provisional", "differential", "refuted"]
# unit → [(other unit, factor to multiply the value by)]: convertible, a spelling of the same unit, or unknown.
UNITS = {
    "kg/m2": [("kg.m-2", 1.0), ("g/m2", 1000.0), ("kg/m^2", 1.0)],
    "mm[Hg]": [("kPa", 1 / 7.500615758), ("mmHg", 1.0), ("cm[Hg]", 0.1)],
    "%": [("1", 0.01), ("%", 1.0)],
    "/min": [("{beats}/min", 1.0), ("1/min", 1.0), ("/h", 60.0), ("beats/minute", 1.0)],
    "d": [("wk", 1 / 7), ("h", 24.0), ("days", 1.0)],
}


def _chosen(resource: dict, share: float, salt: str) -> random.Random | None:
    key = f"{salt}:{resource.get('resourceType')}/{resource.get('id')}"
    rng = random.Random(zlib.crc32(key.encode()))
    return rng if rng.random() < share else None


def statuses(resource: dict, rng: random.Random) -> dict:
    kind = resource.get("resourceType")
    if kind in STATUSES:
        resource["status"] = rng.choice(STATUSES[kind])
    if kind == "Condition":
        resource["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": rng.choice(CLINICAL)}]}
        resource["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": rng.choice(VERIFICATION)}]}
    return resource


def _quantities(node: object, rng: random.Random) -> None:
    if isinstance(node, dict):
        code = node.get("code")
        if code in UNITS and isinstance(node.get("value"), (int, float)):
            unit, factor = rng.choice(UNITS[code])
            node.update(value=round(node["value"] * factor, 6), code=unit, unit=unit)
        for value in node.values():
            _quantities(value, rng)
    elif isinstance(node, list):
        for value in node:
            _quantities(value, rng)


def units(resource: dict, rng: random.Random) -> dict:
    _quantities(resource, rng)
    return resource


def negation(resource: dict, rng: random.Random) -> dict:
    kind = resource.get("resourceType")
    if kind in ("MedicationRequest", "ServiceRequest"):
        resource["doNotPerform"] = True
        resource["status"] = rng.choice(["completed", "active"])
        if kind == "ServiceRequest":
            resource["extension"] = [{"url": DO_NOT_PERFORM_REASON, "valueCodeableConcept": {"coding": [
                MEDICAL_REASON]}}]
        else:
            resource["reasonCode"] = [{"coding": [MEDICAL_REASON]}]
    elif kind == "Observation":
        resource["status"] = "cancelled"
        resource["modifierExtension"] = [{"url": NOT_DONE, "valueBoolean": True}]
        resource["extension"] = [{"url": NOT_DONE_REASON, "valueCodeableConcept": {"coding": [MEDICAL_REASON]}}]
        resource.pop("valueQuantity", None)
        resource.pop("valueCodeableConcept", None)
    elif kind == "Procedure":
        resource["status"] = "not-done"
        resource["statusReason"] = {"coding": [MEDICAL_REASON]}
    return resource


def references(resource: dict, rng: random.Random, medications: dict[str, dict], extra: list[dict]) -> dict:
    if resource.get("resourceType") != "MedicationRequest":
        return resource
    if "medicationCodeableConcept" in resource:
        medication_id = f"{resource['id']}-med"
        extra.append({"resourceType": "Medication", "id": medication_id,
                      "code": resource.pop("medicationCodeableConcept")})
        resource["medicationReference"] = {"reference": f"Medication/{medication_id}"}
    elif "medicationReference" in resource:
        target = medications.get(resource["medicationReference"].get("reference", "").rsplit("/", 1)[-1])
        if target is not None:
            resource.pop("medicationReference")
            resource["medicationCodeableConcept"] = target["code"]
    return resource


def _truncate(text: str, rng: random.Random) -> str:
    if len(text) < 19 or text[10:11] != "T":
        return text
    cut = rng.choice(["minute", "second", "day", "month", "year"])
    zone = text[23:] if text[19:20] == "." else text[19:]
    return {"minute": text[:16] + zone, "second": text[:19] + zone, "day": text[:10], "month": text[:7],
            "year": text[:4]}[cut]


def precision(resource: dict, rng: random.Random) -> dict:
    def walk(node: object, key: str | None = None) -> object:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key not in ("birthDate", "lastUpdated", "issued") and len(node) >= 19 and \
                node[4:5] == "-" and node[10:11] == "T":
            return _truncate(node, rng)
        return node
    return walk(resource)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--mode", required=True, choices=("statuses", "units", "negation", "references", "precision"))
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    files = {p.name: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
             for p in sorted(args.src.glob("*.ndjson"))}
    medications = {r["id"]: r for r in files.get("Medication.ndjson", [])}
    extra: list[dict] = []
    changed = 0
    for rows in files.values():
        for index, resource in enumerate(rows):
            if resource.get("resourceType") in ("Patient", "Practitioner", "Organization", "Medication"):
                continue
            rng = _chosen(resource, args.share, f"{args.mode}:{args.seed}")
            if rng is None:
                continue
            changed += 1
            mode = args.mode
            rows[index] = (references(resource, rng, medications, extra) if mode == "references"
                           else globals()[mode](resource, rng))
    files.setdefault("Medication.ndjson", []).extend(extra)
    args.dst.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (args.dst / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{args.mode}: {changed} resources changed, {len(extra)} Medications added")


if __name__ == "__main__":
    main()

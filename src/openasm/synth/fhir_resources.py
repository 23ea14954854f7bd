"""Building blocks of the synthetic FHIR export: codes drawn from the shipped value sets, timestamps in a patient's
UTC offset (or date-only), the NDJSON writer with planted defects, and one constructor per QI-Core resource the eCQMs
read. Every code comes from a shipped value set or a measure's direct-reference constant, never typed in here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from openasm.quality.clinical_model import (
    DO_NOT_PERFORM_URLS,
    MBI_SYSTEM,
    NEGATION_REASON_URLS,
    NOT_DONE_URL,
    NPI_SYSTEM,
    RECORDED_URL,
    TIN_SYSTEMS,
)
from openasm.quality.measures.common import oid
from openasm.quality.value_sets import value_set_codes

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
HEALTH_CONCERN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
SYSTEM_PREFERENCE = ("http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm",
                     "http://www.nlm.nih.gov/research/umls/rxnorm", "http://loinc.org")
Code = tuple[str, str]


class CodePicker:
    """Codes drawn from the shipped value sets."""

    def __init__(self) -> None:
        members: dict[str, list[Code]] = defaultdict(list)
        table = value_set_codes()
        for row_oid, system, code in zip(*(table.column(c).to_pylist() for c in ("oid", "system", "code"))):
            members[row_oid].append((system, code))
        self.members = {k: sorted(v) for k, v in members.items()}

    def codes(self, short_oid: str, system: str, *also: str) -> list[str]:
        """Codes of `system` in every one of the value sets named (an intersection, e.g. an encounter code that
        qualifies for three measures)."""
        found = {c for s, c in self.members.get(oid(short_oid), []) if s == system}
        for other in also:
            found &= {c for s, c in self.members.get(oid(other), []) if s == system}
        if not found:
            raise ValueError(f"no {system} code in value set(s) {short_oid} {' '.join(also)}")
        return sorted(found)

    def any(self, short_oid: str) -> list[Code]:
        """(system, code) members of a value set, those of the preferred systems first."""
        members = self.members.get(oid(short_oid), [])
        for system in SYSTEM_PREFERENCE:
            preferred = [m for m in members if m[0] == system]
            if preferred:
                return preferred
        if not members:
            raise ValueError(f"value set {short_oid} is not shipped")
        return members


def stamp(day: date, hour: int = 9, minute: int = 0, offset: int | None = 0) -> str:
    """A FHIR dateTime at local wall-clock `hour:minute` with the UTC offset in minutes; `offset=None` writes the
    date only (day precision)."""
    if offset is None:
        return day.isoformat()
    moment = datetime(day.year, day.month, day.day) + timedelta(hours=hour, minutes=minute)
    sign = "+" if offset >= 0 else "-"
    return f"{moment.isoformat()}.000{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def ref(resource_type: str, resource_id: str) -> dict:
    return {"reference": f"{resource_type}/{resource_id}"}


def concept(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


class NdjsonWriter:
    """Collects resources per type and writes NDJSON, injecting the configured defects."""

    def __init__(self, out_dir: Path, rng: np.random.Generator, defects: dict[str, float]) -> None:
        self.out_dir, self.rng, self.defects = out_dir, rng, defects
        self.lines: dict[str, list[str]] = defaultdict(list)
        self.defect_counts: dict[str, int] = defaultdict(int)

    def add(self, resource: dict) -> None:
        kind = self._defect()
        resource_type = resource["resourceType"]
        if kind == "bad_date":
            for key in ("authoredOn", "effectiveDateTime", "onsetDateTime", "birthDate"):
                if key in resource:
                    resource = {**resource, key: "2027-02-30"}
                    break
            else:
                kind = None
        elif kind == "missing_subject" and "subject" in resource:
            resource = {k: v for k, v in resource.items() if k != "subject"}
        elif kind == "unknown_resource_type":
            resource = {**resource, "resourceType": resource_type + "X"}
        elif kind != "truncated_line":
            kind = None
        text = json.dumps(resource, separators=(",", ":"))
        if kind == "truncated_line":
            text = text[: len(text) // 2]
        if kind:
            self.defect_counts[kind] += 1
        self.lines[resource_type].append(text)

    def _defect(self) -> str | None:
        draw = self.rng.random()
        for kind, share in self.defects.items():
            if draw < share:
                return kind
            draw -= share
        return None

    def write(self) -> dict[str, int]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        counts = {}
        for resource_type in sorted(self.lines):
            (self.out_dir / f"{resource_type}.ndjson").write_text("\n".join(self.lines[resource_type]) + "\n",
                                                                   encoding="utf-8")
            counts[resource_type] = len(self.lines[resource_type])
        return counts


class Resources:
    """One constructor per resource type; ids are `<patient>-<n>`, unique per patient. Times are FHIR dateTime
    strings (see `stamp`)."""

    def __init__(self, writer: NdjsonWriter, rng: np.random.Generator) -> None:
        self.writer, self.rng = writer, rng
        self.counter = 0

    def new_id(self, patient_id: str) -> str:
        self.counter += 1
        return f"{patient_id}-{self.counter}"

    def _emit(self, patient_id: str, resource: dict, subject_key: str = "subject") -> str:
        resource_id = self.new_id(patient_id)
        self.writer.add({"resourceType": resource.pop("resourceType"), "id": resource_id,
                         subject_key: ref("Patient", patient_id), **resource})
        return resource_id

    def directory(self, npi: str | None = None, tin: str | None = None) -> None:
        if npi is not None:
            self.writer.add({"resourceType": "Practitioner", "id": npi,
                             "identifier": [{"system": NPI_SYSTEM, "value": npi}]})
        if tin is not None:
            self.writer.add({"resourceType": "Organization", "id": tin, "name": f"Practice {tin}",
                             "identifier": [{"system": TIN_SYSTEMS[0], "value": tin}]})

    def patient(self, patient_id: str, *, gender: str, birth_date: date, mbi: str) -> None:
        self.writer.add({"resourceType": "Patient", "id": patient_id, "gender": gender,
                         "birthDate": birth_date.isoformat(), "identifier": [{"system": MBI_SYSTEM, "value": mbi}]})

    def encounter(self, patient_id: str, code: Code, start: str | None, end: str | None, *, status: str = "finished",
                  klass: str = "AMB", npi: str | None = None, tin: str | None = None,
                  discharge: Code | None = None) -> str:
        period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        resource: dict[str, Any] = {"resourceType": "Encounter", "status": status,
                                    "class": {"system": ACT_CODE, "code": klass}, "type": [concept(*code)],
                                    "period": period}
        if npi:
            resource["participant"] = [{"individual": ref("Practitioner", npi)}]
        if tin:
            resource["serviceProvider"] = ref("Organization", tin)
        if discharge:
            resource["hospitalization"] = {"dischargeDisposition": concept(*discharge)}
        return self._emit(patient_id, resource)

    def condition(self, patient_id: str, code: Code, onset: str | None, *, abatement: str | None = None,
                  clinical: str = "active", verification: str = "confirmed", category: str = "problem-list-item",
                  recorded: str | None = None, severity: Code | None = None) -> str:
        category_system = HEALTH_CONCERN_CATEGORY if category == "health-concern" else CONDITION_CATEGORY
        resource: dict[str, Any] = {"resourceType": "Condition",
                                    "clinicalStatus": concept(CONDITION_CLINICAL, clinical),
                                    "verificationStatus": concept(CONDITION_VERIFICATION, verification),
                                    "category": [concept(category_system, category)], "code": concept(*code)}
        for key, value in (("onsetDateTime", onset), ("abatementDateTime", abatement), ("recordedDate", recorded)):
            if value is not None:
                resource[key] = value
        if severity:
            resource["severity"] = concept(*severity)
        return self._emit(patient_id, resource)

    def observation(self, patient_id: str, code: Code, effective: str | None, *, status: str = "final",
                    category: str | None = None, quantity: tuple[float, str] | None = None,
                    value: Code | None = None, components: list[tuple[Code, float, str]] | None = None,
                    not_done_reason: Code | None = None, issued: str | None = None,
                    encounter_id: str | None = None) -> str:
        resource: dict[str, Any] = {"resourceType": "Observation", "status": status, "code": concept(*code)}
        if category:
            resource["category"] = [concept(OBS_CATEGORY, category)]
        if effective is not None:
            resource["effectiveDateTime"] = effective
        if issued is not None:
            resource["issued"] = issued
        if quantity is not None:
            resource["valueQuantity"] = {"value": quantity[0], "unit": quantity[1], "code": quantity[1],
                                         "system": UCUM}
        if value is not None:
            resource["valueCodeableConcept"] = concept(*value)
        if components:
            resource["component"] = [{"code": concept(*c), "valueQuantity": {"value": v, "unit": u, "code": u,
                                                                             "system": UCUM}}
                                     for c, v, u in components]
        if not_done_reason is not None:
            resource["modifierExtension"] = [{"url": NOT_DONE_URL, "valueBoolean": True}]
            resource["extension"] = [{"url": NEGATION_REASON_URLS[0], "valueCodeableConcept": concept(*not_done_reason)}]
        if encounter_id:
            resource["encounter"] = ref("Encounter", encounter_id)
        return self._emit(patient_id, resource)

    def medication_request(self, patient_id: str, rx: Code, authored: str | None, *, by_reference: bool,
                           status: str = "active", intent: str = "order", refills: int = 0,
                           supply_days: float | None = 30, bounds: tuple[str | None, str | None] | None = None,
                           quantity: tuple[float, str] | None = None, dose: float | None = None,
                           do_not_perform: bool = False, reason: Code | None = None) -> str:
        dispense: dict[str, Any] = {"numberOfRepeatsAllowed": refills}
        if supply_days is not None:
            dispense["expectedSupplyDuration"] = {"value": supply_days, "unit": "days", "code": "d", "system": UCUM}
        if quantity is not None:
            dispense["quantity"] = {"value": quantity[0], "unit": quantity[1], "code": quantity[1], "system": UCUM}
        resource: dict[str, Any] = {"resourceType": "MedicationRequest", "status": status, "intent": intent,
                                    "dispenseRequest": dispense}
        if authored is not None:
            resource["authoredOn"] = authored
        dosage: dict[str, Any] = {}
        if bounds is not None:
            dosage["timing"] = {"repeat": {"boundsPeriod": {k: v for k, v in zip(("start", "end"), bounds) if v}}}
        if dose is not None:
            dosage.setdefault("timing", {}).setdefault("repeat", {}).update(frequency=1, period=1, periodUnit="d")
            dosage["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": "{tbl}", "code": "{tbl}",
                                                       "system": UCUM}}]
        if dosage:
            resource["dosageInstruction"] = [dosage]
        if do_not_perform:
            resource["doNotPerform"] = True
        if reason is not None:
            resource["reasonCode"] = [concept(*reason)]
        if by_reference:
            medication_id = self.new_id(patient_id)
            self.writer.add({"resourceType": "Medication", "id": medication_id, "code": concept(*rx)})
            resource["medicationReference"] = ref("Medication", medication_id)
        else:
            resource["medicationCodeableConcept"] = concept(*rx)
        return self._emit(patient_id, resource)

    def service_request(self, patient_id: str, code: Code, authored: str | None, *, status: str = "active",
                        intent: str = "order", do_not_perform: bool = False, refused_reason: Code | None = None,
                        reason: Code | None = None) -> str:
        resource: dict[str, Any] = {"resourceType": "ServiceRequest", "status": status, "intent": intent,
                                    "code": concept(*code)}
        if authored is not None:
            resource["authoredOn"] = authored
        if do_not_perform:
            resource["doNotPerform"] = True
        if refused_reason is not None:
            resource["extension"] = [{"url": NEGATION_REASON_URLS[1], "valueCodeableConcept": concept(*refused_reason)}]
        if reason is not None:
            resource["reasonCode"] = [concept(*reason)]
        return self._emit(patient_id, resource)

    def device_request(self, patient_id: str, code: Code, authored: str | None, *, status: str = "active",
                       do_not_perform: bool = False) -> str:
        resource: dict[str, Any] = {"resourceType": "DeviceRequest", "status": status, "intent": "order",
                                    "codeCodeableConcept": concept(*code)}
        if authored is not None:
            resource["authoredOn"] = authored
        if do_not_perform:
            resource["modifierExtension"] = [{"url": DO_NOT_PERFORM_URLS[1], "valueBoolean": True}]
        return self._emit(patient_id, resource)

    def procedure(self, patient_id: str, code: Code, performed: str | tuple[str | None, str | None] | None, *,
                  status: str = "completed", reason: Code | None = None, not_done_reason: Code | None = None,
                  recorded: str | None = None) -> str:
        resource: dict[str, Any] = {"resourceType": "Procedure", "status": status, "code": concept(*code)}
        if isinstance(performed, tuple):
            resource["performedPeriod"] = {k: v for k, v in zip(("start", "end"), performed) if v}
        elif performed is not None:
            resource["performedDateTime"] = performed
        if reason is not None:
            resource["reasonCode"] = [concept(*reason)]
        if not_done_reason is not None:
            resource["statusReason"] = concept(*not_done_reason)
        if recorded is not None:
            resource.setdefault("extension", []).append({"url": RECORDED_URL, "valueDateTime": recorded})
        return self._emit(patient_id, resource)

    def allergy(self, patient_id: str, code: Code, onset: str | None, *, clinical: str = "active",
                verification: str = "confirmed") -> str:
        resource: dict[str, Any] = {"resourceType": "AllergyIntolerance",
                                    "clinicalStatus": concept(ALLERGY_CLINICAL, clinical),
                                    "verificationStatus": concept(ALLERGY_VERIFICATION, verification),
                                    "code": concept(*code)}
        if onset is not None:
            resource["onsetDateTime"] = onset
        return self._emit(patient_id, resource, subject_key="patient")

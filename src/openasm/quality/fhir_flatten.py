"""Flatten one FHIR R4 resource into rows of the clinical tables (quality.md §7).

Pure Python over parsed JSON: each resource is visited once and appended to per-table column lists. A resource that
cannot be used at all (not an object, no resourceType, an unsupported type, no id, no subject) raises
`UnusableResource` and is quarantined by the reader. Every element is read through `fhir_elements.Elements`, so an
element of the wrong type or with an invalid value is nulled and reported as an issue while the rest of the resource
is kept. Dates and times are stored as written (`cql_datetime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openasm.quality.clinical_model import (
    CLINICAL_SCHEMAS,
    CODED_ELEMENTS,
    DO_NOT_PERFORM_URLS,
    MBI_SYSTEM,
    NEGATION_REASON_URLS,
    NOT_DONE_URL,
    NPI_SYSTEM,
    PROFILE_ELEMENT,
    RECORDED_URL,
    RESOURCE_TABLE,
    TIN_SYSTEMS,
)
from openasm.quality.cql_datetime import FhirDateTime
from openasm.quality.fhir_elements import ElementIssue, Elements, flag, moment_values, reference_id

_UNIT_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "mo": 30.0, "month": 30.0,
              "months": 30.0, "a": 365.0, "year": 365.0, "years": 365.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}
_UNIT_MINUTES = {"min": 1.0, "minute": 1.0, "minutes": 1.0, "h": 60.0, "hour": 60.0, "hours": 60.0,
                 "d": 1440.0, "day": 1440.0, "days": 1440.0}
# Directory and code resources: not about one patient.
_SHARED_TYPES = ("Practitioner", "Organization", "Medication")


class UnusableResource(ValueError):
    """A resource the engine cannot use; `reason` is a stable code, the message says which element and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ResourceIdentity:
    """Type, id and patient of a resource (patient None for directory and code resources)."""

    resource_type: str
    resource_id: str
    patient_id: str | None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.resource_type, self.resource_id, self.patient_id


def identify_resource(resource: Any) -> ResourceIdentity:
    """The identity of a resource, or UnusableResource when it cannot be read at all."""
    if not isinstance(resource, dict):
        raise UnusableResource("not_a_resource", f"expected a JSON object, got {type(resource).__name__}")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise UnusableResource("missing_resource_type", "the resource has no resourceType string")
    if resource_type not in RESOURCE_TABLE:
        raise UnusableResource("unsupported_resource_type",
                               f"resourceType {resource_type!r} is not read by the engine "
                               f"(read: {', '.join(sorted(RESOURCE_TABLE))})")
    resource_id = resource.get("id")
    if not isinstance(resource_id, str) or not resource_id:
        raise UnusableResource("missing_id", f"{resource_type} has no id string")
    if resource_type == "Patient" or resource_type in _SHARED_TYPES:
        return ResourceIdentity(resource_type, resource_id, resource_id if resource_type == "Patient" else None)
    subject_key = {"AllergyIntolerance": "patient", "Coverage": "beneficiary"}.get(resource_type, "subject")
    patient_id = reference_id(resource.get(subject_key))
    if patient_id is None:
        raise UnusableResource("missing_subject", f"{resource_type}/{resource_id} has no {subject_key} reference")
    return ResourceIdentity(resource_type, resource_id, patient_id)


class ClinicalRows:
    """Column lists per clinical table, filled resource by resource."""

    def __init__(self) -> None:
        self.columns = {name: {field.name: [] for field in schema} for name, schema in CLINICAL_SCHEMAS.items()}
        self.medication_codes: dict[str, list[tuple[str | None, str]]] = {}
        self.medication_refs: list[tuple[str, str, str, int]] = []

    def add(self, table: str, **values: Any) -> None:
        get = values.get
        for name, column in self.columns[table].items():
            column.append(get(name))

    def count(self, table: str) -> int:
        return len(next(iter(self.columns[table].values())))

    def add_codings(self, patient_id: str | None, resource_type: str, resource_id: str, element: str,
                    codings: list[tuple[str | None, str]]) -> None:
        for system, code in codings:
            self.add("clinical_coding", patient_id=patient_id, resource_type=resource_type, resource_id=resource_id,
                     element=element, system=system, code=code)


def flatten_resource(resource: dict, identity: ResourceIdentity, rows: ClinicalRows, source_file: str,
                     source_line: int) -> list[ElementIssue]:
    """Append one identified resource to `rows`; returns the elements that were nulled."""
    e = Elements(resource)
    resource_type, resource_id, patient_id = identity.key
    where = {"source_file": source_file, "source_line": source_line}
    if resource_type == "Medication":
        rows.medication_codes[resource_id] = e.codings("code")
        return e.issues
    if resource_type in ("Practitioner", "Organization"):
        _flatten_directory(e, resource_type, resource_id, rows, where)
        return e.issues
    values = _FLATTENERS[resource_type](e)
    rows.add(RESOURCE_TABLE[resource_type], patient_id=patient_id, resource_id=resource_id, **values, **where)
    for element, path in CODED_ELEMENTS.get(resource_type, []):
        rows.add_codings(patient_id, resource_type, resource_id, element, e.codings(path))
    rows.add_codings(patient_id, resource_type, resource_id, PROFILE_ELEMENT,
                     [(None, url) for url in e.strings("meta.profile")])
    _flatten_negation(e, resource_type, resource_id, patient_id, values, rows, where)
    _flatten_references(e, resource_type, resource_id, patient_id, rows)
    if resource_type == "Observation":
        for index, component in enumerate(e.objects("component")):
            value, unit = e.quantity("valueQuantity", component)
            for system, code in e.codings("code", component):
                rows.add("observation_component", patient_id=patient_id, resource_id=resource_id,
                         component_index=index, system=system, code=code, value_quantity=value, value_unit=unit,
                         **where)
    for index, start, end in values.get("_dosage_bounds", ()):
        rows.add("medication_request_dosage", patient_id=patient_id, resource_id=resource_id, dosage_index=index,
                 **moment_values("bounds_start", start), **moment_values("bounds_end", end), **where)
    if resource_type == "MedicationRequest" and values.get("medication_ref"):
        rows.medication_refs.append((patient_id, resource_id, values["medication_ref"], source_line))
    return e.issues


def _flatten_directory(e: Elements, resource_type: str, resource_id: str, rows: ClinicalRows, where: dict) -> None:
    identifiers = e.objects("identifier")
    if resource_type == "Practitioner":
        npi = next((e.string("value", i, "identifier.value") for i in identifiers if i.get("system") == NPI_SYSTEM),
                   None)
        rows.add("practitioner", resource_id=resource_id, npi=npi, **where)
        return
    tin = next((e.string("value", i, "identifier.value") for i in identifiers if i.get("system") in TIN_SYSTEMS),
               None)
    rows.add("organization", resource_id=resource_id, tin=tin, name=e.string("name"), **where)


def _span(e: Elements, prefix: str) -> tuple[FhirDateTime | None, FhirDateTime | None]:
    """`<prefix>DateTime` / `<prefix>Instant` (a point: both ends) or `<prefix>Period` as (start, end)."""
    for suffix in ("DateTime", "Instant"):
        if e.resource.get(f"{prefix}{suffix}") is not None:
            point = e.moment(f"{prefix}{suffix}")
            return point, point
    name = "period" if prefix == "period" else f"{prefix}Period"
    period = e.node(name)
    if isinstance(period, dict):
        return e.moment("start", period, f"{name}.start"), e.moment("end", period, f"{name}.end")
    if period is not None:
        e.record(name, "wrong_type", f"{name}: expected a Period object")
    return None, None


def _moments(**values: FhirDateTime | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        out.update(moment_values(name, value))
    return out


def _patient(e: Elements) -> dict:
    birth = e.moment("birthDate")
    gender = e.string("gender")
    return {"birth_date": birth.low.date() if birth is not None else None, "gender": gender,
            **_moments(deceased=e.moment("deceasedDateTime")),
            "mbi": next((e.string("value", i, "identifier.value") for i in e.objects("identifier")
                         if i.get("system") == MBI_SYSTEM), None)}


def _encounter(e: Elements) -> dict:
    start, end = _span(e, "period")
    length, unit = e.quantity("length")
    participants = e.objects("participant")
    classes = e.codings("class")
    return {"status": e.string("status"), "class_code": classes[0][1] if classes else None,
            **_moments(period_start=start, period_end=end),
            "length_minutes": length * _UNIT_MINUTES[unit] if length is not None and unit in _UNIT_MINUTES else None,
            "practitioner_ref": next((reference_id(p.get("individual")) for p in participants
                                      if reference_id(p.get("individual"))), None),
            "organization_ref": e.reference_id("serviceProvider")}


def _condition(e: Elements) -> dict:
    onset_start, onset_end = _span(e, "onset")
    abatement_start, abatement_end = _span(e, "abatement")
    if e.resource.get("abatementPeriod") is not None and abatement_end is not None:
        # QICoreCommon.abatementInterval reads an abatement Period as [start, end), so it ends just before its end.
        abatement_end = abatement_end.predecessor()
    return {"clinical_status": e.first_code("clinicalStatus"), "verification_status": e.first_code("verificationStatus"),
            **_moments(onset_start=onset_start, onset_end=onset_end, abatement_start=abatement_start,
                       abatement_end=abatement_end, recorded_date=e.moment("recordedDate"))}


def _observation(e: Elements) -> dict:
    start, end = _span(e, "effective")
    value, unit = e.quantity("valueQuantity")
    if value is None and e.resource.get("valueInteger") is not None:
        value = e.number("valueInteger")
    return {"status": e.string("status"), **_moments(effective_start=start, effective_end=end,
                                                      issued=e.moment("issued"),
                                                      value_datetime=e.moment("valueDateTime")),
            "value_quantity": value, "value_unit": unit, "value_boolean": e.boolean("valueBoolean"),
            "value_string": e.string("valueString"), "encounter_ref": e.reference_id("encounter"),
            "is_not_done": flag(e.extensions("modifierExtension"), NOT_DONE_URL)}


def _medication_request(e: Elements) -> dict:
    supply, supply_unit = e.quantity("dispenseRequest.expectedSupplyDuration")
    quantity, quantity_unit = e.quantity("dispenseRequest.quantity")
    dosages = e.objects("dosageInstruction")
    bounded = []
    for index, item in enumerate(dosages):
        period = e.node("timing.repeat.boundsPeriod", item)
        if isinstance(period, dict):
            label = f"dosageInstruction[{index}].timing.repeat.boundsPeriod"
            bounded.append((index, e.moment("start", period, f"{label}.start"),
                            e.moment("end", period, f"{label}.end")))
    dosage = dosages[0] if dosages else {}
    repeat = e.node("timing.repeat", dosage) if dosage else None
    repeat = repeat if isinstance(repeat, dict) else {}
    first = next((b for b in bounded if b[0] == 0), (0, None, None))
    dose_and_rate = next(iter(e.objects("doseAndRate", dosage)), {}) if dosage else {}
    dose_value, dose_unit = e.quantity("doseQuantity", dose_and_rate)
    if dose_value is None and isinstance(dose_and_rate.get("doseRange"), dict):
        dose_value, dose_unit = e.quantity("doseRange.high", dose_and_rate)
    frequency = repeat.get("frequencyMax", repeat.get("frequency"))
    return {"status": e.string("status"), "intent": e.string("intent"),
            "do_not_perform": bool(e.boolean("doNotPerform")), **_moments(authored_on=e.moment("authoredOn")),
            "encounter_ref": e.reference_id("encounter"), "medication_ref": e.reference_id("medicationReference"),
            "expected_supply_days": supply * _UNIT_DAYS[supply_unit]
            if supply is not None and supply_unit in _UNIT_DAYS else None,
            "dispense_quantity": quantity, "dispense_quantity_unit": quantity_unit,
            "refills": e.number("dispenseRequest.numberOfRepeatsAllowed"),
            "dose_value": dose_value, "dose_unit": dose_unit,
            "frequency": e.number("f", {"f": frequency}, "dosageInstruction[0].timing.repeat.frequency"),
            "period": e.number("period", repeat, "dosageInstruction[0].timing.repeat.period"),
            "period_unit": e.string("periodUnit", repeat, "dosageInstruction[0].timing.repeat.periodUnit"),
            **_moments(bounds_start=first[1], bounds_end=first[2]), "_dosage_bounds": bounded}


def _recorded(e: Elements) -> FhirDateTime | None:
    for extension in e.extensions():
        if extension.get("url") == RECORDED_URL:
            return e.moment("valueDateTime", extension, "extension(qicore-recorded)")
    return None


def _procedure(e: Elements) -> dict:
    start, end = _span(e, "performed")
    return {"status": e.string("status"), **_moments(performed_start=start, performed_end=end, recorded=_recorded(e))}


def _request(e: Elements) -> dict:
    do_not_perform = bool(e.boolean("doNotPerform")) or flag(e.extensions("modifierExtension"), DO_NOT_PERFORM_URLS)
    return {"status": e.string("status"), "intent": e.string("intent"), "do_not_perform": do_not_perform,
            **_moments(authored_on=e.moment("authoredOn"))}


def _allergy(e: Elements) -> dict:
    onset_start, onset_end = _span(e, "onset")
    return {"clinical_status": e.first_code("clinicalStatus"), "verification_status": e.first_code("verificationStatus"),
            "type": e.string("type"),
            **_moments(onset_start=onset_start, onset_end=onset_end, recorded_date=e.moment("recordedDate"),
                       last_occurrence=e.moment("lastOccurrence"))}


def _coverage(e: Elements) -> dict:
    start, end = _span(e, "period")
    payors = e.objects("payor")
    return {"status": e.string("status"), **_moments(period_start=start, period_end=end),
            "payor_ref": reference_id(payors[0]) if payors else None}


_FLATTENERS = {
    "Patient": _patient, "Encounter": _encounter, "Condition": _condition, "Observation": _observation,
    "MedicationRequest": _medication_request, "Procedure": _procedure, "ServiceRequest": _request,
    "DeviceRequest": _request, "AllergyIntolerance": _allergy, "Coverage": _coverage,
}


def _flatten_negation(e: Elements, resource_type: str, resource_id: str, patient_id: str, values: dict,
                      rows: ClinicalRows, where: dict) -> None:
    """QI-Core negation: Observation notDone, requests with doNotPerform, Procedure status not-done. QI-Core test
    data also marks negation by a not-done reason alone (status cancelled, no modifier)."""
    has_reason = any(x.get("url") in NEGATION_REASON_URLS for x in e.extensions())
    negated = (values.get("is_not_done") or values.get("do_not_perform")
               or (resource_type == "Procedure" and values.get("status") == "not-done") or has_reason)
    if not negated:
        return
    recorded = next((name for name in ("authored_on", "issued", "recorded", "effective_start", "performed_start")
                     if values.get(name) is not None), None)
    rows.add("not_done", patient_id=patient_id, resource_type=resource_type, resource_id=resource_id,
             status=values.get("status"), recorded_at=values.get(recorded) if recorded else None,
             recorded_at_last=values.get(f"{recorded}_last") if recorded else None,
             recorded_at_offset=values.get(f"{recorded}_offset") if recorded else None, **where)
    for extension in e.extensions():
        if extension.get("url") in NEGATION_REASON_URLS:
            rows.add_codings(patient_id, resource_type, resource_id, "negation_reason",
                             e.codings("valueCodeableConcept", extension))
    rows.add_codings(patient_id, resource_type, resource_id, "negation_reason", e.codings("statusReason"))


def _flatten_references(e: Elements, resource_type: str, resource_id: str, patient_id: str,
                        rows: ClinicalRows) -> None:
    if resource_type == "Encounter":
        for diagnosis in e.objects("diagnosis"):
            target = reference_id(diagnosis.get("condition"))
            if target:
                rows.add("clinical_reference", patient_id=patient_id, resource_type=resource_type,
                         resource_id=resource_id, element="diagnosis", target_type="Condition", target_id=target)
    for reason in e.objects("reasonReference"):
        target = reference_id(reason)
        if target:
            text = reason.get("reference")
            rows.add("clinical_reference", patient_id=patient_id, resource_type=resource_type,
                     resource_id=resource_id, element="reason_reference",
                     target_type=text.split("/")[0] if isinstance(text, str) and "/" in text else None,
                     target_id=target)

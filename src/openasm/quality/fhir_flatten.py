"""Flatten one FHIR R4 resource into rows of the clinical tables (quality.md §7).

Pure Python over parsed JSON: each resource is visited once and appended to per-table column lists. A resource that
cannot be used (no subject, unparseable date, missing id) raises `UnusableResource`; the reader quarantines it with
the reason, so nothing is dropped without a trace.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from openasm.quality.clinical_model import (CLINICAL_SCHEMAS, CODED_ELEMENTS, DO_NOT_PERFORM_URLS, MBI_SYSTEM,
                                            NEGATION_REASON_URLS, NOT_DONE_URL, NPI_SYSTEM, RECORDED_URL,
                                            RESOURCE_TABLE, TIN_SYSTEMS)

_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$")
_UNIT_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "mo": 30.0, "month": 30.0,
              "months": 30.0, "a": 365.0, "year": 365.0, "years": 365.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}
_UNIT_MINUTES = {"min": 1.0, "minute": 1.0, "minutes": 1.0, "h": 60.0, "hour": 60.0, "hours": 60.0,
                 "d": 1440.0, "day": 1440.0, "days": 1440.0}


class UnusableResource(ValueError):
    """A resource the engine cannot use; `reason` is a stable code, the message says which element and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_fhir_instant(text: Any, element: str, *, period_end: bool = False) -> datetime | None:
    """A FHIR date/dateTime/instant as naive UTC. Reduced precision takes the start of its span, or the end of its
    span for `period_end`. Raises UnusableResource('bad_date') naming the element."""
    if text is None:
        return None
    match = _DATETIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise UnusableResource("bad_date", f"{element}: {text!r} is not a FHIR date or dateTime")
    g = match.groupdict()
    try:
        year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
        if g["H"] is None:
            start = datetime(year, month, day)
            if not period_end:
                return start
            if g["m"] is None:
                return datetime(year, 12, 31, 23, 59, 59, 999000)
            if g["d"] is None:
                return datetime(year, month, calendar.monthrange(year, month)[1], 23, 59, 59, 999000)
            return start + timedelta(days=1) - timedelta(milliseconds=1)
        micro = int((g["f"] or "0")[:6].ljust(6, "0"))
        value = datetime(year, month, day, int(g["H"]), int(g["M"]), int(g["S"] or 0), micro)
        if g["S"] is None and period_end:
            value += timedelta(seconds=59, microseconds=999000)
    except ValueError as err:
        raise UnusableResource("bad_date", f"{element}: {text!r} is not a valid date ({err})") from None
    tz = g["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        value -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return value.replace(tzinfo=None) if value.tzinfo else value


def parse_fhir_date(text: Any, element: str) -> date | None:
    """A FHIR date (birthDate) at its start; raises UnusableResource('bad_date')."""
    value = parse_fhir_instant(text, element)
    return value.date() if value is not None else None


def reference_id(reference: Any) -> str | None:
    """The id in a reference: `Patient/123` → 123, `urn:uuid:abc` → abc, `#contained` → contained."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("urn:uuid:"):
        return text[9:]
    return text.rstrip("/").rsplit("/", 1)[-1].lstrip("#")


def _path(resource: dict, path: str) -> Any:
    node: Any = resource
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _codings(value: Any) -> Iterable[tuple[str | None, str]]:
    """Codings of a CodeableConcept, a list of them, or a bare Coding (Encounter.class)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        codings = item.get("coding") if "coding" in item else [item]
        for coding in codings or []:
            if isinstance(coding, dict) and coding.get("code") is not None:
                yield coding.get("system"), str(coding["code"])


def _status_code(value: Any) -> str | None:
    for _system, code in _codings(value):
        return code
    return None


def _extensions(resource: dict, key: str = "extension") -> list[dict]:
    return [e for e in resource.get(key) or [] if isinstance(e, dict)]


def _quantity(value: Any) -> tuple[float | None, str | None]:
    if not isinstance(value, dict) or value.get("value") is None:
        return None, None
    try:
        return float(value["value"]), value.get("code") or value.get("unit")
    except (TypeError, ValueError):
        return None, None


def _span(resource: dict, prefix: str) -> tuple[datetime | None, datetime | None]:
    """`<prefix>DateTime` / `<prefix>Period` / `<prefix>Instant` as (start, end)."""
    point = resource.get(f"{prefix}DateTime", resource.get(f"{prefix}Instant"))
    if point is not None:
        return (parse_fhir_instant(point, f"{prefix}DateTime"),
                parse_fhir_instant(point, f"{prefix}DateTime", period_end=True))
    name = "period" if prefix == "period" else f"{prefix}Period"
    period = resource.get(name)
    if isinstance(period, dict):
        return (parse_fhir_instant(period.get("start"), f"{name}.start"),
                parse_fhir_instant(period.get("end"), f"{name}.end", period_end=True))
    return None, None


class ClinicalRows:
    """Column lists per clinical table, filled resource by resource."""

    def __init__(self) -> None:
        self.columns = {name: {field.name: [] for field in schema} for name, schema in CLINICAL_SCHEMAS.items()}
        self.medication_codes: dict[str, list[tuple[str | None, str]]] = {}
        self.medication_refs: list[tuple[str, str, str, int]] = []

    def add(self, table: str, **values: Any) -> None:
        for name, column in self.columns[table].items():
            column.append(values.get(name))

    def count(self, table: str) -> int:
        return len(next(iter(self.columns[table].values())))

    def add_codings(self, patient_id: str | None, resource_type: str, resource_id: str, element: str,
                    value: Any) -> None:
        for system, code in _codings(value):
            self.add("clinical_coding", patient_id=patient_id, resource_type=resource_type, resource_id=resource_id,
                     element=element, system=system, code=code)


def flatten_resource(resource: Any, rows: ClinicalRows, source_file: str, source_line: int) -> str:
    """Append one resource to `rows`; returns the table it went to. Raises UnusableResource."""
    if not isinstance(resource, dict):
        raise UnusableResource("not_a_resource", f"expected a JSON object, got {type(resource).__name__}")
    resource_type = resource.get("resourceType")
    if not resource_type:
        raise UnusableResource("missing_resource_type", "the resource has no resourceType")
    if resource_type not in RESOURCE_TABLE:
        raise UnusableResource("unsupported_resource_type",
                               f"resourceType {resource_type!r} is not read by the engine "
                               f"(read: {', '.join(sorted(RESOURCE_TABLE))})")
    resource_id = resource.get("id")
    if not isinstance(resource_id, str) or not resource_id:
        raise UnusableResource("missing_id", f"{resource_type} has no id")
    where = {"source_file": source_file, "source_line": source_line}
    if resource_type == "Medication":
        rows.medication_codes[resource_id] = list(_codings(resource.get("code")))
        return "medication"
    if resource_type in ("Practitioner", "Organization"):
        return _flatten_directory(resource, resource_type, resource_id, rows, where)
    if resource_type == "Patient":
        patient_id = resource_id
    else:
        subject_key = "patient" if resource_type == "AllergyIntolerance" else (
            "beneficiary" if resource_type == "Coverage" else "subject")
        patient_id = reference_id(resource.get(subject_key))
        if patient_id is None:
            raise UnusableResource("missing_subject", f"{resource_type}/{resource_id} has no {subject_key} reference")
    # Validate every date before appending anything, so a quarantined resource leaves no partial rows.
    table = RESOURCE_TABLE[resource_type]
    values = _FLATTENERS[resource_type](resource, resource_id, patient_id)
    rows.add(table, patient_id=patient_id, resource_id=resource_id, **values, **where)
    for element, path in CODED_ELEMENTS.get(resource_type, []):
        rows.add_codings(patient_id, resource_type, resource_id, element, _path(resource, path))
    _flatten_negation(resource, resource_type, resource_id, patient_id, values, rows, where)
    _flatten_references(resource, resource_type, resource_id, patient_id, rows)
    if resource_type == "Observation":
        for index, component in enumerate(resource.get("component") or []):
            value, unit = _quantity(component.get("valueQuantity"))
            for system, code in _codings(component.get("code")):
                rows.add("observation_component", patient_id=patient_id, resource_id=resource_id,
                         component_index=index, system=system, code=code, value_quantity=value, value_unit=unit,
                         **where)
    for index, start, end in values.get("_dosage_bounds", ()):
        rows.add("medication_request_dosage", patient_id=patient_id, resource_id=resource_id, dosage_index=index,
                 bounds_start=start, bounds_end=end, **where)
    if resource_type == "MedicationRequest" and values.get("medication_ref"):
        rows.medication_refs.append((patient_id, resource_id, values["medication_ref"], source_line))
    return table


def _flatten_directory(resource: dict, resource_type: str, resource_id: str, rows: ClinicalRows,
                       where: dict) -> str:
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict)]
    if resource_type == "Practitioner":
        npi = next((i.get("value") for i in identifiers if i.get("system") == NPI_SYSTEM), None)
        rows.add("practitioner", resource_id=resource_id, npi=npi, **where)
        return "practitioner"
    tin = next((i.get("value") for i in identifiers if i.get("system") in TIN_SYSTEMS), None)
    rows.add("organization", resource_id=resource_id, tin=tin, name=resource.get("name"), **where)
    return "organization"


def _patient(resource: dict, resource_id: str, patient_id: str) -> dict:
    deceased = resource.get("deceasedDateTime")
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict)]
    return {"birth_date": parse_fhir_date(resource.get("birthDate"), "birthDate"),
            "gender": resource.get("gender"),
            "deceased_date": parse_fhir_instant(deceased, "deceasedDateTime") if isinstance(deceased, str) else None,
            "mbi": next((i.get("value") for i in identifiers if i.get("system") == MBI_SYSTEM), None)}


def _encounter(resource: dict, resource_id: str, patient_id: str) -> dict:
    start, end = _span(resource, "period")
    length, unit = _quantity(resource.get("length"))
    minutes = length * _UNIT_MINUTES[unit] if length is not None and unit in _UNIT_MINUTES else None
    participants = [p for p in resource.get("participant") or [] if isinstance(p, dict)]
    class_code = _status_code(resource.get("class"))
    return {"status": resource.get("status"), "class_code": class_code, "period_start": start, "period_end": end,
            "length_minutes": minutes,
            "practitioner_ref": next((reference_id(p.get("individual")) for p in participants
                                      if reference_id(p.get("individual"))), None),
            "organization_ref": reference_id(resource.get("serviceProvider"))}


def _condition(resource: dict, resource_id: str, patient_id: str) -> dict:
    onset_start, onset_end = _span(resource, "onset")
    abatement_start, abatement_end = _span(resource, "abatement")
    return {"clinical_status": _status_code(resource.get("clinicalStatus")),
            "verification_status": _status_code(resource.get("verificationStatus")),
            "onset_start": onset_start, "onset_end": onset_end, "abatement_start": abatement_start,
            "abatement_end": abatement_end,
            "recorded_date": parse_fhir_instant(resource.get("recordedDate"), "recordedDate")}


def _observation(resource: dict, resource_id: str, patient_id: str) -> dict:
    start, end = _span(resource, "effective")
    value, unit = _quantity(resource.get("valueQuantity"))
    if value is None and resource.get("valueInteger") is not None:
        value = float(resource["valueInteger"])
    value_datetime = resource.get("valueDateTime")
    not_done = any(e.get("url") == NOT_DONE_URL and e.get("valueBoolean") is True
                   for e in _extensions(resource, "modifierExtension"))
    return {"status": resource.get("status"), "effective_start": start, "effective_end": end,
            "issued": parse_fhir_instant(resource.get("issued"), "issued"), "value_quantity": value,
            "value_unit": unit, "value_boolean": resource.get("valueBoolean"),
            "value_datetime": parse_fhir_instant(value_datetime, "valueDateTime") if value_datetime else None,
            "value_string": resource.get("valueString"), "encounter_ref": reference_id(resource.get("encounter")),
            "is_not_done": not_done}


def _as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _medication_request(resource: dict, resource_id: str, patient_id: str) -> dict:
    dispense = resource.get("dispenseRequest") or {}
    supply, supply_unit = _quantity(dispense.get("expectedSupplyDuration"))
    quantity, quantity_unit = _quantity(dispense.get("quantity"))
    dosages = [d for d in resource.get("dosageInstruction") or [] if isinstance(d, dict)]
    dosage = dosages[0] if dosages else {}
    bounded = []
    for index, item in enumerate(dosages):
        period = (((item.get("timing") or {}).get("repeat") or {}).get("boundsPeriod"))
        if isinstance(period, dict):
            element = f"dosageInstruction[{index}].boundsPeriod"
            bounded.append((index, parse_fhir_instant(period.get("start"), f"{element}.start"),
                            parse_fhir_instant(period.get("end"), f"{element}.end", period_end=True)))
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    bounds = repeat.get("boundsPeriod") or {}
    dose_and_rate = next((d for d in dosage.get("doseAndRate") or [] if isinstance(d, dict)), {})
    dose_value, dose_unit = _quantity(dose_and_rate.get("doseQuantity"))
    if dose_value is None and isinstance(dose_and_rate.get("doseRange"), dict):
        dose_value, dose_unit = _quantity(dose_and_rate["doseRange"].get("high"))
    return {"status": resource.get("status"), "intent": resource.get("intent"),
            "do_not_perform": bool(resource.get("doNotPerform")),
            "authored_on": parse_fhir_instant(resource.get("authoredOn"), "authoredOn"),
            "encounter_ref": reference_id(resource.get("encounter")),
            "medication_ref": reference_id(resource.get("medicationReference")),
            "expected_supply_days": supply * _UNIT_DAYS[supply_unit]
            if supply is not None and supply_unit in _UNIT_DAYS else None,
            "dispense_quantity": quantity, "dispense_quantity_unit": quantity_unit,
            "refills": _as_float(dispense.get("numberOfRepeatsAllowed")),
            "dose_value": dose_value, "dose_unit": dose_unit,
            "frequency": _as_float(repeat.get("frequencyMax", repeat.get("frequency"))),
            "period": _as_float(repeat.get("period")), "period_unit": repeat.get("periodUnit"),
            "bounds_start": parse_fhir_instant(bounds.get("start"), "boundsPeriod.start"),
            "bounds_end": parse_fhir_instant(bounds.get("end"), "boundsPeriod.end", period_end=True),
            "_dosage_bounds": bounded}


def _recorded(resource: dict) -> datetime | None:
    for extension in _extensions(resource):
        if extension.get("url") == RECORDED_URL:
            return parse_fhir_instant(extension.get("valueDateTime"), "extension(qicore-recorded)")
    return None


def _procedure(resource: dict, resource_id: str, patient_id: str) -> dict:
    start, end = _span(resource, "performed")
    return {"status": resource.get("status"), "performed_start": start, "performed_end": end,
            "recorded": _recorded(resource)}


def _request(resource: dict, resource_id: str, patient_id: str) -> dict:
    do_not_perform = bool(resource.get("doNotPerform")) or any(
        e.get("url") in DO_NOT_PERFORM_URLS and e.get("valueBoolean") is True
        for e in _extensions(resource, "modifierExtension"))
    return {"status": resource.get("status"), "intent": resource.get("intent"), "do_not_perform": do_not_perform,
            "authored_on": parse_fhir_instant(resource.get("authoredOn"), "authoredOn")}


def _allergy(resource: dict, resource_id: str, patient_id: str) -> dict:
    onset_start, onset_end = _span(resource, "onset")
    return {"clinical_status": _status_code(resource.get("clinicalStatus")),
            "verification_status": _status_code(resource.get("verificationStatus")), "type": resource.get("type"),
            "onset_start": onset_start, "onset_end": onset_end,
            "recorded_date": parse_fhir_instant(resource.get("recordedDate"), "recordedDate")}


def _coverage(resource: dict, resource_id: str, patient_id: str) -> dict:
    start, end = _span(resource, "period")
    payors = [p for p in resource.get("payor") or [] if isinstance(p, dict)]
    return {"status": resource.get("status"), "period_start": start, "period_end": end,
            "payor_ref": reference_id(payors[0]) if payors else None}


_FLATTENERS = {
    "Patient": _patient, "Encounter": _encounter, "Condition": _condition, "Observation": _observation,
    "MedicationRequest": _medication_request, "Procedure": _procedure, "ServiceRequest": _request,
    "DeviceRequest": _request, "AllergyIntolerance": _allergy, "Coverage": _coverage,
}


def _flatten_negation(resource: dict, resource_type: str, resource_id: str, patient_id: str, values: dict,
                      rows: ClinicalRows, where: dict) -> None:
    """QI-Core negation: Observation notDone, requests with doNotPerform, Procedure status not-done."""
    # QI-Core test data also marks negation by a not-done reason alone (status cancelled, no modifier).
    has_reason = any(e.get("url") in NEGATION_REASON_URLS for e in _extensions(resource))
    negated = (values.get("is_not_done") or values.get("do_not_perform")
               or (resource_type == "Procedure" and resource.get("status") == "not-done") or has_reason)
    if not negated:
        return
    recorded = (values.get("authored_on") or values.get("issued") or values.get("recorded")
                or values.get("effective_start") or values.get("performed_start"))
    rows.add("not_done", patient_id=patient_id, resource_type=resource_type, resource_id=resource_id,
             status=resource.get("status"), recorded_at=recorded, **where)
    for extension in _extensions(resource):
        if extension.get("url") in NEGATION_REASON_URLS:
            rows.add_codings(patient_id, resource_type, resource_id, "negation_reason",
                             extension.get("valueCodeableConcept"))
    rows.add_codings(patient_id, resource_type, resource_id, "negation_reason", resource.get("statusReason"))


def _flatten_references(resource: dict, resource_type: str, resource_id: str, patient_id: str,
                        rows: ClinicalRows) -> None:
    if resource_type == "Encounter":
        for diagnosis in resource.get("diagnosis") or []:
            target = reference_id((diagnosis or {}).get("condition"))
            if target:
                rows.add("clinical_reference", patient_id=patient_id, resource_type=resource_type,
                         resource_id=resource_id, element="diagnosis", target_type="Condition", target_id=target)
    for reason in resource.get("reasonReference") or []:
        target = reference_id(reason)
        if target:
            text = (reason or {}).get("reference", "")
            rows.add("clinical_reference", patient_id=patient_id, resource_type=resource_type,
                     resource_id=resource_id, element="reason_reference",
                     target_type=text.split("/")[0] if "/" in text else None, target_id=target)

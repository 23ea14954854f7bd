"""Clinical data model: the tables FHIR R4 / QI-Core resources are flattened into (quality.md §7).

Long and normalized. Every coded element goes to `clinical_coding` (one row per coding, keyed by resource and the
element it came from), so value-set membership is a join, and a resource with several codings matches if any does.
Resource ids are unique only within a patient (test suites and bulk exports reuse ids such as `Encounter-1`), so every
join between clinical tables uses `patient_id` as well as the resource id.

Timestamps are naive UTC. A point-in-time element with reduced precision (`2025`, `2025-03`, `2025-03-10`) takes the
start of that span; the end of a period takes the end of its span (`end: 2025-03-10` → 2025-03-10T23:59:59.999), so
"ends during the measurement period" holds as the author meant it.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")

# Provenance columns every flattened row carries, so a result can be traced to the file and line it came from.
PROVENANCE = [("source_file", pa.string()), ("source_line", pa.int64())]

CLINICAL_SCHEMAS: dict[str, pa.Schema] = {
    "patient": pa.schema([
        ("patient_id", pa.string()), ("birth_date", pa.date32()), ("gender", pa.string()),
        ("deceased_date", TS), ("mbi", pa.string()), *PROVENANCE]),
    "encounter": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        ("class_code", pa.string()), ("period_start", TS), ("period_end", TS), ("length_minutes", pa.float64()),
        ("practitioner_ref", pa.string()), ("organization_ref", pa.string()), *PROVENANCE]),
    "condition": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("clinical_status", pa.string()),
        ("verification_status", pa.string()), ("onset_start", TS), ("onset_end", TS), ("abatement_start", TS),
        ("abatement_end", TS), ("recorded_date", TS), *PROVENANCE]),
    "observation": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        ("effective_start", TS), ("effective_end", TS), ("issued", TS), ("value_quantity", pa.float64()),
        ("value_unit", pa.string()), ("value_boolean", pa.bool_()), ("value_datetime", TS),
        ("value_string", pa.string()), ("encounter_ref", pa.string()), ("is_not_done", pa.bool_()), *PROVENANCE]),
    "observation_component": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("component_index", pa.int32()),
        ("system", pa.string()), ("code", pa.string()), ("value_quantity", pa.float64()), ("value_unit", pa.string()),
        *PROVENANCE]),
    "medication_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), ("authored_on", TS), ("encounter_ref", pa.string()),
        ("medication_ref", pa.string()), ("expected_supply_days", pa.float64()),
        ("dispense_quantity", pa.float64()), ("dispense_quantity_unit", pa.string()),
        ("refills", pa.float64()), ("dose_value", pa.float64()), ("dose_unit", pa.string()),
        ("frequency", pa.float64()), ("period", pa.float64()), ("period_unit", pa.string()),
        ("bounds_start", TS), ("bounds_end", TS), *PROVENANCE]),
    # One row per dosageInstruction with a bounds period: CQL merges them all (CumulativeMedicationDuration).
    "medication_request_dosage": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("dosage_index", pa.int32()),
        ("bounds_start", TS), ("bounds_end", TS), *PROVENANCE]),
    "procedure": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        ("performed_start", TS), ("performed_end", TS), ("recorded", TS), *PROVENANCE]),
    "service_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), ("authored_on", TS), *PROVENANCE]),
    "device_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), ("authored_on", TS), *PROVENANCE]),
    "allergy_intolerance": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("clinical_status", pa.string()),
        ("verification_status", pa.string()), ("type", pa.string()), ("onset_start", TS), ("onset_end", TS),
        ("recorded_date", TS), *PROVENANCE]),
    "coverage": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        ("period_start", TS), ("period_end", TS), ("payor_ref", pa.string()), *PROVENANCE]),
    "practitioner": pa.schema([("resource_id", pa.string()), ("npi", pa.string()), *PROVENANCE]),
    "organization": pa.schema([
        ("resource_id", pa.string()), ("tin", pa.string()), ("name", pa.string()), *PROVENANCE]),
    # One row per coding of a coded element; `element` names where it came from (see CODED_ELEMENTS).
    "clinical_coding": pa.schema([
        ("patient_id", pa.string()), ("resource_type", pa.string()), ("resource_id", pa.string()),
        ("element", pa.string()), ("system", pa.string()), ("code", pa.string())]),
    # Negation facts (QI-Core "not done"): the event that did not happen; its reason codings are in clinical_coding
    # under element `negation_reason`, the thing not done under `code` (or `medication`).
    "not_done": pa.schema([
        ("patient_id", pa.string()), ("resource_type", pa.string()), ("resource_id", pa.string()),
        ("status", pa.string()), ("recorded_at", TS), *PROVENANCE]),
    # Resource-level references worth keeping (encounter diagnoses, reason references, ...).
    "clinical_reference": pa.schema([
        ("patient_id", pa.string()), ("resource_type", pa.string()), ("resource_id", pa.string()),
        ("element", pa.string()), ("target_type", pa.string()), ("target_id", pa.string())]),
}

QUARANTINE_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("source_line", pa.int64()), ("resource_type", pa.string()),
    ("resource_id", pa.string()), ("reason", pa.string()), ("detail", pa.string())])

# Resource types the engine reads, and the table each lands in.
RESOURCE_TABLE = {
    "Patient": "patient", "Encounter": "encounter", "Condition": "condition", "Observation": "observation",
    "MedicationRequest": "medication_request", "Procedure": "procedure", "ServiceRequest": "service_request",
    "DeviceRequest": "device_request", "AllergyIntolerance": "allergy_intolerance", "Coverage": "coverage",
    "Practitioner": "practitioner", "Organization": "organization", "Medication": None,
}

# Coded elements copied to clinical_coding: (resource type, element name in clinical_coding, FHIR path).
CODED_ELEMENTS = {
    "Encounter": [("type", "type"), ("class", "class"), ("discharge_disposition", "hospitalization.dischargeDisposition"),
                  ("reason_code", "reasonCode")],
    "Condition": [("code", "code"), ("category", "category"), ("severity", "severity")],
    "Observation": [("code", "code"), ("category", "category"), ("value", "valueCodeableConcept")],
    "MedicationRequest": [("medication", "medicationCodeableConcept"), ("category", "category"),
                          ("reason_code", "reasonCode")],
    "Procedure": [("code", "code"), ("reason_code", "reasonCode"), ("category", "category")],
    "ServiceRequest": [("code", "code"), ("reason_code", "reasonCode"), ("category", "category")],
    "DeviceRequest": [("code", "codeCodeableConcept"), ("reason_code", "reasonCode")],
    "AllergyIntolerance": [("code", "code")],
    "Coverage": [("type", "type")],
}

# Extensions and elements that carry the reason an event was not done (QI-Core 4.1.1 and R4 core).
NEGATION_REASON_URLS = (
    "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
    "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-doNotPerformReason",
    "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-reasonRefused",
)
NOT_DONE_URL = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDone"
DO_NOT_PERFORM_URLS = (
    "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-doNotPeform",  # sic: the QI-Core 4.1.1 spelling
    "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-doNotPerform",
)
RECORDED_URL = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-recorded"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIN_SYSTEMS = ("urn:oid:2.16.840.1.113883.4.4", "http://hl7.org/fhir/sid/us-ein")
MBI_SYSTEM = "http://hl7.org/fhir/sid/us-mbi"


def empty_table(name: str) -> pa.Table:
    """An empty table of the named clinical schema."""
    return CLINICAL_SCHEMAS[name].empty_table()

"""Clinical data model: the tables FHIR R4 / QI-Core resources are flattened into (quality.md §7).

Long and normalized. Every coded element goes to `clinical_coding` (one row per coding, keyed by resource and the
element it came from), so value-set membership is a join, and a resource with several codings matches if any does.
Resource ids are unique only within a patient (test suites and bulk exports reuse ids such as `Encounter-1`), so every
join between clinical tables uses `patient_id` as well as the resource id.

Dates and times are kept as written (`cql_datetime`): each FHIR date/dateTime element becomes `<name>` (earliest
local wall-clock time its precision allows), `<name>_last` (latest) and `<name>_offset` (the UTC offset written with
it, in minutes; null when none was), plus the same span as UTC instants (`<name>_utc`, `<name>_utc_last`, a missing
offset read as +00:00) so instant comparisons need no arithmetic. Precision and offset are what CQL compares on. A Period is two such elements, `<name>_start` and `<name>_end`; a point in time fills both.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")


def moment(name: str) -> list[tuple[str, pa.DataType]]:
    """The columns of one date/time element: earliest and latest local time, UTC offset in minutes (float64: Spark
    memtables drop nullable integers), and the span as UTC instants (a missing offset read as +00:00)."""
    return [(name, TS), (f"{name}_last", TS), (f"{name}_offset", pa.float64()), (f"{name}_utc", TS),
            (f"{name}_utc_last", TS)]

# Provenance columns every flattened row carries, so a result can be traced to the file and line it came from.
PROVENANCE = [("source_file", pa.string()), ("source_line", pa.int64())]

CLINICAL_SCHEMAS: dict[str, pa.Schema] = {
    "patient": pa.schema([
        ("patient_id", pa.string()), ("birth_date", pa.date32()), ("gender", pa.string()),
        *moment("deceased"), ("mbi", pa.string()), *PROVENANCE]),
    "encounter": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        ("class_code", pa.string()), *moment("period_start"), *moment("period_end"), ("length_minutes", pa.float64()),
        ("practitioner_ref", pa.string()), ("organization_ref", pa.string()), *PROVENANCE]),
    "condition": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("clinical_status", pa.string()),
        ("verification_status", pa.string()), *moment("onset_start"), *moment("onset_end"), *moment("abatement_start"),
        *moment("abatement_end"), *moment("recorded_date"), *PROVENANCE]),
    "observation": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        *moment("effective_start"), *moment("effective_end"), *moment("issued"), ("value_quantity", pa.float64()),
        ("value_unit", pa.string()), ("value_boolean", pa.bool_()), *moment("value_datetime"),
        ("value_string", pa.string()), ("encounter_ref", pa.string()), ("is_not_done", pa.bool_()), *PROVENANCE]),
    "observation_component": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("component_index", pa.int32()),
        ("system", pa.string()), ("code", pa.string()), ("value_quantity", pa.float64()), ("value_unit", pa.string()),
        *PROVENANCE]),
    "medication_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), *moment("authored_on"), ("encounter_ref", pa.string()),
        ("medication_ref", pa.string()), ("expected_supply_days", pa.float64()),
        ("dispense_quantity", pa.float64()), ("dispense_quantity_unit", pa.string()),
        ("refills", pa.float64()), ("dose_value", pa.float64()), ("dose_unit", pa.string()),
        ("frequency", pa.float64()), ("period", pa.float64()), ("period_unit", pa.string()),
        *moment("bounds_start"), *moment("bounds_end"), *PROVENANCE]),
    # One row per dosageInstruction with a bounds period: CQL merges them all (CumulativeMedicationDuration).
    "medication_request_dosage": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("dosage_index", pa.int32()),
        *moment("bounds_start"), *moment("bounds_end"), *PROVENANCE]),
    "procedure": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        *moment("performed_start"), *moment("performed_end"), *moment("recorded"), *PROVENANCE]),
    "service_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), *moment("authored_on"), *PROVENANCE]),
    "device_request": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()), ("intent", pa.string()),
        ("do_not_perform", pa.bool_()), *moment("authored_on"), *PROVENANCE]),
    "allergy_intolerance": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("clinical_status", pa.string()),
        ("verification_status", pa.string()), ("type", pa.string()), *moment("onset_start"), *moment("onset_end"),
        *moment("recorded_date"), *moment("last_occurrence"), *PROVENANCE]),
    "coverage": pa.schema([
        ("patient_id", pa.string()), ("resource_id", pa.string()), ("status", pa.string()),
        *moment("period_start"), *moment("period_end"), ("payor_ref", pa.string()), *PROVENANCE]),
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
        ("status", pa.string()), *moment("recorded_at"), *PROVENANCE]),
    # Resource-level references worth keeping (encounter diagnoses, reason references, ...).
    "clinical_reference": pa.schema([
        ("patient_id", pa.string()), ("resource_type", pa.string()), ("resource_id", pa.string()),
        ("element", pa.string()), ("target_type", pa.string()), ("target_id", pa.string())]),
}

# What ingest could not use, one row per problem. `action`: `quarantined` (the resource, or a part of a file, was
# not read; counted in resources_quarantined), `element_nulled` (the resource was kept without the `element` named),
# `kept` (kept with a warning), `file_not_read` (a file under the input folders that is not FHIR JSON/NDJSON).
# `source_line` is the NDJSON line or Bundle entry (1-based), 0 for the file as a whole.
QUARANTINE_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("source_line", pa.int64()), ("resource_type", pa.string()),
    ("resource_id", pa.string()), ("element", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("action", pa.string())])

# Resource types the engine reads, and the table each lands in.
RESOURCE_TABLE = {
    "Patient": "patient", "Encounter": "encounter", "Condition": "condition", "Observation": "observation",
    "MedicationRequest": "medication_request", "Procedure": "procedure", "ServiceRequest": "service_request",
    "DeviceRequest": "device_request", "AllergyIntolerance": "allergy_intolerance", "Coverage": "coverage",
    "Practitioner": "practitioner", "Organization": "organization", "Medication": None,
}

# The profiles a resource declares (`meta.profile`) are kept in clinical_coding under this element, code = the URL.
PROFILE_ELEMENT = "meta_profile"

# Coded elements copied to clinical_coding: (resource type, element name in clinical_coding, FHIR path). The codes of
# a Medication that a MedicationRequest references go under element `medication_reference` (whether a measure
# follows the reference is its own rule: the published ELM of some measures does, of others not).
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

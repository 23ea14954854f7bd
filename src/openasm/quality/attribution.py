"""Case attribution: which clinician (TIN/NPI) a patient-level measure result belongs to (quality.md §4 common
rules, §8 #15 `case_attribution`).

Default (`qualifying_encounter`): the case's qualifying encounter (`encounter_id`) names its clinician through
`encounter.practitioner_ref → practitioner.npi` and its practice through `encounter.organization_ref →
organization.tin`. Alternative (`patient_attribution`): the practice's list of (patient_id, tin, npi). A case whose
clinician cannot be found keeps a null TIN and/or NPI and an `attribution_status` saying why; it is never dropped.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.aggregate import EHR
from openasm.rules import RulesForYear

ATTRIBUTED = "attributed"
ATTRIBUTION_STATUSES = (
    ATTRIBUTED, "no_qualifying_encounter", "encounter_not_found", "encounter_without_practitioner",
    "practitioner_not_found", "practitioner_without_npi", "practitioner_with_several_npis",
    "encounter_without_organization", "organization_not_found", "organization_without_tin",
    "organization_with_several_tins", "patient_not_attributed", "patient_attributed_to_several_clinicians",
)


def _one_identifier(table: ir.Table, column: str, prefix: str) -> ir.Table:
    """Per resource id: the identifier when exactly one distinct value is present (several → ambiguous)."""
    grouped = table.group_by(_id=table.resource_id).agg(
        _value=table[column].min(), _n=table[column].nunique())
    return grouped.select(**{f"{prefix}_id": grouped._id, f"{prefix}_value": grouped._value,
                             f"{prefix}_n": grouped._n})


def attribute_cases(*, measure_case_result: ir.Table, encounter: ir.Table, practitioner: ir.Table,
                    organization: ir.Table, rules: RulesForYear,
                    patient_attribution: ir.Table | None = None) -> ir.Table:
    """quality.md §4, §8 #15: add `tin`, `npi`, `encounter_date` (start date of the qualifying encounter) and
    `attribution_status` to patient-level results, plus `performance_year` (= rules.performance_year) and
    `collection_type` (electronicHealthRecord, the eCQM collection type) when the input lacks them.

    Input: `measure_case_result` (measure_case_result contract: patient_id, encounter_id, flags, ...);
    `encounter` (patient_id, resource_id, period_start, period_end, practitioner_ref, organization_ref);
    `practitioner` (resource_id, npi); `organization` (resource_id, tin); for `case_attribution =
    patient_attribution`, `patient_attribution` (patient_id, tin, npi). Grain unchanged: one row per input row.
    """
    method = rules.value("quality.case_attribution")
    c = measure_case_result
    if "performance_year" not in c.columns:
        c = c.mutate(performance_year=ibis.literal(rules.performance_year).cast("int32"))
    if "collection_type" not in c.columns:
        c = c.mutate(collection_type=ibis.literal(EHR))

    e = encounter
    enc = e.group_by(_e_patient=e.patient_id, _e_id=e.resource_id).agg(
        _e_start=e.period_start.min(), _e_end=e.period_end.max(), _e_prac=e.practitioner_ref.min(),
        _e_org=e.organization_ref.min())
    joined = c.left_join(enc, [c.patient_id == enc._e_patient, c.encounter_id == enc._e_id])
    joined = joined.mutate(encounter_date=ibis.coalesce(joined._e_start, joined._e_end).date(),
                           _e_found=joined._e_id.notnull())

    if method == "qualifying_encounter":
        prac = _one_identifier(practitioner, "npi", "_p")
        org = _one_identifier(organization, "tin", "_o")
        joined = joined.left_join(prac, joined._e_prac == prac._p_id)
        joined = joined.left_join(org, joined._e_org == org._o_id)
        npi_ok = joined._p_n == 1
        tin_ok = joined._o_n == 1
        status = ibis.cases(
            (joined.encounter_id.isnull(), "no_qualifying_encounter"),
            (~joined._e_found, "encounter_not_found"),
            (joined._e_prac.isnull(), "encounter_without_practitioner"),
            (joined._p_id.isnull(), "practitioner_not_found"),
            (joined._p_n == 0, "practitioner_without_npi"),
            (joined._p_n > 1, "practitioner_with_several_npis"),
            (joined._e_org.isnull(), "encounter_without_organization"),
            (joined._o_id.isnull(), "organization_not_found"),
            (joined._o_n == 0, "organization_without_tin"),
            (joined._o_n > 1, "organization_with_several_tins"),
            else_=ibis.literal(ATTRIBUTED))
        out = joined.mutate(
            tin=ibis.ifelse(tin_ok.fill_null(False), joined._o_value, ibis.null("string")).cast("string"),
            npi=ibis.ifelse(npi_ok.fill_null(False), joined._p_value, ibis.null("string")).cast("string"),
            attribution_status=status)
    elif method == "patient_attribution":
        if patient_attribution is None:
            raise ValueError("quality.case_attribution = patient_attribution needs the patient_attribution table")
        pa_ = patient_attribution
        tin, npi = pa_.tin.cast("string"), pa_.npi.cast("string")
        pairs = pa_.select(_a_patient=pa_.patient_id, _a_pair=tin.fill_null("").concat("|", npi.fill_null("")),
                           _a_tin=tin, _a_npi=npi).distinct()
        per_patient = pairs.group_by("_a_patient").agg(
            _a_n=pairs._a_pair.nunique(), _a_tin=pairs._a_tin.min(), _a_npi=pairs._a_npi.min())
        joined = joined.left_join(per_patient, joined.patient_id == per_patient._a_patient)
        single = (joined._a_n == 1).fill_null(False)
        status = ibis.cases(
            (joined._a_patient.isnull(), "patient_not_attributed"),
            (joined._a_n > 1, "patient_attributed_to_several_clinicians"),
            else_=ibis.literal(ATTRIBUTED))
        out = joined.mutate(tin=ibis.ifelse(single, joined._a_tin, ibis.null("string")),
                            npi=ibis.ifelse(single, joined._a_npi, ibis.null("string")),
                            attribution_status=status)
    else:
        raise ValueError(f"quality.case_attribution: unsupported value {method!r}")
    keep = [col for col in c.columns if col not in ("tin", "npi")]
    return out.select(*keep, "tin", "npi", "encounter_date", "attribution_status")


def unattributed_cases(*, attributed_case_result: ir.Table) -> ir.Table:
    """quality.md §4: the cases without an attributable clinician (status other than `attributed`), for the
    practice to fix their encounter, practitioner or organization data. They stay in the aggregates under a
    null TIN/NPI."""
    t = attributed_case_result
    return t.filter(t.attribution_status != ATTRIBUTED)

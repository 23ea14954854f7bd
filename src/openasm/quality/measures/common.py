"""Building blocks every eCQM uses: value-set membership by join, direct-reference codes, age, and the
patient-level result contract with proportion semantics (quality.md §4 common rules, §7 `measure_case_result`)."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# Value-set OID prefixes used in quality.md §4 (A. = 2.16.840.1.113883.3.464.1003. ...).
OID_PREFIX = {"A": "2.16.840.1.113883.3.464.1003.", "B": "2.16.840.1.113883.3.526.3.",
              "C": "2.16.840.1.113883.3.600.", "D": "2.16.840.1.113762.1.4."}

# Patient-level result columns (one row per patient × population group); `finalize_case_result` guarantees them.
CASE_RESULT_COLUMNS = (
    "measure_id", "ecqm_id", "population_group", "stratum", "patient_id", "encounter_id",
    "is_initial_population", "is_denominator", "is_denominator_exclusion", "is_numerator",
    "is_denominator_exception", "evidence", "gap_reason",
)
POPULATION_FLAGS = ("is_initial_population", "is_denominator", "is_denominator_exclusion", "is_numerator",
                    "is_denominator_exception")


def oid(short: str) -> str:
    """`A.101.12.1001` → 2.16.840.1.113883.3.464.1003.101.12.1001 (quality.md §4 notation); full OIDs pass."""
    head, _, rest = short.partition(".")
    return OID_PREFIX[head] + rest if head in OID_PREFIX else short


def in_value_set(clinical_coding: ir.Table, value_set_code: ir.Table, oids: str | Sequence[str], *,
                 resource_type: str | None = None, element: str | Sequence[str] | None = None) -> ir.Table:
    """Distinct (patient_id, resource_type, resource_id) with a coding in any of the value sets `oids`
    (short or full OIDs), optionally only for one resource type and element. Membership is a join on
    (system, code): a code matches only within its own system."""
    wanted = [oid(o) for o in ([oids] if isinstance(oids, str) else oids)]
    members = value_set_code.filter(value_set_code.oid.isin(wanted)).select("system", "code").distinct()
    codings = _filter_codings(clinical_coding, resource_type, element)
    matched = codings.join(members, [codings.system == members.system, codings.code == members.code])
    return matched.select("patient_id", "resource_type", "resource_id").distinct()


def with_code(clinical_coding: ir.Table, system: str, codes: str | Sequence[str], *,
              resource_type: str | None = None, element: str | Sequence[str] | None = None) -> ir.Table:
    """Distinct (patient_id, resource_type, resource_id) with a direct-reference code (CQL `code "..."`)."""
    wanted = [codes] if isinstance(codes, str) else list(codes)
    codings = _filter_codings(clinical_coding, resource_type, element)
    codings = codings.filter((codings.system == system) & codings.code.isin(wanted))
    return codings.select("patient_id", "resource_type", "resource_id").distinct()


def _filter_codings(clinical_coding: ir.Table, resource_type: str | None,
                    element: str | Sequence[str] | None) -> ir.Table:
    codings = clinical_coding
    if resource_type is not None:
        codings = codings.filter(codings.resource_type == resource_type)
    if element is not None:
        elements = [element] if isinstance(element, str) else list(element)
        codings = codings.filter(codings.element.isin(elements))
    return codings


def resources_in(table: ir.Table, matches: ir.Table) -> ir.Table:
    """Rows of a clinical table (patient_id, resource_id, ...) whose resource is in `matches` (from
    `in_value_set`/`with_code`). Joins on patient as well, since resource ids repeat across patients."""
    keys = matches.select(_m_patient=matches.patient_id, _m_resource=matches.resource_id).distinct()
    joined = table.join(keys, [table.patient_id == keys._m_patient, table.resource_id == keys._m_resource])
    return joined.drop("_m_patient", "_m_resource")


def age_in_years(birth_date: ir.DateValue, on: ir.DateValue | ir.TimestampValue) -> ir.IntegerValue:
    """Whole years completed between birth date and `on` (CQL AgeInYearsAt)."""
    on_date = on.date() if isinstance(on, ir.TimestampValue) else on
    years = on_date.year() - birth_date.year()
    before_birthday = (on_date.month() < birth_date.month()) | (
        (on_date.month() == birth_date.month()) & (on_date.day() < birth_date.day()))
    return years - ibis.ifelse(before_birthday, 1, 0)


def finalize_case_result(cases: ir.Table, *, measure_id: str, ecqm_id: str, inverse: bool = False) -> ir.Table:
    """Apply proportion semantics and the result contract (quality.md §4): DENOM ⊆ IP; DENEX only in DENOM;
    NUMER only for DENOM members not excluded; DENEXCEP only for DENOM members not excluded and not in NUMER.
    `cases` needs patient_id, population_group, stratum and the five raw flags (nulls read as false); `evidence`,
    `gap_reason` and `encounter_id` are optional. The gap reason is kept only for the cases a practice must act
    on: denominator members missing the numerator, or for an inverse measure (Q238) the numerator members, whose
    numerator is the adverse event."""
    def flag(name: str) -> ir.BooleanValue:
        return cases[name].fill_null(False) if name in cases.columns else ibis.literal(False)

    ip = flag("is_initial_population")
    denom = ip & flag("is_denominator")
    denex = denom & flag("is_denominator_exclusion")
    numer = denom & ~denex & flag("is_numerator")
    denexcep = denom & ~denex & ~numer & flag("is_denominator_exception")
    is_gap = numer if inverse else denom & ~denex & ~numer & ~denexcep
    gap = cases.gap_reason if "gap_reason" in cases.columns else ibis.null("string")
    return cases.select(
        measure_id=ibis.literal(measure_id), ecqm_id=ibis.literal(ecqm_id),
        population_group=cases.population_group.cast("int32"), stratum=cases.stratum.cast("string"),
        patient_id=cases.patient_id,
        encounter_id=cases.encounter_id.cast("string") if "encounter_id" in cases.columns else ibis.null("string"),
        is_initial_population=ip, is_denominator=denom, is_denominator_exclusion=denex, is_numerator=numer,
        is_denominator_exception=denexcep,
        evidence=cases.evidence.cast("string") if "evidence" in cases.columns else ibis.null("string"),
        gap_reason=ibis.ifelse(is_gap, gap.cast("string").fill_null(
            "high-risk event in the numerator" if inverse else "numerator not met"), ibis.null("string")),
    )

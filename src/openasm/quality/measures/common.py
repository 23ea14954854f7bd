"""Building blocks every eCQM uses (quality.md §4 common rules, §7 `measure_case_result`): the CQL retrieve as a
value-set or code semi-join, the QI-Core interval functions over the stored date/time columns, age, evidence, and the
patient-level result contract with proportion semantics. Date/time comparison itself is `cql_datetime`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from openasm.quality.clinical import ClinicalTables
from openasm.quality.clinical_model import PROFILE_ELEMENT
from openasm.quality.cql_datetime import END_OF_TIME, Interval, Moment

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
ACTIVE_CLINICAL_STATUSES = ("active", "recurrence", "relapse")  # QICoreCommon.isActive
# The medication of a MedicationRequest: inline codes, and those of a referenced Medication (`fhir_read`).
INLINE_MEDICATION = ("medication",)
ANY_MEDICATION = ("medication", "medication_reference")


def oid(short: str) -> str:
    """`A.101.12.1001` → 2.16.840.1.113883.3.464.1003.101.12.1001 (quality.md §4 notation); full OIDs pass."""
    head, _, rest = short.partition(".")
    return OID_PREFIX[head] + rest if head in OID_PREFIX else short


def medication_elements(resolve_reference: bool) -> tuple[str, ...]:
    """Where `[MedicationRequest: medication in VS]` looks: the translator's ELM for some measures also follows
    `medicationReference` to the Medication's code, for others only the inline code (a rule per measure)."""
    return ANY_MEDICATION if resolve_reference else INLINE_MEDICATION


# --- Retrieve: value-set and direct-code membership ---------------------------------------------------------------

def having_value_set(table: ir.Table, clinical_coding: ir.Table, value_set_code: ir.Table,
                     oids: str | Sequence[str], *, resource_type: str, element: str | Sequence[str] = "code"
                     ) -> ir.Table:
    """Rows of `table` (patient_id, resource_id, ...) with a coding of `element` in any of the value sets (short or
    full OIDs). Membership matches (system, code); semi-joins only, so rows are never duplicated."""
    wanted = [oid(o) for o in ([oids] if isinstance(oids, str) else oids)]
    members = value_set_code.filter(value_set_code.oid.isin(wanted))
    codings = _codings_of(clinical_coding, resource_type, element)
    codings = codings.semi_join(members, [codings.system == members.system, codings.code == members.code])
    return _having(table, codings)


def having_code(table: ir.Table, clinical_coding: ir.Table, system: str, codes: str | Sequence[str], *,
                resource_type: str, element: str | Sequence[str] = "code") -> ir.Table:
    """Rows of `table` with a direct-reference code (CQL `~ "code"` / `code = "code"`) in `element`."""
    wanted = [codes] if isinstance(codes, str) else list(codes)
    codings = _codings_of(clinical_coding, resource_type, element)
    codings = codings.filter((codings.system == system) & codings.code.isin(wanted))
    return _having(table, codings)


def with_profile(table: ir.Table, clinical_coding: ir.Table, profile_url: str, *, resource_type: str) -> ir.Table:
    """Rows of `table` that a CQL retrieve by the profile `profile_url` returns (e.g. `["observation-bmi"]`).
    A resource that declares profiles (`meta.profile`) is returned only by a profile it declares: the reference
    engine trusts meta.profile by default (fqm-execution `trustMetaProfile`, cql-exec-fhir `requireProfileTagging`),
    so a BMI recorded as a plain QI-Core Observation is no BMI there. A resource that declares none (bulk exports
    rarely do) is judged by its content alone. `quality.ecqm_declared_profiles_decide` false drops the declarations
    at evaluation (`evaluate.evaluate_measures`), so that content alone decides everywhere."""
    declared = _codings_of(clinical_coding, resource_type, PROFILE_ELEMENT)
    elsewhere = declared.group_by(["patient_id", "resource_id"]).aggregate(
        _declares_it=(declared.code == profile_url).any())
    elsewhere = elsewhere.filter(~elsewhere._declares_it)
    return table.anti_join(elsewhere, [table.patient_id == elsewhere.patient_id,
                                       table.resource_id == elsewhere.resource_id])


def coded(table: ir.Table, clinical: ClinicalTables, value_set_code: ir.Table, oids: str | Sequence[str], *,
          resource_type: str, element: str | Sequence[str] = "code") -> ir.Table:
    """A CQL retrieve `[Type: element in "VS"]` over rows of a clinical table."""
    return having_value_set(table, clinical.clinical_coding, value_set_code, oids, resource_type=resource_type,
                            element=element)


def _codings_of(clinical_coding: ir.Table, resource_type: str, element: str | Sequence[str]) -> ir.Table:
    elements = [element] if isinstance(element, str) else list(element)
    return clinical_coding.filter((clinical_coding.resource_type == resource_type)
                                  & clinical_coding.element.isin(elements))


def _having(table: ir.Table, codings: ir.Table) -> ir.Table:
    return table.semi_join(codings, [table.patient_id == codings.patient_id,
                                     table.resource_id == codings.resource_id])


# UCUM units a measure compares quantities in, with the units CQL (through UCUM) converts to them: unit → factor.
# Annotations such as {beats} are unity in UCUM. Any other unit is not comparable: the comparison is null.
UCUM_EQUIVALENTS = {
    "kg/m2": {"kg/m2": 1.0, "kg.m-2": 1.0, "g/m2": 0.001, "g.m-2": 0.001},
    "%": {"%": 1.0, "1": 100.0},
    "/min": {"/min": 1.0, "1/min": 1.0, "{beats}/min": 1.0, "{beat}/min": 1.0, "{H.B.}/min": 1.0, "/s": 60.0,
             "/h": 1 / 60},
    "mm[Hg]": {"mm[Hg]": 1.0, "cm[Hg]": 10.0, "kPa": 7.500615758, "Pa": 0.007500615758},
}


def quantity_in(value: ir.FloatingValue, unit: ir.StringValue, target: str) -> ir.FloatingValue:
    """A Quantity's value in the UCUM unit `target` (CQL quantity comparison converts units through UCUM); null
    when its unit is not convertible (the comparison is then null, as for an invalid unit)."""
    factors = UCUM_EQUIVALENTS[target]
    factor = ibis.cases(*[(unit == name, ibis.literal(f)) for name, f in factors.items()], else_=ibis.null("float64"))
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value) * factor


def equivalent(value: ir.StringValue, text: str) -> ir.BooleanValue:
    """CQL string equivalence `value ~ 'text'`: ignoring case and runs of whitespace."""
    return value.re_replace(r"\s+", " ").strip().lower() == " ".join(text.split()).lower()


# --- QI-Core intervals over the stored columns --------------------------------------------------------------------

def period_of(table: ir.Table, name: str) -> Interval:
    """`<element>.toInterval()` for a Period or a dateTime stored as `<name>_start` / `<name>_end` (FHIRHelpers
    ToInterval: unknown start, end of time for a missing end; a dateTime is [x, x])."""
    return Interval.period(table, f"{name}_start", f"{name}_end")


def point_of(table: ir.Table, name: str) -> Interval:
    """`<dateTime>.toInterval()`: [x, x]."""
    return Interval.point(Moment.of(table, name))


def prevalence_interval(condition: ir.Table) -> Interval:
    """QICoreCommon.prevalenceInterval: [start of onset, end of abatement]; no onset → from the beginning of time.
    An active, recurrence or relapse condition without abatement runs to the end of time. Any other condition
    without abatement has no prevalence interval at all: the function's `(end of abatementInterval())
    abatementDate return ...` is a query over a null source, whose result is null (CQL 1.5.3 queries, FHIR-40225,
    as cql-execution does), so both boundaries are unknown and every comparison with the interval is null."""
    onset = Moment.of(condition, "onset_start").or_beginning()
    end = Moment.of(condition, "abatement_end")
    active = condition.clinical_status.isin(ACTIVE_CLINICAL_STATUSES).fill_null(False)
    no_interval = ~active & end.low.isnull()
    return Interval(Moment.unknown().choose(no_interval, onset), end.or_end().choose(active, end))


def latest(interval: Interval) -> Moment:
    """QICoreCommon.latest: the end of the interval when it has one (not the end of time), else its start."""
    stored_end = interval.end
    has_end = stored_end.low.notnull() & (stored_end.low != ibis.timestamp(END_OF_TIME))
    return stored_end.choose(has_end, interval.start)


def age_in_years(birth_date: ir.DateValue, on: ir.DateValue) -> ir.IntegerValue:
    """Whole years completed between birth date and the date `on` (CQL AgeInYearsAt)."""
    years = on.year() - birth_date.year()
    before_birthday = (on.month() < birth_date.month()) | (
        (on.month() == birth_date.month()) & (on.day() < birth_date.day()))
    return years - ibis.ifelse(before_birthday, 1, 0)


def first_per_patient(table: ir.Table, *order_by: ir.Value, by: str | Sequence[str] = "patient_id") -> ir.Table:
    """The first row per patient (or per `by` columns) in `order_by` order (e.g. `ibis.desc(t.start)`); ties are
    broken on the row's own values (resource id first), so every backend and thread count picks the same row."""
    keys = [by] if isinstance(by, str) else list(by)
    ordered = {_sorted_column(key) for key in order_by}
    # A column already ordered on must not come back as an ascending tie-break (it would override a descending key).
    orderable = [c for c, t in table.schema().items()
                 if c not in ordered and not (t.is_array() or t.is_struct() or t.is_map())]
    ties = sorted(orderable, key=lambda c: c != "resource_id")
    ranked = table.mutate(_rank=ibis.row_number().over(ibis.window(group_by=[table[k] for k in keys],
                                                                    order_by=[*order_by, *ties])))
    return ranked.filter(ranked._rank == 0).drop("_rank")


def _sorted_column(key: ir.Value) -> str | None:
    """The column a sort key orders on (`t.x` or `ibis.desc(t.x)`), None for a computed key."""
    op = key.op()
    op = getattr(op, "expr", op)
    return getattr(op, "name", None)


def attach(cases: ir.Table, other: ir.Table, key: str) -> ir.Table:
    """Left join `other` (keyed by its column `key` = patient id) onto the cases, as a finished relation."""
    joined = cases.left_join(other, cases.patient_id == other[key])
    return joined.select(*cases.columns, *[name for name in other.columns if name not in cases.columns])


# --- Evidence -------------------------------------------------------------------------------------------------------

def evidence_of(table: ir.Table, resource_type: str) -> ir.Table:
    """(patient_id, evidence) with evidence `ResourceType/id` per row."""
    return table.select(patient_id=table.patient_id,
                        evidence=ibis.literal(f"{resource_type}/") + table.resource_id.cast("string"))


def collect_evidence(parts: list[ir.Table], *, also: dict[str, str] | None = None) -> ir.Table:
    """One row per patient from (patient_id, evidence[, ...]) tables: the distinct evidence items sorted and joined
    by `;`, and for each column named in `also` (column → separator) its distinct values sorted and joined by that
    separator. (collect → sort → join: an ordered group_concat does not compile on Spark.)"""
    items = ibis.union(*parts) if len(parts) > 1 else parts[0]
    texts = {"evidence": ";", **(also or {})}
    return items.group_by("patient_id").aggregate(**{
        name: items[name].collect(distinct=True).sort().join(separator) for name, separator in texts.items()})


def join_evidence(*parts: ir.StringValue) -> ir.StringValue:
    """Within a row: the distinct `ResourceType/id` items of the non-null `;`-separated parts, sorted, `;`-joined."""
    text = ibis.literal("")
    for part in parts:
        text = text + ibis.literal(";") + part.fill_null("")
    # Empty parts (an aggregate over no rows is '' on some backends) leave runs of ';' behind.
    text = text.re_replace(";;+", ";").re_replace("^;|;$", "")
    return text.split(";").unique().sort().join(";")


# --- Result contract -----------------------------------------------------------------------------------------------

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

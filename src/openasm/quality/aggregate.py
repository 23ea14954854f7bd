"""Measure aggregates per entity, measure, collection type and stratum (quality.md §2.1, §5.1, §7
`measure_aggregate`).

Counts follow the QPP submission fields: EP eligiblePopulation (= DENOM), PM performanceMet, PNM performanceNotMet,
DENEX eligiblePopulationExclusion, DENEXCEP eligiblePopulationException. From them:
`performance_rate = 100 × PM / (PM + PNM)` (null when PM + PNM = 0), `data_completeness = (PM + PNM + DENEX +
DENEXCEP) / EP` (null when EP = 0), `case_count` by `quality.case_count_basis`. Results CMS delivers without
counts (Q492) carry their own rate and case count; their count columns are null.

Engine results, QPP JSON, QRDA III, the Q220 file and the Q492 CMS file all end in the one `measure_aggregate`
contract (`MEASURE_AGGREGATE_SCHEMA`) through `finish_measure_aggregate`, so the formulas live in one place.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.feed_files import QualityFileError
from openasm.rules import RulesForYear

MEASURE_AGGREGATE_SCHEMA = pa.schema([
    ("performance_year", pa.int32()), ("measure_id", pa.string()), ("collection_type", pa.string()),
    ("tin", pa.string()), ("npi", pa.string()), ("entity_level", pa.string()), ("cohort", pa.string()),
    ("stratum", pa.string()), ("eligible_population", pa.int64()), ("performance_met", pa.int64()),
    ("performance_not_met", pa.int64()), ("exclusions", pa.int64()), ("exceptions", pa.int64()),
    ("performance_rate", pa.float64()), ("data_completeness", pa.float64()), ("case_count", pa.int64()),
    ("is_proxy", pa.bool_()), ("source", pa.string()), ("cms_achievement_points", pa.float64()),
    ("cms_scored_flag", pa.bool_()),
])
AGGREGATE_COLUMNS = tuple(MEASURE_AGGREGATE_SCHEMA.names)
COUNT_FIELDS = ("eligible_population", "performance_met", "performance_not_met", "exclusions", "exceptions")
# The counts an importer hands to `finish_measure_aggregate` (plus optional performance_rate, case_count,
# data_completeness, is_proxy, cms_achievement_points, cms_scored_flag).
COUNTS_SCHEMA = pa.schema([
    ("performance_year", pa.int32()), ("measure_id", pa.string()), ("collection_type", pa.string()),
    ("tin", pa.string()), ("npi", pa.string()), ("entity_level", pa.string()), ("stratum", pa.string()),
    *[(name, pa.int64()) for name in COUNT_FIELDS], ("source", pa.string()),
])
SOURCES = ("engine", "qpp_json", "qrda3", "q220_file", "q492_cms", "q492_proxy")
ENTITY_TIN_NPI, ENTITY_TIN = "tin_npi", "tin"
SINGLE_STRATUM = "overall"
EHR, REGISTRY, CLAIMS, ADMIN_CLAIMS = "electronicHealthRecord", "registry", "claims", "administrativeClaims"


def cohort_of_measures(rules: RulesForYear) -> ir.Table:
    """(measure_id, cohort) from `quality.measures` (one row per measure and cohort it belongs to)."""
    by_cohort = rules.value("quality.measures")
    rows = [(str(m), cohort) for cohort, measures in sorted(by_cohort.items()) for m in measures]
    return ibis.memtable(pa.table({"_c_measure_id": pa.array([r[0] for r in rows], pa.string()),
                                   "cohort": pa.array([r[1] for r in rows], pa.string())}))


def _case_counts(cases: ir.Table) -> ir.Table:
    """Per case row, 0/1 for each count, with proportion semantics re-applied (DENOM ⊆ IP is the measure's job;
    here NUMER counts only for DENOM members not excluded, DENEXCEP only for those not in NUMER). A case with
    `reported_flag = false` stays in EP but in none of the reported counts."""
    def f(name: str) -> ir.BooleanValue:
        return cases[name].fill_null(False) if name in cases.columns else ibis.literal(False)

    reported = cases.reported_flag.fill_null(True) if "reported_flag" in cases.columns else ibis.literal(True)
    denom = f("is_denominator")
    denex = denom & f("is_denominator_exclusion")
    numer = denom & ~denex & f("is_numerator")
    denexcep = denom & ~denex & ~numer & f("is_denominator_exception")
    not_met = denom & ~denex & ~numer & ~denexcep

    def one(cond: ir.BooleanValue) -> ir.IntegerValue:
        return ibis.ifelse(cond, 1, 0).cast("int64")

    stratum = cases.stratum.cast("string").fill_null(SINGLE_STRATUM) if "stratum" in cases.columns \
        else ibis.literal(SINGLE_STRATUM)
    return cases.select(
        performance_year=cases.performance_year.cast("int32"), measure_id=cases.measure_id.cast("string"),
        collection_type=cases.collection_type.cast("string"), tin=cases.tin.cast("string"),
        npi=cases.npi.cast("string"), stratum=stratum,
        _ep=one(denom), _pm=one(numer & reported), _pnm=one(not_met & reported),
        _denex=one(denex & reported), _denexcep=one(denexcep & reported))


def _sum_counts(counted: ir.Table, entity_level: str) -> ir.Table:
    keys = ["performance_year", "measure_id", "collection_type", "tin", "stratum"]
    if entity_level == ENTITY_TIN_NPI:
        keys.insert(4, "npi")
    grouped = counted.group_by(keys).agg(
        eligible_population=counted._ep.sum(), performance_met=counted._pm.sum(),
        performance_not_met=counted._pnm.sum(), exclusions=counted._denex.sum(),
        exceptions=counted._denexcep.sum())
    npi = grouped.npi if entity_level == ENTITY_TIN_NPI else ibis.null("string")
    return grouped.select(
        "performance_year", "measure_id", "collection_type", "tin", npi=npi,
        entity_level=ibis.literal(entity_level), stratum=grouped.stratum,
        **{name: grouped[name].cast("int64") for name in COUNT_FIELDS})


def aggregate_measure_results(*, measure_case_result: ir.Table, rules: RulesForYear,
                              group_reporting_tin: ir.Table | None = None, source: str = "engine") -> ir.Table:
    """quality.md §2.1, 42 CFR 414.1380(b)(1) via §512.725: count the patient-level (or Q220 episode-level)
    results per (performance_year, measure_id, collection_type, entity, stratum) and finish them into
    `measure_aggregate`.

    Input columns: performance_year, measure_id, collection_type, tin, npi, stratum, the five `is_*` population
    flags, optional `reported_flag` (false = case not reported: in EP only, lowering data completeness).
    Entities by `quality.reporting_level`: `tin_npi` (per clinician; plus per TIN for the TINs in
    `group_reporting_tin` (column `tin`) when `quality.small_practice_tin_reporting` allows it), `tin`, or
    `tin_npi_and_tin`. Cases whose TIN/NPI is unknown are counted under a null TIN/NPI, never dropped.
    Grain of the output: (performance_year, measure_id, collection_type, tin, npi, entity_level, cohort, stratum).
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {SOURCES}")
    level = rules.value("quality.reporting_level")
    counted = _case_counts(measure_case_result)
    parts: list[ir.Table] = []
    if level in ("tin_npi", "tin_npi_and_tin"):
        parts.append(_sum_counts(counted, ENTITY_TIN_NPI))
    if level in ("tin", "tin_npi_and_tin"):
        parts.append(_sum_counts(counted, ENTITY_TIN))
    elif level != "tin_npi":
        raise ValueError(f"quality.reporting_level: unsupported value {level!r}")
    elif group_reporting_tin is not None and bool(rules.value("quality.small_practice_tin_reporting")):
        electing = group_reporting_tin.select(_g_tin=group_reporting_tin.tin.cast("string")).distinct()
        chosen = counted.semi_join(electing, counted.tin == electing._g_tin)
        parts.append(_sum_counts(chosen, ENTITY_TIN))
    counts = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return finish_measure_aggregate(counts=counts.mutate(source=ibis.literal(source)), rules=rules)


def finish_measure_aggregate(*, counts: ir.Table, rules: RulesForYear) -> ir.Table:
    """quality.md §2.1: rate, data completeness, case count and cohort for counted results, in the exact
    `measure_aggregate` columns. `counts` has the COUNTS_SCHEMA columns; a supplied `performance_rate`,
    `data_completeness` or `case_count` (CMS-delivered results) is kept over the computed one, and supplied
    `is_proxy`, `cms_achievement_points`, `cms_scored_flag` pass through (default false / null / null).
    A measure in no cohort of `quality.measures` gets a null cohort."""
    basis = rules.value("quality.case_count_basis")
    t = counts

    def supplied(name: str, dtype: str) -> ir.Value:
        return t[name].cast(dtype) if name in t.columns else ibis.null(dtype)

    ep, pm, pnm = (t[c].cast("int64") for c in ("eligible_population", "performance_met", "performance_not_met"))
    denex, denexcep = t.exclusions.cast("int64"), t.exceptions.cast("int64")
    scored = pm + pnm
    reported = pm + pnm + denex + denexcep
    rate = ibis.ifelse(scored > 0, 100.0 * pm.cast("float64") / scored.cast("float64"), ibis.null("float64"))
    completeness = ibis.ifelse(ep > 0, reported.cast("float64") / ep.cast("float64"), ibis.null("float64"))
    if basis == "performance_met_plus_not_met":
        case_count = scored
    elif basis == "eligible_population":
        case_count = ep
    else:
        raise ValueError(f"quality.case_count_basis: unsupported value {basis!r}")
    finished = t.select(
        performance_year=t.performance_year.cast("int32"), measure_id=t.measure_id.cast("string"),
        collection_type=t.collection_type.cast("string"), tin=t.tin.cast("string"), npi=t.npi.cast("string"),
        entity_level=t.entity_level.cast("string"), stratum=t.stratum.cast("string").fill_null(SINGLE_STRATUM),
        eligible_population=ep, performance_met=pm, performance_not_met=pnm, exclusions=denex,
        exceptions=denexcep,
        performance_rate=ibis.coalesce(supplied("performance_rate", "float64"), rate),
        data_completeness=ibis.coalesce(supplied("data_completeness", "float64"), completeness),
        case_count=ibis.coalesce(supplied("case_count", "int64"), case_count.cast("int64")),
        is_proxy=supplied("is_proxy", "boolean").fill_null(False), source=t.source.cast("string"),
        cms_achievement_points=supplied("cms_achievement_points", "float64"),
        cms_scored_flag=supplied("cms_scored_flag", "boolean"))
    cohorts = cohort_of_measures(rules)
    joined = finished.left_join(cohorts, finished.measure_id == cohorts._c_measure_id)
    return joined.select(*[joined[c] for c in AGGREGATE_COLUMNS])


def check_measure_aggregate(*, measure_aggregate: ir.Table) -> ir.Table:
    """quality.md §2.1: flag aggregates that must be rejected — a negative count, or PM + PNM + DENEX + DENEXCEP
    > EP. Returns every row with `reject_reason` (null when the row is sound)."""
    t = measure_aggregate
    pm, pnm = t.performance_met.fill_null(0), t.performance_not_met.fill_null(0)
    denex, denexcep = t.exclusions.fill_null(0), t.exceptions.fill_null(0)
    negative = ibis.literal(False)
    for name in COUNT_FIELDS:
        negative = negative | (t[name] < 0).fill_null(False)
    too_many = ((pm + pnm + denex + denexcep) > t.eligible_population).fill_null(False)
    reason = ibis.cases(
        (negative, "negative count"),
        (too_many, "performance met + not met + exclusions + exceptions exceed the eligible population"),
        else_=ibis.null("string"))
    return t.mutate(reject_reason=reason)


def check_counts(where: str, counts: dict[str, int | None]) -> None:
    """Python form of `check_measure_aggregate` for file readers: raise QualityFileError naming `where` (file,
    measure, stratum) and the fields when PM + PNM + DENEX + DENEXCEP > EP."""
    ep = counts.get("eligible_population")
    parts = {k: counts.get(k) or 0 for k in COUNT_FIELDS[1:]}
    if ep is not None and sum(parts.values()) > ep:
        detail = " + ".join(f"{k} {v}" for k, v in parts.items())
        raise QualityFileError(f"{where}: {detail} = {sum(parts.values())} exceeds eligible_population {ep}")


def counts_table(rows: list[dict]) -> pa.Table:
    """Rows of counts (COUNTS_SCHEMA keys) as a pyarrow table for `finish_measure_aggregate`."""
    return pa.Table.from_pylist(rows, schema=COUNTS_SCHEMA)


def measure_specs(rules: RulesForYear) -> list[dict]:
    """quality.md §7 `measure_spec`: the rows of `codes/quality__measure_spec.csv` (measures-data per PY and
    collection type) for rules.performance_year — the latest shipped year on or before it, else the earliest."""
    rows = rules.code_list("quality__measure_spec").to_pylist()
    years = sorted({int(r["performance_year"]) for r in rows})
    chosen = max((y for y in years if y <= rules.performance_year), default=years[0])
    return [r for r in rows if int(r["performance_year"]) == chosen]


def inverse_measure_ids(rules: RulesForYear) -> list[str]:
    """QPP ids of the measures where a lower rate is better (measures-data `isInverse`)."""
    return sorted({r["measure_id"] for r in measure_specs(rules) if str(r["is_inverse"]).lower() == "true"})


def ecqm_version_ids(rules: RulesForYear) -> dict[str, str]:
    """QPP id → eCQM version id (`CMS156v15`) of the electronicHealthRecord measures for the performance year."""
    return {r["measure_id"]: f"{r['ecqm_id']}v{r['ecqm_version']}" for r in measure_specs(rules)
            if r["collection_type"] == EHR and r["ecqm_id"]}

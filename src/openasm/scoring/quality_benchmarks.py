"""Quality benchmarks per (performance year, measure, collection type) (quality.md §2.2, §3, §7; asm-model §3.2 item 1).

The `benchmark` table has one row per key with the percentile cut points `p1`, `p10` … `p90`, `p99` (ascending for
direct and inverse measures), where they came from (`source`: asm_cohort_py | asm_cohort_baseline |
mips_historical) and, for a key without a usable benchmark, an `exclusion_reason` (MIPS codes such as BR-009, or
`flat_benchmark_not_applied`). Benchmarks come from
- the MIPS files of CMSgov/qpp-measures-data: the shipped rows `codes/quality__mips_benchmarks.csv` (PY2025,
  PY2026, ASM measures) or a user file in the same JSON format (`read_mips_benchmark_file`, validated strictly);
- the cohort's own results of the performance year (`compute_cohort_benchmarks`): one point per submission that
  meets data completeness and the case minimum, percentiles by `quality.percentile_method`, kept only with at
  least `quality.benchmark_min_reporters` submissions; otherwise the MIPS record is used.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from openasm.rules import RulesError, RulesForYear
from openasm.schema.sums import exact_mean
from openasm.scoring.quality_points import PERCENTILE_KEYS, pcol

# Every submissionMethod of the benchmark schemas PY2023–2026 (cmsWebInterface ended with PY2024).
SUBMISSION_METHODS = (
    "electronicHealthRecord", "registry", "claims", "administrativeClaims", "certifiedSurveyVendor", "cmsWebInterface",
)
COST_SCORE = "costScore"
# Metric types whose cut points are not percentages (dollars, counts, minutes): no 0–100 range check.
UNBOUNDED_METRIC_TYPES = frozenset({COST_SCORE, "nonProportion"})
MIPS_BENCHMARK_LIST = "quality__mips_benchmarks"
MEASURE_SPEC_LIST = "quality__measure_spec"
KEY = ("performance_year", "measure_id", "collection_type")
FLAT_NOT_APPLIED = "flat_benchmark_not_applied"

BENCHMARK_SCHEMA = pa.schema(
    [("performance_year", pa.int32()), ("measure_id", pa.string()), ("collection_type", pa.string()),
     ("source", pa.string()), ("benchmark_performance_year", pa.int32()), ("benchmark_year", pa.int32()),
     ("metric_type", pa.string()), ("is_inverse", pa.bool_()), ("is_topped_out", pa.bool_()),
     ("is_topped_out_by_program", pa.bool_()), ("is_flat", pa.bool_()), ("average_performance_rate", pa.float64()),
     ("reporter_count", pa.int64())]
    + [(pcol(k), pa.float64()) for k in PERCENTILE_KEYS]
    + [("exclusion_reason", pa.string())]
)
MEASURE_SPEC_SCHEMA = pa.schema(
    [("performance_year", pa.int32()), ("measure_id", pa.string()), ("collection_type", pa.string()),
     ("spec_performance_year", pa.int32()), ("ecqm_id", pa.string()), ("ecqm_version", pa.string()),
     ("spec_metric_type", pa.string()), ("measure_type", pa.string()), ("spec_is_inverse", pa.bool_()),
     ("is_high_priority", pa.bool_()), ("scored_stratum", pa.string()), ("strata", pa.string()),
     ("overall_algorithm", pa.string()), ("is_seven_point_cap_removed", pa.bool_()), ("case_unit", pa.string()),
     ("spec_url", pa.string())]
)


# ------------------------------------------------------------------------------------------ shipped code lists
def _typed(value: str, kind: pa.DataType) -> Any:
    if value == "":
        return None
    if pa.types.is_boolean(kind):
        return {"true": True, "false": False}[value]
    if pa.types.is_integer(kind):
        return int(value)
    if pa.types.is_floating(kind):
        return float(value)
    return value


def shipped_mips_benchmarks(rules: RulesForYear) -> pa.Table:
    """`codes/quality__mips_benchmarks.csv` (MIPS PY2025/PY2026 rows of the ASM measures) as BENCHMARK_SCHEMA."""
    raw = rules.code_list(MIPS_BENCHMARK_LIST).to_pylist()
    rows = [{c: _typed(r[c], BENCHMARK_SCHEMA.field(c).type) if c in r else None for c in BENCHMARK_SCHEMA.names}
            for r in raw]
    for row in rows:
        row.update(source="mips_historical", benchmark_performance_year=row["performance_year"])
    return pa.Table.from_pylist(rows, schema=BENCHMARK_SCHEMA)


def measure_spec_table(rules: RulesForYear) -> pa.Table:
    """`codes/quality__measure_spec.csv` (measures-data PY2026, PY2027): one row per shipped year, measure and
    collection type (`spec_performance_year` = `performance_year`). Results use the rows of `spec_year_for`."""
    rows = []
    for raw in rules.code_list(MEASURE_SPEC_LIST).to_pylist():
        row = {**raw, "spec_performance_year": raw["performance_year"], "spec_is_inverse": raw["is_inverse"],
               "spec_metric_type": raw["metric_type"]}
        rows.append({c: _typed(row[c], MEASURE_SPEC_SCHEMA.field(c).type) for c in MEASURE_SPEC_SCHEMA.names})
    return pa.Table.from_pylist(rows, schema=MEASURE_SPEC_SCHEMA)


def spec_year_for(performance_year: ir.IntegerValue, spec_years: list[int]) -> ir.IntegerValue:
    """The measure-spec year a performance year reads: the latest shipped year on or before it, else the earliest
    (measure metadata hold forward until CMS publishes the next year's, and back to the first shipped year)."""
    years = sorted(set(spec_years))
    return ibis.cases(*[(performance_year >= y, y) for y in reversed(years[1:])], else_=years[0]).cast("int32")


def arrow_memtable(table: pa.Table) -> ir.Table:
    """An Arrow table as an Ibis memtable that survives PySpark: integer columns with nulls travel with the type's
    minimum value standing for null (Ibis hands Spark memtables over through pandas, which turns such a column to
    float and Spark then reads it all null)."""
    fixed, restore = {}, {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_integer(column.type) and column.null_count:
            sentinel = -(2 ** (column.type.bit_width - 1)) if pa.types.is_signed_integer(column.type) else \
                2 ** column.type.bit_width - 1
            fixed[name] = pc.fill_null(column, pa.scalar(sentinel, column.type))
            restore[name] = sentinel
        else:
            fixed[name] = column
    memtable = ibis.memtable(pa.table(fixed))
    return memtable.mutate(**{n: ibis.ifelse(memtable[n] == sentinel, ibis.null(memtable[n].type()), memtable[n])
                              for n, sentinel in restore.items()})


# ------------------------------------------------------------------------------------------ cohort (ASM)
def compute_cohort_benchmarks(*, measure_row: ir.Table, rules: RulesForYear, source: str = "asm_cohort_py") -> ir.Table:
    """§2.2 (quality.md), asm-model §3.2 item 1: percentiles of the cohort's submissions per key.

    `measure_row`: eligible rows of `quality_category.route_measure_results` (`is_eligible`; scored stratum, allowed
    collection type, participant matched), with scoring_rate, meets_dc, meets_case_min, spec_is_inverse,
    spec_metric_type.
    MIPS build rules: one point per submission meeting data completeness and the case minimum with rate > 0 (direct
    measures) or rate < 100 (inverse proportion measures; zero is the best rate there and stays in). Rows repeated
    for each NPI of a TIN-level submission count once. Keeps keys with ≥ `quality.benchmark_min_reporters`
    submissions. Output: BENCHMARK_SCHEMA columns.
    """
    method = rules.value("quality.percentile_method")
    if method != "linear":
        raise RulesError(f"quality.percentile_method: unsupported value {method!r}")
    min_reporters = int(rules.value("quality.benchmark_min_reporters"))
    t = measure_row.filter(measure_row.is_eligible & measure_row.meets_dc & measure_row.meets_case_min
                           & measure_row.scoring_rate.notnull())
    in_range = ibis.cases(
        (t.spec_metric_type == COST_SCORE, True), (t.spec_is_inverse, t.scoring_rate < 100.0),
        else_=t.scoring_rate > 0.0,
    )
    t = t.filter(in_range)
    # One point per submission: a TIN-level result is routed to every NPI of the TIN.
    t = t.select(*KEY, "tin", "npi_submitted", "scoring_rate", is_inverse=t.spec_is_inverse,
                 metric_type=t.spec_metric_type).distinct()
    rate = t.scoring_rate
    stats = t.group_by(*KEY).agg(
        reporter_count=t.count(), average_performance_rate=exact_mean(rate), is_inverse=t.is_inverse.max(),
        metric_type=t.metric_type.max(), **{pcol(k): rate.quantile(k / 100) for k in PERCENTILE_KEYS},
    )
    stats = stats.filter(stats.reporter_count >= min_reporters)
    return stats.select(
        stats.performance_year.cast("int32").name("performance_year"), "measure_id", "collection_type",
        source=ibis.literal(source), benchmark_performance_year=stats.performance_year.cast("int32"),
        benchmark_year=stats.performance_year.cast("int32"), metric_type=stats.metric_type,
        is_inverse=stats.is_inverse, is_topped_out=ibis.null("boolean"), is_topped_out_by_program=ibis.literal(False),
        is_flat=ibis.literal(False), average_performance_rate=stats.average_performance_rate.cast("float64"),
        reporter_count=stats.reporter_count.cast("int64"),
        **{pcol(k): stats[pcol(k)].cast("float64") for k in PERCENTILE_KEYS},
        exclusion_reason=ibis.null("string"),
    )


def _conform(table: ir.Table) -> ir.Table:
    return table.select(*[table[c].cast(BENCHMARK_SCHEMA.field(c).type).name(c) for c in BENCHMARK_SCHEMA.names])


def _anti(left: ir.Table, right: ir.Table, on: tuple[str, ...]) -> ir.Table:
    """Rows of `left` without a match in `right` on `on` (right keys renamed first: portable on Spark)."""
    keys = right.select(**{f"_r_{c}": right[c] for c in on}).distinct()
    return left.anti_join(keys, [left[c] == keys[f"_r_{c}"] for c in on])


def _mips_with_fallback(mips: ir.Table, keys: ir.Table, fallback_py: int | None) -> ir.Table:
    """`quality.benchmark_fallback_py`: a key with neither a record nor an exclusion in its year takes the record of
    the fallback year (relabelled to the key's year; `benchmark_performance_year` keeps the source year)."""
    if fallback_py is None:
        return mips
    missing = _anti(keys, mips, KEY)
    donor = mips.filter(mips.performance_year == int(fallback_py))
    donor = donor.rename(_d_measure_id="measure_id", _d_collection_type="collection_type",
                         _d_performance_year="performance_year")
    joined = missing.join(donor, [missing.measure_id == donor._d_measure_id,
                                  missing.collection_type == donor._d_collection_type])
    return mips.union(_conform(joined))


def build_quality_benchmark(*, measure_row: ir.Table, rules: RulesForYear,
                            mips_benchmark: ir.Table | None = None) -> ir.Table:
    """§2.2 (quality.md), asm-model §3.2 item 1: the benchmark table per `quality.benchmark_population`.

    - mips_historical: the MIPS record of the key (`mips_benchmark`, default the shipped rows), with
      `quality.benchmark_fallback_py` for keys whose year has neither record nor exclusion;
    - asm_cohort_py: cohort percentiles of the same year where a key has ≥ `quality.benchmark_min_reporters`
      submissions, the MIPS record otherwise;
    - asm_cohort_baseline: as asm_cohort_py, from the results of `quality.benchmark_baseline_py`.
    With `quality.apply_flat_benchmarks` false a flat MIPS record becomes an exclusion (`flat_benchmark_not_applied`).
    `measure_row` as for `compute_cohort_benchmarks`. Output grain: (performance_year, measure_id, collection_type);
    columns BENCHMARK_SCHEMA; a key absent from the table has no benchmark.
    """
    population = rules.value("quality.benchmark_population")
    mips = _conform(mips_benchmark if mips_benchmark is not None else arrow_memtable(shipped_mips_benchmarks(rules)))
    if not rules.value("quality.apply_flat_benchmarks"):
        flat = mips.is_flat.fill_null(False)
        mips = mips.mutate(
            exclusion_reason=ibis.ifelse(flat, ibis.literal(FLAT_NOT_APPLIED), mips.exclusion_reason),
            **{pcol(k): ibis.ifelse(flat, ibis.null("float64"), mips[pcol(k)]) for k in PERCENTILE_KEYS},
        )
    rows = measure_row.filter(measure_row.is_eligible)
    keys = rows.select(*KEY).distinct()
    mips = _mips_with_fallback(mips, keys, rules.value("quality.benchmark_fallback_py"))
    if population == "mips_historical":
        return mips
    if population == "asm_cohort_py":
        cohort = compute_cohort_benchmarks(measure_row=rows, rules=rules)
    elif population == "asm_cohort_baseline":
        baseline_py = rules.value("quality.benchmark_baseline_py")
        if baseline_py is None:
            raise RulesError("quality.benchmark_population = asm_cohort_baseline needs quality.benchmark_baseline_py")
        base = compute_cohort_benchmarks(measure_row=rows.filter(rows.performance_year == int(baseline_py)),
                                         rules=rules, source="asm_cohort_baseline")
        base = base.rename(_b_measure_id="measure_id", _b_collection_type="collection_type",
                           _b_performance_year="performance_year")
        joined = keys.join(base, [keys.measure_id == base._b_measure_id,
                                  keys.collection_type == base._b_collection_type])
        cohort = _conform(joined)
    else:
        raise RulesError(f"quality.benchmark_population: unsupported value {population!r}")
    return _conform(cohort).union(_anti(mips, cohort, KEY))

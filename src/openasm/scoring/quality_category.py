"""Quality measure scores and the quality category score (quality.md §2.1–§2.5; asm-model.md §3.2; 42 CFR 512.725).

Three stages, each a pure function of Ibis tables:
1. `route_measure_results`: every `measure_aggregate` row gets its participant (TIN/NPI rows by TIN and NPI;
   TIN-level rows to every participant NPI of the TIN, scored for small practices and CMS-calculated results), the measure metadata of its year and
   collection type, rate / data completeness / case minimum (`quality_points.prepare_measure_results`) and either
   `is_eligible` or a `status` saying why it is not scored (proxy, no participant, TIN level not allowed, measure not
   in the cohort's set, collection type not allowed, stratum not scored, rejected counts). No row is dropped.
2. `score_quality_measures`: eligible rows against the `benchmark` table: `zero_dc`, `excluded_case_min`,
   `excluded_no_benchmark` or `scored` with decile, partial points and the topped-out cap; points and `is_counted`
   under `quality.unscorable_policy`; the best submission per participant and measure wins
   (`quality.multi_collection_policy`); a measure of the cohort's set without any eligible row is `not_reported`
   (0 points, counted) or, for a CMS-calculated administrative-claims measure, `not_calculated` (not counted).
3. `score_quality_category`: per participant Σ points / (10 × counted measures) × 100 and the minimum-submission rule.

Input `participant`: performance_year, npi, tin, cohort ('hf' | 'lbp'), is_participant, and optionally
small_practice_flag (CMS list); where it is absent or null, a TIN with at most
`participation.small_practice_max_clinicians` distinct NPIs in `participant` is a small practice.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesError, RulesForYear
from openasm.schema.sums import exact_sum
from openasm.scoring.formulas import is_counted_asm, measure_status, quality_category_pct
from openasm.scoring.quality_benchmarks import (
    KEY,
    arrow_memtable,
    build_quality_benchmark,
    measure_spec_table,
    spec_year_for,
)
from openasm.scoring.quality_points import (
    ADMIN_CLAIMS,
    MAX_MEASURE_POINTS,
    PERCENTILE_KEYS,
    add_decile_points,
    apply_topped_out_cap,
    pcol,
    prepare_measure_results,
    round_half_up,
)

ENTITY_LEVELS = ("tin_npi", "tin")
PARTICIPANT_KEY = ("performance_year", "tin", "npi", "cohort")
MEASURE_SCORE_COLUMNS = {
    "performance_year": "int32", "tin": "string", "npi": "string", "cohort": "string", "measure_id": "string",
    "collection_type": "string", "stratum": "string", "entity_level": "string", "npi_submitted": "string",
    "is_small_practice": "boolean", "is_proxy": "boolean", "performance_rate": "float64",
    "data_completeness": "float64", "case_count": "int64", "meets_dc": "boolean", "meets_case_min": "boolean",
    "has_benchmark": "boolean", "benchmark_source": "string", "benchmark_year": "int32",
    "benchmark_exclusion_reason": "string", "is_inverse": "boolean", "decile": "int32",
    "points_before_cap": "float64", "achievement_points": "float64", "capped_flag": "boolean", "status": "string",
    "is_eligible": "boolean", "is_counted": "boolean", "is_winner": "boolean", "winning_collection_type": "string",
    "source": "string",
}


# ------------------------------------------------------------------------------------------ participants
def participant_practices(*, participant: ir.Table, rules: RulesForYear) -> ir.Table:
    """asm-model §3.1, §10 (small_practice_max_clinicians): active participants with `is_small_practice` (the
    CMS flag where given, else ≤ the maximum distinct NPIs per TIN in `participant`). Grain: PARTICIPANT_KEY."""
    max_clinicians = int(rules.value("participation.small_practice_max_clinicians"))
    p = participant.mutate(performance_year=participant.performance_year.cast("int32"),
                           cohort=participant.cohort.lower())
    sizes = p.group_by(_z_performance_year=p.performance_year, _z_tin=p.tin).agg(_clinicians=p.npi.nunique())
    active = p.filter(p.is_participant.fill_null(False))
    joined = active.join(sizes, [active.performance_year == sizes._z_performance_year, active.tin == sizes._z_tin])
    by_size = joined._clinicians <= max_clinicians
    flag = joined.small_practice_flag.cast("boolean").fill_null(by_size) if "small_practice_flag" in p.columns \
        else by_size
    return joined.select(*PARTICIPANT_KEY, is_small_practice=flag).distinct()


def _measure_sets(rules: RulesForYear, cms_calculated: set[str]) -> ir.Table:
    """`quality.measures` as rows (cohort, measure_id, is_cms_calculated)."""
    rows = [(cohort, measure) for cohort, measures in rules.value("quality.measures").items() for measure in measures]
    return ibis.memtable({"_m_cohort": [c for c, _ in rows], "_m_measure_id": [m for _, m in rows],
                          "is_cms_calculated": [m in cms_calculated for _, m in rows]})


def _cms_calculated(rules: RulesForYear) -> set[str]:
    """Measures whose only collection type is administrativeClaims (Q492): CMS calculates them, nobody reports."""
    spec = measure_spec_table(rules).to_pylist()
    types: dict[str, set[str]] = {}
    for row in spec:
        types.setdefault(row["measure_id"], set()).add(row["collection_type"])
    return {m for m, kinds in types.items() if kinds == {ADMIN_CLAIMS}}


# ------------------------------------------------------------------------------------------ 1 routing
def route_measure_results(*, measure_aggregate: ir.Table, participant: ir.Table, rules: RulesForYear) -> ir.Table:
    """§2.1, §2.4 (quality.md), asm-model §3.1: one row per `measure_aggregate` row and participant it reaches.

    Adds the prepare_measure_results columns, measure metadata of the `spec_year_for` year (spec_is_inverse,
    spec_metric_type, scored_stratum, is_seven_point_cap_removed), npi_submitted (the row's own NPI), npi and cohort
    (the participant's), is_small_practice, `status` (null when eligible) and `is_eligible`. Reported TIN-level rows
    count only for small practices when `quality.small_practice_tin_reporting` (CMS-calculated administrative-claims
    results reach every NPI of the TIN); collection types outside `quality.allowed_collection_types` and strata
    other than the measure's scored stratum are not scored.
    """
    rows = prepare_measure_results(measure_aggregate=measure_aggregate, rules=rules)
    rows = rows.mutate(performance_year=rows.performance_year.cast("int32"), cohort=rows.cohort.lower(),
                       npi_submitted=rows.npi)
    spec_rows = measure_spec_table(rules)
    spec = arrow_memtable(spec_rows).select(
        "spec_performance_year", "spec_metric_type", "spec_is_inverse", "scored_stratum", "is_seven_point_cap_removed",
        _s_performance_year="performance_year", _s_measure_id="measure_id", _s_collection_type="collection_type")
    rows = rows.mutate(_spec_year=spec_year_for(rows.performance_year, spec_rows["performance_year"].to_pylist()))
    rows = rows.left_join(spec, [rows._spec_year == spec._s_performance_year,
                                 rows.measure_id == spec._s_measure_id,
                                 rows.collection_type == spec._s_collection_type])
    rows = rows.drop("_spec_year", "_s_performance_year", "_s_measure_id", "_s_collection_type")

    # One join reaches both levels: a TIN/NPI row its own NPI, a TIN-level row every participant NPI of the TIN.
    # The row takes the participant's cohort; a measure outside that cohort's set is caught below.
    practices = participant_practices(participant=participant, rules=rules).rename(
        _p_performance_year="performance_year", _p_tin="tin", _p_npi="npi", _p_cohort="cohort")
    reach = (rows.entity_level == "tin") | ((rows.entity_level == "tin_npi") & (rows.npi == practices._p_npi))
    rows = rows.left_join(practices, [rows.performance_year == practices._p_performance_year,
                                      rows.tin == practices._p_tin, reach])
    rows = rows.mutate(npi=ibis.ifelse(rows.entity_level == "tin", rows._p_npi, rows.npi),
                       cohort=rows._p_cohort.fill_null(rows.cohort), _matched=rows._p_npi.notnull())
    rows = rows.drop(*[f"_p_{k}" for k in PARTICIPANT_KEY])
    sets = _measure_sets(rules, _cms_calculated(rules))
    rows = rows.left_join(sets, [rows.cohort == sets._m_cohort, rows.measure_id == sets._m_measure_id])
    rows = rows.mutate(_in_set=rows._m_measure_id.notnull()).drop("_m_cohort", "_m_measure_id", "is_cms_calculated")

    allowed = list(rules.value("quality.allowed_collection_types"))
    tin_reporting = bool(rules.value("quality.small_practice_tin_reporting"))
    status = ibis.cases(
        (rows.is_proxy.fill_null(False), "proxy_not_scored"),
        (rows.entity_level.isnull() | ~rows.entity_level.isin(ENTITY_LEVELS), "unknown_entity_level"),
        (~rows._matched, "no_participant"),
        ((rows.entity_level == "tin") & (rows.collection_type != ADMIN_CLAIMS)
         & ~(ibis.literal(tin_reporting) & rows.is_small_practice.fill_null(False)), "tin_level_not_allowed"),
        (~rows._in_set, "not_in_measure_set"),
        (rows.spec_performance_year.isnull(), "unknown_collection_type"),
        (~rows.collection_type.isin(allowed), "collection_type_not_allowed"),
        (rows.stratum.isnull() | (rows.stratum != rows.scored_stratum), "stratum_not_scored"),
        (~rows.counts_valid, "rejected_counts"),
        else_=ibis.null("string"),
    )
    rows = rows.mutate(status=status).drop("_matched", "_in_set")
    return rows.mutate(is_eligible=rows.status.isnull())


# ------------------------------------------------------------------------------------------ 2 measure scores
def _policy_points(t: ir.Table, rules: RulesForYear) -> tuple[ir.Value, ir.Value]:
    """§2.4: (is_counted, achievement_points) by status under `quality.unscorable_policy`."""
    policy = rules.value("quality.unscorable_policy")
    if rules.value("quality.missing_measure_policy") != "zero_in_denominator":
        raise RulesError("quality.missing_measure_policy: only zero_in_denominator is implemented")
    zero = ibis.literal(0.0, "float64")
    scored = t.status == "scored"
    unscorable = t.status.isin(["zero_dc", "excluded_case_min", "excluded_no_benchmark"])
    if policy == "asm":
        below = rules.value("quality.below_case_minimum_policy")
        if below not in ("exclude", "zero_in_denominator"):
            raise RulesError(f"quality.below_case_minimum_policy: unsupported value {below!r}")
        counted = is_counted_asm(t.status, below == "zero_in_denominator")
        unscorable_points = zero
    elif policy == "mips":
        counted = scored | unscorable
        floor = float(rules.value("quality.mips_small_practice_unscorable_points"))
        unscorable_points = ibis.ifelse(t.is_small_practice.fill_null(False), floor, 0.0)
    else:
        raise RulesError(f"quality.unscorable_policy: unsupported value {policy!r}")
    points = ibis.cases((scored, t.achievement_points), (counted & unscorable, unscorable_points),
                        else_=ibis.null("float64"))
    return counted.fill_null(False), points


def _score_rows(rows: ir.Table, benchmark: ir.Table, rules: RulesForYear) -> ir.Table:
    points_source = rules.value("quality.q492_points_source")
    if points_source not in ("cms_then_benchmark", "cms_only", "benchmark_only"):
        raise RulesError(f"quality.q492_points_source: unsupported value {points_source!r}")
    b = benchmark.select(
        *[benchmark[c].name(f"_b_{c}") for c in KEY], benchmark_source=benchmark.source,
        benchmark_year=benchmark.benchmark_year, benchmark_exclusion_reason=benchmark.exclusion_reason,
        _b_is_inverse=benchmark.is_inverse, is_topped_out_by_program=benchmark.is_topped_out_by_program,
        **{pcol(k): benchmark[pcol(k)] for k in PERCENTILE_KEYS},
    )
    t = rows.left_join(b, [rows[c] == b[f"_b_{c}"] for c in KEY]).drop(*[f"_b_{c}" for c in KEY])
    is_admin = t.collection_type == ADMIN_CLAIMS
    has_benchmark = t[pcol(10)].notnull() & t[pcol(90)].notnull() & t.benchmark_exclusion_reason.isnull()
    use_cms = ibis.literal(points_source != "benchmark_only") & t.cms_achievement_points.notnull()
    bench_ok = has_benchmark & ~(ibis.literal(points_source == "cms_only") & is_admin)
    t = t.mutate(is_inverse=t._b_is_inverse.fill_null(t.spec_is_inverse), has_benchmark=has_benchmark.fill_null(False),
                 _use_cms=use_cms.fill_null(False)).drop("_b_is_inverse")
    status = ibis.ifelse(t.is_eligible, measure_status(t.meets_dc, t.meets_case_min, t._use_cms,
                                                       bench_ok.fill_null(False)), t.status)
    t = add_decile_points(t.mutate(status=status), rules=rules)
    scored = t.status == "scored"
    cms = scored & t._use_cms
    t = t.mutate(
        benchmark_source=ibis.ifelse(cms, ibis.literal("cms_supplied"), t.benchmark_source),
        decile=ibis.ifelse(scored & ~t._use_cms, t.decile, ibis.null("int32")),
        points_before_cap=ibis.cases((cms, t.cms_achievement_points.cast("float64")), (scored, t.points_before_cap),
                                     else_=ibis.null("float64")),
    )
    t = apply_topped_out_cap(t, rules=rules)
    counted, points = _policy_points(t, rules)
    return t.mutate(is_counted=counted, achievement_points=points)


def _pick_winners(t: ir.Table, rules: RulesForYear) -> ir.Table:
    """§2.4, §414.1380(b)(1)(i): the eligible submission with the most points counts for each participant and
    measure (a counted one before an excluded one); ties break by collection type, then TIN/NPI before TIN."""
    if rules.value("quality.multi_collection_policy") != "highest":
        raise RulesError("quality.multi_collection_policy: only highest is implemented")
    group = ["performance_year", "tin", "npi", "cohort", "measure_id"]
    order = [ibis.desc(t.is_eligible), ibis.desc(t.is_counted), ibis.desc(t.achievement_points.fill_null(-1.0)),
             t.collection_type, ibis.desc(t.entity_level), t.npi_submitted]
    rank = ibis.row_number().over(ibis.window(group_by=group, order_by=order))
    t = t.mutate(is_winner=t.is_eligible & (rank == 0))
    winner_type = ibis.ifelse(t.is_winner, t.collection_type, ibis.null("string")).max().over(ibis.window(group_by=group))
    return t.mutate(
        is_counted=t.is_counted & t.is_winner,
        winning_collection_type=ibis.ifelse(t.is_eligible, winner_type, ibis.null("string")),
    )


def _final(t: ir.Table) -> ir.Table:
    return t.select(*[t[c].cast(kind).name(c) for c, kind in MEASURE_SCORE_COLUMNS.items()])


def score_quality_measures(*, measure_row: ir.Table, participant: ir.Table, benchmark: ir.Table,
                           rules: RulesForYear) -> ir.Table:
    """§2.1–§2.4 (quality.md), asm-model §3.2 items 2–5, §4.8: the `quality_measure_score` table.

    `measure_row` from `route_measure_results`, `benchmark` from `build_quality_benchmark`. Grain: one row per routed
    result (performance_year, tin, npi, cohort, measure_id, collection_type, stratum, entity_level) plus one
    `not_reported` / `not_calculated` row (collection_type null) per participant and set measure without an
    eligible row. Columns: MEASURE_SCORE_COLUMNS; `is_counted` marks the rows in the category denominator.
    """
    scored = _pick_winners(_score_rows(measure_row, benchmark, rules), rules)
    scored = scored.mutate(performance_rate=scored.scoring_rate, data_completeness=scored.scoring_data_completeness,
                           case_count=scored.scoring_case_count)

    practices = participant_practices(participant=participant, rules=rules)
    sets = _measure_sets(rules, _cms_calculated(rules))
    expected = practices.join(sets, practices.cohort == sets._m_cohort).rename(measure_id="_m_measure_id")
    eligible = scored.filter(scored.is_eligible)
    keys = eligible.select(**{f"_e_{c}": eligible[c] for c in (*PARTICIPANT_KEY, "measure_id")}).distinct()
    missing = expected.anti_join(keys, [expected[c] == keys[f"_e_{c}"] for c in (*PARTICIPANT_KEY, "measure_id")])
    calculated = missing.is_cms_calculated
    missing = missing.mutate(
        status=ibis.ifelse(calculated, ibis.literal("not_calculated"), ibis.literal("not_reported")),
        is_counted=~calculated, achievement_points=ibis.ifelse(calculated, ibis.null("float64"), 0.0),
        is_winner=ibis.literal(True), is_eligible=ibis.literal(False), capped_flag=ibis.literal(False),
        has_benchmark=ibis.literal(False),
    )
    missing = missing.mutate(**{c: ibis.null(kind) for c, kind in MEASURE_SCORE_COLUMNS.items()
                                if c not in missing.columns})
    return _final(scored).union(_final(missing))


# ------------------------------------------------------------------------------------------ 3 category
def score_quality_category(*, quality_measure_score: ir.Table, participant: ir.Table,
                           rules: RulesForYear) -> ir.Table:
    """§2.5 (quality.md), asm-model §3.2 items 6–7: per participant (performance_year, npi, tin, cohort)
    points_earned = Σ counted points, points_available = 10 × counted measures, quality_score_pct =
    min(100, 100 × earned / available) (null when nothing is counted). Minimum submission: at least one eligible
    non-administrativeClaims result meets data completeness; otherwise min_submission_met = false and
    quality_score_pct = 0 (the final score is then 0). Also measures_counted, measures_scored, measures_zero,
    measures_excluded, quality_score_pct_display (half up to `quality.display_decimals`)."""
    if rules.value("quality.improvement_scoring"):
        raise RulesError("quality.improvement_scoring = true is not implemented")
    s = quality_measure_score
    zero = ibis.literal(0, "int64")
    per = s.group_by(**{f"_g_{c}": s[c] for c in PARTICIPANT_KEY}).agg(
        points_earned=exact_sum(ibis.ifelse(s.is_counted, s.achievement_points, 0.0)),
        measures_counted=ibis.ifelse(s.is_counted, 1, zero).sum(),
        measures_scored=ibis.ifelse(s.is_winner & (s.status == "scored"), 1, zero).sum(),
        measures_zero=ibis.ifelse(s.is_counted & (s.status != "scored"), 1, zero).sum(),
        measures_excluded=ibis.ifelse(s.is_winner & ~s.is_counted, 1, zero).sum(),
        _submissions=ibis.ifelse(s.is_eligible & (s.collection_type != ADMIN_CLAIMS) & s.meets_dc, 1, zero).sum(),
    )
    practices = participant_practices(participant=participant, rules=rules)
    t = practices.left_join(per, [practices[c] == per[f"_g_{c}"] for c in PARTICIPANT_KEY])
    t = t.drop(*[f"_g_{c}" for c in PARTICIPANT_KEY])
    counted = t.measures_counted.fill_null(0)
    earned = t.points_earned.fill_null(0.0)
    available = MAX_MEASURE_POINTS * counted.cast("float64")
    min_met = t._submissions.fill_null(0) > 0
    pct = ibis.cases(
        (~min_met, 0.0),
        (counted > 0, quality_category_pct(earned, available)),
        else_=ibis.null("float64"),
    )
    t = t.mutate(points_earned=earned, points_available=available, quality_score_pct=pct.cast("float64"),
                 min_submission_met=min_met, measures_counted=counted.cast("int64"),
                 measures_scored=t.measures_scored.fill_null(0).cast("int64"),
                 measures_zero=t.measures_zero.fill_null(0).cast("int64"),
                 measures_excluded=t.measures_excluded.fill_null(0).cast("int64"))
    return t.select(
        *PARTICIPANT_KEY, "is_small_practice", "points_earned", "points_available", "quality_score_pct",
        quality_score_pct_display=round_half_up(t.quality_score_pct, int(rules.value("quality.display_decimals"))),
        min_submission_met=t.min_submission_met, measures_counted=t.measures_counted,
        measures_scored=t.measures_scored, measures_zero=t.measures_zero, measures_excluded=t.measures_excluded,
    )


def score_quality(*, measure_aggregate: ir.Table, participant: ir.Table, rules: RulesForYear,
                  mips_benchmark: ir.Table | None = None,
                  materialize: Callable[[str, ir.Table], ir.Table] | None = None) -> dict[str, ir.Table]:
    """§2 (quality.md) end to end: {'quality_measure_row', 'quality_benchmark', 'quality_measure_score',
    'quality_category_score'}. `materialize(name, expr)` (e.g. `Engine.save`) stores each table before the next
    stage reads it, which keeps every query plan small (PySpark plans the whole chain otherwise); without it the
    result is one lazy expression per table."""
    keep = materialize or (lambda _name, expr: expr)
    rows = keep("quality_measure_row",
                route_measure_results(measure_aggregate=measure_aggregate, participant=participant, rules=rules))
    # The benchmarks of the years scored (the MIPS file holds other years' too, which no run here produced).
    benchmark = build_quality_benchmark(measure_row=rows, rules=rules, mips_benchmark=mips_benchmark)
    scored = (benchmark.performance_year == rules.performance_year) | benchmark.performance_year.isin(
        rows.performance_year)
    benchmark = keep("quality_benchmark", benchmark.filter(scored))
    measure_score = keep("quality_measure_score", score_quality_measures(
        measure_row=rows, participant=participant, benchmark=benchmark, rules=rules))
    category = keep("quality_category_score", score_quality_category(
        quality_measure_score=measure_score, participant=participant, rules=rules))
    return {"quality_measure_row": rows, "quality_benchmark": benchmark, "quality_measure_score": measure_score,
            "quality_category_score": category}

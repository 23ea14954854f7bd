"""Q492 — risk-standardized acute unplanned cardiovascular-related admissions for HF patients (quality.md §4.8).

CMS calculates Q492 from administrative claims. The engine ingests the CMS-delivered result per TIN/NPI (rate,
case count, scored flag and, when present, achievement points; file layout §5.5, [verify]) and may compute an
internal, clearly labelled proxy from the CMS-shared claims: `is_proxy = true`, source `q492_proxy`, never scored
or exported. The proxy is **unadjusted** (no risk standardization, no planned-admission algorithm): inpatient
admissions with a cardiovascular principal diagnosis per 100 person-years among the clinician's attributed HF
beneficiaries aged 65 or older.

CMS file (CSV or JSON list): py, tin, npi (empty = TIN-level result), rate, case_count, scored_flag,
achievement_points (optional), benchmark_ref (optional).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.episodes.codes import starts_with_any
from openasm.quality.aggregate import (
    ADMIN_CLAIMS,
    COUNT_FIELDS,
    ENTITY_TIN,
    ENTITY_TIN_NPI,
    SINGLE_STRATUM,
    finish_measure_aggregate,
)
from openasm.quality.feed_files import FeedReadResult, RowProblem, count, flag, number, read_feed, text
from openasm.quality.measures.common import age_in_years
from openasm.rules import RulesForYear
from openasm.schema.formats import NPI_PATTERN, TIN_PATTERN
from openasm.schema.sums import exact_sum

MEASURE_ID = "492"
REQUIRED_COLUMNS = ("py", "tin", "npi", "rate", "case_count", "scored_flag")
OPTIONAL_COLUMNS = ("achievement_points", "benchmark_ref")
CMS_RESULT_SCHEMA = pa.schema([
    ("performance_year", pa.int32()), ("tin", pa.string()), ("npi", pa.string()), ("rate", pa.float64()),
    ("case_count", pa.int64()), ("scored_flag", pa.bool_()), ("achievement_points", pa.float64()),
    ("benchmark_ref", pa.string()), ("source_file", pa.string()), ("source_row", pa.int64()),
])
DAYS_PER_YEAR = 365.25  # person-time convention: days / 365.25
PER_PERSON_YEARS = 100.0  # the measure's unit: admissions per 100 person-years


def _parse_cms_row(record: dict) -> dict:
    year = count(record, "py", required=True)
    rate = number(record, "rate", minimum=0)
    scored = flag(record, "scored_flag", required=True)
    if rate is None and scored:
        raise RowProblem("rate", "missing value for a scored result")
    return {
        "performance_year": year, "tin": text(record, "tin", required=True, pattern=TIN_PATTERN),
        "npi": text(record, "npi", pattern=NPI_PATTERN), "rate": rate,
        "case_count": count(record, "case_count", required=True), "scored_flag": scored,
        "achievement_points": number(record, "achievement_points", minimum=0),
        "benchmark_ref": text(record, "benchmark_ref"),
    }


def read_q492_file(path: Path, *, strict: bool = False) -> FeedReadResult:
    """quality.md §5.5: read the CMS-delivered Q492 results. Bad rows are quarantined with file, row and column
    (or raise QualityFileError in `strict` mode); a repeated (py, tin, npi) is a duplicate."""
    return read_feed(path, measure_id=MEASURE_ID, measure_label="Q492", list_key="results",
                     schema=CMS_RESULT_SCHEMA, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS,
                     parse_row=_parse_cms_row, strict=strict,
                     row_key=lambda r: (r["performance_year"], r["tin"], r["npi"]))


def aggregate_q492_results(*, q492_result: ir.Table, rules: RulesForYear) -> ir.Table:
    """quality.md §4.8, §512.760: CMS-delivered Q492 results as `measure_aggregate` rows (administrativeClaims,
    source `q492_cms`): rate, case count, scored flag and achievement points as CMS gave them; counts and data
    completeness null (CMS-calculated: no counts, DC not applied). A result without NPI is a TIN-level result."""
    t = q492_result
    counts = t.select(
        performance_year=t.performance_year.cast("int32"), measure_id=ibis.literal(MEASURE_ID),
        collection_type=ibis.literal(ADMIN_CLAIMS), tin=t.tin.cast("string"), npi=t.npi.cast("string"),
        entity_level=ibis.ifelse(t.npi.isnull(), ENTITY_TIN, ENTITY_TIN_NPI), stratum=ibis.literal(SINGLE_STRATUM),
        **{name: ibis.null("int64") for name in COUNT_FIELDS},
        source=ibis.literal("q492_cms"), performance_rate=t.rate.cast("float64"),
        case_count=t.case_count.cast("int64"), cms_scored_flag=t.scored_flag.cast("boolean"),
        cms_achievement_points=t.achievement_points.cast("float64"))
    return finish_measure_aggregate(counts=counts, rules=rules)


def _dx_code(value: ir.StringValue) -> ir.StringValue:
    """ICD-10-CM code without dot or blanks, upper case (claims carry it either way)."""
    return value.upper().re_replace(r"[.\s]", "")


def compute_q492_proxy(*, claim_line: ir.Table, claim_diagnosis: ir.Table, beneficiary: ir.Table,
                       rules: RulesForYear) -> ir.Table:
    """quality.md §4.8 (optional proxy, internal monitoring only; unadjusted). For rules.performance_year:

    1. HF cohort: beneficiaries with a claim diagnosis (any position, or a line diagnosis) starting with one of
       `quality.q492_proxy_hf_dx_prefixes` on a claim from the PY, aged ≥ `quality.q492_proxy_min_age` on 1 January
       and alive then.
    2. Attribution: the (billing TIN, rendering NPI) with the most carrier lines in
       `quality.q492_proxy_attribution_hcpcs` for the beneficiary in the PY; ties go to the lowest TIN, then NPI.
       Beneficiaries without such a line are not attributed.
    3. Person-years: days from 1 January to the end of the PY or death, / 365.25.
    4. Outcome: inpatient admissions (distinct beneficiary and admission date, cancels left out) in the PY whose
       principal diagnosis (position 1) starts with one of `quality.q492_proxy_cv_dx_prefixes`.
    Rate = 100 × admissions / person-years per TIN/NPI. Output: `measure_aggregate` rows with `is_proxy = true`,
    source `q492_proxy`, eligible_population = case_count = attributed beneficiaries, other counts null.
    """
    year = rules.performance_year
    start, end = ibis.date(date(year, 1, 1)), ibis.date(date(year, 12, 31))
    hf_prefixes = [str(p) for p in rules.value("quality.q492_proxy_hf_dx_prefixes")]
    cv_prefixes = [str(p) for p in rules.value("quality.q492_proxy_cv_dx_prefixes")]
    em_codes = [str(c) for c in rules.value("quality.q492_proxy_attribution_hcpcs")]
    min_age = int(rules.value("quality.q492_proxy_min_age"))

    cl = claim_line.filter(claim_line.claim_adjustment_type.fill_null("original") != "cancel")
    in_py = cl.filter(cl.claim_from_date.between(start, end))

    dx = claim_diagnosis.select(_d_claim=claim_diagnosis.claim_id, _d_bene=claim_diagnosis.bene_id,
                                _d_position=claim_diagnosis.dx_position.cast("int32"),
                                _d_code=_dx_code(claim_diagnosis.icd10_code))
    py_claims = in_py.select(_k_claim=in_py.claim_id, _k_bene=in_py.bene_id).distinct()
    hf_dx = dx.filter(starts_with_any(dx._d_code, hf_prefixes))
    hf_by_claim = py_claims.join(hf_dx, [py_claims._k_claim == hf_dx._d_claim, py_claims._k_bene == hf_dx._d_bene])
    hf_by_line = in_py.filter(starts_with_any(_dx_code(in_py.line_dx_code.fill_null("")), hf_prefixes))
    hf_benes = ibis.union(hf_by_claim.select(_h_bene=hf_by_claim._k_bene),
                          hf_by_line.select(_h_bene=hf_by_line.bene_id)).distinct()

    b = beneficiary
    eligible = b.filter((age_in_years(b.birth_date, start) >= min_age)
                        & (b.death_date.isnull() | (b.death_date >= start)))
    eligible = eligible.select(_b_bene=eligible.bene_id,
                               _b_last=ibis.least(end, eligible.death_date.fill_null(end)))

    em = in_py.filter((in_py.claim_type == "carrier") & in_py.hcpcs_code.isin(em_codes)
                      & in_py.billing_tin.notnull() & in_py.rendering_npi.notnull())
    visits = em.group_by(_v_bene=em.bene_id, _v_tin=em.billing_tin, _v_npi=em.rendering_npi).agg(_v_n=em.count())
    order = ibis.window(group_by=visits._v_bene, order_by=[visits._v_n.desc(), visits._v_tin, visits._v_npi])
    ranked = visits.mutate(_v_rank=ibis.row_number().over(order))
    attributed = ranked.filter(ranked._v_rank == 0)

    cohort = attributed.join(hf_benes, attributed._v_bene == hf_benes._h_bene)
    cohort = cohort.join(eligible, cohort._v_bene == eligible._b_bene)
    cohort = cohort.select(bene_id=cohort._v_bene, tin=cohort._v_tin, npi=cohort._v_npi,
                           person_years=(cohort._b_last.delta(start, unit="day") + 1).cast("float64") / DAYS_PER_YEAR)

    ip = cl.filter(cl.claim_type == "inpatient")
    ip = ip.select(_a_claim=ip.claim_id, _a_bene=ip.bene_id,
                   _a_date=ibis.coalesce(ip.admission_date, ip.claim_from_date)).distinct()
    ip = ip.filter(ip._a_date.between(start, end))
    principal = dx.filter((dx._d_position == 1) & starts_with_any(dx._d_code, cv_prefixes))
    cv = ip.join(principal, [ip._a_claim == principal._d_claim, ip._a_bene == principal._d_bene])
    admissions = cv.select(_a_bene=cv._a_bene, _a_date=cv._a_date).distinct()
    per_bene = admissions.group_by("_a_bene").agg(_a_n=admissions.count())

    joined = cohort.left_join(per_bene, cohort.bene_id == per_bene._a_bene)
    per_clinician = joined.group_by("tin", "npi").agg(
        patients=joined.bene_id.nunique(), person_years=exact_sum(joined.person_years),
        admissions=joined._a_n.fill_null(0).sum())
    p = per_clinician
    counts = p.select(
        performance_year=ibis.literal(year).cast("int32"), measure_id=ibis.literal(MEASURE_ID),
        collection_type=ibis.literal(ADMIN_CLAIMS), tin=p.tin.cast("string"), npi=p.npi.cast("string"),
        entity_level=ibis.literal(ENTITY_TIN_NPI), stratum=ibis.literal(SINGLE_STRATUM),
        eligible_population=p.patients.cast("int64"),
        **{name: ibis.null("int64") for name in COUNT_FIELDS[1:]},
        source=ibis.literal("q492_proxy"), is_proxy=ibis.literal(True),
        performance_rate=PER_PERSON_YEARS * p.admissions.cast("float64") / p.person_years.nullif(0.0),
        case_count=p.patients.cast("int64"), data_completeness=ibis.null("float64"))
    return finish_measure_aggregate(counts=counts, rules=rules)

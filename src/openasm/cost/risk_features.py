"""Risk features of the cost measures' patients (ebcm.md §7.1): age band, HCC flags and counts, disability, dual
status, long-term institutional care, condition families and prior spine surgery, as a sparse long table
(episode_id, feature, value) that `risk_adjust` fits on."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from openasm.cost.hcc import age_at, hcc_interaction_arrow, lookback_diagnoses, lookback_window
from openasm.episodes.codes import diagnosis_filter
from openasm.episodes.qualifying import final_lines
from openasm.rules import RulesForYear
from openasm.schema.months import date_month_index, year_month_index

INTERCEPT = "intercept"
# Age bands at episode start; 65-69 is the omitted reference band.
AGE_BANDS = ((65, "age_lt65"), (70, "age_65_69"), (75, "age_70_74"), (80, "age_75_79"), (85, "age_80_84"))
AGE_TOP_BAND = "age_85p"
AGE_REFERENCE_BAND = "age_65_69"
# Bands of the number of HCCs after hierarchies; 0 HCCs is the omitted reference.
HCC_COUNT_BANDS = ((1, 1, "hcc_count_1"), (2, 3, "hcc_count_2_3"), (4, 5, "hcc_count_4_5"))
HCC_COUNT_TOP = (6, "hcc_count_6p")
# Dual status codes that mark Medicare-Medicaid dual eligibility (full or partial).
DUAL_CODES = ("01", "02", "03", "04", "05", "06", "08")
# Places of service of a nursing facility (31 SNF, 32 nursing facility, 33 custodial care).
INSTITUTION_POS = ("31", "32", "33")
# Condition families of `episodes.dx_codes` behind the measure flags.
HF_FAMILIES = ("heart_failure",)
RADICULOPATHY_STENOSIS_FAMILIES = ("lumbar_radiculopathy", "lumbar_spinal_stenosis")
SPINE_SURGERY_EXCLUSION = "lumbar_spine_surgery"
FAMILIES = (
    "hcc_indicators", "hcc_interactions", "hcc_count_bands", "age_bands", "disability_orec", "esrd",
    "long_term_institutional_care", "prior_hf_admission", "hf_severity_markers", "radiculopathy_or_stenosis",
    "prior_spine_surgery", "dual_status",
)


def _rows(keys: ir.Table, feature: str | ir.StringValue) -> ir.Table:
    """(episode_id, feature, value = 1.0) for every row of `keys` (which has episode_id)."""
    feature_value = ibis.literal(feature) if isinstance(feature, str) else feature
    return keys.select("episode_id", feature=feature_value.cast("string"), value=ibis.literal(1.0, "float64"))


def _families_by_measure(rules: RulesForYear) -> dict[str, list[str]]:
    """Feature families per measure (`cost.ra_features`), plus `dual_status` when `cost.ra_include_dual`."""
    by_measure = {m: list(fams) for m, fams in rules.value("cost.ra_features").items()}
    include_dual = bool(rules.value("cost.ra_include_dual"))
    for measure, fams in by_measure.items():
        unknown = set(fams) - set(FAMILIES)
        if unknown:
            raise ValueError(f"cost.ra_features[{measure}]: unknown features {sorted(unknown)}")
        fams[:] = [f for f in fams if f != "dual_status"] + (["dual_status"] if include_dual else [])
    return by_measure


def _dx_code_table(rules: RulesForYear, families: tuple[str, ...]) -> pa.Table:
    codes = rules.code_list("episodes.dx_codes")
    keep = pc.and_(pc.is_in(codes["family"], pa.array(families)), pc.equal(pc.utf8_lower(codes["is_enabled"]), "true"))
    chosen = codes.filter(keep)
    pairs = zip(chosen["code"].to_pylist(), chosen["match"].to_pylist())
    rows = sorted({(c.replace(".", "").upper(), m) for c, m in pairs})
    return pa.table({"code": [c for c, _ in rows], "match": [m for _, m in rows]})


def _enrollment_in_lookback(episode: ir.Table, enrollment: ir.Table, rules: RulesForYear) -> ir.Table:
    """Enrollment months overlapping the lookback, joined to the episode (episode_id + enrollment columns)."""
    start, end = lookback_window(episode, rules)
    scoped = episode.select("episode_id", _bene=episode.bene_id, _from=date_month_index(start),
                            _to=date_month_index(end))
    months = enrollment.mutate(_month=year_month_index(enrollment.year_month))
    return scoped.join(
        months, (scoped._bene == months.bene_id) & (months._month >= scoped._from) & (months._month <= scoped._to)
    )


def _dated_in_window(scoped: ir.Table, dated: ir.Table) -> ir.Table:
    """Rows of `dated` (bene_id, _date) inside each episode's window (`scoped`: episode_id, _bene, _from, _to)."""
    return scoped.join(
        dated, (scoped._bene == dated.bene_id) & (dated._date >= scoped._from) & (dated._date <= scoped._to)
    )


def _long_term_care(episode: ir.Table, claim_line: ir.Table, rules: RulesForYear) -> ir.Table:
    """Episodes with evidence of ≥ `cost.ltc_days_threshold` institutional days in the lookback (see docstring of
    build_risk_features)."""
    threshold = int(rules.value("cost.ltc_days_threshold"))
    start, end = lookback_window(episode, rules)
    scoped = episode.select("episode_id", _bene=episode.bene_id, _from=start, _to=end)
    lines = final_lines(claim_line)
    snf = lines.filter(lines.claim_type == "snf")
    stays = snf.group_by("claim_id", "bene_id").agg(
        _in=ibis.coalesce(snf.admission_date, snf.claim_from_date).min(), _out=snf.claim_thru_date.max()
    )
    hit = scoped.join(stays, (scoped._bene == stays.bene_id) & (stays._in <= scoped._to) & (stays._out >= scoped._from))
    days = ibis.least(hit._out, hit._to).delta(ibis.greatest(hit._in, hit._from), unit="day") + 1
    snf_days = hit.mutate(_days=days).group_by("episode_id").agg(_days=ibis._._days.sum())
    by_snf = snf_days.filter(snf_days._days >= threshold).select("episode_id")
    visits = lines.filter(lines.claim_type.isin(("carrier",)) & lines.place_of_service_code.isin(INSTITUTION_POS))
    visits = visits.select("bene_id", _date=ibis.coalesce(visits.line_from_date, visits.claim_from_date))
    seen = _dated_in_window(scoped, visits)
    span = seen.group_by("episode_id").agg(_first=seen._date.min(), _last=seen._date.max())
    by_visits = span.filter(span._last.delta(span._first, unit="day") + 1 >= threshold).select("episode_id")
    return by_snf.union(by_visits, distinct=True)


def _spine_surgery(episode: ir.Table, claim_line: ir.Table, rules: RulesForYear) -> ir.Table:
    codes = rules.code_list("cost.clinical_exclusions").to_pylist()
    chosen = [r for r in codes if r["exclusion"] == SPINE_SURGERY_EXCLUSION]
    hcpcs = sorted({r["code"] for r in chosen if r["code_type"] == "hcpcs"})
    drgs = sorted({r["code"] for r in chosen if r["code_type"] == "drg"})
    lines = final_lines(claim_line)
    test = ibis.literal(False)
    if hcpcs:
        test = test | lines.hcpcs_code.isin(hcpcs)
    if drgs:
        test = test | ((lines.claim_type == "inpatient") & lines.drg_code.isin(drgs))
    surgery = lines.filter(test.fill_null(False))
    surgery = surgery.select(
        "bene_id", _date=ibis.coalesce(surgery.line_thru_date, surgery.line_from_date, surgery.claim_thru_date)
    )
    start, end = lookback_window(episode, rules)
    scoped = episode.select("episode_id", _bene=episode.bene_id, _from=start, _to=end)
    hit = _dated_in_window(scoped, surgery)
    return hit.select("episode_id").distinct()


def build_risk_features(
    *, episode: ir.Table, hcc_flags: ir.Table, beneficiary: ir.Table, enrollment: ir.Table,
    claim_line: ir.Table, claim_diagnosis: ir.Table, rules: RulesForYear,
) -> ir.Table:
    """ebcm §7.1: risk-model features of each episode, in the families `cost.ra_features` lists for its measure.

    All look-backs use [start − `cost.ra_lookback_days`, start − 1]. Features (value 1.0 unless noted):
    - `intercept` (every episode).
    - hcc_indicators: `HCC<n>` for each row of `hcc_flags` (after hierarchies).
    - hcc_interactions: CMS-HCC disease × disease terms of the model version (`hcc.INTERACTIONS`).
    - hcc_count_bands: `hcc_count_1`, `hcc_count_2_3`, `hcc_count_4_5`, `hcc_count_6p`; 0 HCCs is the reference.
    - age_bands at episode start: `age_lt65`, `age_70_74`, `age_75_79`, `age_80_84`, `age_85p`; 65-69 is the
      reference (omitted).
    - disability_orec: `disability_orec` when `beneficiary.orec` is 1 or 3 (disability the original reason).
    - esrd: `esrd` when `beneficiary.is_esrd`, or `enrollment.is_esrd` in a lookback month.
    - long_term_institutional_care: `long_term_institutional` when Part A SNF claims cover ≥
      `cost.ltc_days_threshold` days of the lookback (each claim clipped to the window, claims summed), or carrier
      visits at a nursing facility (POS 31/32/33) span ≥ that many days (first to last visit, inclusive).
      Approximation: claims do not show custodial nursing-home residence (no MDS here), so the visit span stands
      in for it.
    - prior_hf_admission: `prior_hf_admission` when an inpatient claim in the lookback has a principal
      (position 1) diagnosis of the `heart_failure` family of `episodes.dx_codes` (I50*).
    - hf_severity_markers: `hf_repeat_admission` when there are two or more such inpatient claims.
    - radiculopathy_or_stenosis: `radiculopathy_or_stenosis` when any lookback diagnosis is in the
      `lumbar_radiculopathy` or `lumbar_spinal_stenosis` families (M54.16, M54.17, M48.06*). Radiculopathy of
      other spine regions (M54.1x) is not counted: it is not a lumbar condition.
    - prior_spine_surgery: `prior_spine_surgery` when a lookback line carries a `lumbar_spine_surgery` HCPCS or
      (inpatient) MS-DRG of `cost.clinical_exclusions`.
    - dual_status (only when `cost.ra_include_dual`): `dual` when `enrollment.dual_status_code` is a dual code
      (01-06, 08) in a lookback month.
    Needs episode: episode_id, measure_id, bene_id, episode_start_date; hcc_flags: episode_id, hcc.
    Grain: episode × feature (sparse: only non-zero features). Columns: episode_id, feature, value.
    """
    by_measure = _families_by_measure(rules)
    eps = episode.select("episode_id", "measure_id", "bene_id", "episode_start_date")

    def scope(*families: str) -> ir.Table | None:
        measures = sorted(m for m, fams in by_measure.items() if set(families) & set(fams))
        return eps.filter(eps.measure_id.isin(measures)) if measures else None

    parts: list[ir.Table] = [_rows(eps, INTERCEPT)]
    benes = beneficiary.select(
        _b_bene=beneficiary.bene_id,
        _birth=beneficiary.birth_date,
        _orec=beneficiary.orec if "orec" in beneficiary.columns else ibis.null("string"),
        _esrd=beneficiary.is_esrd if "is_esrd" in beneficiary.columns else ibis.null("boolean"),
    )

    if (sel := scope("hcc_indicators")) is not None:
        flags = hcc_flags.semi_join(sel, "episode_id")
        parts.append(_rows(flags, flags.hcc))
    if (sel := scope("hcc_interactions")) is not None:
        terms = ibis.memtable(hcc_interaction_arrow(rules.value("cost.hcc_version")))
        flags = hcc_flags.semi_join(sel, "episode_id")
        hit = flags.join(terms, flags.hcc == terms.hcc)
        sides = hit.group_by("episode_id", "interaction").agg(_sides=hit.side.nunique())
        parts.append(_rows(sides.filter(sides._sides == 2), sides.interaction))
    if (sel := scope("hcc_count_bands")) is not None:
        counts = hcc_flags.group_by(_c_episode=hcc_flags.episode_id).agg(_n=hcc_flags.hcc.nunique())
        n = sel.left_join(counts, sel.episode_id == counts._c_episode)
        n = n.mutate(_n=n._n.fill_null(0))
        band = ibis.cases(*[((n._n >= lo) & (n._n <= hi), name) for lo, hi, name in HCC_COUNT_BANDS],
                          (n._n >= HCC_COUNT_TOP[0], HCC_COUNT_TOP[1]), else_=ibis.null("string"))
        banded = n.mutate(_band=band).filter(ibis._._band.notnull())
        parts.append(_rows(banded, banded._band))
    if (sel := scope("age_bands")) is not None:
        aged = sel.join(benes, sel.bene_id == benes._b_bene)
        age = age_at(aged.episode_start_date, aged._birth)
        band = ibis.cases(*[(age < upper, name) for upper, name in AGE_BANDS], else_=AGE_TOP_BAND)
        aged = aged.mutate(_band=ibis.ifelse(age.isnull(), ibis.null("string"), band))
        aged = aged.filter(aged._band.notnull() & (aged._band != AGE_REFERENCE_BAND))
        parts.append(_rows(aged, aged._band))
    if (sel := scope("disability_orec")) is not None:
        dis = sel.join(benes, sel.bene_id == benes._b_bene)
        parts.append(_rows(dis.filter(dis._orec.isin(("1", "3")).fill_null(False)), "disability_orec"))
    if (sel := scope("esrd")) is not None:
        flagged = sel.join(benes, sel.bene_id == benes._b_bene)
        esrd = flagged.filter(flagged._esrd.fill_null(False)).select("episode_id")
        if "is_esrd" in enrollment.columns:
            months = _enrollment_in_lookback(sel, enrollment, rules)
            esrd = esrd.union(months.filter(months.is_esrd.fill_null(False)).select("episode_id"), distinct=True)
        parts.append(_rows(esrd.distinct(), "esrd"))
    if (sel := scope("long_term_institutional_care")) is not None:
        parts.append(_rows(_long_term_care(sel, claim_line, rules), "long_term_institutional"))
    if (sel := scope("prior_hf_admission", "hf_severity_markers")) is not None:
        dx = lookback_diagnoses(episode=sel, claim_line=claim_line, claim_diagnosis=claim_diagnosis, rules=rules)
        hf = dx.filter((dx.claim_type == "inpatient") & (dx.dx_position == 1),
                       *diagnosis_filter(dx.dx_code, _dx_code_table(rules, HF_FAMILIES)))
        stays = hf.group_by("episode_id").agg(_stays=hf.claim_id.nunique())
        if (s := scope("prior_hf_admission")) is not None:
            parts.append(_rows(stays.semi_join(s, "episode_id"), "prior_hf_admission"))
        if (s := scope("hf_severity_markers")) is not None:
            parts.append(_rows(stays.filter(stays._stays >= 2).semi_join(s, "episode_id"), "hf_repeat_admission"))
    if (sel := scope("radiculopathy_or_stenosis")) is not None:
        dx = lookback_diagnoses(episode=sel, claim_line=claim_line, claim_diagnosis=claim_diagnosis, rules=rules)
        hit = dx.filter(*diagnosis_filter(dx.dx_code, _dx_code_table(rules, RADICULOPATHY_STENOSIS_FAMILIES)))
        parts.append(_rows(hit.select("episode_id").distinct(), "radiculopathy_or_stenosis"))
    if (sel := scope("prior_spine_surgery")) is not None:
        parts.append(_rows(_spine_surgery(sel, claim_line, rules), "prior_spine_surgery"))
    if (sel := scope("dual_status")) is not None and "dual_status_code" in enrollment.columns:
        months = _enrollment_in_lookback(sel, enrollment, rules)
        dual = months.filter(months.dual_status_code.isin(DUAL_CODES).fill_null(False)).select("episode_id").distinct()
        parts.append(_rows(dual, "dual"))
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]

"""Episode exclusions (ebcm.md §6): enrollment, demographic and clinical rules, every reason kept.

Each rule yields the episodes it excludes; `find_episode_exclusions` stacks them (episode x reason, all
reasons) and `apply_exclusions` writes the first reason, in the order of `EXCLUSION_ORDER`, onto the episode.
Nothing is dropped: excluded episodes stay in the episode table with their reason.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow.compute as pc

from openasm.episodes.codes import normalize_dx, starts_with_any
from openasm.episodes.qualifying import final_lines, line_service_date
from openasm.rules import RulesForYear
from openasm.schema.months import date_month_index, year_month_index

# Priority order of reasons (first applicable is the episode's exclusion_reason).
EXCLUSION_ORDER = (
    "episode_too_short", "missing_demographics", "residence_outside_us", "under_min_age", "medicare_advantage",
    "not_continuous_ab_ffs", "medicare_secondary_payer", "no_part_d_for_whole_episode", "died_during_episode",
)
# FIPS state codes 01-56 and the territories AS 60, GU 66, MP 69, PR 72, VI 78.
US_STATE_FIPS = tuple(f"{n:02d}" for n in range(1, 57)) + ("60", "66", "69", "72", "78")


def _enrollment_months(enrollment: ir.Table) -> ir.Table:
    return enrollment.mutate(_month=year_month_index(enrollment.year_month))


def _enrollment_exclusions(episode: ir.Table, enrollment: ir.Table, rules: RulesForYear) -> list[ir.Table]:
    lookback = int(rules.value("cost.enrollment_lookback_days"))
    window_start = episode.episode_start_date - ibis.interval(days=lookback)
    spans = episode.select(
        "episode_id", _bene=episode.bene_id,
        _from=date_month_index(window_start),
        _episode_from=date_month_index(episode.episode_start_date),
        _to=date_month_index(episode.episode_end_date),
    )
    months = _enrollment_months(enrollment)
    joined = spans.left_join(months, (spans._bene == months.bene_id) & (months._month >= spans._from)
                             & (months._month <= spans._to))
    is_ffs_ab = joined.has_part_a & joined.has_part_b & ~joined.is_medicare_advantage
    in_episode = joined._month >= joined._episode_from
    tallies = joined.group_by("episode_id", "_from", "_episode_from", "_to").agg(
        ffs_months=ibis.ifelse(is_ffs_ab, 1, 0).sum(),
        ma_months=ibis.ifelse(joined.is_medicare_advantage, 1, 0).sum(),
        msp_months=ibis.ifelse(joined.is_msp.fill_null(False), 1, 0).sum(),
        part_d_months=ibis.ifelse(in_episode & joined.has_part_d, 1, 0).sum(),
    )
    window_months = tallies._to - tallies._from + 1
    episode_months = tallies._to - tallies._episode_from + 1
    flagged = []
    if rules.value("cost.exclude_ma"):
        flagged.append((tallies.ma_months.fill_null(0) > 0, "medicare_advantage"))
    if rules.value("cost.require_continuous_ab_ffs"):
        flagged.append((tallies.ffs_months.fill_null(0) < window_months, "not_continuous_ab_ffs"))
    if rules.value("cost.exclude_msp"):
        flagged.append((tallies.msp_months.fill_null(0) > 0, "medicare_secondary_payer"))
    if rules.value("cost.require_part_d"):
        flagged.append((tallies.part_d_months.fill_null(0) < episode_months, "no_part_d_for_whole_episode"))
    return [tallies.filter(test).select("episode_id", reason=ibis.literal(reason)) for test, reason in flagged]


def _beneficiary_exclusions(episode: ir.Table, beneficiary: ir.Table, rules: RulesForYear) -> list[ir.Table]:
    joined = episode.select("episode_id", "bene_id", "taw_start_date", "episode_start_date", "episode_end_date").join(
        beneficiary, "bene_id"
    )
    flagged = []
    if rules.value("cost.exclude_missing_demographics"):
        flagged.append((joined.birth_date.isnull() | joined.sex.isnull() | (joined.sex == "U"), "missing_demographics"))
    if rules.value("cost.exclude_non_us"):
        flagged.append((joined.state_fips.notnull() & ~joined.state_fips.isin(US_STATE_FIPS), "residence_outside_us"))
    min_age = int(rules.value("cost.min_age"))
    age_at_trigger = joined.taw_start_date.delta(joined.birth_date, unit="year")
    flagged.append((age_at_trigger < min_age, "under_min_age"))
    if rules.value("episodes.death_policy") == "exclude":
        flagged.append((joined.death_date.notnull() & (joined.death_date <= joined.episode_end_date),
                        "died_during_episode"))
    # Missing beneficiary rows (bene absent from the table) count as missing demographics.
    missing = episode.anti_join(beneficiary, "bene_id").select("episode_id", reason=ibis.literal("missing_demographics"))
    return [joined.filter(test.fill_null(False)).select("episode_id", reason=ibis.literal(reason))
            for test, reason in flagged] + ([missing] if rules.value("cost.exclude_missing_demographics") else [])


def exclusion_diagnosis_hits(*, episode: ir.Table, claim_line: ir.Table, claim_diagnosis: ir.Table,
                             rules: RulesForYear) -> ir.Table:
    """§10.4: the final-action claim diagnoses of beneficiaries with episodes that match an ICD-10 entry of
    `cost.clinical_exclusions`, with the claim's date, measure and exclusion (`_diagnosis_code_hits`). Every
    clinical exclusion reason reads them: a runner may store them once (`find_episode_exclusions`)."""
    codes = rules.code_list("cost.clinical_exclusions")
    return _diagnosis_code_hits(episode, final_lines(claim_line), claim_diagnosis,
                                [r for r in codes.to_pylist() if r["code_type"] == "icd10"])


def _clinical_exclusions(episode: ir.Table, claim_line: ir.Table, dx: ir.Table, enrollment: ir.Table,
                         rules: RulesForYear) -> list[ir.Table]:
    """§10.4: diagnosis codes (`dx`: `exclusion_diagnosis_hits`) in [start − `cost.enrollment_lookback_days`,
    end]; procedure (HCPCS/DRG) codes of lumbar spine surgery during the episode only while
    `cost.exclude_spine_surgery`; hospice at the trigger."""
    codes = rules.code_list("cost.clinical_exclusions")
    lookback = int(rules.value("cost.enrollment_lookback_days"))
    lines = final_lines(claim_line)
    flagged: list[ir.Table] = []
    spine_on = bool(rules.value("cost.exclude_spine_surgery"))
    for measure_id in sorted(set(codes["measure"].to_pylist())):
        rows = codes.filter(pc.equal(codes["measure"], measure_id)).to_pylist()
        measure_episodes = episode.filter(episode.measure_id == measure_id)
        for reason in sorted({r["exclusion"] for r in rows}):
            group = [r for r in rows if r["exclusion"] == reason]
            if any(r["qualifier"] == "exclude_spine_surgery" for r in group) and not spine_on:
                continue
            during_only = any(r["qualifier"] == "exclude_spine_surgery" for r in group)
            start = measure_episodes.episode_start_date if during_only else (
                measure_episodes.episode_start_date - ibis.interval(days=lookback))
            scoped = measure_episodes.select("episode_id", _ep_bene=measure_episodes.bene_id, _from=start,
                                             _to=measure_episodes.episode_end_date,
                                             _trigger=measure_episodes.taw_start_date)
            reason_dx = dx.filter((dx._measure == measure_id) & (dx._exclusion == reason))
            hits = _code_hits(scoped, [r for r in group if r["code_type"] != "treatment_hcpcs"], reason_dx, lines,
                              enrollment)
            treatment = [r["code"] for r in group if r["code_type"] == "treatment_hcpcs"]
            if treatment:
                # Qualifier: the diagnosis counts only with a treatment service in the lookback before the start.
                treated = _treated_episodes(scoped, lines, treatment, lookback)
                hits = [h.semi_join(treated, "episode_id") for h in hits]
            flagged.extend(h.select("episode_id", reason=ibis.literal(reason)) for h in hits)
    return flagged


def _treated_episodes(scoped: ir.Table, lines: ir.Table, prefixes: list[str], lookback: int) -> ir.Table:
    """Episodes with a line whose HCPCS starts with one of `prefixes` in [start − lookback, start − 1]."""
    treated = lines.filter(starts_with_any(lines.hcpcs_code, prefixes).fill_null(False))
    date = line_service_date(treated)
    treated = treated.mutate(_date=date)
    window_start = scoped._from
    joined = scoped.join(treated, (scoped._ep_bene == treated.bene_id) & (treated._date >= window_start)
                         & (treated._date < window_start + ibis.interval(days=lookback)))
    return joined.select("episode_id").distinct()


def _diagnosis_code_hits(episode: ir.Table, lines: ir.Table, claim_diagnosis: ir.Table, icd_rows: list[dict]) -> ir.Table:
    """Claim diagnoses of beneficiaries with episodes that match an exclusion code, tagged with the measure and
    exclusion: one equi-join per prefix length (a handful) instead of a pattern test per code and row.
    Columns: _bene, _claim_date, _measure, _exclusion."""
    claims = lines.group_by("claim_id").agg(_claim_date=lines.claim_from_date.min(), _bene=lines.bene_id.max())
    # The code is normalized before the join: Ibis 12 refuses a later join on a column computed over a join.
    dx = claim_diagnosis.mutate(_code=normalize_dx(claim_diagnosis.icd10_code))
    dx = dx.semi_join(episode.select("bene_id").distinct(), "bene_id")
    dx = dx.join(claims, "claim_id").select("_bene", "_claim_date", "_code")
    code_table = ibis.memtable({
        "_list_code": [r["code"] for r in icd_rows], "_match": [r["match"] for r in icd_rows],
        "_measure": [r["measure"] for r in icd_rows], "_exclusion": [r["exclusion"] for r in icd_rows],
        "_length": [len(r["code"]) for r in icd_rows],
    })
    exact = code_table.filter(code_table._match == "exact")
    parts = [dx.join(exact, dx._code == exact._list_code)]
    for length in sorted({len(r["code"]) for r in icd_rows if r["match"] == "prefix"}):
        prefix_codes = code_table.filter((code_table._match == "prefix") & (code_table._length == length))
        parts.append(dx.join(prefix_codes, dx._code.substr(0, length) == prefix_codes._list_code))
    return ibis.union(*[p.select("_bene", "_claim_date", "_measure", "_exclusion") for p in parts], distinct=True)


def _code_hits(scoped: ir.Table, group: list[dict], dx: ir.Table, lines: ir.Table, enrollment: ir.Table) -> list[ir.Table]:
    hits = []
    if any(r["code_type"] == "icd10" for r in group):
        joined = scoped.join(dx, (scoped._ep_bene == dx._bene) & (dx._claim_date >= scoped._from)
                             & (dx._claim_date <= scoped._to))
        hits.append(joined.select("episode_id").distinct())
    procedure = lines.mutate(_date=lines.line_from_date.fill_null(lines.admission_date).fill_null(lines.claim_from_date))
    for code_type, column in (("hcpcs", "hcpcs_code"), ("drg", "drg_code")):
        values = [r["code"] for r in group if r["code_type"] == code_type]
        if values:
            matched = procedure.filter(procedure[column].isin(values))
            joined = scoped.join(matched, (scoped._ep_bene == matched.bene_id) & (matched._date >= scoped._from)
                                 & (matched._date <= scoped._to))
            hits.append(joined.select("episode_id").distinct())
    if any(r["code_type"] == "enrollment_flag" for r in group):
        months = _enrollment_months(enrollment).filter(enrollment.is_hospice.fill_null(False))
        scoped_m = scoped.mutate(_trigger_month=date_month_index(scoped._trigger))
        joined = scoped_m.join(months, (scoped_m._ep_bene == months.bene_id) & (months._month == scoped_m._trigger_month))
        hits.append(joined.select("episode_id").distinct())
    if any(r["code_type"] == "claim_family" for r in group):
        hospice = lines.filter(lines.claim_type == "hospice")
        joined = scoped.join(hospice, (scoped._ep_bene == hospice.bene_id) & (hospice.claim_from_date <= scoped._trigger)
                             & (hospice.claim_thru_date >= scoped._trigger))
        hits.append(joined.select("episode_id").distinct())
    return hits


def find_episode_exclusions(
    *, episode: ir.Table, beneficiary: ir.Table, enrollment: ir.Table, claim_line: ir.Table,
    claim_diagnosis: ir.Table, rules: RulesForYear, diagnosis_hits: ir.Table | None = None,
) -> ir.Table:
    """ebcm §6: every (episode, reason) pair that excludes an episode. Grain: episode x reason.
    `diagnosis_hits`: `exclusion_diagnosis_hits` of the same inputs, stored by the caller (Spark computes a table
    again for each reader in a query); computed here when not given."""
    if diagnosis_hits is None:
        diagnosis_hits = exclusion_diagnosis_hits(episode=episode, claim_line=claim_line,
                                                  claim_diagnosis=claim_diagnosis, rules=rules)
    short = episode.filter(episode.exclusion_reason.notnull()).select(
        "episode_id", reason=ibis.literal("episode_too_short")
    )
    parts = [short]
    parts += _enrollment_exclusions(episode, enrollment, rules)
    parts += _beneficiary_exclusions(episode, beneficiary, rules)
    parts += _clinical_exclusions(episode, claim_line, diagnosis_hits, enrollment, rules)
    return ibis.union(*parts, distinct=True)


def apply_exclusions(*, episode: ir.Table, episode_exclusion: ir.Table) -> ir.Table:
    """The episode table with `exclusion_reason` = first reason by `EXCLUSION_ORDER` (clinical reasons after
    the listed ones, alphabetically) and `exclusion_count`; null reason = episode is scored."""
    order = {reason: i for i, reason in enumerate(EXCLUSION_ORDER)}
    rank = episode_exclusion.reason.cases(*order.items(), else_=len(order))
    ranked = episode_exclusion.mutate(_rank=rank)
    first = ranked.mutate(
        _pick=ibis.row_number().over(ibis.window(group_by="episode_id", order_by=["_rank", "reason"]))
    )
    first = first.filter(first._pick == 0).select(_ex_episode=first.episode_id, _first_reason=first.reason)
    counts = episode_exclusion.group_by(_count_episode=episode_exclusion.episode_id).agg(_n=episode_exclusion.count())
    base = episode.drop("exclusion_reason")
    out = base.left_join(first, base.episode_id == first._ex_episode).drop("_ex_episode")
    out = out.left_join(counts, out.episode_id == counts._count_episode).drop("_count_episode")
    return out.mutate(exclusion_reason=out._first_reason, exclusion_count=out._n.fill_null(0).cast("int64")).drop(
        "_first_reason", "_n"
    )

"""The participant table: every clinician considered for a performance year, in or out, with the reason.

Composes the §512.710 steps (asm-model.md §2): plurality specialty → cohort → practice location and selected
area → attributed episode volume → exclusions → lock-in. Criteria are checked in the order of
`eligibility.REASONS`; the first one a clinician fails is their `eligibility_reason`.

Grain of the output: one row per (performance_year, npi). The `tin` is the practice TIN: the clinician-table
TIN that billed the plurality of the NPI's Part B lines in the eligibility year (its row gives the location,
physician and RHC/FQHC flags); attributed episodes are counted across all TINs.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.codes import measure_for_cohort
from openasm.participation.cohort import COHORTS, assign_cohort
from openasm.participation.eligibility import check_performance_year, eligibility_year
from openasm.participation.episode_volume import count_attributed_episodes, volume_unit
from openasm.participation.lock_in import apply_lock_in
from openasm.participation.selected_area import (
    count_practice_clinicians,
    flag_selected_area,
    locate_practice,
)
from openasm.participation.specialty_plurality import assign_plurality_specialty
from openasm.rules import RulesForYear

PARTICIPANT_COLUMNS = (
    "performance_year", "eligibility_year", "npi", "tin", "tin_source", "cohort", "specialty_code",
    "specialty_basis", "is_specialty_tie", "part_b_line_count", "cbsa_code", "practice_zip5",
    "is_in_selected_area", "attributed_episode_count", "attributed_beneficiary_count", "tin_clinician_count",
    "is_small_practice", "meets_criteria", "eligibility_reason", "is_participant", "is_scored",
    "first_selected_year", "reason", "reason_detail",
)


def _text(value: ir.Value, missing: str = "?") -> ir.StringValue:
    return value.cast("string").fill_null(missing)


def _details(t: ir.Table, rules: RulesForYear, measures: dict[str, str]) -> dict[str, ir.StringValue]:
    """Human text for each eligibility reason (`eligibility_detail`)."""
    year = str(eligibility_year(rules))
    threshold = str(rules.value("participation.episode_volume_threshold"))
    unit = volume_unit(rules)
    measure = ibis.cases(*((t.cohort == c, ibis.literal(m)) for c, m in measures.items()), else_="cost-measure")
    tie = ibis.ifelse(t.is_specialty_tie, " (tie; lower code taken)", "")
    specialty = ibis.literal("specialty ") + _text(t.specialty_code) + " (" + _text(t.specialty_basis) + ")" + tie
    plural = {"episode": "episodes", "beneficiary": "beneficiaries"}[unit]
    volume = _text(t._volume, "0") + " attributed " + measure + " " + plural + " in CY" + year
    return {
        "no_part_b_claims": ibis.literal(f"no Part B lines rendered in CY{year}"),
        "not_physician": "clinician table (TIN " + _text(t.tin) + ") marks the NPI as a non-physician "
                         "(participation.physicians_only)",
        "rhc_fqhc": "practice TIN " + _text(t.tin) + " is an RHC/FQHC (participation.exclude_rhc_fqhc)",
        "no_specialty": ibis.literal(f"no specialty code on the NPI's CY{year} Part B lines or in the clinician table"),
        "excluded_subspecialty": specialty + " is a cardiology subspecialty excluded from the HF cohort",
        "not_asm_specialty": specialty + " is not an ASM cohort specialty",
        "no_clinician_record": "no clinician-table row for the NPI (plurality TIN " + _text(t.tin)
                               + "): practice CBSA unknown",
        "missing_cbsa": "practice row TIN " + _text(t.tin) + " has no practice_cbsa_code (ZIP "
                        + _text(t.practice_zip5, "none") + "); supply the CBSA / metropolitan division",
        "outside_selected_area": "practice CBSA " + _text(t.cbsa_code) + " (TIN " + _text(t.tin)
                                 + ") is not a selected area",
        "below_episode_threshold": volume + " (< " + threshold + ")",
        "in": t.cohort.upper().fill_null("?") + " cohort: " + specialty + ", CBSA " + _text(t.cbsa_code)
              + " selected, " + volume + " (>= " + threshold + ")",
    }


def evaluate_eligibility(
    *, claim_line: ir.Table, clinician: ir.Table, episode: ir.Table, episode_attribution: ir.Table,
    selected_area: ir.Table, cohort_specialty: ir.Table, cohort_measure: ir.Table, rules: RulesForYear,
    extra_npi: ir.Table | None = None,
) -> ir.Table:
    """§512.710(b), asm-model §2.2–§2.3: judge every NPI (clinician table, Part B lines of the eligibility
    year, and `extra_npi`, e.g. earlier participants) against the criteria on CY PY − lookback data:
    bills Part B, physician (`participation.physicians_only`), not RHC/FQHC (`participation.exclude_rhc_fqhc`),
    an ASM cohort specialty, practice in a selected area, and at least `participation.episode_volume_threshold`
    attributed episodes (or beneficiaries, `participation.volume_count_unit`) of the cohort's measure.
    `participation.exclude_apm_participants` must be false: the canonical model carries no APM enrollment.

    Grain: NPI. Columns: PARTICIPANT_COLUMNS up to eligibility_reason, plus eligibility_detail.
    """
    check_performance_year(rules)
    if rules.value("participation.exclude_apm_participants"):
        raise ValueError("participation.exclude_apm_participants = true needs APM enrollment data, which the "
                         "canonical tables do not carry")
    threshold = int(rules.value("participation.episode_volume_threshold"))
    unit = volume_unit(rules)
    physicians_only = bool(rules.value("participation.physicians_only"))
    exclude_rhc = bool(rules.value("participation.exclude_rhc_fqhc"))

    specialty = assign_cohort(
        clinician_specialty=assign_plurality_specialty(claim_line=claim_line, clinician=clinician, rules=rules),
        cohort_specialty=cohort_specialty,
    )
    practice = flag_selected_area(
        practice=locate_practice(claim_line=claim_line, clinician=clinician, rules=rules),
        selected_area=selected_area, rules=rules,
    )
    volume = count_attributed_episodes(episode=episode, episode_attribution=episode_attribution,
                                       cohort_measure=cohort_measure, rules=rules)
    sizes = count_practice_clinicians(claim_line=claim_line, clinician=clinician, rules=rules)

    universe = practice.select("npi").union(specialty.select("npi"))
    if extra_npi is not None:
        universe = universe.union(extra_npi.select("npi"))
    universe = universe.distinct()
    s = specialty.rename(_s_npi="npi")
    t = universe.left_join(s, universe.npi == s._s_npi).drop("_s_npi")
    p = practice.rename(_p_npi="npi")
    t = t.left_join(p, t.npi == p._p_npi).drop("_p_npi")
    v = volume.rename(_v_npi="npi", _v_cohort="cohort")
    t = t.left_join(v, (t.npi == v._v_npi) & (t.cohort == v._v_cohort)).drop("_v_npi", "_v_cohort")
    z = sizes.rename(_z_tin="tin")
    t = t.left_join(z, t.tin == z._z_tin).drop("_z_tin")
    episodes = t.attributed_episode_count.fill_null(0)
    t = t.mutate(
        part_b_line_count=t.part_b_line_count.fill_null(0),
        attributed_episode_count=episodes,
        attributed_beneficiary_count=t.attributed_beneficiary_count.fill_null(0),
        _volume=episodes if unit == "episode" else t.attributed_beneficiary_count.fill_null(0),
    )
    failing = [
        ("no_part_b_claims", t.part_b_line_count == 0),
        ("not_physician", ibis.literal(physicians_only) & ~t.is_physician.fill_null(True)),
        ("rhc_fqhc", ibis.literal(exclude_rhc) & t.is_rhc_fqhc.fill_null(False)),
        ("no_specialty", t.specialty_status.fill_null("no_specialty") == "no_specialty"),
        ("excluded_subspecialty", t.specialty_status == "excluded_subspecialty"),
        ("not_asm_specialty", t.specialty_status == "not_asm_specialty"),
        ("no_clinician_record", ~t.has_clinician_record.fill_null(False)),
        ("missing_cbsa", t.cbsa_code.isnull()),
        ("outside_selected_area", ~t.is_in_selected_area.fill_null(False)),
        ("below_episode_threshold", t._volume < threshold),
    ]
    reason = ibis.cases(*((condition, code) for code, condition in failing), else_="in")
    t = t.mutate(eligibility_reason=reason)
    details = _details(t, rules, {c: measure_for_cohort(rules, c) for c in COHORTS})
    t = t.mutate(eligibility_detail=t.eligibility_reason.cases(*details.items(), else_=ibis.null("string")))
    return t.select(
        performance_year=ibis.literal(rules.performance_year, "int32"),
        eligibility_year=ibis.literal(eligibility_year(rules), "int32"),
        npi=t.npi, tin=t.tin, tin_source=t.tin_source, cohort=t.cohort, specialty_code=t.specialty_code,
        specialty_basis=t.specialty_basis, is_specialty_tie=t.is_specialty_tie.fill_null(False),
        part_b_line_count=t.part_b_line_count.cast("int64"), cbsa_code=t.cbsa_code, practice_zip5=t.practice_zip5,
        is_in_selected_area=t.is_in_selected_area,
        attributed_episode_count=t.attributed_episode_count.cast("int64"),
        attributed_beneficiary_count=t.attributed_beneficiary_count.cast("int64"),
        tin_clinician_count=t.tin_clinician_count.cast("int64"), is_small_practice=t.is_small_practice,
        meets_criteria=t.eligibility_reason == "in", eligibility_reason=t.eligibility_reason,
        eligibility_detail=t.eligibility_detail,
    )


def select_participants(
    *, claim_line: ir.Table, clinician: ir.Table, episode: ir.Table, episode_attribution: ir.Table,
    selected_area: ir.Table, cohort_specialty: ir.Table, cohort_measure: ir.Table, prior_participant: ir.Table,
    rules: RulesForYear,
) -> ir.Table:
    """§512.710(a)–(b): the participant table of the rules' performance year — `evaluate_eligibility` over
    every NPI plus earlier participants, then `apply_lock_in` with `prior_participant` (columns
    lock_in.PRIOR_COLUMNS: earlier performance years' participants).

    Grain: (performance_year, npi). Columns: PARTICIPANT_COLUMNS.
    """
    prior = prior_participant.filter(prior_participant.performance_year < rules.performance_year)
    evaluation = evaluate_eligibility(
        claim_line=claim_line, clinician=clinician, episode=episode, episode_attribution=episode_attribution,
        selected_area=selected_area, cohort_specialty=cohort_specialty, cohort_measure=cohort_measure,
        rules=rules, extra_npi=prior.select("npi"),
    )
    locked = apply_lock_in(evaluation=evaluation, prior_participant=prior, rules=rules)
    return locked.select(*PARTICIPANT_COLUMNS)

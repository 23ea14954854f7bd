"""Shared facts of the participation stage: the eligibility data year and the stable reason codes.

§512.710(b) criteria are judged on data of the calendar year `model.eligibility_lookback_years` before the
performance year (PY 2027 → CY 2025; asm-model.md §1.1, §2.2). Every clinician the stage considers gets
exactly one reason code from `REASONS`, in the order the criteria are checked.
"""

from __future__ import annotations

from openasm.rules import RulesForYear

# Why a clinician is (not) a participant in a performance year, in the order the criteria are checked.
# The first failing criterion is the clinician's `eligibility_reason`; `in` = meets every criterion.
REASONS: dict[str, str] = {
    "no_part_b_claims": "no Part B lines rendered in the eligibility year (does not bill under the PFS)",
    "not_physician": "the clinician table marks the NPI as a non-physician practitioner",
    "rhc_fqhc": "the practice is a rural health clinic or federally qualified health center",
    "no_specialty": "no specialty code on the clinician's Part B lines or in the clinician table",
    "excluded_subspecialty": "a cardiology subspecialty excluded from the heart failure cohort",
    "not_asm_specialty": "the plurality specialty is not an ASM cohort specialty",
    "no_clinician_record": "no clinician-table row for the NPI, so the practice location is unknown",
    "missing_cbsa": "the practice row has no CBSA / metropolitan division code",
    "outside_selected_area": "the practice CBSA / metropolitan division is not a selected area",
    "below_episode_threshold": "fewer attributed cost-measure episodes than the volume threshold",
    "in": "meets every eligibility criterion for the performance year",
}
# Reasons of the final table beyond the eligibility reasons.
LOCKED_IN = "locked_in"
FINAL_REASONS: dict[str, str] = {
    **REASONS,
    LOCKED_IN: "selected in an earlier performance year and a participant for the rest of the model, "
               "but does not meet the criteria this year",
}


def eligibility_year(rules: RulesForYear) -> int:
    """§512.710(b) as summarized in asm-model.md §1.1: the calendar year whose data decide eligibility for the
    rules' performance year (PY − `model.eligibility_lookback_years`)."""
    return rules.performance_year - int(rules.value("model.eligibility_lookback_years"))


def check_performance_year(rules: RulesForYear) -> None:
    """§512.710(a)(1)(i)–(v): participation exists only for the model's performance years."""
    years = [int(y) for y in rules.value("model.performance_years")]
    if rules.performance_year not in years:
        raise ValueError(
            f"performance year {rules.performance_year} is not an ASM performance year "
            f"(model.performance_years: {', '.join(str(y) for y in years)})"
        )

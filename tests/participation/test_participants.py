"""Golden cases for the participant table (§512.710(b); asm-model.md §2.2–§2.3): one clinician per rule, PY2027
judged on CY2025 data, threshold 20 attributed episodes, selected area 35614 only. Runs on DuckDB and PySpark."""

from __future__ import annotations

import pytest

from openasm.engine import connect
from openasm.participation.eligibility import FINAL_REASONS
from openasm.participation.participants import PARTICIPANT_COLUMNS
from openasm.rules import load_rules

from .factory import (
    BACKEND_PARAMS,
    NOT_SELECTED,
    TIN_A,
    TIN_B,
    Inputs,
    clinician,
    episodes,
    npi,
    visit,
)

# NPI numbers of the cases
HF_20, HF_19, SUBSPECIALTY, OUTSIDE, TIE, NURSE, RHC, NO_CLAIMS, NO_CBSA, NO_RECORD, LBP_20, TWO_TINS, \
    TWO_TINS_OUT = range(1, 14)


def _lines() -> list[dict]:
    lines = []
    for n, specialty in ((HF_20, "06"), (HF_19, "06"), (SUBSPECIALTY, "C3"), (OUTSIDE, "06"), (NURSE, "50"),
                         (RHC, "06"), (NO_CBSA, "20"), (NO_RECORD, "06"), (LBP_20, "72")):
        lines += [visit(f"P{n}", "2025-03-01", npi_n=n, specialty=specialty),
                  visit(f"P{n}", "2025-06-01", npi_n=n, specialty=specialty)]
    # Tie: $150 under 06 and $150 under 08 -> tie, the lower code 06 (general cardiology) is taken.
    lines += [visit("PT", "2025-02-01", npi_n=TIE, specialty="06", allowed=150.0),
              visit("PT", "2025-04-01", npi_n=TIE, specialty="08", allowed=100.0),
              visit("PT", "2025-05-01", npi_n=TIE, specialty="08", allowed=50.0)]
    # Two TINs: $300 under TIN_B (selected area) vs $100 under TIN_A (not selected) -> practice TIN_B.
    lines += [visit("PX", "2025-02-01", tin=TIN_B, npi_n=TWO_TINS, specialty="06", allowed=300.0),
              visit("PX", "2025-03-01", tin=TIN_A, npi_n=TWO_TINS, specialty="06", allowed=100.0)]
    # ... and the mirror image: more under TIN_A -> practice TIN_A, outside the selected areas.
    lines += [visit("PY", "2025-02-01", tin=TIN_B, npi_n=TWO_TINS_OUT, specialty="06", allowed=100.0),
              visit("PY", "2025-03-01", tin=TIN_A, npi_n=TWO_TINS_OUT, specialty="06", allowed=300.0)]
    # CY2026 lines do not count for PY2027 (eligibility year 2025).
    lines += [visit("PZ", "2026-02-01", npi_n=NO_CLAIMS, specialty="06")]
    return lines


def _clinicians() -> list[dict]:
    return [
        clinician(HF_20), clinician(HF_19), clinician(SUBSPECIALTY), clinician(OUTSIDE, cbsa=NOT_SELECTED),
        clinician(TIE), clinician(NURSE, physician=False), clinician(RHC, rhc=True),
        clinician(NO_CLAIMS, specialty="06"), clinician(NO_CBSA, cbsa=None, zip5="10025"), clinician(LBP_20),
        clinician(TWO_TINS, tin=TIN_A, cbsa=NOT_SELECTED), clinician(TWO_TINS, tin=TIN_B),
        clinician(TWO_TINS_OUT, tin=TIN_A, cbsa=NOT_SELECTED), clinician(TWO_TINS_OUT, tin=TIN_B),
    ]


def _episodes() -> list[dict]:
    rows = episodes(HF_20, 20)
    # 19 counted: the 20th is excluded, another is not attributed, and 5 end in CY2026 (another year).
    rows += episodes(HF_19, 19) + episodes(HF_19, 1, excluded="not_continuous_ab_ffs", tag="x")
    rows += episodes(HF_19, 1, attributed=False, tag="u") + episodes(HF_19, 5, year=2026, tag="y")
    rows += episodes(HF_19, 25, measure="COST_LBP_1", tag="l")  # the other cohort's measure does not count
    for n in (SUBSPECIALTY, OUTSIDE, TIE, NURSE, RHC, NO_CLAIMS, NO_CBSA, NO_RECORD, TWO_TINS, TWO_TINS_OUT):
        rows += episodes(n, 30, measure="COST_LBP_1" if n == NO_CBSA else "COST_HF_1")
    rows += episodes(LBP_20, 20, measure="COST_LBP_1")
    return rows


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def result(request, tmp_path_factory):
    """Computed once per backend for the module (Spark queries are slow to plan)."""
    engine = connect(request.param, tmp_path_factory.mktemp(f"participants-{request.param}"))
    try:
        yield Inputs(engine, _lines(), _clinicians(), _episodes()).participants(load_rules(2027))
    finally:
        engine.close()


def test_every_rule_gives_its_reason(result):
    reasons = {n: result[npi(n)]["reason"] for n in range(1, 14)}
    assert reasons == {
        HF_20: "in", HF_19: "below_episode_threshold", SUBSPECIALTY: "excluded_subspecialty",
        OUTSIDE: "outside_selected_area", TIE: "in", NURSE: "not_physician", RHC: "rhc_fqhc",
        NO_CLAIMS: "no_part_b_claims", NO_CBSA: "missing_cbsa", NO_RECORD: "no_clinician_record",
        LBP_20: "in", TWO_TINS: "in", TWO_TINS_OUT: "outside_selected_area",
    }
    assert set(next(iter(result.values()))) == set(PARTICIPANT_COLUMNS)
    assert all(r["reason"] in FINAL_REASONS and r["reason_detail"] for r in result.values())


def test_19_versus_20_episodes(result):
    hf20, hf19 = result[npi(HF_20)], result[npi(HF_19)]
    assert (hf20["attributed_episode_count"], hf20["is_participant"], hf20["cohort"]) == (20, True, "hf")
    # 19 scored, attributed CY2025 COST_HF_1 episodes; the excluded, unattributed, CY2026 and LBP ones not counted.
    assert (hf19["attributed_episode_count"], hf19["is_participant"], hf19["cohort"]) == (19, False, "hf")
    assert hf19["reason_detail"] == "19 attributed COST_HF_1 episodes in CY2025 (< 20)"
    assert hf20["reason_detail"] == ("HF cohort: specialty 06 (allowed_charges), CBSA 35614 selected, "
                                     "20 attributed COST_HF_1 episodes in CY2025 (>= 20)")
    assert (hf20["performance_year"], hf20["eligibility_year"], hf20["first_selected_year"]) == (2027, 2025, 2027)
    assert hf20["is_scored"] and not hf19["is_scored"] and hf19["first_selected_year"] is None


def test_plurality_tie_takes_the_lower_code(result):
    tie = result[npi(TIE)]
    # 06: $150; 08: $100 + $50 = $150 -> tie; 06 < 08.
    assert (tie["specialty_code"], tie["is_specialty_tie"], tie["cohort"]) == ("06", True, "hf")
    assert "(tie; lower code taken)" in tie["reason_detail"]
    assert result[npi(HF_20)]["is_specialty_tie"] is False


def test_excluded_subspecialty_and_other_exclusions(result):
    sub = result[npi(SUBSPECIALTY)]
    assert (sub["specialty_code"], sub["cohort"], sub["attributed_episode_count"]) == ("C3", None, 0)
    assert "excluded from the HF cohort" in sub["reason_detail"]
    assert result[npi(NURSE)]["specialty_code"] == "50"
    no_claims = result[npi(NO_CLAIMS)]  # its only line is in CY2026
    assert (no_claims["part_b_line_count"], no_claims["specialty_basis"]) == (0, "clinician_table")
    assert result[npi(NO_CBSA)]["reason_detail"].startswith(f"practice row TIN {TIN_A} has no practice_cbsa_code (ZIP 10025)")
    assert (result[npi(NO_RECORD)]["tin_source"], result[npi(NO_RECORD)]["cbsa_code"]) == ("claims_only", None)


def test_outside_selected_area_and_practice_tin(result):
    outside = result[npi(OUTSIDE)]
    assert (outside["cbsa_code"], outside["is_in_selected_area"], outside["cohort"]) == (NOT_SELECTED, False, "hf")
    assert outside["reason_detail"] == f"practice CBSA {NOT_SELECTED} (TIN {TIN_A}) is not a selected area"
    # The practice row is the TIN with the larger Part B allowed amount: $300 under TIN_B vs $100 under TIN_A.
    assert (result[npi(TWO_TINS)]["tin"], result[npi(TWO_TINS)]["cbsa_code"]) == (TIN_B, "35614")
    assert (result[npi(TWO_TINS_OUT)]["tin"], result[npi(TWO_TINS_OUT)]["tin_source"]) == (TIN_A, "claims")


def test_small_practice_counts_the_tin_clinicians(result):
    # TIN_B: TWO_TINS and TWO_TINS_OUT (clinician rows and lines) = 2 clinicians <= 15.
    row = result[npi(TWO_TINS)]
    assert (row["tin_clinician_count"], row["is_small_practice"]) == (2, True)
    # TIN_A: all 13 NPIs bill or are listed there -> 13 <= 15.
    assert result[npi(HF_20)]["tin_clinician_count"] == 13


def test_every_npi_is_accounted_for(result):
    assert set(result) == {npi(n) for n in range(1, 14)}
    assert sum(r["is_participant"] for r in result.values()) == 4

"""The eCQM conformance suites (quality.md §6): one test per case, every population of every group.

Cases are discovered from ../shared/data/ecqm-tests (skipped when the folder is absent); each measure's cases are
evaluated together once (DuckDB) and each case then checks its own populations.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from openasm.quality.conformance import PINNED_DISAGREEMENTS, discover_suites, evaluate_cases
from openasm.quality.value_sets import value_set_codes

SUITES_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ecqm-tests"
SUITES = discover_suites(SUITES_ROOT) if SUITES_ROOT.is_dir() else {}
CASES = [(suite, case.case_id) for suite, cases in SUITES.items() for case in cases]

@lru_cache(maxsize=None)
def suite_outcomes(suite: str) -> dict:
    outcomes = evaluate_cases(SUITES[suite], value_set_codes())
    return {outcome.case.case_id: outcome for outcome in outcomes}


@pytest.mark.skipif(not SUITES, reason=f"{SUITES_ROOT} is not present")
@pytest.mark.parametrize(("suite", "case_id"), CASES, ids=[f"{s}/{c[:8]}" for s, c in CASES])
def test_case_matches_expected_populations(suite: str, case_id: str) -> None:
    outcome = suite_outcomes(suite)[case_id]
    pin = PINNED_DISAGREEMENTS.get((outcome.case.ecqm_id, case_id))
    if pin is not None:  # an argued disagreement: exactly this difference, nothing else
        assert outcome.differences == pin and outcome.pinned and not outcome.failed
        return
    assert outcome.passed, "\n".join(
        f"{suite} {case_id} ({outcome.case.title}) group {g} {p}: expected {e}, got {a}"
        for g, p, e, a in outcome.differences)


@pytest.mark.skipif(not SUITES, reason=f"{SUITES_ROOT} is not present")
def test_every_suite_has_cases() -> None:
    assert all(len(cases) > 0 for cases in SUITES.values())
    assert {s.split("-")[0] for s in SUITES} == {"CMS156", "CMS2", "CMS69", "CMS144", "CMS135", "CMS165", "CMS90"}

"""Golden cases for TIN-NPI attribution and clinician specialty (ebcm.md §4)."""

from __future__ import annotations

import pytest

from openasm.episodes.attribution import attribute_clinicians
from openasm.episodes.group import group_episodes
from openasm.episodes.specialty import assign_clinician_specialty
from openasm.rules import load_rules

from .factory import TIN_A, bene, npi, table, visit, world


def _attribution(engine, lines, **overrides):
    rules = load_rules(2027, overrides or None)
    tables = {name: engine.save(name, t) for name, t in world(lines, [bene("B1")]).items()}
    grouped = group_episodes(rules=rules, cohorts=("lbp",), **tables)
    episode = grouped["episode"].filter(grouped["episode"].exclusion_reason.isnull())
    shares = attribute_clinicians(episode=episode, qualifying=grouped["qualifying_service"],
                                  claim_line=tables["claim_line"], rules=rules)
    return {r["rendering_npi"]: r for r in engine.fetch(shares).to_pylist()}


def test_two_npis_reach_30_percent_and_one_falls_below(engine_for):
    # Window opens 2026-03-02 (NPI 1 trigger, NPI 2 confirm). Qualifying lines in TAW start..episode end:
    # NPI 1: 4, NPI 2: 3, NPI 3: 2 of 9 -> shares 0.444, 0.333 (attributed), 0.222 (not attributed).
    days = {1: ["2026-03-02", "2026-05-01", "2026-07-01", "2026-09-01"],
            2: ["2026-03-10", "2026-06-01", "2026-08-01"],
            3: ["2026-10-01", "2026-11-01"]}
    lines = [visit("B1", day, npi_n=n) for n, dates in days.items() for day in dates]
    result = _attribution(engine_for("duckdb"), lines)
    assert {n: (r["npi_service_count"], r["tin_service_count"]) for n, r in result.items()} == {
        npi(1): (4, 9), npi(2): (3, 9), npi(3): (2, 9)}
    assert {n: r["is_attributed"] for n, r in result.items()} == {npi(1): True, npi(2): True, npi(3): False}
    assert result[npi(1)]["service_share"] == pytest.approx(4 / 9)


def test_exactly_30_percent_is_attributed(engine_for):
    # 10 lines: NPI 1 has 7, NPI 2 has 3 -> 0.30 meets the threshold (>=).
    lines = [visit("B1", f"2026-{m:02d}-01", npi_n=1) for m in range(3, 10)]
    lines += [visit("B1", f"2026-{m:02d}-15", npi_n=2) for m in range(3, 6)]
    result = _attribution(engine_for("duckdb"), lines)
    assert result[npi(2)]["service_share"] == pytest.approx(0.3)
    assert result[npi(2)]["is_attributed"] is True
    above = _attribution(engine_for("duckdb"), lines, **{"episodes.npi_share_threshold": 0.31})
    assert above[npi(2)]["is_attributed"] is False


def test_share_counted_by_claim_when_configured(engine_for):
    # NPI 2 bills one claim with three lines; by line it has 3 of 5, by claim 1 of 3.
    base = visit("B1", "2026-04-01", npi_n=2)
    multi = [base, {**base, "line_number": 2, "hcpcs_code": "97110"}, {**base, "line_number": 3, "hcpcs_code": "97140"}]
    lines = [visit("B1", "2026-03-02", npi_n=1), visit("B1", "2026-03-20", npi_n=1)] + multi
    by_line = _attribution(engine_for("duckdb"), lines)
    by_claim = _attribution(engine_for("duckdb"), lines, **{"episodes.npi_share_unit": "claim"})
    assert (by_line[npi(2)]["npi_service_count"], by_line[npi(2)]["tin_service_count"]) == (3, 5)
    assert (by_claim[npi(2)]["npi_service_count"], by_claim[npi(2)]["tin_service_count"]) == (1, 3)


def test_specialty_is_the_plurality_of_claims_and_the_clinician_table_overrides(backend, engine_for):
    engine = engine_for(backend)
    lines = [visit("B1", "2027-01-05", npi_n=1, specialty="20"), visit("B1", "2027-02-05", npi_n=1, specialty="20"),
             visit("B1", "2027-03-05", npi_n=1, specialty="05"),
             visit("B1", "2027-01-05", npi_n=2, specialty="72"), visit("B1", "2027-02-05", npi_n=2, specialty="09"),
             visit("B1", "2027-03-05", npi_n=3, specialty="14"),
             visit("B1", "2026-03-05", npi_n=4, specialty="14")]  # outside the performance year
    clinician = table("clinician", [{"tin": TIN_A, "npi": npi(3), "specialty_code": "25"}])
    result = assign_clinician_specialty(claim_line=engine.save("claim_line", table("claim_line", lines)),
                                        clinician=engine.save("clinician", clinician), rules=load_rules(2027))
    got = {r["rendering_npi"]: (r["specialty_code"], r["specialty_source"]) for r in engine.fetch(result).to_pylist()}
    # NPI 2 ties 1-1 between 09 and 72: the lower code wins.
    assert got == {npi(1): ("20", "claims"), npi(2): ("09", "claims"), npi(3): ("25", "clinician_table")}

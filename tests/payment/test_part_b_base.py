"""Part B pool base from claims (42 CFR 512.705, 512.750(a); asm-model.md §7.3, §7.5): which final-action lines
count as the participant's covered professional services, per NPI over all its TINs, with every line accounted
for by a status. Golden case on both backends."""

from __future__ import annotations

import ibis
import pytest

from openasm.payment.part_b_base import (
    PART_B_STATUSES,
    classify_part_b_lines,
    claims_cover_year,
    compute_part_b_base,
    compute_part_b_base_by_tin,
    reconcile_part_b_lines,
)
from openasm.rules import load_rules
from tests.episodes.factory import npi

from .claims import P1, P2, P9, TIN_A, TIN_B, TIN_C, claim_status, line

P3 = npi(3)  # a participant without any claim line
LINES = [  # claim id → expected status for the PY2027 pool base; arithmetic of the expected sums below
    line("L01", "2027-03-01", 100.0),                                                 # counted, TIN A
    line("L02", "2027-05-01", 50.0, tin=TIN_B),                                       # counted, TIN B
    line("L03", "2027-05-02", 10.0, hcpcs="80061"),                                  # lab → CLFS
    line("L04", "2027-05-03", 500.0, hcpcs="J1100"),                                 # Part B drug → ASP
    line("L05", "2027-05-04", 700.0, claim_type="outpatient"),                       # facility claim
    line("L06", "2027-05-05", 40.0, claim_type="dme", hcpcs="E0601"),                # DMEPOS claim
    line("L07", "2026-12-31", 30.0),                                                 # before the PY
    line("L08", "2027-12-20", 20.0, processed="2028-02-29"),                         # Dec 31 + 60 days: in time
    line("L09", "2027-12-21", 25.0, processed="2028-03-01"),                         # one day after the run-out
    line("L10", "2027-03-01", 60.0, who=P9),                                         # not a participant
    line("L11", "2027-06-01", 100.0, processed="2027-06-10", adjustment="original"),  # superseded by L12
    line("L12", "2027-06-01", 120.0, processed="2027-07-01", adjustment="adjustment", modifies="L11"),
    line("L13", "2027-06-02", 80.0, processed="2027-06-10"),                         # voided by L14
    line("L14", "2027-06-02", -80.0, processed="2027-06-20", adjustment="cancel", modifies="L13"),
    line("L15", "2027-08-01", None),                                                 # no paid amount
    line("L16", None, 70.0, who=P2, tin=TIN_C, claim_date="2027-09-01"),             # claim date stands in
    line("L17", "2029-02-01", 200.0),                                                # payment year
    line("L18", "2029-03-01", 5.0, processed="2030-06-01"),                          # payment year, late
    line("L19", "2027-10-01", 40.0, who=P2, tin=TIN_C, hcpcs="88305"),               # pathology: PFS
]
EXPECTED_STATUS = {
    "L01": "counted", "L02": "counted", "L03": "non_pfs_hcpcs", "L04": "non_pfs_hcpcs",
    "L05": "not_covered_claim_type", "L06": "not_covered_claim_type", "L07": "outside_service_year",
    "L08": "counted", "L09": "after_runout", "L10": "not_participant", "L11": "not_final_action",
    "L12": "counted", "L13": "not_final_action", "L14": "not_final_action", "L15": "missing_paid_amount",
    "L16": "counted", "L17": "outside_service_year", "L18": "outside_service_year", "L19": "counted",
}


def _participants():
    return ibis.memtable({"npi": [P1, P2, P3], "cohort": ["hf", "lbp", "hf"], "final_score": [54.1, 61.0, 0.0]})


def test_every_line_gets_the_expected_status(backend, engine_for):
    engine = engine_for(backend)
    claims = claim_status(engine, LINES)
    lines = classify_part_b_lines(claim_line_status=claims, participant=_participants(), rules=load_rules(2027))
    got = {r["claim_id"]: r["part_b_status"] for r in engine.fetch(lines).to_pylist()}
    assert got == EXPECTED_STATUS
    assert set(got.values()) <= set(PART_B_STATUSES)
    reconciled = engine.fetch(reconcile_part_b_lines(classified=lines)).to_pylist()
    counts = {r["part_b_status"]: r["line_count"] for r in reconciled}
    assert sum(counts.values()) == len(LINES)  # nothing dropped: 6 counted + 13 with a reason
    assert counts["counted"] == 6


def test_pool_base_per_participant_over_all_tins(backend, engine_for):
    engine = engine_for(backend)
    claims = claim_status(engine, LINES)
    base = compute_part_b_base(claim_line_status=claims, participant=_participants(), rules=load_rules(2027))
    got = {r["npi"]: r for r in engine.fetch(base).to_pylist()}
    # P1: L01 100 + L02 50 + L08 20 + L12 120 (the adjustment, not the 100 it replaced) = 290, TINs A and B
    assert got[P1]["part_b_paid_amount"] == pytest.approx(290.0)
    assert (got[P1]["part_b_line_count"], got[P1]["part_b_tin_count"], got[P1]["missing_paid_line_count"]) == (4, 2, 1)
    # P2: L16 70 (claim from-date) + L19 40 = 110
    assert got[P2]["part_b_paid_amount"] == pytest.approx(110.0) and got[P2]["cohort"] == "lbp"
    # P3: no lines → 0, kept as a participant row
    assert got[P3]["part_b_paid_amount"] == 0.0 and not got[P3]["has_part_b_claims"]
    assert len(got) == 3


def test_pool_base_by_tin(backend, engine_for):
    engine = engine_for(backend)
    claims = claim_status(engine, LINES)
    by_tin = compute_part_b_base_by_tin(claim_line_status=claims, participant=_participants(), rules=load_rules(2027))
    got = {(r["npi"], r["billing_tin"]): r["part_b_paid_amount"] for r in engine.fetch(by_tin).to_pylist()}
    # TIN A: 100 + 20 + 120 = 240; TIN B: 50; P2 TIN C: 70 + 40 = 110
    assert got == pytest.approx({(P1, TIN_A): 240.0, (P1, TIN_B): 50.0, (P2, TIN_C): 110.0})


def test_payment_year_amount_has_no_runout(engine_for):
    engine = engine_for("duckdb")
    claims = claim_status(engine, LINES)
    base = compute_part_b_base(claim_line_status=claims, participant=_participants(), rules=load_rules(2027),
                               service_year="payment_year")
    got = {r["npi"]: r["part_b_paid_amount"] for r in engine.fetch(base).to_pylist()}
    assert got[P1] == pytest.approx(205.0)  # L17 200 + L18 5 (processed late: counts in the payment year)
    assert got[P2] == 0.0
    cover = engine.fetch(claims_cover_year(claim_line_status=claims, year=2029)).to_pylist()
    assert cover == [{"has_claims_in_year": True}]
    assert engine.fetch(claims_cover_year(claim_line_status=claims, year=2030)).to_pylist() == [
        {"has_claims_in_year": False}]


def test_runout_and_ranges_are_rules(engine_for):
    engine = engine_for("duckdb")
    claims = claim_status(engine, LINES)
    rules = load_rules(2027, {"payment.claims_runout_days": 90, "payment.non_pfs_hcpcs_ranges": []})
    base = compute_part_b_base(claim_line_status=claims, participant=_participants(), rules=rules)
    got = {r["npi"]: r["part_b_paid_amount"] for r in engine.fetch(base).to_pylist()}
    assert got[P1] == pytest.approx(290.0 + 25.0 + 10.0 + 500.0)  # L09 in time; lab and drug lines now count


def test_unsupported_scope_is_refused():
    rules = load_rules(2027, {"payment.adjusted_claims_scope": "all_part_b_services"})
    with pytest.raises(ValueError, match="adjusted_claims_scope"):
        classify_part_b_lines(claim_line_status=ibis.memtable({"claim_id": ["x"]}), participant=_participants(),
                              rules=rules)

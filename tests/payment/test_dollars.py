"""Payment-year dollars (42 CFR 512.750(a); asm-model.md §7.5, §9 step 5): AF × covered professional services
paid in PaY = PY + 2, per (NPI, TIN), per participant and per TIN; estimates when the PaY is not in the claims;
the §7.6 invariant enforced at run time."""

from __future__ import annotations

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.payment.adjustment import (
    PoolInvariantError,
    check_pool_invariant_conditions,
    compute_payment_adjustment,
    enforce_pool_invariant,
)
from openasm.payment.dollars import (
    compute_adjustment_dollars,
    roll_up_dollars_by_participant,
    roll_up_dollars_by_tin,
)
from openasm.payment.part_b_base import compute_part_b_base
from openasm.rules import load_rules
from tests.episodes.factory import npi

from .claims import TIN_A, TIN_B, TIN_C, claim_status, line

A, B, C, D, E, F = (npi(n) for n in range(11, 17))
SCORES = {A: 54.1, B: 82.0, C: 47.5, D: 65.0, E: 30.0, F: 0.0}  # asm-model §9, HF cohort, PY2027
HOME_TIN = {A: TIN_A, B: TIN_A, C: TIN_B, D: TIN_C, E: TIN_C, F: TIN_A}
PY_LINES = [  # PB per §9: A 300,000; B 450,000 (two TINs); C 250,000; D 500,000; E 200,000; F 150,000
    line("Y1", "2027-04-01", 300_000.0, who=A), line("Y2", "2027-04-01", 250_000.0, who=B),
    line("Y3", "2027-05-01", 200_000.0, who=B, tin=TIN_B), line("Y4", "2027-04-01", 250_000.0, who=C, tin=TIN_B),
    line("Y5", "2027-04-01", 500_000.0, who=D, tin=TIN_C), line("Y6", "2027-04-01", 200_000.0, who=E, tin=TIN_C),
    line("Y7", "2027-04-01", 150_000.0, who=F),
]
PAY_LINES = [  # §9 step 5: A $320,000; B $480,000 (300,000 TIN A + 180,000 TIN B); F $140,000
    line("P1", "2029-04-01", 320_000.0, who=A), line("P2", "2029-04-01", 300_000.0, who=B),
    line("P3", "2029-04-01", 180_000.0, who=B, tin=TIN_B), line("P4", "2029-04-01", 140_000.0, who=F),
]


def _participant_score():
    return ibis.memtable({
        "cohort": ["hf"] * 6, "npi": list(SCORES), "tin": [HOME_TIN[n] for n in SCORES],
        "final_score": list(SCORES.values()), "is_neutral": [False] * 6,
    })


def _run(engine, lines, rules):
    claims = claim_status(engine, lines)
    base = compute_part_b_base(claim_line_status=claims, participant=_participant_score(), rules=rules)
    adjustment = engine.save("payment_adjustment", compute_payment_adjustment(participant_score=base, rules=rules))
    return claims, adjustment


def test_worked_example_payment_year_dollars_from_claims(backend, engine_for):
    engine = engine_for(backend)
    rules = load_rules(2027)
    claims, adjustment = _run(engine, PY_LINES + PAY_LINES, rules)
    (check,) = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjustment, rules=rules)).to_pylist()
    assert check["applies"] and check["holds"] and check["net_adjustment"] == pytest.approx(-24_975.00, abs=0.01)
    dollars = compute_adjustment_dollars(payment_adjustment=adjustment, rules=rules, claim_line_status=claims)
    rows = engine.fetch(dollars).to_pylist()
    assert not any(r["is_estimate"] for r in rows) and {r["estimate_basis"] for r in rows} == {"payment_year_claims"}
    per = {r["npi"]: r for r in engine.fetch(roll_up_dollars_by_participant(adjustment_dollars=dollars)).to_pylist()}
    # −2.2595% × 320,000 = −7,230.55; +3.7008% × 480,000 = +17,763.87; −9% × 140,000 = −12,600.00
    assert round(per[A]["payment_year_adjustment_amount"], 2) == pytest.approx(-7_230.55, abs=0.001)
    assert round(per[B]["payment_year_adjustment_amount"], 2) == pytest.approx(17_763.87, abs=0.001)
    assert round(per[F]["payment_year_adjustment_amount"], 2) == pytest.approx(-12_600.00, abs=0.001)
    assert per[B]["tin_count"] == 2 and per[B]["payment_year_paid_amount"] == pytest.approx(480_000.0)
    for n in (C, D, E):  # no services in 2029: nothing to adjust, and that is known, not estimated
        assert per[n]["payment_year_adjustment_amount"] == 0.0 and not per[n]["has_estimate"]
    b_rows = {r["billing_tin"]: r for r in rows if r["npi"] == B}
    af_b = b_rows[TIN_A]["adjustment_factor"]
    assert b_rows[TIN_A]["payment_year_adjustment_amount"] == pytest.approx(af_b * 300_000.0)
    assert b_rows[TIN_B]["adjusted_paid_amount"] == pytest.approx(180_000.0 * (1 + af_b))
    tins = {r["billing_tin"]: r for r in engine.fetch(roll_up_dollars_by_tin(adjustment_dollars=dollars)).to_pylist()}
    # TIN A = A + B's TIN-A share + F
    expected_a = per[A]["payment_year_adjustment_amount"] + af_b * 300_000.0 + per[F]["payment_year_adjustment_amount"]
    assert tins[TIN_A]["payment_year_adjustment_amount"] == pytest.approx(expected_a, abs=0.005)
    assert tins[TIN_A]["participant_count"] == 3
    assert sum(t["payment_year_adjustment_amount"] for t in tins.values()) == pytest.approx(
        sum(p["payment_year_adjustment_amount"] for p in per.values()), abs=0.01)


def test_estimate_when_payment_year_claims_are_absent(engine_for):
    engine = engine_for("duckdb")
    rules = load_rules(2027, {"payment.part_b_growth_rate": 0.03})
    claims, adjustment = _run(engine, PY_LINES, rules)
    rows = engine.fetch(compute_adjustment_dollars(payment_adjustment=adjustment, rules=rules,
                                                   claim_line_status=claims)).to_pylist()
    assert all(r["is_estimate"] and r["estimate_basis"] == "performance_year_claims" for r in rows)
    got = {(r["npi"], r["billing_tin"]): r for r in rows}
    # A: −6,778.64 (AF × PB) × 1.03² = −7,191.46
    assert round(got[(A, TIN_A)]["payment_year_adjustment_amount"], 2) == pytest.approx(-7_191.46, abs=0.011)
    # B's PB split by its PY claims: 250/450 and 200/450 of 450,000, each grown by 1.0609
    assert got[(B, TIN_A)]["payment_year_paid_amount"] == pytest.approx(250_000.0 * 1.0609)
    assert got[(B, TIN_B)]["payment_year_paid_amount"] == pytest.approx(200_000.0 * 1.0609)


def test_estimate_without_claims_uses_the_pool_base(engine_for):
    engine = engine_for("duckdb")
    rules = load_rules(2027)
    ps = _participant_score().mutate(part_b_paid_amount=ibis.literal(100_000.0))
    adjustment = compute_payment_adjustment(participant_score=ps, rules=rules)
    rows = engine.fetch(compute_adjustment_dollars(payment_adjustment=adjustment, rules=rules)).to_pylist()
    pays = {r["npi"]: r for r in engine.fetch(adjustment).to_pylist()}
    for r in rows:
        assert r["is_estimate"] and r["estimate_basis"] == "performance_year_base"
        assert r["billing_tin"] == HOME_TIN[r["npi"]]
        assert r["payment_year_adjustment_amount"] == pytest.approx(pays[r["npi"]]["adjustment_amount"])  # g = 0


def test_invariant_enforced_at_run_time(engine_for):
    engine = engine_for("duckdb")
    rules = load_rules(2027)
    _, adjustment = _run(engine, PY_LINES, rules)
    rows = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjustment, rules=rules)).to_pylist()
    assert rows[0]["applies"] and rows[0]["holds"] and enforce_pool_invariant(rows) == []
    broken = adjustment.mutate(adjustment_amount=ibis.ifelse(
        adjustment.npi == A, adjustment.adjustment_amount + 100.0, adjustment.adjustment_amount))
    rows = engine.fetch(check_pool_invariant_conditions(payment_adjustment=broken, rules=rules)).to_pylist()
    with pytest.raises(PoolInvariantError, match=r"cohort hf \(payment year 2029\).*difference 100\.00"):
        enforce_pool_invariant(rows)


def test_invariant_not_enforced_where_its_conditions_fail(engine_for):
    engine = engine_for("duckdb")
    rules = load_rules(2027)
    # One FS > 0 participant with a small base next to a large FS = 0 base: SF = 0.85 × 10,100 / 100 ≫ 1,
    # so AF is clamped at +RL and the invariant cannot hold.
    ps = ibis.memtable({"cohort": ["hf", "hf"], "npi": ["X", "Z"], "final_score": [50.0, 0.0],
                        "part_b_paid_amount": [100.0, 10_000.0], "is_neutral": [False, False]})
    rows = engine.fetch(check_pool_invariant_conditions(
        payment_adjustment=compute_payment_adjustment(participant_score=ps, rules=rules), rules=rules)).to_pylist()
    assert rows[0]["clamp_binds"] and not rows[0]["holds"]
    assert enforce_pool_invariant(rows) == rows  # reported, not raised
    no_zero = load_rules(2027, {"payment.pool_base_includes_zero_score": False})
    _, adjustment = _run(engine, PY_LINES, no_zero)
    rows = engine.fetch(check_pool_invariant_conditions(payment_adjustment=adjustment, rules=no_zero)).to_pylist()
    assert not rows[0]["applies"] and enforce_pool_invariant(rows) == rows


@pytest.fixture(scope="module")
def duck():
    opened = connect("duckdb")
    yield opened
    opened.close()


lines_strategy = st.lists(
    st.tuples(st.sampled_from(list(SCORES)), st.sampled_from([TIN_A, TIN_B, TIN_C]), st.floats(1.0, 50_000.0),
              st.booleans()),
    min_size=1, max_size=15,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=lines_strategy)
def test_tin_roll_up_adds_up(duck, drawn):
    """Σ participant dollars = Σ TIN dollars; each TIN = Σ of its (npi, tin) rows; each participant's dollars =
    AF × its payment-year paid amount."""
    rules = load_rules(2027)
    lines = PY_LINES + [line(f"H{i}", "2029-06-01" if in_pay else "2027-06-01", paid, who=who, tin=tin)
                        for i, (who, tin, paid, in_pay) in enumerate(drawn)]
    claims, adjustment = _run(duck, lines, rules)
    dollars = duck.save("dollars", compute_adjustment_dollars(payment_adjustment=adjustment, rules=rules,
                                                              claim_line_status=claims))
    rows = duck.fetch(dollars).to_pylist()
    per = duck.fetch(roll_up_dollars_by_participant(adjustment_dollars=dollars)).to_pylist()
    tins = duck.fetch(roll_up_dollars_by_tin(adjustment_dollars=dollars)).to_pylist()
    assert sum(t["payment_year_adjustment_amount"] for t in tins) == pytest.approx(
        sum(p["payment_year_adjustment_amount"] for p in per), abs=1e-6)
    for t in tins:
        mine = [r["payment_year_adjustment_amount"] for r in rows if r["billing_tin"] == t["billing_tin"]]
        assert t["payment_year_adjustment_amount"] == pytest.approx(sum(mine), abs=1e-6)
    for p in per:
        assert p["payment_year_adjustment_amount"] == pytest.approx(
            p["adjustment_factor"] * p["payment_year_paid_amount"], abs=1e-6)
    assert len(per) == len(SCORES)  # every participant has dollars (maybe $0), none duplicated

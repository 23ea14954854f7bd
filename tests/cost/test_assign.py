"""Golden cases for cost assignment (ebcm.md §5, §10.3): assigned vs unassigned services, dating, the
standardized-amount fallback, post-acute care after an assigned stay, Part D by drug class, scaling."""

from __future__ import annotations

import csv

import ibis
import pytest

from openasm.cost.assign import assign_episode_costs, select_assigned_services, summarize_observed_cost
from openasm.episodes.codes import condition_dx_codes
from openasm.rules import load_rules

from ..episodes.factory import d, table, visit

RULES = load_rules(2027)


def _episode(bene_id: str, measure: str, start: str, end: str, days: int):
    return ibis.memtable({
        "episode_id": [f"E-{bene_id}"], "measure_id": [measure], "bene_id": [bene_id], "billing_tin": ["111111111"],
        "taw_start_date": [d(start)], "episode_start_date": [d(start)], "episode_end_date": [d(end)],
        "episode_days": [days],
    })


def _cost(engine, measure, lines, fills=(), ndc=(), diagnoses=(), episode=None, rules=RULES):
    stored = {
        "claim_line": engine.save("claim_line", table("claim_line", list(lines))),
        "claim_diagnosis": engine.save("claim_diagnosis", table("claim_diagnosis", list(diagnoses))),
        "pharmacy_claim": engine.save("pharmacy_claim", table("pharmacy_claim", list(fills))),
    }
    ndc_class = ibis.memtable({"ndc_code": [n for n, _ in ndc] or ["00000000000"],
                               "drug_class": [c for _, c in ndc] or ["none"]})
    assigned = select_assigned_services(dx_codes=condition_dx_codes(rules, measure), measure_id=measure,
                                        ndc_class=ndc_class, rules=rules, **stored)
    cost_lines = engine.save("cost_line", assign_episode_costs(episode=episode, assigned_service=assigned, rules=rules))
    observed = summarize_observed_cost(episode=episode, episode_cost_line=cost_lines, rules=rules)
    return engine.fetch(cost_lines).to_pylist(), engine.fetch(observed).to_pylist()[0]


def test_assigned_and_unassigned_services_for_low_back_pain(engine_for):
    engine = engine_for("duckdb")
    episode = _episode("B1", "COST_LBP_1", "2027-01-01", "2027-12-31", 365)
    lines = [
        visit("B1", "2027-02-01", hcpcs="72148", allowed=400.0),                 # lumbar MRI, LBP dx: assigned
        visit("B1", "2027-03-01", hcpcs="97110", allowed=60.0),                  # PT, LBP dx: assigned
        visit("B1", "2027-03-05", hcpcs="72148", dx="I5022", allowed=400.0),     # MRI with HF dx: not assigned
        visit("B1", "2027-04-01", hcpcs="93306", allowed=250.0),                 # echo: not on the LBP list
        visit("B1", "2026-12-31", hcpcs="97110", allowed=60.0),                  # before the episode
        visit("B2", "2027-03-01", hcpcs="97110", allowed=60.0),                  # another beneficiary
    ]
    rows, observed = _cost(engine, "COST_LBP_1", lines, episode=episode)
    assert sorted((r["hcpcs_code"], r["service_date"]) for r in rows) == [
        ("72148", d("2027-02-01")), ("97110", d("2027-03-01"))]
    assert observed["observed_raw_amount"] == pytest.approx(460.0)
    assert observed["observed_cost"] == pytest.approx(460.0)  # full-year episode: 460 x 365/365


def test_standardized_amount_is_used_when_present_and_scaling_annualizes(engine_for):
    engine = engine_for("duckdb")
    episode = _episode("B1", "COST_LBP_1", "2027-07-01", "2027-12-31", 184)
    with_std = {**visit("B1", "2027-08-01", hcpcs="72148", allowed=400.0), "standardized_amount": 350.0}
    without = visit("B1", "2027-09-01", hcpcs="97110", allowed=60.0)
    rows, observed = _cost(engine, "COST_LBP_1", [with_std, without], episode=episode)
    by_code = {r["hcpcs_code"]: (r["std_cost_amount"], r["cost_source"]) for r in rows}
    assert by_code == {"72148": (350.0, "standardized_input"), "97110": (60.0, "allowed_unstandardized")}
    # O_raw = 410; O = 410 x 365 / 184 = 813.3152...
    assert observed["observed_cost"] == pytest.approx(410.0 * 365 / 184)
    assert observed["unstandardized_amount"] == pytest.approx(60.0)


def test_heart_failure_stay_post_acute_and_part_d(engine_for):
    engine = engine_for("duckdb")
    episode = _episode("B1", "COST_HF_1", "2027-01-01", "2027-12-31", 365)
    stay = {"claim_id": "IP1", "line_number": 1, "bene_id": "B1", "claim_type": "inpatient",
            "claim_from_date": d("2027-03-01"), "claim_thru_date": d("2027-03-05"), "admission_date": d("2027-03-01"),
            "discharge_date": d("2027-03-05"), "drg_code": "291", "allowed_amount": 9000.0}
    other_stay = {**stay, "claim_id": "IP2", "drg_code": "470", "admission_date": d("2027-06-01"),
                  "claim_from_date": d("2027-06-01"), "claim_thru_date": d("2027-06-04"),
                  "discharge_date": d("2027-06-04")}                               # hip replacement: not assigned
    snf_in = {"claim_id": "SNF1", "line_number": 1, "bene_id": "B1", "claim_type": "snf",
              "claim_from_date": d("2027-03-06"), "claim_thru_date": d("2027-03-20"), "allowed_amount": 5000.0}
    snf_late = {**snf_in, "claim_id": "SNF2", "claim_from_date": d("2027-04-10"), "claim_thru_date": d("2027-04-20")}
    snf_after_other = {**snf_in, "claim_id": "SNF3", "claim_from_date": d("2027-06-05"),
                       "claim_thru_date": d("2027-06-15")}
    fills = [{"claim_id": "P1", "bene_id": "B1", "fill_date": d("2027-02-01"), "ndc_code": "00054429725",
              "allowed_amount": 5.0, "gross_drug_cost_amount": 6.0},
             {"claim_id": "P2", "bene_id": "B1", "fill_date": d("2027-02-01"), "ndc_code": "00378395277",
              "allowed_amount": 7.0}]                                              # statin: not an HF class
    rows, observed = _cost(engine, "COST_HF_1", [stay, other_stay, snf_in, snf_late, snf_after_other], fills=fills,
                           ndc=[("00054429725", "loop_diuretic"), ("00378395277", "statin")], episode=episode)
    assert sorted((r["claim_id"], r["assignment_rule"]) for r in rows) == [
        ("IP1", "inpatient:stay"), ("P1", "part_d:loop_diuretic"), ("SNF1", "post_acute:after_stay")]
    # 9000 + 5000 (SNF within 30 days of discharge) + 6 (gross drug cost) = 14006
    assert observed["observed_raw_amount"] == pytest.approx(14006.0)


def test_episode_without_assigned_services_costs_zero(engine_for):
    engine = engine_for("duckdb")
    episode = _episode("B1", "COST_LBP_1", "2027-01-01", "2027-12-31", 365)
    rows, observed = _cost(engine, "COST_LBP_1", [visit("B9", "2027-02-01", hcpcs="72148")], episode=episode)
    assert rows == []
    assert (observed["observed_cost"], observed["assigned_line_count"]) == (0.0, 0)


def test_heart_failure_em_counts_only_from_cardiology_and_primary_care(engine_for):
    """ebcm §10.3: HF carrier E/M is assigned when a cardiology (06, C3, ...) or primary-care (11, 08, NP 50, ...)
    clinician bills it; an orthopedist's or a pain specialist's E/M with the HF diagnosis is not. Echocardiography
    carries no specialty condition."""
    engine = engine_for("duckdb")
    episode = _episode("B1", "COST_HF_1", "2027-01-01", "2027-12-31", 365)
    em = {"hcpcs": "99214", "dx": "I5022"}
    lines = [visit("B1", "2027-02-01", specialty="06", **em), visit("B1", "2027-02-02", specialty="C3", **em),
             visit("B1", "2027-02-03", specialty="11", **em), visit("B1", "2027-02-04", specialty="50", **em),
             visit("B1", "2027-02-05", specialty="20", **em), visit("B1", "2027-02-06", specialty="72", **em),
             visit("B1", "2027-02-07", specialty="20", hcpcs="93306", dx="I5022")]
    rows, _ = _cost(engine, "COST_HF_1", lines, episode=episode)
    assert sorted(r["service_date"].day for r in rows) == [1, 2, 3, 4, 7]


def test_unknown_billing_specialty_group_is_refused(engine_for, tmp_path):
    folder = tmp_path / "lists"
    folder.mkdir()
    shipped = RULES.code_list("cost.assignment_rules").to_pylist()
    with (folder / "cost__assigned_service_rules.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(shipped[0]))
        writer.writeheader()
        writer.writerows({**r, "billing_specialty_group": "cardiologyy" if r["billing_specialty_group"] else ""}
                         for r in shipped)
    episode = _episode("B1", "COST_HF_1", "2027-01-01", "2027-12-31", 365)
    with pytest.raises(ValueError, match="billing_specialty_group 'cardiologyy' is not a group"):
        _cost(engine_for("duckdb"), "COST_HF_1", [visit("B1", "2027-02-01", hcpcs="99214", dx="I5022")],
              episode=episode, rules=RULES.with_code_lists(folder))


def test_hcpcs_rule_keys_match_a_line_once_per_setting():
    """§10.3 as lookup keys: a code a setting counts from any specialty is not also keyed by specialty (a line
    would then match twice), every claim type of the setting gets its key, and an unknown group is refused."""
    from openasm.cost.assign import HCPCS_RULE_SETTINGS, hcpcs_rule_keys

    rules = [
        {"setting": "carrier_or_outpatient", "code": "99213", "billing_specialty_group": ""},
        {"setting": "carrier_or_outpatient", "code": "99213", "billing_specialty_group": "cardiology"},
        {"setting": "carrier", "code": "93000", "billing_specialty_group": "cardiology"},
        {"setting": "ed", "code": "99283", "billing_specialty_group": None},
        {"setting": "not_a_setting", "code": "11111", "billing_specialty_group": ""},
    ]
    any_keys, specialty_keys = hcpcs_rule_keys(rules, {"cardiology": ["06", "C3"]})
    anywhere = set(zip(*[any_keys.column(c).to_pylist() for c in any_keys.column_names]))
    assert anywhere == {
        *(("carrier_or_outpatient:hcpcs", t, "99213") for t in HCPCS_RULE_SETTINGS["carrier_or_outpatient"]),
        *(("ed:hcpcs", t, "99283") for t in HCPCS_RULE_SETTINGS["ed"])}
    by_specialty = set(zip(*[specialty_keys.column(c).to_pylist() for c in specialty_keys.column_names]))
    assert by_specialty == {("carrier:hcpcs", "carrier", "93000", s) for s in ("06", "C3")}
    with pytest.raises(ValueError, match="billing_specialty_group 'oncology'"):
        hcpcs_rule_keys([{"setting": "carrier", "code": "1", "billing_specialty_group": "oncology"}], {})

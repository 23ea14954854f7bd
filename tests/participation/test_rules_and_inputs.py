"""The participation parameters and reference inputs: plurality basis, cohort table, selected-area files,
volume unit, and the settings the engine refuses rather than silently ignores."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openasm.participation.cohort import assign_cohort, cohort_specialty_table
from openasm.participation.eligibility import check_performance_year, eligibility_year
from openasm.participation.selected_area import (
    SHIPPED_AREA_LIST,
    SelectedAreaError,
    load_selected_areas,
    read_selected_area_file,
)
from openasm.participation.specialty_plurality import assign_plurality_specialty
from openasm.rules import load_rules

from ..episodes.factory import TIN_A, npi, table, visit
from .factory import Inputs, clinician, episodes


def _specialty(engine, lines, clinicians=(), **overrides) -> dict[str, tuple]:
    out = assign_plurality_specialty(claim_line=engine.save("claim_line", table("claim_line", lines)),
                                     clinician=engine.save("clinician", table("clinician", list(clinicians))),
                                     rules=load_rules(2027, overrides or None))
    return {r["npi"]: (r["specialty_code"], r["specialty_basis"], r["is_specialty_tie"], r["part_b_line_count"])
            for r in engine.fetch(out).to_pylist()}


def test_plurality_by_allowed_charges_or_by_claims(engine_for):
    engine = engine_for("duckdb")
    # NPI 1: one $300 claim as 06, two $100 claims as 20 -> allowed: 06 ($300 > $200); claims: 20 (2 > 1).
    lines = [visit("B", "2025-01-02", npi_n=1, specialty="06", allowed=300.0),
             visit("B", "2025-02-02", npi_n=1, specialty="20"), visit("B", "2025-03-02", npi_n=1, specialty="20"),
             visit("B", "2025-04-02", npi_n=1, specialty=None),  # counted as a line, no specialty vote
             visit("B", "2024-04-02", npi_n=1, specialty="08", allowed=9_000.0)]  # CY2024: not the eligibility year
    assert _specialty(engine, lines)[npi(1)] == ("06", "allowed_charges", False, 4)
    by_claims = _specialty(engine, lines, **{"participation.specialty_plurality_basis": "claim_count"})
    assert by_claims[npi(1)] == ("20", "claim_count", False, 4)


def test_clinician_table_specialty_overrides_claims(engine_for):
    engine = engine_for("duckdb")
    lines = [visit("B", "2025-01-02", npi_n=1, specialty="06")]
    got = _specialty(engine, lines, [clinician(1, specialty="C3"), clinician(2, specialty="20")])
    assert got == {npi(1): ("C3", "clinician_table", False, 1), npi(2): ("20", "clinician_table", False, 0)}


def test_cohort_table_and_assignment(engine_for):
    rules = load_rules(2027)
    ref = cohort_specialty_table(rules).to_pylist()
    assert {r["specialty_code"]: r["cohort"] for r in ref if r["specialty_status"] == "asm"} == {
        "06": "hf", "05": "lbp", "09": "lbp", "14": "lbp", "20": "lbp", "25": "lbp", "72": "lbp"}
    assert {r["specialty_code"] for r in ref if r["specialty_status"] == "excluded_subspecialty"} == {
        "C3", "21", "C7", "D8"}
    specialty = ibis.memtable(pa.table({"npi": ["a", "b", "c", "d"], "specialty_code": ["06", "D8", "08", None]}))
    out = engine_for("duckdb").fetch(assign_cohort(clinician_specialty=specialty,
                                                   cohort_specialty=ibis.memtable(pa.Table.from_pylist(ref))))
    assert {r["npi"]: (r["cohort"], r["specialty_status"]) for r in out.to_pylist()} == {
        "a": ("hf", "asm"), "b": (None, "excluded_subspecialty"), "c": (None, "not_asm_specialty"),
        "d": (None, "no_specialty")}


def test_a_code_in_two_cohorts_is_a_rules_error():
    rules = load_rules(2027, {"participation.specialty_codes.lbp": ["06", "20"]})
    with pytest.raises(ValueError, match="specialty 06 is listed for both hf and lbp"):
        cohort_specialty_table(rules)


def test_eligibility_year_and_model_years():
    assert eligibility_year(load_rules(2027)) == 2025
    assert eligibility_year(load_rules(2027, {"model.eligibility_lookback_years": 0})) == 2027
    check_performance_year(load_rules(2031))
    with pytest.raises(ValueError, match="2032 is not an ASM performance year"):
        check_performance_year(load_rules(2032))


# ------------------------------------------------------------------------------------------- selected areas
def test_shipped_list_is_the_labelled_default():
    areas = load_selected_areas(load_rules(2027))
    assert areas.evidence == "default" and areas.source == f"codes/{SHIPPED_AREA_LIST}.csv"
    assert areas.table.column_names == ["cbsa_code"] and areas.table.num_rows == 51


def test_user_file_param_and_code_list_folder_replace_the_default(tmp_path):
    (tmp_path / "areas.csv").write_text("Metro Name,CBSA\nNew York,35614\nDenver,19740\nNew York again,35614\n")
    direct = load_selected_areas(load_rules(2027), tmp_path / "areas.csv")
    assert direct.table["cbsa_code"].to_pylist() == ["19740", "35614"] and direct.evidence == "override"
    pq.write_table(pa.table({"cbsa_code": ["16740"]}), tmp_path / "areas.parquet")
    by_rule = load_selected_areas(load_rules(2027, {"participation.selected_areas_file": str(tmp_path / "areas.parquet")}))
    assert by_rule.table["cbsa_code"].to_pylist() == ["16740"] and by_rule.source.endswith("areas.parquet")
    folder = tmp_path / "codes"
    folder.mkdir()
    (folder / f"{SHIPPED_AREA_LIST}.csv").write_text("cbsa_code\n12060\n")
    by_folder = load_selected_areas(load_rules(2027).with_code_lists(folder))
    assert by_folder.table["cbsa_code"].to_pylist() == ["12060"] and by_folder.evidence == "override"


@pytest.mark.parametrize("content, message", [
    ("name\nNew York\n", "no CBSA column; expected one of cbsa_code"),
    ("cbsa_code\n", "no rows"),
    ("cbsa_code\n35614\n3561\nabcde\n", "line 3 column cbsa_code: '3561' is not a 5-digit CBSA"),
])
def test_malformed_selected_area_files(tmp_path, content, message):
    path = tmp_path / "areas.csv"
    path.write_text(content)
    with pytest.raises(SelectedAreaError) as err:
        read_selected_area_file(path)
    assert str(path) in str(err.value) and message in str(err.value)
    with pytest.raises(SelectedAreaError, match="does not exist"):
        read_selected_area_file(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------- refused settings
def _one_clinician(engine_for) -> Inputs:
    lines = [visit("B", "2025-01-02", npi_n=1, specialty="06")]
    return Inputs(engine_for("duckdb"), lines, [clinician(1)], episodes(1, 20))


def test_volume_counted_in_beneficiaries_when_configured(engine_for):
    # 20 episodes of 10 beneficiaries (two each): 20 episodes pass, 10 beneficiaries do not.
    rows = [dict(r, bene_id=f"B{i // 2}") for i, r in enumerate(episodes(1, 20))]
    inputs = Inputs(engine_for("duckdb"), [visit("B", "2025-01-02", npi_n=1, specialty="06")], [clinician(1)], rows)
    assert inputs.participants(load_rules(2027))[npi(1)]["reason"] == "in"
    by_bene = inputs.participants(load_rules(2027, {"participation.volume_count_unit": "beneficiary"}))[npi(1)]
    assert (by_bene["reason"], by_bene["attributed_beneficiary_count"]) == ("below_episode_threshold", 10)
    assert by_bene["reason_detail"] == "10 attributed COST_HF_1 beneficiaries in CY2025 (< 20)"


@pytest.mark.parametrize("override, message", [
    ({"participation.geography_basis": "billing_address"}, "billing_address' is not supported"),
    ({"participation.exclude_apm_participants": True}, "needs APM enrollment data"),
])
def test_unsupported_settings_are_refused(engine_for, override, message):
    with pytest.raises(ValueError, match=message):
        _one_clinician(engine_for).participants(load_rules(2027, override))


def test_physician_and_rhc_rules_can_be_switched_off(engine_for):
    lines = [visit("B", "2025-01-02", npi_n=n, specialty="06") for n in (1, 2)]
    inputs = Inputs(engine_for("duckdb"), lines, [clinician(1, physician=False), clinician(2, rhc=True)],
                    episodes(1, 20) + episodes(2, 20))
    assert {r["reason"] for r in inputs.participants(load_rules(2027)).values()} == {"not_physician", "rhc_fqhc"}
    relaxed = load_rules(2027, {"participation.physicians_only": False, "participation.exclude_rhc_fqhc": False})
    assert {r["reason"] for r in inputs.participants(relaxed).values()} == {"in"}
    assert TIN_A == inputs.participants(relaxed)[npi(1)]["tin"]

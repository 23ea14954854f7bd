"""User-supplied code lists (e.g. the CMS measure codes workbook exported to CSV) replace shipped ones by name."""

from __future__ import annotations

import pytest

from openasm.rules import RulesError, load_rules


def test_user_list_replaces_shipped_list_and_is_recorded(tmp_path):
    (tmp_path / "episodes__condition_dx_codes.csv").write_text(
        "measure,family,code,match,is_enabled\nCOST_HF_1,heart_failure,I50,prefix,true\n"
        "COST_LBP_1,low_back_pain,M545,prefix,true\n")
    rules = load_rules(2027).with_code_lists(tmp_path)
    codes = rules.code_list("episodes.dx_codes")
    assert codes.num_rows == 2 and codes.column("code").to_pylist() == ["I50", "M545"]
    assert rules.code_list("episodes.trigger_hcpcs").num_rows > 10  # not in the folder: shipped list
    rows = {r["name"]: r for r in rules.code_list_rows()}
    assert rows["codes:episodes__condition_dx_codes"]["evidence"] == "override"
    assert rows["codes:episodes__trigger_service_codes"]["value"] == "openasm-default-2027.1"
    # Overrides of parameters keep the folder.
    assert rules.with_overrides({"cost.min_age": 21}).code_list("episodes.dx_codes").num_rows == 2


def test_unknown_list_name_is_rejected(tmp_path):
    (tmp_path / "my_codes.csv").write_text("a\n1\n")
    with pytest.raises(RulesError, match="my_codes.csv: not a code list openasm knows"):
        load_rules(2027).with_code_lists(tmp_path)


def test_wrong_columns_name_the_file_and_columns(tmp_path):
    (tmp_path / "episodes__condition_dx_codes.csv").write_text("measure,code\nCOST_HF_1,I50\n")
    with pytest.raises(RulesError) as err:
        load_rules(2027).with_code_lists(tmp_path)
    assert "episodes__condition_dx_codes.csv" in str(err.value) and "missing family, match, is_enabled" in str(err.value)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(2027).with_code_lists(tmp_path / "nope")


def test_two_member_overrides_of_one_parameter_both_apply():
    rules = load_rules(2027, {"episodes.confirm_window_days.hf": 90, "episodes.confirm_window_days.lbp": 30})
    assert rules.value("episodes.confirm_window_days") == {"hf": 90, "lbp": 30}

"""Resolution of the rules tree for a performance year: hand-computed cases, overrides, broken rules folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from openasm.rules import RulesError, load_parameter_files, load_rules, parse_override
from openasm.rules.files import package_rules_dir


# ------------------------------------------------------------------------------------------- hand-computed
@pytest.mark.parametrize(
    ("performance_year", "payment_year", "risk_level"),
    [
        (2027, 2029, 0.09),  # PaY = 2027 + 2 = 2029 -> key 2029: 9%
        (2028, 2030, 0.09),  # 2028 + 2 = 2030 -> 9% (asm-model.md §7.2: 9% in the first two payment years)
        (2029, 2031, 0.10),  # 2029 + 2 = 2031 -> 10%
        (2030, 2032, 0.11),  # 2030 + 2 = 2032 -> 11%
        (2031, 2033, 0.12),  # 2031 + 2 = 2033 -> 12%
    ],
)
def test_risk_level_by_performance_year(performance_year: int, payment_year: int, risk_level: float) -> None:
    rules = load_rules(performance_year)
    assert rules.payment_year == payment_year
    resolved = rules.resolved("payment.risk_level")
    assert resolved.lookup_year == payment_year and resolved.key_year == payment_year
    assert rules.value("payment.risk_level") == pytest.approx(risk_level)


def test_retention_holds_forward_from_first_payment_year() -> None:
    # one key (PaY 2029: 15%) held forward to PaY 2033
    for performance_year in range(2027, 2032):
        resolved = load_rules(performance_year).resolved("payment.retention_rate")
        assert resolved.value == pytest.approx(0.15)
        assert (resolved.lookup_year, resolved.key_year) == (performance_year + 2, 2029)


def test_values_keyed_by_earlier_years_hold_forward() -> None:
    rules = load_rules(2027)
    assert rules.value("cost.hcc_version") == "V28"  # keys 2024: V24, 2025: V28 -> 2025 holds in 2027
    assert rules.resolved("cost.hcc_version").key_year == 2025
    assert rules.value("cost.points_method") == "median_sd"  # keys 2017 decile, 2024 median_sd
    assert rules.value("cost.benchmark_source") == "computed"  # 2024 published, 2026 computed
    averages = rules.value("cost.national_average_cost_per_episode")  # latest published file: PY2025
    assert averages == {"COST_HF_1": 14994.38, "COST_LBP_1": 1930.26}
    assert rules.value("cost.case_minimum") == 20
    assert rules.cohort_value("episodes.confirm_window_days", "hf") == 180
    assert rules.cohort_value("episodes.confirm_window_days", "lbp") == 60
    assert rules.cohort_value("participation.specialty_codes", "hf") == ["06"]


def test_band_table_reproduces_median_sd_knots() -> None:
    # COST_HF_1 PY2024 (ebcm.md §9.4): M = 13,637.80, s = 3,757.30 -> knot "30" = M - 0.5 s = 11,759.15 (8 points)
    table = load_rules(2027).value("cost.band_table")
    knots = {row["percentile_key"]: (13637.80 + row["offset_sd"] * 3757.30, row["points"]) for row in table}
    assert knots[30][0] == pytest.approx(11759.15, abs=0.02) and knots[30][1] == 8
    assert knots[10][0] == pytest.approx(8001.85, abs=0.02) and knots[10][1] == 10
    assert knots[99][0] == pytest.approx(23970.38, abs=0.02) and knots[99][1] == 1
    assert knots[None] == (pytest.approx(13637.80), 7.5)
    assert [row["points"] for row in table] == sorted((row["points"] for row in table), reverse=True)


def test_values_read_are_recorded() -> None:
    rules = load_rules(2027)
    rules.value("quality.weight")
    rules.code_list("episodes.dx_codes")  # a codes parameter resolves to its list and counts as used
    used = {r.name for r in rules.used()}
    assert used == {"quality.weight", "episodes.dx_codes"}
    rows = {row["name"]: row for row in rules.manifest_rows()}
    assert rows["quality.weight"]["evidence"] == "secondary"
    assert rows["quality.weight"]["citation"]


def test_code_list_by_parameter_and_by_name_agree() -> None:
    rules = load_rules(2027)
    assert rules.code_list("cost.clinical_exclusions").equals(rules.code_list("cost__clinical_exclusion_codes"))
    with pytest.raises(RulesError, match="participation.specialty_codes"):
        rules.code_list("participation.specialty_codes")  # a literal code set, not a list name
    with pytest.raises(RulesError, match="no_such_list"):
        rules.code_list("no_such_list")


# ------------------------------------------------------------------------------------------- overrides
def test_override_by_name() -> None:
    rules = load_rules(2027, {"payment.exchange_slope_k": 0.2, "quality.weight": 1})
    assert rules.value("payment.exchange_slope_k") == 0.2
    assert rules.value("quality.weight") == 1.0 and isinstance(rules.value("quality.weight"), float)
    row = {r["name"]: r for r in rules.manifest_rows()}["payment.exchange_slope_k"]
    assert row["evidence"] == "override" and row["shipped_value"] == "0.1" and row["value"] == "0.2"


def test_override_cohort_member() -> None:
    rules = load_rules(2027, [parse_override("episodes.confirm_window_days.hf=90")])
    assert rules.cohort_value("episodes.confirm_window_days", "hf") == 90
    assert rules.cohort_value("episodes.confirm_window_days", "lbp") == 60  # untouched member kept
    partial = load_rules(2027, {"episodes.confirm_window_days": {"lbp": 45}})
    assert partial.value("episodes.confirm_window_days") == {"hf": 180, "lbp": 45}


def test_parse_override() -> None:
    assert parse_override("episodes.confirm_window_days.lbp=45") == ("episodes.confirm_window_days.lbp", 45)
    assert parse_override("payment.exchange_midpoint_rule = fixed_50") == ("payment.exchange_midpoint_rule", "fixed_50")
    assert parse_override("cost.outlier_trim_pct=[2, 98]") == ("cost.outlier_trim_pct", [2, 98])
    with pytest.raises(RulesError):
        parse_override("no-equals-sign")


def test_override_of_null_default_and_enum() -> None:
    rules = load_rules(2027, {"quality.topped_out_cap_points": 7, "payment.exchange_midpoint_rule": "fixed_50"})
    assert rules.value("quality.topped_out_cap_points") == 7
    assert rules.value("payment.exchange_midpoint_rule") == "fixed_50"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quality.weight": "half"}, r"quality\.weight.*expected a number"),
        ({"cost.exclude_ma": 1}, r"cost\.exclude_ma.*true or false"),
        ({"episodes.confirm_window_days": {"xx": 3}}, r"episodes\.confirm_window_days.*unknown keys"),
        ({"episodes.confirm_window_days.xx": 3}, r"episodes\.confirm_window_days.*unknown keys"),
        ({"episodes.confirm_window_days.hf": "long"}, r"episodes\.confirm_window_days\.hf.*expected a number"),
        ({"episodes.death_policy": "ignore"}, r"episodes\.death_policy.*not one of"),
        ({"cost.hcc_version": "V99"}, r"cost\.hcc_version.*not one of"),
        ({"cost.ra_features": {"COST_HF_1": ["shoe_size"]}}, r"cost\.ra_features.*not one of"),
        ({"quality.topped_out_cap_points": "seven"}, r"quality\.topped_out_cap_points.*expected a number"),
        ({"cost.outlier_trim_pct": ["1", 99]}, r"cost\.outlier_trim_pct.*numbers"),
        ({"episodes.dx_codes": "episodes__missing"}, r"episodes\.dx_codes.*episodes__missing"),
        ({"payment.no_such_parameter": 1}, r"unknown parameter 'payment\.no_such_parameter'"),
    ],
)
def test_override_errors_name_the_parameter(overrides: dict, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        load_rules(2027, overrides)


# ------------------------------------------------------------------------------------------- broken folders
def _copy_rules(tmp_path: Path) -> Path:
    shutil.copytree(package_rules_dir() / "params", tmp_path / "params")
    shutil.copytree(package_rules_dir() / "codes", tmp_path / "codes")
    return tmp_path


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_copied_rules_folder_loads(tmp_path: Path) -> None:
    rules = load_rules(2027, rules_dir=_copy_rules(tmp_path))
    assert rules.value("payment.risk_level") == pytest.approx(0.09)


def test_bad_evidence_names_file_and_key(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/quality/weight.yaml", lambda d: d["values"][2027].update(evidence="rumour"))
    with pytest.raises(RulesError, match=r"params/quality/weight\.yaml.*key 'values\.2027\.evidence'"):
        load_parameter_files(base)


def test_missing_description_names_file_and_key(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/cost/weight.yaml", lambda d: d.pop("description"))
    with pytest.raises(RulesError, match=r"params/cost/weight\.yaml.*key 'description'.*required"):
        load_rules(2027, rules_dir=base)


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    path = base / "params/payment/exchange_range.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "extra: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"params/payment/exchange_range\.yaml: not valid YAML"):
        load_parameter_files(base)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/ia_pi/pi_deduction.yaml", lambda d: d.update(colour="red"))
    with pytest.raises(RulesError, match=r"params/ia_pi/pi_deduction\.yaml.*key 'colour'.*[Ee]xtra"):
        load_parameter_files(base)


def test_duplicate_year_key_is_rejected(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    path = base / "params/payment/risk_level.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  2029: {value: 0.5, evidence: default}\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"params/payment/risk_level\.yaml.*duplicate key 2029"):
        load_parameter_files(base)


def test_numeric_unit_rejects_text(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/quality/data_completeness_threshold.yaml",
               lambda d: d["values"][2027].update(value="75%"))
    with pytest.raises(RulesError, match=r"data_completeness_threshold\.yaml.*needs numbers"):
        load_parameter_files(base)


def test_enum_value_outside_allowed_is_rejected(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/episodes/death_policy.yaml", lambda d: d["values"][2024].update(value="ignore"))
    with pytest.raises(RulesError, match=r"params/episodes/death_policy\.yaml.*'ignore' is not one of"):
        load_parameter_files(base)


def test_missing_code_list_names_file_and_key(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/episodes/dx_codes.yaml", lambda d: d["values"][2024].update(value="episodes__nope"))
    with pytest.raises(RulesError, match=r"params/episodes/dx_codes\.yaml: key 'values\.2024\.value'.*episodes__nope"):
        load_parameter_files(base)


def test_code_list_without_source_is_rejected(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    (base / "codes/episodes__condition_dx_codes.source.yaml").unlink()
    with pytest.raises(RulesError, match="missing episodes__condition_dx_codes.source.yaml"):
        load_rules(2027, rules_dir=base).code_list("episodes.dx_codes")


def test_parameter_without_value_for_the_year_names_it(tmp_path: Path) -> None:
    base = _copy_rules(tmp_path)
    _edit_yaml(base / "params/cost/weight.yaml",
               lambda d: d.update(values={2030: {"value": 0.5, "evidence": "reg"}}))
    rules = load_rules(2027, rules_dir=base)  # resolved when read: only a stage reading it fails
    with pytest.raises(RulesError, match=r"parameter cost\.weight has no value on or before 2027"):
        rules.value("cost.weight")
    assert "cost.weight" in rules.unresolved() and "cost.weight" not in {r.name for r in rules.all()}
    with pytest.raises(RulesError, match=r"parameter cost\.weight has no value on or before 2027"):
        load_rules(2027, {"cost.weight": 0.4}, rules_dir=base)


def test_missing_params_folder(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="does not exist"):
        load_parameter_files(tmp_path)


# ------------------------------------------------------------------------------------------- property
@settings(max_examples=25, deadline=None)
@given(performance_year=st.integers(min_value=2027, max_value=2031))
def test_payment_year_parameters_are_looked_up_at_py_plus_two(performance_year: int) -> None:
    rules = load_rules(performance_year)
    payment = [r for r in rules.all() if r.period == "payment_year"]
    assert payment
    for resolved in payment:
        assert resolved.lookup_year == performance_year + 2
        assert resolved.key_year <= resolved.lookup_year
    for resolved in rules.all():
        if resolved.period == "performance_year":
            assert resolved.lookup_year == performance_year
            assert resolved.key_year <= performance_year

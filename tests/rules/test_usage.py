"""From a parameter to the code that applies it: every parameter is read by some function, every literal
`rules.value("…")` names a parameter that exists, and `openasm rules --used-by` lists the readers."""

from __future__ import annotations

import textwrap

from typer.testing import CliRunner

from openasm.cli import app
from openasm.rules import load_parameter_files
from openasm.rules.usage import functions_reading, literal_reads

NAMES = sorted(load_parameter_files())


def test_every_parameter_is_read_by_some_function() -> None:
    unread = [name for name, functions in functions_reading(NAMES).items() if not functions]
    assert not unread, f"parameters no function reads: {unread}"


def test_every_literal_read_names_an_existing_parameter() -> None:
    unknown = [f"{r.module}:{r.line} {r.name}" for r in literal_reads(NAMES) if r.name not in NAMES]
    assert not unknown, unknown


def test_reads_through_module_constants_and_nested_functions(tmp_path) -> None:
    package = tmp_path / "openasm"
    (package / "stage").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "stage" / "__init__.py").write_text("")
    (package / "stage" / "step.py").write_text(textwrap.dedent('''
        RULE = "payment.risk_level"

        def direct(rules):
            return rules.value("cost.weight")

        def through_constant(rules):
            def inner():
                return rules.value(RULE)
            return inner()

        def typo(rules):
            return rules.value("payment.no_such_rule")
    '''))
    readers = functions_reading(["payment.risk_level", "cost.weight", "quality.weight"], root=package)
    assert readers == {"cost.weight": ("openasm.stage.step.direct",),
                       "payment.risk_level": ("openasm.stage.step.through_constant.inner",),
                       "quality.weight": ()}
    reads = literal_reads(["payment.risk_level", "cost.weight", "quality.weight"], root=package)
    assert [(r.name, r.line) for r in reads] == [("cost.weight", 5), ("payment.no_such_rule", 13)]


def test_rules_used_by_lists_the_functions(wide_console) -> None:
    result = CliRunner().invoke(app, ["rules", "--used-by", "payment.risk_level"])
    assert result.exit_code == 0, result.output
    assert "42 CFR 512.750(c)(1)(i)" in result.output
    assert "openasm.payment.exchange.PaymentRules.from_rules" in result.output  # read once for every formula
    unknown = CliRunner().invoke(app, ["rules", "--used-by", "payment.no_such_rule"])
    assert unknown.exit_code == 2 and "unknown parameter 'payment.no_such_rule'" in unknown.output

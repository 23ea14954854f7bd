"""`openasm whatif` and `openasm simulate` on the demo run: the documented examples work, the JSON matches the
library, a seed reproduces the simulation, and bad input gets one clear line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from openasm.cli import app
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for


def _first_npi(run_dir) -> str:
    return next(str(r["npi"]) for r in load_run_tables(run_dir).rows("payment_adjustment") if not r["is_neutral"])


def test_whatif_command_matches_the_library(demo_output):
    run_dir = demo_output / "run"
    npi = _first_npi(run_dir)
    decision = decision_for(load_run_tables(run_dir), npi=npi)
    rate = next(n for n in decision.levers if n.endswith(".rate"))
    measure = rate.split(".")[1]
    result = CliRunner().invoke(app, ["whatif", str(run_dir), "--npi", npi,
                                      "--set", f"quality.{measure.lower()}.rate=0.62",
                                      "--target", "af>=0", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    rows = {r["metric"]: r for r in payload["rows"]}
    expected = decision.evaluate({rate: 0.62})
    assert abs(rows["final_score"]["scenario"] - float(expected.final_score[0, 0])) < 1e-9
    assert {b["lever"] for b in payload["break_even"]} == set(decision.levers)
    table = CliRunner().invoke(app, ["whatif", str(run_dir), "--npi", npi, "--set", f"{rate}=0.62", "--explain"])
    assert table.exit_code == 0 and "each lever alone" not in table.output and "exp(" in table.output


def test_simulate_command_is_reproducible_for_a_seed(demo_output):
    run_dir = demo_output / "run"
    npi = _first_npi(run_dir)
    args = ["simulate", str(run_dir), "--npi", npi, "--draws", "400", "--seed", "9", "--json"]
    one, two = (CliRunner().invoke(app, args) for _ in range(2))
    assert one.exit_code == 0, one.output
    a, b = json.loads(one.output), json.loads(two.output)
    assert a["dollars"] == b["dollars"] and a["draws"] == 400
    assert {"p5", "p25", "p50", "p75", "p95"} == set(a["dollars"])


def test_bad_input_gets_one_clear_line(demo_output, tmp_path):
    run_dir = demo_output / "run"
    npi = _first_npi(run_dir)
    unknown = CliRunner().invoke(app, ["whatif", str(run_dir), "--npi", npi, "--set", "quality.Q999.rate=0.5"])
    assert unknown.exit_code == 2 and "unknown lever" in " ".join(unknown.output.split())
    missing = CliRunner().invoke(app, ["simulate", str(tmp_path), "--npi", npi])
    assert missing.exit_code == 2 and "not an openasm run folder" in " ".join(missing.output.split())
    nobody = CliRunner().invoke(app, ["whatif", str(run_dir), "--npi", "1234567893"])
    assert nobody.exit_code == 2 and "no payment_adjustment row" in " ".join(nobody.output.split())

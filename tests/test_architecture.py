"""The shape of the package: layered imports without cycles (import-linter contracts in pyproject.toml), modules
of one step each (≤ 400 lines), and every command of the README answering `--help` with its options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from openasm.cli import app

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "openasm"
MAX_MODULE_LINES = 400
# The README's commands and the options each keeps (a rename or a lost option fails here).
COMMAND_OPTIONS = {
    "synth": ["--out", "--benes", "--seed", "--years", "--chunk-benes", "--format"],
    "ingest": ["--out", "--backend", "--spark-master", "--force", "--format"],
    "ingest-835": ["--out", "--py", "--set", "--backend", "--spark-master", "--force"],
    "summarize": ["--py", "--set", "--backend", "--spark-master"],
    "episodes": ["--py", "--set", "--ndc-class-map", "--code-lists", "--backend", "--spark-master"],
    "cost": ["--py", "--set", "--code-lists", "--backend", "--spark-master"],
    "participate": ["--py", "--years", "--selected-areas", "--prior", "--compare-with", "--set", "--code-lists"],
    "lookup": ["--file", "--npi", "--name", "--org"],
    "ingest-fhir": ["--out", "--backend", "--force"],
    "synth-fhir": ["--out", "--py", "--seed", "--copies"],
    "conformance": ["--valuesets", "--measure", "--report", "--backend", "--spark-master"],
    "quality": ["--py", "--q220", "--q492", "--qpp-json", "--qrda3", "--group-reporting", "--set", "--code-lists"],
    "quality-benchmarks": ["--exclusions", "--py"],
    "score": ["--py", "--attestation", "--euc", "--practice-size", "--benchmarks", "--set", "--code-lists"],
    "payment": ["--py", "--set", "--code-lists", "--backend", "--spark-master", "--part-b-base"],
    "explain": ["--npi", "--py", "--run", "--set", "--format"],
    "rules": ["--py", "--set", "--only", "--used-by"],
    "schema": [],
    "report": ["--out", "--py", "--set", "--pdf", "--npi", "--tin", "--no-suppress"],
    "whatif": ["--npi", "--tin", "--set", "--target", "--explain", "--json"],
    "simulate": ["--npi", "--tin", "--draws", "--seed", "--peers", "--threads", "--json"],
    "serve": ["--host", "--port", "--no-suppress"],
    "demo": ["--out", "--benes", "--seed", "--py", "--backend", "--format"],
    "version": [],
}


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_is_longer_than_one_step() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_every_command_is_registered() -> None:
    names = set(get_command(app).commands)
    assert set(COMMAND_OPTIONS) <= names, sorted(set(COMMAND_OPTIONS) - names)


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_help_of_each_command_lists_its_options(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in COMMAND_OPTIONS[command]:
        assert option in result.output, (command, option)

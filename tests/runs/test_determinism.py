"""Issue 9, runs: two runs of the same demo gave the same numbers but not the same files (row order, the last
float digits of parallel sums). Identical inputs and options now give byte-identical outputs: every published
table, its CSV, the shareable aggregates and the HTML pages (the manifest's timestamps and the PDF's creation
date aside)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openasm.cli import app

pytestmark = pytest.mark.usefixtures("wide_console")
COMPARED = ("run/outputs/*.parquet", "run/outputs/*.csv", "shareable/*", "*.html")


def _digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for pattern in COMPARED for path in sorted(folder.glob(pattern))}


def test_two_demo_runs_give_byte_identical_outputs(tmp_path, monkeypatch) -> None:
    digests = []
    for attempt in ("first", "second"):
        # The same relative --out in two working folders: the paths a run records are the same.
        workdir = tmp_path / attempt
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        result = CliRunner().invoke(app, ["demo", "--out", "demo", "--benes", "3000", "--seed", "3"])
        assert result.exit_code == 0, result.output
        digests.append(_digests(workdir / "demo"))
    first, second = digests
    assert len(first) > 60 and any(name.endswith("payment_adjustment.parquet") for name in first)
    differing = sorted(name for name in first if first[name] != second.get(name))
    assert not differing and first.keys() == second.keys(), differing

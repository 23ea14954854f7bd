"""Shared fixtures: the backend matrix and order-insensitive table comparison (Ibis-style)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from openasm.engine import BACKENDS, connect


def _spark_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return False
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


def pytest_collection_modifyitems(config, items):
    # In CI a missing Spark/Java is an install defect, not a reason to skip.
    if _spark_available() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="pyspark or a Java runtime is not installed here")
    for item in items:
        if "spark" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.spark] if b == "pyspark" else []) for b in BACKENDS])
def backend(request) -> str:
    """Each test using it runs on DuckDB and on PySpark (local mode)."""
    return request.param


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.spark, pytest.mark.slow] if b == "pyspark" else [])
                        for b in BACKENDS])
def backend_spark_slow(request) -> str:
    """DuckDB in `make test`, PySpark too in `make test-all`: for tests whose PySpark path (the same reader and
    stage code) another test already runs on PySpark in `make test`, so the CI run stays near 15 minutes."""
    return request.param


@pytest.fixture
def engine_for(tmp_path):
    """Open an engine of the given backend in a fresh run folder; closed after the test."""
    opened = []

    def _open(name: str, run_dir: Path | None = None):
        engine = connect(name, run_dir or tmp_path / f"run-{name}")
        opened.append(engine)
        return engine

    yield _open
    for engine in opened:
        engine.close()


def sort_table(table: pa.Table) -> pa.Table:
    """Rows in a canonical order, so results compare without depending on row order."""
    keys = [(name, "ascending") for name in table.column_names]
    return table.sort_by(keys)


def assert_tables_equal(left: pa.Table, right: pa.Table, float_tol: float = 1e-9, abs_tol: float = 0.0) -> None:
    """Same columns, same rows in any order; floats within a relative tolerance (or `abs_tol`, e.g. a cent,
    for values computed from sums whose order differs between backends)."""
    assert left.column_names == right.column_names
    assert left.num_rows == right.num_rows
    a, b = sort_table(left).to_pylist(), sort_table(right).to_pylist()
    for row_a, row_b in zip(a, b):
        for key in row_a:
            va, vb = row_a[key], row_b[key]
            if isinstance(va, float) and isinstance(vb, float):
                assert abs(va - vb) <= max(abs_tol, float_tol * max(1.0, abs(va), abs(vb))), (key, va, vb)
            else:
                assert va == vb, (key, va, vb, row_a)


@pytest.fixture
def wide_console(monkeypatch):
    """Rich wraps to the terminal width; CLI tests read whole lines."""
    from openasm.cli import common

    monkeypatch.setattr(common.console, "width", 300)
    monkeypatch.setattr(common.err_console, "width", 300)


def ingest_folder(engine, folder: Path):
    """`runs.ingest.run_ingest` of a folder of canonical tables into the engine's run folder."""
    from openasm.runs.ingest import IngestInputs, run_ingest

    return run_ingest(engine, None, engine.run_dir, IngestInputs(Path(folder)))


DEMO_BENES, DEMO_SEED = 5000, 3


def run_demo_in(workdir: Path, name: str):
    """`openasm demo --out <name>` run from `workdir`, with the shared fixture's size and seed: a relative --out,
    so two runs in two folders record the same paths (the determinism test compares them byte for byte)."""
    from typer.testing import CliRunner

    from openasm.cli import app

    previous = Path.cwd()
    os.chdir(workdir)
    try:
        return CliRunner().invoke(app, ["demo", "--out", name, "--benes", str(DEMO_BENES), "--seed", str(DEMO_SEED)])
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """One small `openasm demo` folder shared by every test that reads a finished run (scores, payment, report,
    PDF, dashboard): built once per test session, also across pytest-xdist workers (a file lock in the shared
    base temp folder)."""
    import fcntl

    # Under pytest-xdist each worker's base temp is a child of the session's folder: the parent is shared by the
    # workers of this session only. Without xdist the base temp itself is the session's folder.
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / f"demo-{DEMO_BENES}-{DEMO_SEED}"
    with open(root / f"demo-{DEMO_BENES}-{DEMO_SEED}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            if target.exists():
                shutil.rmtree(target)
            result = run_demo_in(root, target.name)
            assert result.exit_code == 0, result.output
            (target / ".complete").write_text("ok")
    return target

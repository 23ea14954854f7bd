"""Small synthetic worlds shared by the synth tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from openasm.synth import generate_world

SMALL = {"benes": 1500, "seed": 20260, "first_year": 2025, "last_year": 2027, "chunk_benes": 600}
CALIBRATION = {"benes": 8000, "seed": 11, "first_year": 2025, "last_year": 2027}


def read(world: Path, table: str) -> pa.Table:
    return ds.dataset(world / table, format="parquet").to_table()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "world"
    calls = []
    summary = generate_world(out, progress=lambda done, total: calls.append((done, total)), **SMALL)
    assert calls[-1] == (SMALL["benes"], SMALL["benes"]) and len(calls) == 3
    return out, summary


@pytest.fixture(scope="session")
def calibration_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "calibration"
    generate_world(out, **CALIBRATION)
    return out

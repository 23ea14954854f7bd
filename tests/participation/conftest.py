"""A small synthetic world shared by the participation parity and command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from openasm.synth import generate_world


@pytest.fixture(scope="session")
def participation_world(tmp_path_factory) -> Path:
    """900 beneficiaries, CY2025–2027: enough for PY2028 (CY2026) and PY2029 (CY2027) participants."""
    world = tmp_path_factory.mktemp("participation-world")
    generate_world(out_dir=world, benes=900, seed=21, first_year=2025, last_year=2027)
    return world

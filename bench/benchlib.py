"""What the bench scripts share: peak memory and a synthetic world to measure on."""

from __future__ import annotations

import resource
import time
from pathlib import Path


def peak_rss_mb(include_children: bool = True) -> float:
    """Peak resident set size in MB of this process (and, by default, its children; ru_maxrss is KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if include_children else 0
    return max(own, children) / 1024


def synthesize_world(folder: Path, benes: int, seed: int) -> Path:
    """A 2025-2027 synthetic world in `folder`, timing printed."""
    from openasm.synth import generate_world

    started = time.perf_counter()
    generate_world(out_dir=folder, benes=benes, seed=seed, first_year=2025, last_year=2027)
    print(f"synth: {benes:,} beneficiaries in {time.perf_counter() - started:.1f} s")
    return folder

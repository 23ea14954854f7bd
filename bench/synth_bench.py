"""Benchmark the synthetic world generator: beneficiaries/s, claim lines/s, peak RSS, output size.

    python bench/synth_bench.py --benes 1000000            # into a temporary folder, removed afterwards
    python bench/synth_bench.py --benes 200000 --out /tmp/world --keep

Prints timings only; nothing is asserted (ARCHITECTURE.md §6: speed goes to bench/).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import peak_rss_mb

from openasm.synth import generate_world


def _size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--years", default="2025-2027", help="first-last calendar year")
    parser.add_argument("--chunk-benes", type=int, default=25_000)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary output")
    args = parser.parse_args(argv)
    first, last = (int(y) for y in args.years.split("-"))
    temp = None
    out = args.out
    if out is None:
        temp = Path(tempfile.mkdtemp(prefix="openasm-synth-bench-"))
        out = temp / "world"
    last_report = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last_report[0] > 15 or done == total:
            print(f"  {done:>10,} / {total:,} beneficiaries", flush=True)
            last_report[0] = now

    print(f"synth bench: {args.benes:,} beneficiaries, years {first}-{last}, seed {args.seed}, "
          f"chunk {args.chunk_benes:,} -> {out}", flush=True)
    started = time.perf_counter()
    summary = generate_world(out, benes=args.benes, seed=args.seed, first_year=first, last_year=last,
                             chunk_benes=args.chunk_benes, progress=progress)
    elapsed = time.perf_counter() - started
    lines = summary.row_counts["claim_line"]
    print(f"elapsed            {elapsed:10.1f} s")
    print(f"beneficiaries/s    {args.benes / elapsed:10,.0f}")
    print(f"claim lines        {lines:10,}")
    print(f"claim lines/s      {lines / elapsed:10,.0f}")
    for name, count in summary.row_counts.items():
        print(f"  {name:<17}{count:12,} rows")
    print(f"peak RSS           {peak_rss_mb():10,.0f} MiB")
    print(f"output size        {_size_mib(out):10,.1f} MiB")
    if temp is not None and not args.keep:
        shutil.rmtree(temp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

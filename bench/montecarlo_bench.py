"""Monte Carlo over unknown peers: draws per second of full cohorts (prints figures; asserts nothing).

    python bench/montecarlo_bench.py                       # demo-output/run, its first participant, 10,000 draws
    python bench/montecarlo_bench.py --run RUN --npi N --draws 10000 --threads 2

Each draw builds a full peer cohort (4,027 LBP or 2,610 HF participants, `decide.peer_cohort_size`), scores it
and pays it. Prints draws/s, the P50 of the practice's payment-year dollars with its Monte Carlo standard error,
the CPU seconds spent (over all threads: on a shared machine the wall time depends on the other load, CPU time
divided by the threads does not), and the ratio of the time per draw to a floor measured in the same run: drawing
and summing one cohort's worth of
uniform random numbers per draw (the least any Monte Carlo of this size must do).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from openasm.decide.montecarlo import simulate
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for


def floor_seconds(draws: int, peers: int) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(0, draws, 250):
        rng.random((250, peers), dtype=np.float32).sum(axis=1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("demo-output/run"))
    parser.add_argument("--npi", default=None, help="participant NPI (default: the run's first)")
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (args.run / "manifest.json").is_file():
        raise SystemExit(f"{args.run} is not a run folder: `make demo` writes demo-output/run")
    run = load_run_tables(args.run)
    npi = args.npi or str(run.rows("payment_adjustment")[0]["npi"])
    decision = decision_for(run, npi=npi)
    cohort = decision.subject.cohorts[0]
    peers = int(run.rules.value("decide.peer_cohort_size")[cohort])
    simulate(decision, draws=250, seed=args.seed, threads=args.threads)  # warm-up: priors, imports
    cpu_started = time.process_time()
    sim = simulate(decision, draws=args.draws, seed=args.seed, threads=args.threads)
    cpu = time.process_time() - cpu_started
    summary = sim.summary()
    floor = floor_seconds(args.draws, peers)
    print(f"npi {npi} cohort {cohort}: {args.draws:,} draws of a {peers:,}-participant cohort in {sim.seconds:.2f} s "
          f"on {args.threads} thread(s)")
    print(f"draws/s               {summary['draws_per_second']:,.0f}")
    print(f"CPU seconds           {cpu:.2f} over all threads ({cpu / args.threads:.2f} s per thread: the wall time "
          f"on {args.threads} idle cores)")
    print(f"P50 dollars           {summary['dollars']['p50']:,.2f}  "
          f"(MC standard error {summary['standard_error_p50_dollars']:,.2f})")
    print(f"mean dollars          {summary['mean_dollars']:,.2f}  "
          f"(MC standard error {summary['standard_error_mean_dollars']:,.2f})")
    print(f"P5 / P95 dollars      {summary['dollars']['p5']:,.2f} / {summary['dollars']['p95']:,.2f}")
    print(f"P(AF < 0)             {summary['probability_af_negative']:.3f}")
    print(f"floor (uniforms only) {floor:.2f} s; time / floor = {sim.seconds / floor:.1f}")


if __name__ == "__main__":
    main()

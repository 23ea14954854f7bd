"""A performance year at scale: every claims stage and the quality stage, timed against two floors measured in
the same run (prints figures; asserts nothing).

    python bench/scale_bench.py --benes 250000                 # synthesise a world, then run every stage
    python bench/scale_bench.py --world DIR --work DIR         # reuse a world (Parquet or CSV tables)
    python bench/scale_bench.py --world DIR --backend pyspark --spark-master spark://127.0.0.1:7077

Floors (DuckDB, default settings, same machine, same run):
- load: `CREATE TABLE … AS SELECT *` of all six canonical tables into one database file (the clock stops at the
  last table, before DuckDB's closing checkpoint); measured again in the run database's own storage format
  (`load floor *`, printed for comparison; ratios are to the floor at default settings);
- scan: one scan + group-by of claim lines and of diagnoses.
Each stage runs as its own `openasm` command in a fresh process, as a user would run it; its wall time and peak
RSS (the whole process tree, JVM included, sampled from /proc, and the kernel's own maximum for the child) are
printed next to its ratio to the load floor, then the run folder's size next to the input's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from openasm.engine import DUCKDB_STORAGE

TABLES = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")
CLAIMS_STAGES = ("ingest", "summarize", "episodes", "cost", "participate")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    """Wall time and peak memory of one command."""

    name: str
    seconds: float
    peak_rss_mb: float
    returncode: int = 0
    cpu_seconds: float = 0.0  # user + system time of the command and its descendants (sampled every 0.25 s)


def _tree_usage(root: int) -> tuple[float, dict[int, float]]:
    """Resident memory (MB) of `root` and all its descendants, and each one's CPU seconds so far (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * PAGE_MB
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, tree, stack = 0.0, {}, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        tree[pid] = cpu.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total, tree


def run_measured(name: str, argv: list[str], env: dict[str, str], log: Path) -> Measure:
    """Run a command, sampling its process tree's RSS; peak = max(sampled tree, kernel ru_maxrss)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = [0.0]
        cpu: dict[int, float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                rss, tree_cpu = _tree_usage(child.pid)
                peak[0] = max(peak[0], rss)
                cpu.update(tree_cpu)
                done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        done.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    # A descendant nobody waits for (pyspark's JVM) is missing from wait4's usage: its CPU is the last sample's.
    return Measure(name, seconds, max(peak[0], usage.ru_maxrss / 1024), child.returncode,
                   max(usage.ru_utime + usage.ru_stime, sum(cpu.values())))


def _relation(world: Path, table: str) -> str:
    """DuckDB relation over a world table given as <table>.parquet|.csv or a <table>/ folder of parts."""
    folder = world / table
    for suffix in ("parquet", "csv"):
        if (world / f"{table}.{suffix}").exists():
            files = f"'{world / f'{table}.{suffix}'}'"
            break
        if folder.is_dir() and any(folder.glob(f"*.{suffix}")):
            files = f"'{folder}/*.{suffix}'"
            break
    else:
        raise SystemExit(f"{world}: no {table} table")
    reader = "read_parquet" if suffix == "parquet" else "read_csv"
    return f"{reader}({files})"


FLOOR_SCRIPT = """
import duckdb, sys, time
world_relations, db, storage, with_scan = eval(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "scan"
con = duckdb.connect(db, config={} if storage == "default" else {"storage_compatibility_version": storage})
started = time.perf_counter()
for table, relation in world_relations.items():
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM {relation}")
load = time.perf_counter() - started
started = time.perf_counter()
if with_scan:
    con.execute(f"SELECT bene_id, claim_type, count(*), sum(allowed_amount) FROM {world_relations['claim_line']} "
                "GROUP BY ALL").fetchall()
    con.execute(f"SELECT icd10_code, count(*), count(DISTINCT claim_id) FROM {world_relations['claim_diagnosis']} "
                "GROUP BY ALL").fetchall()
print(load, time.perf_counter() - started)
"""


def measure_floors(world: Path, work: Path, log: Path, storage: str = "default",
                   with_scan: bool = True) -> tuple[float, float]:
    """Load floor and scan floor in seconds (fresh process, fresh database file); `storage`: the database
    file's storage format (DuckDB's default, or a `storage_compatibility_version`); `with_scan` False: the load
    floor only (the scan floor is then 0)."""
    db = work / "floor.duckdb"
    db.unlink(missing_ok=True)
    relations = {t: _relation(world, t) for t in TABLES}
    out = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, repr(relations), str(db), storage,
                          "scan" if with_scan else "load"], check=True, capture_output=True, text=True)
    with log.open("a") as handle:
        handle.write(out.stdout + out.stderr)
    db.unlink(missing_ok=True)
    load, scan = (float(x) for x in out.stdout.split()[-2:])
    return load, scan


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def stage_commands(args: argparse.Namespace, world: Path, run: Path, ehr: Path) -> list[tuple[str, list[str]]]:
    cli = [sys.executable, "-m", "openasm.cli"]
    backend = ["--backend", args.backend] + (["--spark-master", args.spark_master] if args.spark_master else [])
    py = ["--py", str(args.py)]
    commands = [
        ("ingest", [*cli, "ingest", str(world), "--out", str(run), *backend, *args.csv_option]),
        ("summarize", [*cli, "summarize", str(run), *py, *backend]),
        ("episodes", [*cli, "episodes", str(run), *py, *backend]),
        ("cost", [*cli, "cost", str(run), *py, *backend]),
        ("participate", [*cli, "participate", str(run), *py, *backend]),
    ]
    if not args.skip_quality:
        commands += [
            ("ingest-fhir", [*cli, "ingest-fhir", str(ehr), "--out", str(run), "--backend", args.backend]),
            ("quality", [*cli, "quality", str(run), *py, *backend]),
        ]
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benes", type=int, default=250_000, help="beneficiaries to synthesise without --world")
    parser.add_argument("--world", type=Path, help="existing world folder (the six canonical tables)")
    parser.add_argument("--work", type=Path, help="folder for the world, the run and the log (default: temp)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--py", type=int, default=2027)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    parser.add_argument("--spark-master")
    parser.add_argument("--memory-limit", help="engine memory limit, e.g. 2GB (sets OPENASM_MEMORY_LIMIT)")
    parser.add_argument("--csv", dest="csv_mode",
                        help="CSV copies of outputs: small|all|none (ingest option; default small)")
    parser.add_argument("--skip-quality", action="store_true", help="claims stages only")
    parser.add_argument("--stages", help="comma-separated subset of stages to run, e.g. ingest,summarize")
    args = parser.parse_args()
    args.csv_option = ["--csv", args.csv_mode] if args.csv_mode else []
    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-scale-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "scale_bench.log"
    env = dict(os.environ)
    if args.memory_limit:
        env["OPENASM_MEMORY_LIMIT"] = args.memory_limit
    cli = [sys.executable, "-m", "openasm.cli"]
    world = args.world
    if world is None:
        world = work / "world"
        made = run_measured("synth", [*cli, "synth", "--out", str(world), "--benes", str(args.benes),
                                      "--seed", str(args.seed), "--years", f"{args.py - 2}-{args.py}"], env, log)
        print(f"synth: {args.benes:,} beneficiaries in {made.seconds:.0f} s")
    ehr = work / "ehr"
    if not args.skip_quality and not ehr.exists():
        made = run_measured("synth-fhir", [*cli, "synth-fhir", str(world), "--out", str(ehr), "--py", str(args.py),
                                           "--seed", str(args.seed)], env, log)
        print(f"synthetic FHIR export: {made.seconds:.0f} s (not a stage)")
    input_mb = sum(folder_mb(world / t) if (world / t).is_dir() else
                   sum(f.stat().st_size for f in world.glob(f"{t}.*")) / 2**20 for t in TABLES)

    load_floor, scan_floor = measure_floors(world, work, log)
    # The run database is written in the pinned DuckDB's own format (openasm.engine.DUCKDB_STORAGE), which loads
    # faster than DuckDB's default one: shown next to the floor, ratios stay to the floor at default settings.
    own_floor = (measure_floors(world, work, log, DUCKDB_STORAGE, with_scan=False)[0] if args.backend == "duckdb"
                 else None)
    run = work / f"run-{args.backend}"
    measures = []
    only = set(args.stages.split(",")) if args.stages else None
    for name, argv in stage_commands(args, world, run, ehr):
        if only is not None and name not in only:
            continue
        measure = run_measured(name, argv, env, log)
        measures.append(measure)
        print(f"  {name}: {measure.seconds:.1f} s, {measure.peak_rss_mb:,.0f} MB", flush=True)
        if measure.returncode not in (0,):
            print(f"  {name} exited {measure.returncode}; see {log}")
            if name in CLAIMS_STAGES:
                break

    print(f"\nbackend {args.backend}; world {world} ({input_mb:,.0f} MB of input); memory limit "
          f"{args.memory_limit or 'engine default'}; log {log}")
    print(f"{'stage':<14}{'wall s':>10}{'x load floor':>14}{'peak RSS MB':>14}")
    print(f"{'load floor':<14}{load_floor:>10.1f}{1.0:>14.2f}{'':>14}")
    print(f"{'scan floor':<14}{scan_floor:>10.1f}{scan_floor / load_floor:>14.2f}{'':>14}")
    if own_floor is not None:
        print(f"{'load floor *':<14}{own_floor:>10.1f}{own_floor / load_floor:>14.2f}{'':>14}"
              f"   * in the run database's storage format ({DUCKDB_STORAGE})")
    for m in measures:
        flag = "" if m.returncode == 0 else f"  (exit {m.returncode})"
        print(f"{m.name:<14}{m.seconds:>10.1f}{m.seconds / load_floor:>14.2f}{m.peak_rss_mb:>14,.0f}{flag}")
    claims = [m for m in measures if m.name in CLAIMS_STAGES]
    total = sum(m.seconds for m in claims)
    print(f"{'claims total':<14}{total:>10.1f}{total / load_floor:>14.2f}"
          f"{max((m.peak_rss_mb for m in claims), default=0):>14,.0f}")
    run_mb = folder_mb(run) if run.exists() else 0.0
    print(f"run folder {run_mb:,.0f} MB = {run_mb / input_mb:.2f}x the input ({input_mb:,.0f} MB)")


if __name__ == "__main__":
    main()

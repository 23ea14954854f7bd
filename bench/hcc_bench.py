"""CMS-HCC flag throughput: `compute_hcc_flags` on DuckDB for N beneficiaries next to hccinfhir's per-member API
on a sample, extrapolated (prints figures; asserts nothing).

    python bench/hcc_bench.py                        # 1,000,000 beneficiaries, 2,000-member hccinfhir sample
    python bench/hcc_bench.py --benes 200000 --dx 4 --sample 5000

Each beneficiary has one episode (start 2027-03-01) and one carrier claim in the lookback carrying `--dx`
diagnoses: about half drawn from the V28 mapping (so HCCs and hierarchies fire), half unmapped codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchlib import peak_rss_mb

from openasm.cost.hcc import (
    MODEL_NAMES,
    compute_hcc_flags,
    hcc_reference_arrow,
    hcc_reference_years,
    load_hcc_reference,
)
from openasm.engine import connect
from openasm.rules import load_rules

START = dt.date(2027, 3, 1)
UNMAPPED = ("Z0000", "R5383", "M545", "Z23", "I10", "E785", "K219", "M1990", "R0600", "Z7901")


def synthesize(benes: int, dx_per_bene: int, seed: int) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    mapped = np.array(sorted(set(hcc_reference_arrow("V28", 2027)["dx_to_cc"]["diagnosis_code"].to_pylist())))
    ids = np.char.add("B", np.arange(benes).astype(str))
    claim_ids = np.char.add("C", np.arange(benes).astype(str))
    day = np.datetime64(START) - rng.integers(1, 121, benes).astype("timedelta64[D]")
    birth = np.datetime64("1930-01-01") + rng.integers(0, 365 * 45, benes).astype("timedelta64[D]")
    sex = np.where(rng.random(benes) < 0.55, "F", "M")
    n = benes * dx_per_bene
    use_mapped = rng.random(n) < 0.5
    codes = np.where(use_mapped, mapped[rng.integers(0, len(mapped), n)],
                     np.array(UNMAPPED)[rng.integers(0, len(UNMAPPED), n)])
    return {
        "episode": pa.table({"episode_id": ids, "measure_id": pa.array(["COST_HF_1"] * benes), "bene_id": ids,
                             "episode_start_date": pa.array(np.full(benes, np.datetime64(START)), pa.date32())}),
        "claim_line": pa.table({"claim_id": claim_ids, "line_number": pa.array(np.ones(benes, np.int32)),
                                "bene_id": ids, "claim_type": pa.array(["carrier"] * benes),
                                "claim_from_date": pa.array(day, pa.date32()),
                                "claim_thru_date": pa.array(day, pa.date32()),
                                "line_from_date": pa.array(day, pa.date32()),
                                "line_thru_date": pa.array(day, pa.date32()),
                                "line_dx_code": pa.nulls(benes, pa.string()),
                                "allowed_amount": np.full(benes, 50.0)}),
        "claim_diagnosis": pa.table({"claim_id": np.repeat(claim_ids, dx_per_bene),
                                     "bene_id": np.repeat(ids, dx_per_bene),
                                     "dx_position": pa.array(np.tile(np.arange(1, dx_per_bene + 1, dtype=np.int32),
                                                                     benes)),
                                     "icd10_code": codes}),
        "beneficiary": pa.table({"bene_id": ids, "birth_date": pa.array(birth, pa.date32()), "sex": sex}),
    }


TABLES = ("episode", "claim_line", "claim_diagnosis", "beneficiary")


def write_world(work: Path, benes: int, dx_per_bene: int, seed: int) -> None:
    for name, tab in synthesize(benes, dx_per_bene, seed).items():
        pq.write_table(tab, work / f"{name}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benes", type=int, default=1_000_000)
    parser.add_argument("--dx", type=int, default=4, help="diagnoses per beneficiary")
    parser.add_argument("--sample", type=int, default=2_000, help="members run through hccinfhir")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-hcc-bench-"))
    rules = load_rules(2027)

    # Synthesize in a child process so the peak RSS printed below is the engine's and hccinfhir's, not numpy's.
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=write_world, args=(work, args.benes, args.dx, args.seed)
    )
    child.start()
    child.join()
    print(f"synth: {args.benes:,} beneficiaries x {args.dx} dx in {time.perf_counter() - started:.1f} s "
          f"(files in {work}; child peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MB)")

    engine = connect("duckdb", work / "run")
    tables = {name: engine.con.read_parquet(work / f"{name}.parquet") for name in TABLES}
    started = time.perf_counter()
    flags = compute_hcc_flags(episode=tables["episode"], claim_line=tables["claim_line"],
                              claim_diagnosis=tables["claim_diagnosis"], beneficiary=tables["beneficiary"],
                              hcc_reference=load_hcc_reference(rules), rules=rules)
    stored = engine.save("cost__int_hcc_flag", flags)
    engine_seconds = time.perf_counter() - started
    hcc_rows = stored.count().to_pyarrow().as_py()
    with_hcc = stored.episode_id.nunique().to_pyarrow().as_py()
    rss_engine = peak_rss_mb(include_children=False)
    sample = min(args.sample, args.benes)
    head = pq.ParquetFile(work / "beneficiary.parquet").read_row_group(0).slice(0, sample)
    sample_ids = head["bene_id"].to_pylist()  # episode_id = bene_id
    engine_sets: dict[str, set[str]] = {}
    for row in stored.filter(stored.episode_id.isin(sample_ids)).to_pyarrow().to_pylist():
        engine_sets.setdefault(row["episode_id"], set()).add(row["hcc"].removeprefix("HCC"))
    engine.close()

    # hccinfhir per member, same files, ages and sexes
    from hccinfhir.model_calculate import calculate_raf
    from hccinfhir.model_dx_to_cc import apply_mapping
    from hccinfhir.model_edits import apply_edits
    from hccinfhir.model_hierarchies import apply_hierarchies
    from hccinfhir.defaults import edits_default
    from hccinfhir.utils import load_dx_to_cc_mapping, load_hierarchies

    years = hcc_reference_years("V28", 2027)
    mapping = load_dx_to_cc_mapping(f"ra_dx_to_cc_{years['dx_to_cc']}.csv")
    hierarchies = load_hierarchies(f"ra_hierarchies_{years['hierarchy']}.csv")
    model = MODEL_NAMES["V28"]
    dx_head = pq.ParquetFile(work / "claim_diagnosis.parquet").read_row_group(0).slice(0, sample * args.dx)
    codes = dx_head["icd10_code"].to_pylist()
    births, sexes = head["birth_date"].to_pylist(), head["sex"].to_pylist()
    members = [(codes[i * args.dx:(i + 1) * args.dx],
                START.year - b.year - ((START.month, START.day) < (b.month, b.day)), s)
               for i, (b, s) in enumerate(zip(births, sexes))]
    started = time.perf_counter()
    raf_sets = [set(calculate_raf(dx, model, age=age, sex=sex, dx_to_cc_mapping=mapping,
                                  hierarchies_mapping=hierarchies).hcc_list) for dx, age, sex in members]
    raf_seconds = time.perf_counter() - started
    agree = sum(engine_sets.get(eid, set()) == want for eid, want in zip(sample_ids, raf_sets))
    started = time.perf_counter()
    for dx, age, sex in members:
        cc = apply_edits(apply_mapping(dx, model, mapping), age, sex, model, edits_default)
        apply_hierarchies(set(cc), model, hierarchies)
    steps_seconds = time.perf_counter() - started

    per_s = args.benes / engine_seconds
    raf_per_s, steps_per_s = sample / raf_seconds, sample / steps_seconds
    print("openasm compute_hcc_flags (DuckDB, lookback join + dx→CC + edits + hierarchy + labels, saved):")
    print(f"  {args.benes:,} beneficiaries in {engine_seconds:.2f} s = {per_s:,.0f} beneficiaries/s; "
          f"{hcc_rows:,} HCC rows, {with_hcc:,} beneficiaries with ≥1 HCC; peak RSS {rss_engine:,.0f} MB")
    print(f"hccinfhir calculate_raf per member (full RAF: HCCs + interactions + coefficients), {sample:,} members:")
    print(f"  {raf_seconds:.2f} s = {raf_per_s:,.0f} members/s → {args.benes:,} extrapolated: "
          f"{args.benes / raf_per_s:,.1f} s")
    print(f"hccinfhir HCC steps only (apply_mapping + apply_edits + apply_hierarchies), {sample:,} members:")
    print(f"  {steps_seconds:.3f} s = {steps_per_s:,.0f} members/s → {args.benes:,} extrapolated: "
          f"{args.benes / steps_per_s:,.1f} s (no claim filtering or lookback join)")
    print(f"agreement on the sample: {agree:,} of {sample:,} members have the same HCC set in both")
    print(f"peak RSS (process): {peak_rss_mb(include_children=False):,.0f} MB")


if __name__ == "__main__":
    main()

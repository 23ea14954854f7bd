"""`generate_world`: write a seeded synthetic Medicare world as canonical Parquet tables.

Layout: `<out>/<table>/part-NNNNN.parquet` for beneficiary, enrollment, claim_line, claim_diagnosis,
pharmacy_claim (one part per chunk of beneficiaries) and clinician (one part); `<out>/truth/part-NNNNN.parquet`
with the planted condition relationships; `<out>/synth_manifest.json` with the parameters, row counts and the
deliberately invalid rows by kind. Same arguments give byte-identical files: every random draw comes from
`SeedSequence(seed, spawn_key=...)` per chunk, rows are written in a fixed order, and Parquet files carry no
timestamps.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openasm.rules import RulesForYear
from openasm.synth import codes, mess
from openasm.synth.chunk import ADJUSTMENT, CANCEL, generate_chunk
from openasm.synth.ids import take_strings
from openasm.synth.params import load_synth_params
from openasm.synth.population import Calendar
from openasm.synth.practices import SPEC, World, build_world
from openasm.synth.tables import (
    beneficiary_ids,
    beneficiary_table,
    claim_tables,
    enrollment_table,
    pharmacy_table,
    schema,
    truth_table,
    vocab,
)

TABLES = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")
TRUTH = "truth"
MANIFEST = "synth_manifest.json"
MAX_CHUNKS = 100_000


@dataclass(frozen=True)
class WorldSummary:
    """What was written: row counts, invalid rows by kind, claim versions, elapsed seconds."""

    out_dir: Path
    benes: int
    seed: int
    first_year: int
    last_year: int
    row_counts: dict[str, int]
    invalid_rows: dict[str, dict[str, int]]
    claim_versions: dict[str, dict[str, int]]
    truth_rows: int
    elapsed_seconds: float
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def claim_lines(self) -> int:
        return self.row_counts["claim_line"]


def _package_version() -> str:
    try:
        return metadata.version("openasm")
    except metadata.PackageNotFoundError:
        return "unknown"


# Row groups of 128k rows: an engine reads a file's row groups in parallel, never one row group on two threads
# (a 20k-beneficiary world's 900k claim lines in one group were scanned by one thread of DuckDB or Spark).
ROW_GROUP_ROWS = 131_072


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", compression_level=3, use_dictionary=True,
                   write_statistics=True, row_group_size=ROW_GROUP_ROWS, data_page_size=1 << 20,
                   version="2.6", store_schema=True)


def _clear(out_dir: Path) -> None:
    """Remove part files a previous run left in this world's folders (only ours)."""
    for name in (*TABLES, TRUTH):
        folder = out_dir / name
        if folder.is_dir():
            for part in folder.glob("part-*.parquet"):
                part.unlink()
    (out_dir / MANIFEST).unlink(missing_ok=True)


def clinician_table(world: World) -> pa.Table:
    """One row per TIN x NPI, ordered by TIN then NPI."""
    tin = world.prac_tin[world.row_prac]
    npi = world.person_npi[world.row_person]
    order = np.lexsort((npi, tin))
    prac = world.row_prac[order]
    spec = world.person_spec[world.row_person[order]]
    areas = world.areas
    ref = world.area_ref[world.prac_area[prac]]
    cbsa = np.where(np.array([areas.code[r] is None for r in range(areas.n)])[ref], -1, ref)
    physician = np.isin(np.asarray(SPEC.codes)[spec], list(codes.PHYSICIAN_SPECIALTIES))
    return pa.Table.from_arrays([
        world.row_tin.take(pa.array(order)), world.row_npi.take(pa.array(order)), world.row_spec.take(pa.array(order)),
        pa.array(physician), take_strings(vocab(areas.zip5), world.prac_zip[prac]),
        take_strings(vocab([c or "" for c in areas.code]), cbsa), pa.array(world.prac_rhc[prac]),
    ], schema=schema("clinician"))


def generate_world(out_dir: Path, benes: int, seed: int, first_year: int, last_year: int,
                   chunk_benes: int = 25_000, progress: Callable[[int, int], None] | None = None,
                   rules: RulesForYear | None = None) -> WorldSummary:
    """Generate and write the world; `progress(done_benes, total_benes)` is called after each chunk.

    `rules` defaults to `load_rules(last_year)`; pass a view with overrides for a what-if world.
    """
    if benes < 1 or chunk_benes < 1:
        raise ValueError("benes and chunk_benes must be positive")
    if not 1900 < first_year <= last_year:
        raise ValueError(f"bad year range {first_year}-{last_year}")
    n_chunks = -(-benes // chunk_benes)
    if n_chunks > MAX_CHUNKS:
        raise ValueError(f"{n_chunks} chunks is too many; raise chunk_benes")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    params = load_synth_params(first_year, last_year, rules)
    cal = Calendar.build(first_year, last_year)
    world = build_world(benes, seed, params)
    rows: Counter = Counter()
    invalid: dict[str, Counter] = {t: Counter() for t in TABLES}
    versions = {"claim_line": Counter(), "pharmacy_claim": Counter()}
    files: dict[str, list[str]] = {t: [] for t in (*TABLES, TRUTH)}
    care_years = Counter()
    m = params.messiness

    for ci in range(n_chunks):
        start = ci * chunk_benes
        n = min(chunk_benes, benes - start)
        data = generate_chunk(ci, start, n, cal, params, world, seed)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, ci)))
        ids = beneficiary_ids(data.pop, seed)
        out: dict[str, pa.Table] = {}
        out["beneficiary"], found = mess.mess_beneficiary(
            beneficiary_table(data.pop, cal, world, ids, params, rng), ci, seed, m, rng)
        invalid["beneficiary"].update(found)
        out["enrollment"], found = mess.mess_enrollment(enrollment_table(data.pop, cal, ids), first_year, ci, seed,
                                                        m, rng)
        invalid["enrollment"].update(found)
        lines, diagnosis, meta = claim_tables(data, world, params, cal, ci, ids, rng)
        out["claim_line"], found = mess.mess_claim_lines(lines, meta, ci, seed, len(data.versions.rank), m, rng)
        invalid["claim_line"].update(found)
        out["claim_diagnosis"], found = mess.mess_diagnosis(diagnosis, ci, seed, m, rng)
        invalid["claim_diagnosis"].update(found)
        fv = data.fill_versions
        out["pharmacy_claim"], found = mess.mess_pharmacy(
            pharmacy_table(data, world, params, ci, ids, rng), fv.kind, fv.original, ci, seed, len(fv.rank), m, rng)
        invalid["pharmacy_claim"].update(found)
        out[TRUTH] = truth_table(data, world, params, ids)
        for name, table in out.items():
            rel = f"{name}/part-{ci:05d}.parquet"
            _write(table, out_dir / rel)
            files[name].append(rel)
            rows[name] += table.num_rows
        versions["claim_line"].update(adjustment_claims=int((data.versions.kind == ADJUSTMENT).sum()),
                                      cancel_claims=int((data.versions.kind == CANCEL).sum()))
        versions["pharmacy_claim"].update(adjustment_claims=int((fv.kind == ADJUSTMENT).sum()),
                                          cancel_claims=int((fv.kind == CANCEL).sum()))
        for cohort, cy in data.care_years.items():
            care_years[cohort] += cy.n
        del data, out, lines, diagnosis, meta  # keep one chunk in memory at a time
        if progress is not None:
            progress(start + n, benes)

    clin_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,)))
    clinicians, found = mess.mess_clinician(clinician_table(world), m, clin_rng)
    invalid["clinician"].update(found)
    _write(clinicians, out_dir / "clinician/part-00000.parquet")
    files["clinician"].append("clinician/part-00000.parquet")
    rows["clinician"] = clinicians.num_rows

    invalid_out = {t: {k: int(v) for k, v in sorted(invalid[t].items())} for t in TABLES}
    manifest = {
        "generator": "openasm.synth",
        "package_version": _package_version(),
        "parameters": {"benes": benes, "seed": seed, "first_year": first_year, "last_year": last_year,
                       "years": list(range(first_year, last_year + 1)), "chunk_benes": chunk_benes},
        "row_counts": {t: int(rows[t]) for t in (*TABLES, TRUTH)},
        "invalid_rows": invalid_out,
        "invalid_row_totals": {t: sum(k.values()) for t, k in invalid_out.items()},
        "claim_versions": {t: dict(sorted(c.items())) for t, c in versions.items()},
        "condition_care_years": dict(sorted(care_years.items())),
        "clinicians": {"npis": int(len(world.person_npi)), "tins": int(len(world.prac_tin)),
                       "tin_npi_rows": int(len(world.row_person)), "areas": int(world.n_areas)},
        "files": files,
        "rules": params.manifest_rows,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return WorldSummary(
        out_dir=out_dir, benes=benes, seed=seed, first_year=first_year, last_year=last_year,
        row_counts=manifest["row_counts"], invalid_rows=invalid_out, claim_versions=manifest["claim_versions"],
        truth_rows=int(rows[TRUTH]), elapsed_seconds=time.perf_counter() - started, files=files,
    )

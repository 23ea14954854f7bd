"""Deliberately invalid and duplicated rows, each counted by kind so ingest's quarantine reconciles exactly.

Every invalid row is a NEW row (a copy of a valid row with a fresh key) carrying exactly one defect; valid
rows are never altered, so nothing downstream loses data and truth relationships stay intact. A duplicate
is an exact repeat of a valid row of a claim that has no other version, placed right after it; it counts as
one invalid row (the repeat). Counts per kind: binomial(rows, share), at least one of each in chunk 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openasm.synth.ids import mbi_ids, npi_check_digits
from openasm.synth.tables import claim_ids

JUNK_BENE_BASE = 2_000_000_000
UNKNOWN_BENE_BASE = 3_000_000_000
KINDS = {
    "claim_line": ("bad_npi_check_digit", "bad_icd10_shape", "bad_hcpcs_shape", "negative_amount_on_original",
                   "thru_before_from", "missing_required", "unknown_bene", "bad_tin"),
    "claim_diagnosis": ("bad_icd10_shape", "missing_required", "unknown_bene"),
    "pharmacy_claim": ("bad_ndc_shape", "bad_npi_check_digit", "negative_amount_on_original", "missing_required",
                       "unknown_bene"),
    "enrollment": ("bad_year_month", "missing_required", "unknown_bene"),
    "beneficiary": ("bad_sex", "death_before_birth", "missing_required", "bad_zip5"),
    "clinician": ("bad_npi_check_digit", "bad_tin", "missing_required"),
}
DUPLICATE_KIND = {"claim_line": "duplicate_line"}


def _set(table: pa.Table, name: str, values) -> pa.Table:
    i = table.schema.get_field_index(name)
    field = table.schema.field(i)
    return table.set_column(i, field, pa.array(values, type=field.type) if not isinstance(values, pa.Array)
                            else values.cast(field.type))


def _fixed(values: pa.Array, width: int) -> np.ndarray:
    """(n, width) byte matrix of fixed-width strings."""
    return np.frombuffer(b"".join(s.encode() for s in values.to_pylist()), dtype=np.uint8).reshape(-1, width).copy()


def _from_bytes(matrix: np.ndarray) -> list[str]:
    return matrix.view(f"S{matrix.shape[1]}").ravel().astype(str).tolist()


def bad_npi(values: pa.Array, rng: np.random.Generator) -> list[str]:
    """Same NPIs with a wrong check digit."""
    m = _fixed(values, 10)
    base = ((m[:, :9] - 48).astype(np.int64) * 10 ** np.arange(8, -1, -1)).sum(axis=1)
    good = npi_check_digits(base)
    m[:, 9] = 48 + (good + rng.integers(1, 10, len(good))) % 10
    return _from_bytes(m)


def unknown_benes(n: int, chunk_index: int, seed: int, base: int = UNKNOWN_BENE_BASE) -> pa.Array:
    return mbi_ids(base + chunk_index * 1_000_000 + np.arange(n), seed)


def _counts(rng, n_rows: int, share: float, kinds: tuple[str, ...], at_least_one: bool, available: int) -> dict:
    counts = {k: int(rng.binomial(n_rows, share)) for k in kinds}
    if at_least_one:
        counts = {k: max(1, c) for k, c in counts.items()}
    total = sum(counts.values())
    if total > available:  # tiny chunks: scale down to what can be copied
        counts = {k: c * available // max(total, 1) for k, c in counts.items()}
    return counts


def _sources(rng, candidates: np.ndarray, counts: dict) -> dict[str, np.ndarray]:
    """Distinct source rows for every kind."""
    total = sum(counts.values())
    picked = rng.choice(candidates, size=total, replace=False) if total else np.zeros(0, np.int64)
    out, at = {}, 0
    for kind, c in counts.items():
        out[kind] = np.sort(picked[at:at + c])
        at += c
    return out


def _with_duplicates(table: pa.Table, rng, candidates: np.ndarray, share: float,
                     at_least_one: bool = True) -> tuple[pa.Table, int]:
    k = min(max(int(rng.binomial(table.num_rows, share)), int(at_least_one)), len(candidates))
    dup = np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.zeros(0, np.int64)
    order = np.argsort(np.concatenate([np.arange(table.num_rows), dup]), kind="stable")
    source = np.concatenate([np.arange(table.num_rows), dup])[order]
    return table.take(pa.array(source)), k


Defect = Callable[[str, pa.Table, int], pa.Table]


def _defective_copies(table: pa.Table, rng, share: float, kinds: tuple[str, ...], at_least_one: bool,
                      candidates: np.ndarray, defect: Defect) -> tuple[list[pa.Table], Counter]:
    """Copies of distinct candidate rows, each given one defect of its kind by `defect(kind, rows, offset)`
    (offset = how many copies came before, for fresh ids); returns the copies and their count by kind."""
    counts = _counts(rng, table.num_rows, share, kinds, at_least_one, len(candidates))
    src = _sources(rng, candidates, counts)
    parts, at = [], 0
    for kind, rows in src.items():
        if not len(rows):
            continue
        parts.append(defect(kind, table.take(pa.array(rows)), at))
        at += len(rows)
    return parts, Counter({k: len(r) for k, r in src.items() if len(r)})


def mess_claim_lines(table: pa.Table, meta: dict, chunk_index: int, seed: int, n_ranks: int, mess: dict,
                     rng: np.random.Generator) -> tuple[pa.Table, Counter]:
    kinds = KINDS["claim_line"]
    families = _families(meta["version"], meta["kind"], meta["original"])
    original = (meta["kind"] <= 0) & ~families
    carrier = original & (meta["ctype"] == 0)
    carrier &= pc.is_valid(table["line_dx_code"]).to_numpy(zero_copy_only=False)
    carrier &= pc.is_valid(table["paid_amount"]).to_numpy(zero_copy_only=False)

    def defect(kind: str, sub: pa.Table, _: int) -> pa.Table:
        n = sub.num_rows
        if kind == "bad_npi_check_digit":
            sub = _set(sub, "rendering_npi", bad_npi(sub["rendering_npi"].combine_chunks(), rng))
        elif kind == "bad_icd10_shape":
            sub = _set(sub, "line_dx_code", pc.utf8_replace_slice(sub["line_dx_code"], 0, 1, "9"))
        elif kind == "bad_hcpcs_shape":
            sub = _set(sub, "hcpcs_code", pc.utf8_replace_slice(sub["hcpcs_code"], 4, 5, "Z"))
        elif kind == "negative_amount_on_original":
            sub = _set(sub, "allowed_amount", pc.negate(sub["allowed_amount"]))
            sub = _set(sub, "paid_amount", pa.nulls(n, pa.float64()))
            sub = _set(sub, "standardized_amount", pa.nulls(n, pa.float64()))
        elif kind == "thru_before_from":
            days = pc.cast(sub["claim_from_date"], pa.int32()).to_numpy() - rng.integers(1, 31, n)
            sub = _set(sub, "claim_thru_date", pa.array(days.astype(np.int32), pa.date32()))
        elif kind == "missing_required":
            sub = _set(sub, "allowed_amount", pa.nulls(n, pa.float64()))
        elif kind == "unknown_bene":
            sub = _set(sub, "bene_id", unknown_benes(n, chunk_index, seed))
        elif kind == "bad_tin":
            sub = _set(sub, "billing_tin", pc.utf8_slice_codeunits(sub["billing_tin"], 0, 8))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["claim_line"], kinds, chunk_index == 0,
                                     np.flatnonzero(carrier), defect)
    table, n_dup = _with_duplicates(table, rng, np.flatnonzero(original), mess["duplicate_share"], chunk_index == 0)
    found["duplicate_line"] = n_dup
    if parts:
        junk = pa.concat_tables(parts)
        junk = _set(junk, "claim_id", claim_ids(b"1", chunk_index, n_ranks + np.arange(junk.num_rows)))
        junk = _set(junk, "line_number", np.ones(junk.num_rows, np.int32))
        junk = _set(junk, "claim_adjustment_type", ["original"] * junk.num_rows)
        table = pa.concat_tables([table, junk])
    return table, found


def _families(version: np.ndarray, kind: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Rows of original claims that have another version (an adjustment or a cancel)."""
    return np.isin(version, original[kind > 0])


def mess_diagnosis(table: pa.Table, chunk_index: int, seed: int, mess: dict, rng) -> tuple[pa.Table, Counter]:
    first = np.flatnonzero(table["dx_position"].to_numpy() == 1)

    def defect(kind: str, sub: pa.Table, _: int) -> pa.Table:
        n = sub.num_rows
        sub = _set(sub, "dx_position", np.full(n, 25, np.int32))
        sub = _set(sub, "present_on_admission", pa.nulls(n, pa.string()))
        if kind == "bad_icd10_shape":
            sub = _set(sub, "icd10_code", pc.utf8_replace_slice(sub["icd10_code"], 0, 1, "9"))
        elif kind == "missing_required":
            sub = _set(sub, "icd10_code", pa.nulls(n, pa.string()))
        elif kind == "unknown_bene":
            sub = _set(sub, "bene_id", unknown_benes(n, chunk_index, seed, UNKNOWN_BENE_BASE + 500_000))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["claim_diagnosis"], KINDS["claim_diagnosis"],
                                     chunk_index == 0, first, defect)
    table, n_dup = _with_duplicates(table, rng, np.arange(table.num_rows), mess["duplicate_share"],
                                    chunk_index == 0)
    found["duplicate_row"] = n_dup
    return (pa.concat_tables([table, *parts]) if parts else table), found


def mess_pharmacy(table: pa.Table, kind_col: np.ndarray, original: np.ndarray, chunk_index: int, seed: int,
                  n_ranks: int, mess: dict, rng) -> tuple[pa.Table, Counter]:
    rank = np.arange(table.num_rows)
    plain = (kind_col <= 0) & ~np.isin(rank, original[kind_col > 0])
    ok = plain & pc.is_valid(table["prescriber_npi"]).to_numpy(zero_copy_only=False)

    def defect(kind: str, sub: pa.Table, _: int) -> pa.Table:
        n = sub.num_rows
        if kind == "bad_ndc_shape":
            sub = _set(sub, "ndc_code", pc.utf8_slice_codeunits(sub["ndc_code"], 0, 10))
        elif kind == "bad_npi_check_digit":
            sub = _set(sub, "prescriber_npi", bad_npi(sub["prescriber_npi"].combine_chunks(), rng))
        elif kind == "negative_amount_on_original":
            sub = _set(sub, "allowed_amount", pc.negate(sub["allowed_amount"]))
            sub = _set(sub, "gross_drug_cost_amount", pa.nulls(n, pa.float64()))
            sub = _set(sub, "paid_amount", pa.nulls(n, pa.float64()))
        elif kind == "missing_required":
            sub = _set(sub, "allowed_amount", pa.nulls(n, pa.float64()))
        elif kind == "unknown_bene":
            sub = _set(sub, "bene_id", unknown_benes(n, chunk_index, seed, UNKNOWN_BENE_BASE + 600_000))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["pharmacy_claim"], KINDS["pharmacy_claim"],
                                     chunk_index == 0, np.flatnonzero(ok), defect)
    table, n_dup = _with_duplicates(table, rng, np.flatnonzero(plain), mess["duplicate_share"], chunk_index == 0)
    found["duplicate_row"] = n_dup
    if parts:
        junk = pa.concat_tables(parts)
        junk = _set(junk, "claim_id", claim_ids(b"7", chunk_index, n_ranks + np.arange(junk.num_rows)))
        junk = _set(junk, "claim_adjustment_type", ["original"] * junk.num_rows)
        table = pa.concat_tables([table, junk])
    return table, found


def mess_enrollment(table: pa.Table, first_year: int, chunk_index: int, seed: int, mess: dict,
                    rng) -> tuple[pa.Table, Counter]:
    """Extra rows: a month 13, a month before the world with a missing Part A flag, an unknown beneficiary."""
    bene_first = np.flatnonzero(pc.equal(table["year_month"], f"{first_year}-01").to_numpy(zero_copy_only=False))

    def defect(kind: str, sub: pa.Table, _: int) -> pa.Table:
        n = sub.num_rows
        if kind == "bad_year_month":
            sub = _set(sub, "year_month", pc.utf8_replace_slice(sub["year_month"], 5, 7, "13"))
        elif kind == "missing_required":
            sub = _set(sub, "year_month", [f"{first_year - 1}-12"] * n)
            sub = _set(sub, "has_part_a", pa.nulls(n, pa.bool_()))
        elif kind == "unknown_bene":
            sub = _set(sub, "bene_id", unknown_benes(n, chunk_index, seed, UNKNOWN_BENE_BASE + 700_000))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["enrollment"], KINDS["enrollment"],
                                     chunk_index == 0, bene_first, defect)
    table, n_dup = _with_duplicates(table, rng, np.arange(table.num_rows), mess["duplicate_share"] / 4,
                                    chunk_index == 0)
    found["duplicate_row"] = n_dup
    return (pa.concat_tables([table, *parts]) if parts else table), found


def mess_beneficiary(table: pa.Table, chunk_index: int, seed: int, mess: dict, rng) -> tuple[pa.Table, Counter]:
    """Junk beneficiaries under fresh ids (never referenced elsewhere), plus exact repeats of real ones."""

    def defect(kind: str, sub: pa.Table, at: int) -> pa.Table:
        n = sub.num_rows
        sub = _set(sub, "bene_id", unknown_benes(n, chunk_index, seed, JUNK_BENE_BASE + at))
        if kind == "bad_sex":
            sub = _set(sub, "sex", ["X"] * n)
        elif kind == "death_before_birth":
            birth = pc.cast(sub["birth_date"], pa.int32()).to_numpy()
            sub = _set(sub, "death_date", pa.array((birth - rng.integers(1, 3650, n)).astype(np.int32), pa.date32()))
        elif kind == "missing_required":
            sub = _set(sub, "birth_date", pa.nulls(n, pa.date32()))
            sub = _set(sub, "death_date", pa.nulls(n, pa.date32()))
        elif kind == "bad_zip5":
            sub = _set(sub, "zip5", pc.utf8_slice_codeunits(sub["zip5"], 0, 4))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["beneficiary"], KINDS["beneficiary"],
                                     chunk_index == 0, np.arange(table.num_rows), defect)
    table, n_dup = _with_duplicates(table, rng, np.arange(table.num_rows), mess["duplicate_share"],
                                    chunk_index == 0)
    found["duplicate_row"] = n_dup
    return (pa.concat_tables([table, *parts]) if parts else table), found


def mess_clinician(table: pa.Table, mess: dict, rng) -> tuple[pa.Table, Counter]:

    def defect(kind: str, sub: pa.Table, _: int) -> pa.Table:
        if kind == "bad_npi_check_digit":
            sub = _set(sub, "npi", bad_npi(sub["npi"].combine_chunks(), rng))
        elif kind == "bad_tin":
            sub = _set(sub, "tin", pc.utf8_slice_codeunits(sub["tin"], 0, 8))
        elif kind == "missing_required":
            sub = _set(sub, "npi", pa.nulls(sub.num_rows, pa.string()))
        return sub

    parts, found = _defective_copies(table, rng, mess["invalid_share"]["clinician"], KINDS["clinician"], True,
                                     np.arange(table.num_rows), defect)
    table, n_dup = _with_duplicates(table, rng, np.arange(table.num_rows), mess["duplicate_share"] * 2)
    found["duplicate_row"] = n_dup
    return (pa.concat_tables([table, *parts]) if parts else table), found

"""The NPI check digit computed in SQL (ingest checks): every verdict must equal the check digit of
`schema.formats` (the Luhn rule with the 80840 prefix), on both backends, for bases with leading zeros, nines and
every possible check digit."""

from __future__ import annotations

import random

import ibis
import pyarrow as pa

from openasm.ingest.checks import npi_check_digit_matches
from openasm.schema.formats import npi_check_digit


def _npis() -> list[str]:
    draw = random.Random(14)
    bases = ["000000000", "999999999", "123456789", "012345678", "100000000", "555555555", "987654321"]
    bases += [f"{draw.randrange(10**9):09d}" for _ in range(120)]
    return [base + str(digit) for base in bases for digit in range(10)]


def test_check_digit_verdicts_match_the_luhn_rule(backend, engine_for):
    engine = engine_for(backend)
    npis = _npis()
    table = engine.save("npi_values", ibis.memtable(pa.table({"position": list(range(len(npis))), "npi": npis})))
    got = engine.fetch(table.mutate(ok=npi_check_digit_matches(table.npi)).order_by("position"))
    expected = [npi_check_digit(npi[:9]) == npi[9] for npi in npis]
    assert got.column("ok").to_pylist() == expected
    assert sum(expected) == len(npis) // 10  # one right check digit per base

"""Final-action resolution of adjustment and cancel chains (golden cases, both backends)."""

from __future__ import annotations

import ibis
import pyarrow as pa

from openasm.ingest.final_action import resolve_final_action


def _claims(rows):
    return ibis.memtable(pa.table({
        "claim_id": [r[0] for r in rows],
        "line_number": pa.array([r[1] for r in rows], pa.int32()),
        "claim_adjustment_type": [r[2] for r in rows],
        "original_claim_id": [r[3] for r in rows],
        "claim_processed_date": pa.array([r[4] for r in rows], pa.string()).cast(pa.date32()),
        "allowed_amount": [r[5] for r in rows],
    }))


CASES = [
    # claim_id, line, adjustment type, modifies, processed, allowed  -> expected family, status
    ("A1", 1, "original", None, "2025-01-10", 100.0, "A1", "superseded"),
    ("A1", 2, None, None, "2025-01-10", 50.0, "A1", "superseded"),
    ("A2", 1, "adjustment", "A1", "2025-02-10", 120.0, "A1", "superseded"),
    ("A3", 1, "adjustment", "A2", "2025-03-10", 130.0, "A1", "final"),          # chain of two adjustments
    ("B1", 1, "original", None, "2025-01-10", 80.0, "B1", "cancelled"),
    ("B2", 1, "cancel", "B1", "2025-01-20", -80.0, "B1", "cancel_record"),      # cancel voids the family
    ("C1", 1, "original", None, "2025-01-10", 60.0, "C1", "final"),            # untouched claim
    ("D1", 1, "original", None, None, 10.0, "D1", "superseded"),               # no processing dates:
    ("D2", 1, "adjustment", "D1", None, 12.0, "D1", "final"),                  # adjustment outranks original
    ("E2", 1, "adjustment", "E0", "2025-05-01", 40.0, "E0", "final"),          # original outside the extract
    ("F1", 1, "adjustment", None, "2025-06-01", 10.0, "F1", "final"),          # modifies nothing: its own family
    ("G1", 1, "cancel", None, "2025-06-01", -5.0, "G1", "cancel_record"),      # a cancel is never final
    ("H1", 1, "original", None, "2025-01-01", 10.0, "H1", "final"),
    ("H2", 1, "adjustment", "H1", "2025-02-01", 12.0, "H2", "final"),          # lines disagree on the kind: the
    ("H2", 2, "original", "H1", "2025-02-01", 3.0, "H2", "final"),             # claim counts as an original
]


def test_adjustment_chains_resolve_to_final_action(backend, engine_for):
    engine = engine_for(backend)
    claims = engine.save("claims", _claims([c[:6] for c in CASES]))
    result = engine.fetch(resolve_final_action(claims=claims)).to_pylist()
    got = {(r["claim_id"], r["line_number"]): (r["family_id"], r["final_action_status"]) for r in result}
    expected = {(c[0], c[1]): (c[6], c[7]) for c in CASES}
    assert got == expected
    assert len(result) == len(CASES)  # nothing dropped, nothing duplicated

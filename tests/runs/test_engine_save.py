"""Engine.save of a sorted expression (issue 14): on Spark a global sort samples its input, which would run the
input's plan twice, so the input is stored first and the stored rows sorted. The stored table must hold the rows
in the asked order on both backends, and the intermediate must not stay behind."""

from __future__ import annotations

import ibis
import pyarrow as pa


def test_a_sorted_computed_table_is_stored_in_order_without_leftovers(backend, engine_for):
    engine = engine_for(backend)
    source = engine.save("numbers", ibis.memtable(pa.table({"n": [5, 3, 9, 1, 7, 2, 8]})))
    computed = source.mutate(key=(source.n * 7) % 10, label=source.n.cast("string"))
    stored = engine.save("sorted_numbers", computed.order_by(["key", "n"]))
    rows = engine.fetch(stored).to_pylist()
    assert [r["n"] for r in rows] == sorted([5, 3, 9, 1, 7, 2, 8], key=lambda n: ((n * 7) % 10, n))
    assert not engine.has_table("sorted_numbers__unsorted")

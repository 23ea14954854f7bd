"""Format Arrow columns as fixed-width records of a shipped layout (the writer side of `connectors.layout`).

Vectorised with pyarrow compute: each field is padded to its width (text left-justified, integers zero-padded,
decimals as sign + zero-padded digits + two or four decimals, dates ISO) and the fields are joined per record.
A null becomes the format's null token: `~` for text, the 1000-01-01 / 9999-12-31 sentinels for dates (CCLF
packet §3.6), blanks for numbers. Values longer than their field are an error, never silently cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openasm.connectors.layout import RecordLayout

LOW_DATE = "1000-01-01"
HIGH_DATE = "9999-12-31"


def decimal_text(values: pa.Array, width: int, decimals: int = 2) -> pa.Array:
    """Numbers as `-000…0123.45` (a leading minus or zero), `width` characters; null stays null."""
    numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    mask = np.isnan(numbers)
    scale = 10 ** decimals
    scaled = np.round(np.where(mask, 0.0, numbers) * scale).astype(np.int64)
    negative = scaled < 0
    magnitude = np.abs(scaled)
    whole = pa.array(magnitude // scale).cast(pa.string())
    part = pc.utf8_lpad(pa.array(magnitude % scale).cast(pa.string()), decimals, "0")
    digits = pc.utf8_lpad(pc.binary_join_element_wise(whole, part, "."), width - 1, "0")
    sign = pa.array(np.where(negative, "-", "0"))
    out = pc.binary_join_element_wise(sign, digits, "")
    return pc.if_else(pa.array(mask), pa.nulls(len(out), pa.string()), out)


def date_text(values: pa.Array) -> pa.Array:
    """ISO dates (YYYY-MM-DD) as text; null stays null."""
    return pc.strftime(pc.cast(values, pa.timestamp("s")), format="%Y-%m-%d")


def _padded(values: pa.Array, width: int, kind: str, field_name: str, null_date: str) -> pa.Array:
    text = pc.cast(values, pa.string())
    if kind == "date":
        text = pc.fill_null(text, null_date)
    elif kind in ("integer", "decimal"):
        text = pc.fill_null(text, "")
    else:
        text = pc.fill_null(text, "~")
    too_long = pc.greater(pc.utf8_length(text), width)
    if pc.any(too_long).as_py():
        example = text.filter(too_long)[0].as_py()
        raise ValueError(f"{field_name}: value of length {len(example)} does not fit its {width} characters")
    if kind == "integer":
        return pc.if_else(pc.equal(text, ""), pc.utf8_rpad(text, width, " "), pc.utf8_lpad(text, width, "0"))
    return pc.utf8_rpad(text, width, " ")


def format_records(layout: RecordLayout, columns: dict[str, pa.Array], n: int,
                   high_date_fields: tuple[str, ...] = ()) -> pa.Array:
    """Records of `layout` (every field, in order); fields not in `columns` are null."""
    parts = []
    for spec in layout.fields.values():
        values = columns.get(spec.name)
        if values is None:
            values = pa.nulls(n, pa.string())
        null_date = HIGH_DATE if spec.name in high_date_fields else LOW_DATE
        parts.append(_padded(values, spec.width, spec.kind, spec.name, null_date))
    return pc.binary_join_element_wise(*parts, "")


def write_lines(path: Path, records: pa.Array) -> int:
    """Write records one per line (\\n); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for chunk in (records.chunks if isinstance(records, pa.ChunkedArray) else [records]):
            if len(chunk):
                handle.write(("\n".join(chunk.to_pylist()) + "\n").encode("utf-8"))
    return len(records)

"""Print a content hash of every published table in a run folder's outputs/ (one line per table).

Rows are sorted on every column, floats rounded to 12 significant digits (magnitudes under 1e-9 taken as 0;
money sums are exact in cents, so 12 digits keep them whole while ignoring the last bits that summation order
changes), and the run's input folder (`--root`, as the run recorded it) replaced by `<root>` in text, so two runs that
differ only in row order, in the last bits of a sum or in where they were written have the same fingerprint.
Used to show that a refactor changed no output:
`python scripts/output_fingerprint.py demo-output/run --root demo-output > before.txt`, again after, `diff`.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _rounded(value: float | None) -> float | None:
    if value is None:
        return None
    return 0.0 if abs(value) < 1e-9 else float(f"{value:.12g}")


def canonical_table(table: pa.Table, root: str | None) -> pa.Table:
    """Floats rounded, every column as text with the root folder replaced, rows sorted on all columns."""
    columns = []
    for column in table.columns:
        if pa.types.is_floating(column.type):
            column = pa.chunked_array([pa.array([_rounded(v) for v in column.to_pylist()], pa.float64())])
        text = (pc.cast(column, pa.string()) if not pa.types.is_nested(column.type)
                else pa.chunked_array([pa.array([str(v) for v in column.to_pylist()], pa.string())]))
        if root:
            text = pc.replace_substring(text, root, "<root>")
        columns.append(text)
    text = pa.table(columns, names=table.column_names)
    return text.sort_by([(name, "ascending") for name in text.column_names]) if text.num_columns else text


def fingerprint(path: Path, root: str | None = None) -> str:
    table = canonical_table(pq.read_table(path), root)
    digest = hashlib.sha256(",".join(f"{f.name}:{f.type}" for f in pq.read_schema(path)).encode())
    for row in table.to_pylist():
        digest.update(repr(tuple(row.values())).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--root", help="folder name to replace by <root> in text columns")
    args = parser.parse_args()
    for path in sorted((args.run_dir / "outputs").glob("*.parquet")):
        print(f"{path.stem} {pq.read_metadata(path).num_rows} {fingerprint(path, args.root)}")


if __name__ == "__main__":
    main()

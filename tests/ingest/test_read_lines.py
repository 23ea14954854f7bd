"""`Engine.read_lines` numbers a text file's lines in file order on every backend, also when the file is read
in parallel pieces and inside a stage's transaction (DuckDB numbers them by row id, `engine_sources`)."""

from __future__ import annotations

import pytest

# Over 64 MB, so DuckDB's CSV reader splits the file into several buffers read by both threads.
LINES = 2_400_000


@pytest.fixture(scope="module")
def numbered_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lines") / "numbered.txt"
    with path.open("w") as handle:
        handle.writelines(f"{n:012d}{'x' * 16}\n" for n in range(1, LINES + 1))
    return path


def _check_numbers(lines) -> None:
    counts = lines.aggregate(total=lines.count(),
                             misplaced=(lines.line.substr(0, 12).cast("int64") != lines._row_number).sum()
                             ).to_pyarrow().to_pylist()[0]
    assert counts == {"total": LINES, "misplaced": 0}


def test_lines_are_numbered_in_file_order(engine_for, numbered_file):
    engine = engine_for("duckdb")
    _check_numbers(engine.read_lines(numbered_file))


def test_lines_read_inside_a_transaction_are_numbered_from_one(engine_for, numbered_file):
    engine = engine_for("duckdb")
    engine.con.raw_sql("BEGIN TRANSACTION")
    lines = engine.read_lines(numbered_file)
    _check_numbers(lines)
    engine.drop_lines(lines)
    engine.con.raw_sql("COMMIT")
    assert not [t for t in engine.con.list_tables() if t.startswith("lines__")]

"""How each backend reads a source file into a raw table (part of the engine: the only backend-aware code).

A raw table has the file's columns (text for delimited files, the file's own types for Parquet), `_row_number`
(1-based record number in the file), `_source_file`, and `_malformed`: null, or why the record could not be
parsed at all (wrong field count, unbalanced quote); such a record's other columns are null and ingest
quarantines it. Delimited files are read with one explicit dialect (`openasm.engine_csv`): RFC 4180
quoting over the whole file, the delimiter given or read off the header, an encoding, nothing sniffed.

DuckDB parses a delimited file twice: a first pass only tokenises it and collects the malformed records (with
their record numbers and byte offsets) and any byte that is not valid in the encoding (then the file stops
with one line naming the offset); the second pass, inside the ingest query, numbers the well-formed records
and shifts the numbers past each malformed one. Spark reads the file as one partition per file in PERMISSIVE
mode, numbers records in file order and marks the malformed ones itself.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from openasm.engine_csv import (
    QUOTE,
    CsvDialect,
    canonical_encoding,
    encoding_error,
    first_invalid_utf8,
    native_encoding,
    records_to_parquet,
    transcode_to_utf8,
)

ROW_NUMBER = "_row_number"
SOURCE_FILE = "_source_file"
# Rows a connector makes from one source record, numbered 0, 1, ... (ingest `validate.numbered_rows`).
ROW_COPY = "_row_copy"
MALFORMED = "_malformed"
# Spark numbers rows per partition in the low 33 bits of monotonically_increasing_id.
SPARK_ROW_INDEX_MASK = (1 << 33) - 1
MALFORMED_REASONS = {
    "MISSING COLUMNS": "fewer fields than the header",
    "TOO MANY COLUMNS": "more fields than the header (an unquoted delimiter?)",
    "UNQUOTED VALUE": "a quote inside a value or an unterminated quoted value",
    "LINE SIZE OVER MAXIMUM": "record longer than the reader's maximum line size",
}
SPARK_MALFORMED_REASON = "malformed CSV record: field count differs from the header or a quote is unbalanced"


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def column_names(header: list[str]) -> list[str]:
    """Header names usable as columns: blank names get a positional placeholder."""
    return [name if name else f"_column_{position}" for position, name in enumerate(header, start=1)]


def readable_copy(path: Path, dialect: CsvDialect, scratch: Path) -> tuple[Path, str]:
    """The file to hand to the engine and the engine's encoding name: the file itself when the engine decodes
    its encoding natively, else a UTF-8 copy in `scratch` (streamed in constant memory)."""
    native = native_encoding(dialect.encoding)
    if native is not None:
        return path, native
    target = scratch / f"{abs(hash(str(path.resolve()))):x}-{path.name}"
    return transcode_to_utf8(path, dialect.encoding, target), "utf-8"


# ---- DuckDB -------------------------------------------------------------------------------------------------
def _duckdb_csv(path: Path, columns: list[str], delimiter: str, encoding: str, extra: str) -> str:
    spec = "{" + ", ".join(f"{sql_text(c)}: 'VARCHAR'" for c in columns) + "}"
    return (f"read_csv({sql_text(str(path))}, header = true, auto_detect = false, columns = {spec}, "
            f"delim = {sql_text(delimiter)}, quote = '{QUOTE}', escape = '{QUOTE}', encoding = {sql_text(encoding)}, "
            f"strict_mode = true, {extra})")


def _reject_reason(error_type: str, message: str, byte_offset: int) -> str:
    counts = re.findall(r"\d+", message or "") if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS") else []
    detail = MALFORMED_REASONS.get(error_type, "unreadable record")
    if len(counts) >= 2:
        detail += f": header has {counts[0]}, record has {counts[1]}"
    return f"malformed CSV record ({detail}) at byte {byte_offset:,}"


def duckdb_csv_view(con: Any, path: Path, header: list[str], delimiter: str, dialect: CsvDialect, view: str,
                    scratch: Path) -> int:
    """Create temp view `view` over a delimited file (see module docstring); returns the records it holds."""
    readable, encoding = readable_copy(path, dialect, scratch)
    columns = column_names(header)
    rejects = f"{view}__rejects"
    collect = f"store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{rejects}_scan'"
    con.raw_sql(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scan").fetchall()
    try:
        parsed = con.raw_sql(f"SELECT count(*) FROM {_duckdb_csv(readable, columns, delimiter, encoding, collect)}"
                             ).fetchall()[0][0]
    except Exception as err:
        if "invalid state" not in str(err):
            raise
        return _duckdb_fallback_view(con, path, readable, columns, delimiter, dialect, view, scratch)
    # One row per malformed record (an over-long record reports each surplus field), first error first.
    malformed = con.raw_sql(
        f"SELECT line, line_byte_position, error_type::VARCHAR, error_message FROM ("
        f"  SELECT *, row_number() OVER (PARTITION BY line ORDER BY byte_position) AS _nth FROM {rejects}"
        f") WHERE _nth = 1 ORDER BY line"
    ).fetchall()
    con.raw_sql(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scan").fetchall()
    for _line, record_byte, error_type, _message in malformed:
        if error_type == "INVALID ENCODING":
            offset = first_invalid_utf8(readable) if encoding == "utf-8" else None
            raise encoding_error(path, offset if offset is not None else record_byte, dialect.encoding)
    scan = _duckdb_csv(readable, columns, delimiter, encoding, "ignore_errors = true")
    quoted = [sql_identifier(c) for c in columns]
    file_literal = _one_source_file(path)
    numbered = f"SELECT {', '.join(quoted)}, CAST(row_number() OVER () AS BIGINT) AS _ordinal FROM {scan}"
    if not malformed:
        con.raw_sql(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {', '.join(quoted)}, _ordinal AS {ROW_NUMBER}, "
            f"{file_literal} AS {SOURCE_FILE}, CAST(NULL AS VARCHAR) AS {MALFORMED} FROM ({numbered})"
        ).fetchall()
        return parsed
    # DuckDB's line of a record counts the header and earlier records (and blank lines), so malformed record i
    # (1-based, file order) follows line - 1 - i well-formed ones; well-formed ordinal k is then numbered
    # k + #{i : line_i - 1 - i < k}. Numbers stay unique and in file order (exact when there are no blank lines).
    rows = [(line - 1, index, _reject_reason(error_type, message, byte))
            for index, (line, byte, error_type, message) in enumerate(malformed, start=1)]
    shifts = f"{view}__malformed"
    values = ", ".join(f"({row}, {index}, {sql_text(reason)})" for row, index, reason in rows)
    con.raw_sql(f"CREATE OR REPLACE TEMP TABLE {shifts} AS SELECT * FROM (VALUES {values}) "
                "AS t(record_number, malformed_index, reason)").fetchall()
    steps = (f"(SELECT record_number - malformed_index AS wellformed_before, max(malformed_index) AS "
             f"malformed_before FROM {shifts} GROUP BY ALL)")
    nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in quoted)
    con.raw_sql(
        f"CREATE OR REPLACE TEMP VIEW {view} AS "
        f"SELECT {', '.join('n.' + c for c in quoted)}, n._ordinal + coalesce(s.malformed_before, 0) AS "
        f"{ROW_NUMBER}, {file_literal} AS {SOURCE_FILE}, CAST(NULL AS VARCHAR) AS {MALFORMED} "
        f"FROM ({numbered}) AS n ASOF LEFT JOIN {steps} AS s ON n._ordinal > s.wellformed_before "
        f"UNION ALL SELECT {nulls}, CAST(record_number AS BIGINT), {file_literal}, reason FROM {shifts}"
    ).fetchall()
    return parsed + len(rows)


def _duckdb_fallback_view(con: Any, path: Path, readable: Path, columns: list[str], delimiter: str,
                          dialect: CsvDialect, view: str, scratch: Path) -> int:
    """A file DuckDB's strict parser stops on, read record by record into Parquet (`records_to_parquet`)."""
    if native_encoding(dialect.encoding) == "utf-8":
        offset = first_invalid_utf8(readable)
        if offset is not None:
            raise encoding_error(path, offset, dialect.encoding)
    target = records_to_parquet(readable, columns, delimiter, scratch / f"{view}.parquet", ROW_NUMBER, MALFORMED)
    con.raw_sql(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * EXCLUDE ({SOURCE_FILE}), {_one_source_file(path)} AS "
        f"{SOURCE_FILE} FROM (SELECT *, NULL AS {SOURCE_FILE} FROM read_parquet({sql_text(str(target))}))"
    ).fetchall()
    return con.raw_sql(f"SELECT count(*) FROM {view}").fetchall()[0][0]


def source_file_sql(value: str, paths: list[Path]) -> str:
    """`_source_file` as a DuckDB ENUM of the files read: every checked row carries it, and stored as text (a
    path repeated on every row) it cost the write of the checked rows about a second at 250k beneficiaries (32M
    rows); an ENUM is stored as a small integer and reads as text everywhere (Ibis types it a string)."""
    names = ", ".join(sql_text(name) for name in dict.fromkeys(str(path) for path in paths))
    return f"CAST({value} AS ENUM({names}))"


def _one_source_file(path: Path) -> str:
    """`_source_file` of a view over one file: its path, as the ENUM of that one file."""
    return source_file_sql(sql_text(str(path)), [path])


def duckdb_parquet_view(con: Any, paths: list[Path], view: str) -> None:
    """Temp view over Parquet files of one layout, scanned as one relation (a union of per-file scans costs
    twice as much); file_row_number is the position in each file, whatever the parallelism."""
    files = "[" + ", ".join(sql_text(str(path)) for path in paths) + "]"
    con.raw_sql(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * EXCLUDE (file_row_number, filename), "
        f"CAST(file_row_number + 1 AS BIGINT) AS {ROW_NUMBER}, {source_file_sql('filename', paths)} "
        f"AS {SOURCE_FILE}, "
        f"CAST(NULL AS VARCHAR) AS {MALFORMED} "
        f"FROM read_parquet({files}, file_row_number = true, filename = true)"
    ).fetchall()


# ---- Spark --------------------------------------------------------------------------------------------------


def spark_csv_frame(spark: Any, path: Path | str, header: list[str], delimiter: str, dialect: CsvDialect,
                    scratch: Path) -> Any:
    """A Spark DataFrame over a delimited file (see module docstring)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    source, encoding = Path(path), native_encoding(dialect.encoding)
    if source.exists():
        source, encoding = readable_copy(source, dialect, scratch)
        if encoding == "utf-8":
            offset = first_invalid_utf8(source)
            if offset is not None:  # Spark would replace the byte silently
                raise encoding_error(path, offset, dialect.encoding)
    corrupt = "_corrupt_record"
    columns = column_names(header)
    schema = StructType([StructField(c, StringType()) for c in columns] + [StructField(corrupt, StringType())])
    frame = (
        spark.read.schema(schema)
        .option("header", True).option("sep", delimiter).option("quote", QUOTE).option("escape", QUOTE)
        .option("multiLine", True).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", corrupt)
        .option("encoding", "UTF-8" if encoding == "utf-8" else canonical_encoding(dialect.encoding))
        .option("ignoreLeadingWhiteSpace", False).option("ignoreTrailingWhiteSpace", False)
        .csv(str(source))
    )
    # A multi-line CSV file is never split: one partition per file, rows in file order.
    row_number = (F.monotonically_increasing_id().bitwiseAND(F.lit(SPARK_ROW_INDEX_MASK)) + 1).cast("long")
    is_bad = F.col(corrupt).isNotNull()
    return frame.select(
        *[F.when(is_bad, F.lit(None).cast("string")).otherwise(F.col(f"`{c}`")).alias(c) for c in columns],
        row_number.alias(ROW_NUMBER), F.lit(str(path)).alias(SOURCE_FILE),
        F.when(is_bad, F.lit(SPARK_MALFORMED_REASON)).alias(MALFORMED),
    )


def _uri_forms(path: Path) -> tuple[str, ...]:
    """The spellings of a local file's URI Spark may report (`file:///x`, `file:/x`, with or without encoding)."""
    uri = path.as_uri()
    return uri, "file:" + uri.removeprefix("file://"), f"file:{path}", f"file://{path}"


def spark_parquet_frame(spark: Any, paths: list[Path] | list[str]) -> Any:
    """Parquet files of one layout as one DataFrame; `_metadata` gives each row's file and position."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(*[str(path) for path in paths])
    # Spark reports file paths as URIs (`file:/x`, percent-encoded); keep the path the user gave, as DuckDB does.
    given = {form: str(p) for p in paths for form in _uri_forms(Path(str(p)).resolve())}
    file_path = F.col("_metadata.file_path")
    source = F.coalesce(*[F.when(file_path == uri, F.lit(path)) for uri, path in given.items()], file_path)
    return frame.select(
        "*", (F.col("_metadata.row_index") + 1).alias(ROW_NUMBER), source.alias(SOURCE_FILE),
        F.lit(None).cast("string").alias(MALFORMED),
    )


def _duckdb_lines_relation(path: Path) -> str:
    # One VARCHAR column: a unit-separator delimiter and no quoting keep every byte of the record.
    return (f"read_csv({sql_text(str(path))}, header = false, columns = {{'line': 'VARCHAR'}}, delim = '\x1f', "
            "quote = '', escape = '', auto_detect = false, strict_mode = false, nullstr = '\x1e')")


def duckdb_lines_table(con: Any, path: Path, name: str) -> Any:
    """A text file's lines stored in parallel as temp table `name__text`, and view `name` adding `_row_number`
    and `_source_file`. An insert that preserves insertion order stores rows in file order, so a line's number
    follows from its rowid (a numbering window would read the whole file on one thread). The stored text
    carries DuckDB's statistics: substrings of text known to be ASCII are cut by bytes, about three times faster
    than of text straight from the CSV reader."""
    con.raw_sql("SET preserve_insertion_order = true").fetchall()
    con.raw_sql(f"CREATE OR REPLACE TEMP TABLE {name}__text AS SELECT line FROM {_duckdb_lines_relation(path)}"
                ).fetchall()
    # Row ids count from the first row's: inside a transaction (runs.execute) new rows have ids above 2^55.
    con.raw_sql(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT line, CAST(rowid - (SELECT min(rowid) FROM "
                f"{name}__text) + 1 AS BIGINT) AS {ROW_NUMBER}, {_one_source_file(path)} AS {SOURCE_FILE} "
                f"FROM {name}__text").fetchall()
    return con.table(name)


def duckdb_drop_lines(con: Any, name: str) -> None:
    """Drop what `duckdb_lines_table` stored under `name`."""
    con.raw_sql(f"DROP VIEW IF EXISTS {name}").fetchall()
    con.raw_sql(f"DROP TABLE IF EXISTS {name}__text").fetchall()


def spark_lines_frame(spark: Any, path: Path) -> Any:
    """A text file's non-empty lines numbered in file order (one pass over an RDD, partitions in order)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    text = spark.read.text(str(path)).filter(F.length("value") > 0)
    schema = StructType([StructField("line", StringType()), StructField(ROW_NUMBER, LongType())])
    numbered = text.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1] + 1))
    return spark.createDataFrame(numbered, schema).withColumn(SOURCE_FILE, F.lit(str(path)))


def lines_name(path: Path) -> str:
    """A temp table name unique to the full path (fixed-width file names differ only in their suffixes)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:12]
    return f"lines__{digest}"


def temp_name(path: Path) -> str:
    """A view name unique to the full path (parts of two tables may share a file name)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:10]
    stem = "".join(ch if ch.isalnum() else "_" for ch in f"{path.parent.name}__{path.stem}").lower()
    return f"src__{stem}__{digest}"

"""The one CSV dialect every delimited source is read with: RFC 4180 quoting, a named encoding, a delimiter.

Nothing is sniffed from a sample. The delimiter is either given (`--delimiter`) or read off the header: the
candidate that splits the header into the most column names the table's contract knows. Every record of the
whole file is then parsed with that one dialect by the engine, and a record whose field count differs from
the header's is quarantined with its row number, never guessed around. Quoting is RFC 4180 throughout the
file (fields may hold the delimiter, quotes doubled, and line breaks); encodings default to UTF-8, and a byte
that is not valid in the encoding stops the file with one line naming the file, the byte offset and
`--encoding`.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path


DELIMITER_CANDIDATES = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
QUOTE = '"'
DEFAULT_ENCODING = "utf-8"
# The engines read UTF-8 themselves; any other encoding is streamed through Python's codec into a UTF-8 copy
# in the run folder first (DuckDB's own latin-1 refuses bytes 0x80-0x9f, which Latin-1 maps like any other).
NATIVE_ENCODINGS = {"utf-8": "utf-8"}
HEADER_READ_BYTES = 1 << 20
TRANSCODE_CHUNK = 1 << 24


class CsvFormatError(ValueError):
    """A delimited file cannot be read with the dialect given (encoding, delimiter): one line, no values."""


@dataclass(frozen=True)
class CsvDialect:
    """How delimited text files are read. `delimiter=None` reads it off each file's header."""

    delimiter: str | None = None
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in (QUOTE, "\n", "\r")):
            raise CsvFormatError(f"--delimiter {self.delimiter!r}: give one character other than a quote or "
                                 "line break (for a tab: --delimiter tab)")
        canonical_encoding(self.encoding)


def canonical_encoding(name: str) -> str:
    """Python's canonical name of an encoding (`latin1` → `iso8859-1`); an unknown name is a one-line error."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise CsvFormatError(f"--encoding {name!r}: not an encoding this Python knows (e.g. utf-8, latin-1, "
                             "cp1252, utf-16)") from None


def parse_delimiter_option(text: str | None) -> str | None:
    """`--delimiter` as typed: one character, or the words comma, semicolon, tab, pipe."""
    if text is None:
        return None
    by_name = {name: char for char, name in DELIMITER_NAMES.items()}
    return by_name.get(text.lower(), "\t" if text == "\\t" else text)


def native_encoding(name: str) -> str | None:
    """The engine's name for an encoding it reads natively, else None (transcode first)."""
    return NATIVE_ENCODINGS.get(canonical_encoding(name))


def encoding_error(path: Path | str, byte_offset: int | None, encoding: str) -> CsvFormatError:
    """One line: which file, where, and which option fixes it (never the bytes themselves)."""
    where = f" at byte {byte_offset:,}" if byte_offset is not None else ""
    hint = "latin-1" if canonical_encoding(encoding) != "iso8859-1" else "cp1252"
    return CsvFormatError(f"{path}: not valid {encoding} text{where}; give the file's encoding with --encoding "
                          f"(for example --encoding {hint})")


def _header_text(path: Path, encoding: str) -> str:
    """The first record of the file as text (enough bytes for any header), BOM removed."""
    with Path(path).open("rb") as handle:
        head = handle.read(HEADER_READ_BYTES)
    codec = canonical_encoding(encoding)
    if codec == "utf-8":
        codec = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        return decoder.decode(head, final=len(head) < HEADER_READ_BYTES)
    except UnicodeDecodeError as err:
        raise encoding_error(path, err.start, encoding) from None


def _split_header(path: Path, text: str, delimiter: str) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=QUOTE, doublequote=True,
                        strict=False)
    try:
        return [name.strip() for name in next(reader)]
    except StopIteration:
        return []
    except csv.Error as err:
        raise CsvFormatError(f"{path}: the header line cannot be parsed ({err})") from None


def read_header(path: Path, dialect: CsvDialect, known_columns: list[str] | None = None) -> tuple[list[str], str]:
    """Column names of a delimited file and the delimiter they were split with.

    With no delimiter given, the candidate (`, ; tab |`) that splits the header into the most names in
    `known_columns` wins; none matching is an error that names the candidates and `--delimiter`.
    """
    text = _header_text(path, dialect.encoding)
    if not text.strip():
        raise CsvFormatError(f"{path}: empty file (no header line)")
    known = set(known_columns or [])
    if dialect.delimiter is not None:
        names = _split_header(path, text, dialect.delimiter)
        if known and not known.intersection(names):
            raise CsvFormatError(f"{path}: the header names none of the table's columns when split by "
                                 f"{DELIMITER_NAMES.get(dialect.delimiter, repr(dialect.delimiter))} (--delimiter); "
                                 "check the file's delimiter")
        return names, dialect.delimiter
    best: tuple[int, int, str] | None = None
    for rank, candidate in enumerate(DELIMITER_CANDIDATES):
        names = _split_header(path, text, candidate)
        score = sum(1 for name in names if name in known) if known else len(names)
        if best is None or score > best[0]:
            best = (score, -rank, candidate)
    assert best is not None
    if known and best[0] == 0:
        tried = ", ".join(DELIMITER_NAMES[c] for c in DELIMITER_CANDIDATES)
        raise CsvFormatError(f"{path}: the header names none of the table's columns when split by {tried}; "
                             "check the file's header or give its delimiter with --delimiter")
    delimiter = best[2]
    return _split_header(path, text, delimiter), delimiter


def transcode_to_utf8(path: Path, encoding: str, target: Path) -> Path:
    """Stream `path` from `encoding` into a UTF-8 copy at `target` (for encodings an engine cannot read
    natively); an undecodable byte is a one-line error with its offset."""
    decoder = codecs.getincrementaldecoder(canonical_encoding(encoding))()
    target.parent.mkdir(parents=True, exist_ok=True)
    offset = 0
    with Path(path).open("rb") as source, target.open("w", encoding="utf-8", newline="") as sink:
        while True:
            chunk = source.read(TRANSCODE_CHUNK)
            pending = len(decoder.getstate()[0])
            try:
                sink.write(decoder.decode(chunk, final=not chunk))
            except UnicodeDecodeError as err:
                target.unlink(missing_ok=True)
                raise encoding_error(path, offset - pending + err.start, encoding) from None
            if not chunk:
                return target
            offset += len(chunk)


def first_invalid_utf8(path: Path) -> int | None:
    """Byte offset of the first byte that is not valid UTF-8, or None (streamed, constant memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with Path(path).open("rb") as source:
        while True:
            chunk = source.read(TRANSCODE_CHUNK)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                return offset - pending + err.start
            if not chunk:
                return None
            offset += len(chunk)


FALLBACK_BATCH_ROWS = 50_000


def records_to_parquet(path: Path, header: list[str], delimiter: str, target: Path,
                       row_number: str, malformed: str) -> Path:
    """The engine-independent reader for files an engine's strict parser gives up on (a bare carriage return
    outside quotes stops DuckDB's): Python's csv module, record by record, streamed to Parquet in batches.
    Every record keeps its number; a record whose field count differs or whose quoting is broken gets a
    reason in `malformed` and no values. `path` must be UTF-8 (transcode first)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([*(pa.field(name, pa.string()) for name in header),
                        pa.field(row_number, pa.int64()), pa.field(malformed, pa.string())])
    target.parent.mkdir(parents=True, exist_ok=True)
    batch: list[list] = [[] for _ in schema]
    width = len(header)
    with Path(path).open(encoding="utf-8-sig", newline="") as handle, pq.ParquetWriter(target, schema) as writer:
        reader = csv.reader(handle, delimiter=delimiter, quotechar=QUOTE, doublequote=True, strict=True)
        try:
            next(reader)  # the header, already read by read_header
        except (StopIteration, csv.Error):
            pass
        number = 0
        while True:
            try:
                fields = next(reader)
                problem = None if len(fields) == width else (
                    f"malformed CSV record (header has {width} fields, record has {len(fields)})")
            except StopIteration:
                break
            except csv.Error as err:
                fields, problem = [], f"malformed CSV record ({err})"
            if not fields and problem is None:
                continue  # blank line: not a record
            number += 1
            values = fields if problem is None else [None] * width
            for column, value in zip(batch, [*values, number, problem]):
                column.append(value)
            if len(batch[0]) >= FALLBACK_BATCH_ROWS:
                writer.write_table(pa.table(batch, schema=schema))
                batch = [[] for _ in schema]
        writer.write_table(pa.table(batch, schema=schema))
    return target

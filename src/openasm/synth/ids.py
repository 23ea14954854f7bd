"""Vectorized identifiers and string columns: MBI-shaped bene ids, NPIs with a Luhn check digit, TINs.

Strings are built as fixed-width byte matrices and handed to Arrow without a Python loop per value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from openasm.schema.formats import NPI_PREFIX_LUHN_CONSTANT

# MBI character classes (CMS MBI format: positions 2, 5, 8, 9 letters; 3, 6 letter or digit).
_MBI_LETTERS = np.frombuffer(b"ACDEFGHJKMNPQRTUVWXY", dtype=np.uint8)
_MBI_ALNUM = np.frombuffer(b"0123456789ACDEFGHJKMNPQRTUVWXY", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_NONZERO = np.frombuffer(b"123456789", dtype=np.uint8)
_MBI_POSITIONS = (_NONZERO, _MBI_LETTERS, _MBI_ALNUM, _DIGITS, _MBI_LETTERS, _MBI_ALNUM, _DIGITS,
                  _MBI_LETTERS, _MBI_LETTERS, _DIGITS, _DIGITS)
MBI_CAPACITY = int(np.prod([len(p) for p in _MBI_POSITIONS], dtype=np.float64))
_SCRAMBLE = 1_000_000_007  # prime, coprime with every capacity used here


def strings_from_bytes(matrix: np.ndarray) -> pa.StringArray:
    """An Arrow string array from an (n, width) uint8 matrix of ASCII bytes."""
    n, width = matrix.shape
    data = pa.py_buffer(np.ascontiguousarray(matrix, dtype=np.uint8).tobytes())
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, data)


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, zero padded."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)


def digit_strings(values: np.ndarray, width: int, prefix: bytes = b"") -> pa.StringArray:
    """Zero-padded decimal strings, optionally behind a constant ASCII prefix."""
    body = digit_matrix(values, width)
    if prefix:
        head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (len(body), len(prefix)))
        body = np.hstack([head, body])
    return strings_from_bytes(body)


def mbi_ids(index: np.ndarray, seed: int) -> pa.StringArray:
    """MBI-shaped ids (11 characters) from bene indices; a bijection, so distinct indices give distinct ids."""
    value = (np.asarray(index, dtype=np.int64) * _SCRAMBLE + (seed * 7919) % MBI_CAPACITY) % MBI_CAPACITY
    out = np.empty((len(value), len(_MBI_POSITIONS)), dtype=np.uint8)
    for pos in range(len(_MBI_POSITIONS) - 1, -1, -1):
        alphabet = _MBI_POSITIONS[pos]
        out[:, pos] = alphabet[value % len(alphabet)]
        value = value // len(alphabet)
    return strings_from_bytes(out)


def npi_check_digits(base9: np.ndarray) -> np.ndarray:
    """Luhn check digit (80840 prefix) for 9-digit NPI bases, vectorized (see formats.npi_check_digit)."""
    digits = (digit_matrix(base9, 9) - 48).astype(np.int64)
    doubled = digits[:, 0::2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = NPI_PREFIX_LUHN_CONSTANT + doubled.sum(axis=1) + digits[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


def npi_values(index: np.ndarray, seed: int) -> np.ndarray:
    """Distinct 10-digit NPIs (as int64) starting with 1 or 2, with a valid check digit."""
    span = 200_000_000  # 9-digit bases 100000000-299999999
    base = 100_000_000 + (np.asarray(index, dtype=np.int64) * _SCRAMBLE + (seed * 104729) % span) % span
    return base * 10 + npi_check_digits(base)


def tin_values(index: np.ndarray, prefix_draw: np.ndarray, seed: int) -> np.ndarray:
    """Distinct 9-digit TINs (EIN-shaped: a valid IRS campus prefix and a 7-digit serial)."""
    span = 10_000_000
    serial = (np.asarray(index, dtype=np.int64) * _SCRAMBLE + (seed * 15485863) % span) % span
    return EIN_PREFIXES[prefix_draw] * span + serial


# IRS EIN prefixes in use (campus / internet assignments).
EIN_PREFIXES = np.array([
    10, 12, 20, 26, 27, 30, 32, 35, 36, 37, 38, 39, 41, 42, 43, 45, 46, 47, 48, 51, 52, 54, 55, 56, 57,
    58, 59, 61, 62, 63, 64, 65, 66, 68, 71, 72, 73, 74, 75, 76, 77, 81, 82, 83, 84, 85, 86, 87, 88, 90,
    91, 92, 93, 94, 95, 98, 99,
], dtype=np.int64)


def take_strings(vocab: pa.Array, index: np.ndarray) -> pa.Array:
    """vocab[index] as an Arrow string array; index -1 gives null."""
    index = np.asarray(index)
    mask = index < 0
    idx = pa.array(np.where(mask, 0, index).astype(np.int32), mask=mask if mask.any() else None)
    return vocab.take(idx)

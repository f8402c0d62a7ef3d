"""What an execution gives back: its record, and values normalised and hashed the same on
every engine."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import marshal
from dataclasses import dataclass, field
from itertools import chain
from typing import Any



STATUSES = ("ok", "error", "timeout", "rejected", "infra_error")
ERROR_CLASSES = (
    "input", "syntax", "unknown_table", "unknown_column", "unknown_function", "type_mismatch", "ambiguous",
    "group_by", "division", "permission", "resource", "other",
)


def normalize_value(v: Any) -> Any:
    """One representation per value across engines: what SQLite would have returned.

    Decimal becomes int when integral, else float (PostgreSQL's AVG, MySQL's SUM); ints and
    floats stay as they are (the comparator equates 3 and 3.0); dates and times their SQLite text form; bytes UTF-8 text if they
    decode, else hex; booleans 0/1.
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v  # 3.0 stays a float: the comparator treats 3 and 3.0 as equal
    if isinstance(v, decimal.Decimal):
        if v.is_finite() and v == v.to_integral_value() and abs(v) < 2**53:
            return int(v)
        return float(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return str(v)  # '2023-01-01 06:00:00' like SQLite's text, not isoformat's 'T'
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b.hex()
    return str(v)


_PLAIN = frozenset({int, str, float, type(None)})


def normalize_rows(rows) -> list[tuple]:
    if _PLAIN.issuperset(map(type, chain.from_iterable(rows))):  # the common case: one pass in C
        if set(map(type, rows)) <= {tuple}:
            return rows if type(rows) is list else list(rows)  # MySQLdb returns a tuple of tuples
        return [r if type(r) is tuple else tuple(r) for r in rows]
    return [tuple(normalize_value(x) for x in r) for r in rows]


_dumps = marshal.dumps
_blake2b = hashlib.blake2b


def result_hash(rows: list[tuple]) -> str:
    """Order-insensitive hash of a normalised result (the multiset of rows, exact values).
    Equal hashes mean equal results; the comparator, with its float tolerance, decides a
    match between results that hash differently. Each row is serialised by marshal in C,
    format version 2, which is canonical (no back-references by object identity, no
    interning flags; those came with version 3) and self-delimiting, so the sorted
    serialisations, joined, are the multiset. Sorting bytes rather than the row tuples is
    faster on large results (memcmp, not Python comparisons) and never meets None beside
    a value. A value marshal cannot write falls back to repr."""
    n = len(rows)
    try:
        if n == 1:  # half of Spider's results: no list, sort or join (the same digest)
            return _blake2b(_dumps(rows[0], 2) + b"1", digest_size=12).hexdigest()
        parts = [_dumps(r, 2) for r in rows]
    except ValueError:
        parts = [repr(r).encode("utf-8", "surrogatepass") + b"\x1e" for r in rows]
    parts.sort()
    h = _blake2b(b"".join(parts), digest_size=12)
    h.update(str(n).encode())
    return h.hexdigest()


@dataclass(slots=True)
class Execution:
    """The execution record of one (db_id, sql); `rows` stays in memory, never in the record."""

    status: str
    error_class: str | None = None
    error: str | None = None
    elapsed_ms: float = 0.0
    row_count: int = 0
    truncated: bool = False
    result_hash: str | None = None
    rows: list[tuple] | None = field(default=None, repr=False)
    cached: bool = False

    def record(self) -> dict:
        return {
            "status": self.status,
            "error_class": self.error_class,
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "row_count": self.row_count,
            "truncated": self.truncated,
            "result_hash": self.result_hash,
        }

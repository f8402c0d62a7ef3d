"""A database's schema as translation and prompts see it: each column's stored kind (what
migration creates) and SQLite affinity."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field



SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "text": "TEXT", "blob": "BLOB"}

@dataclass(frozen=True)
class Schema:
    """Tables → columns → stored kind (int, float, text, blob), names lower-cased; and, from
    SQLite's declared types, each column's affinity (integer, real, numeric, text, blob)."""

    tables: dict[str, dict[str, str]]
    affinity: dict[str, dict[str, str]] = field(default_factory=dict)

    def column_affinity(self, name: str) -> str | None:
        """The affinity of columns called `name` when every table agrees on it."""
        found = {cols[name] for cols in self.affinity.values() if name in cols}
        return found.pop() if len(found) == 1 else None

    def sqlglot_schema(self) -> dict:
        return {t: {c: SQL_TYPES[k] for c, k in cols.items()} for t, cols in self.tables.items()}

    @functools.cached_property
    def columns(self) -> set[str]:
        return {c for cols in self.tables.values() for c in cols}


@functools.lru_cache(maxsize=512)
def schema_of(db_path: str) -> Schema:
    """Column kinds as migration chooses them (from the values actually stored)."""
    from exesql_ray.engines.migrate import read_sqlite

    import sqlite3

    src = read_sqlite("_", db_path)
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        affinity = {t.name.lower(): {r[1].lower(): sqlite_affinity(r[2] or "")
                                     for r in con.execute(f'PRAGMA table_info("{t.name}")')} for t in src.tables}
    finally:
        con.close()
    return Schema({t.name.lower(): {c.name.lower(): c.kind for c in t.columns} for t in src.tables}, affinity)


def sqlite_affinity(declared: str) -> str:
    """SQLite's rules (datatype3.html, 3.1), in their order."""
    t = declared.upper()
    if "INT" in t:
        return "integer"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "text"
    if "BLOB" in t or not t:
        return "blob"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "real"
    return "numeric"

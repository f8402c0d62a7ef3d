"""SQLite → PostgreSQL / MySQL (MariaDB) / DuckDB / Oracle, through Arrow: the machinery;
each engine's module declares its `Target` (types, names, how it loads and reads back).

- Column types come from the values actually stored (SQLite's declared types are hints):
  only integers → integer; integers and reals → double; any text → text (other values are
  written as SQLite's CAST(x AS TEXT) would); only blobs → binary.
- Identifier case: lower case on PostgreSQL, MySQL and DuckDB (unquoted names then match
  whatever case a query uses; PostgreSQL folds to lower case); upper case on Oracle.
- One schema (PostgreSQL), database (MySQL), file (DuckDB) or user (Oracle) per db_id.
- Primary and foreign keys best-effort after the load; each one that cannot be kept
  (Spider links text columns to integer ones, duplicates under a declared key…) is reported.
- The SELECT-only login gets read access to what was created.
- Verified: per-table row counts and an order-independent content checksum, read back from
  the engine, against the (type-converted) SQLite content.
- Idempotent: the source checksum is stored with the target; a re-run skips a DB whose
  target holds it and verifies.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from exesql_ray.engines.results import normalize_value

KINDS = ("int", "float", "text", "blob")


@dataclass
class Column:
    name: str  # as in SQLite
    kind: str
    max_len: int = 0


@dataclass
class Table:
    name: str
    columns: list[Column]
    data: pa.Table
    primary_key: list[str]
    foreign_keys: list[tuple[list[str], str, list[str]]]  # (columns, referenced table, referenced columns)
    checksum: str = ""

    @property
    def rows(self) -> int:
        return self.data.num_rows


@dataclass
class SourceDB:
    db_id: str
    path: str
    tables: list[Table]
    checksum: str
    notes: list[str] = field(default_factory=list)


def _kind(values) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return "text"
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    if kinds == {bytes}:
        return "blob"
    return "text"


def _as_text(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return f"{v:.1f}"  # SQLite's CAST(3.0 AS TEXT) is '3.0'
    return str(v)


_ARROW = {"int": pa.int64(), "float": pa.float64(), "text": pa.string(), "blob": pa.binary()}


def _checksum_value(v) -> str:
    v = normalize_value(v)
    if isinstance(v, float):
        return format(v, ".12g")
    return repr(v)


def table_checksum(rows) -> str:
    """Order-independent: the sum of per-row hashes (mod 2^64) and the row count."""
    total = 0
    n = 0
    for r in rows:
        h = hashlib.blake2b("\x1f".join(_checksum_value(v) for v in r).encode("utf-8", "surrogatepass"),
                            digest_size=8).digest()
        total = (total + int.from_bytes(h, "little")) & 0xFFFFFFFFFFFFFFFF
        n += 1
    return f"{n}:{total:016x}"


def read_sqlite(db_id: str, path: str | Path) -> SourceDB:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.text_factory = lambda b: b.decode("utf-8", "replace")
    notes = []
    tables = []
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        for t in names:
            info = con.execute(f'PRAGMA table_info("{t}")').fetchall()
            cols = [r[1] for r in info]
            pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            fks: dict[int, tuple[list[str], str, list[str | None]]] = {}
            for fid, _seq, ref, frm, to, *_ in con.execute(f'PRAGMA foreign_key_list("{t}")'):
                entry = fks.setdefault(fid, ([], ref, []))
                entry[0].append(frm)
                entry[2].append(to)
            raw = con.execute(f'SELECT * FROM "{t}"').fetchall()
            columns, arrays = [], []
            for i, c in enumerate(cols):
                values = [r[i] for r in raw]
                kind = _kind(values)
                if kind == "text":
                    values = [_as_text(v) for v in values]
                    if any(isinstance(v, str) and "\x00" in v for v in values):
                        values = [v.replace("\x00", "") if isinstance(v, str) else v for v in values]
                        notes.append(f"{t}.{c}: NUL characters removed (no engine but SQLite stores them in text)")
                elif kind == "float":
                    values = [None if v is None else float(v) for v in values]
                max_len = max((len(v) for v in values if isinstance(v, (str, bytes))), default=0)
                columns.append(Column(c, kind, max_len))
                arrays.append(pa.array(values, type=_ARROW[kind]))
            data = pa.Table.from_arrays(arrays, names=cols) if cols else pa.table({})
            table = Table(t, columns, data, pk, [(f[0], f[1], f[2]) for f in fks.values()])
            table.checksum = table_checksum(zip(*[a.to_pylist() for a in arrays])) if cols and raw else "0:0000000000000000"
            tables.append(table)
    finally:
        con.close()
    # Resolve FKs that name no column (they point at the referenced table's primary key).
    by_name = {t.name.lower(): t for t in tables}
    for t in tables:
        fixed = []
        for frm, ref, to in t.foreign_keys:
            target = by_name.get(ref.lower())
            if target is None:
                notes.append(f"{t.name}: foreign key to missing table {ref}")
                continue
            if any(x is None for x in to):
                to = target.primary_key if len(target.primary_key) == len(frm) else [None] * len(frm)
            if any(x is None for x in to):
                notes.append(f"{t.name}: foreign key to {ref} names no columns and {ref} has no matching key")
                continue
            fixed.append((frm, target.name, list(to)))
        t.foreign_keys = fixed
    checksum = hashlib.sha256("|".join(f"{t.name}={t.checksum}" for t in tables).encode()).hexdigest()[:32]
    return SourceDB(db_id, str(path), tables, checksum, notes)


@dataclass
class MigrationResult:
    db_id: str
    engine: str
    status: str  # migrated | skipped (already there, verified) | failed
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    keys_dropped: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def verified(self) -> bool:
        return self.status in ("migrated", "skipped") and not self.mismatches


class Target:
    """One engine's side of a migration; subclasses declare types and name policy."""

    name: str
    types: dict[str, str]

    def ident(self, name: str) -> str:
        return '"' + name.lower().replace('"', '""') + '"'

    def column_type(self, col: Column, in_key: bool) -> str:
        return self.types[col.kind]

    def add_keys(self, src: SourceDB, prefix: str) -> list[str]:
        """Primary then foreign keys, each on its own; returns the ones the engine refused."""
        dropped = []
        for t in src.tables:
            if t.primary_key:
                err = self.try_ddl(f"ALTER TABLE {prefix}{self.ident(t.name)} ADD PRIMARY KEY "
                                   f"({', '.join(self.ident(c) for c in t.primary_key)})")
                if err:
                    dropped.append(f"{t.name} primary key ({', '.join(t.primary_key)}): {err}")
        for t in src.tables:
            for frm, ref, to in t.foreign_keys:
                err = self.add_foreign_key(prefix, t.name, frm, ref, to)
                if err:
                    dropped.append(f"{t.name}({', '.join(frm)}) → {ref}({', '.join(to)}): {err}")
        return dropped

    def add_foreign_key(self, prefix: str, table: str, frm: list[str], ref: str, to: list[str]) -> str | None:
        return self.try_ddl(self.foreign_key_ddl(prefix, table, frm, ref, to))

    def foreign_key_ddl(self, prefix: str, table: str, frm: list[str], ref: str, to: list[str]) -> str:
        return (f"ALTER TABLE {prefix}{self.ident(table)} ADD FOREIGN KEY ({', '.join(self.ident(c) for c in frm)}) "
                f"REFERENCES {prefix}{self.ident(ref)} ({', '.join(self.ident(c) for c in to)})")

    def first_orphan_sql(self, prefix: str, table: str, frm: list[str], ref: str, to: list[str]) -> str:
        """A query that returns a row of `table` whose key (all of it set) has no row in `ref`:
        the data a foreign key refuses (MATCH SIMPLE: a key with a NULL in it is not checked)."""
        on = " AND ".join(f"c.{self.ident(a)} = p.{self.ident(b)}" for a, b in zip(frm, to))
        where = " AND ".join(f"c.{self.ident(a)} IS NOT NULL" for a in frm)
        return (f"SELECT 1 FROM {prefix}{self.ident(table)} c LEFT JOIN {prefix}{self.ident(ref)} p ON {on} "
                f"WHERE {where} AND p.{self.ident(to[0])} IS NULL LIMIT 1")

    # implemented per engine
    def try_ddl(self, sql: str) -> str | None:
        """Run one DDL statement; None on success, else the engine's one-line reason."""
        raise NotImplementedError

    def stored_checksum(self, db_id: str) -> str | None: ...
    def load(self, src: SourceDB) -> list[str]: ...  # returns the keys that could not be kept
    def read_table(self, db_id: str, table: str): ...
    def close(self) -> None: ...

    def migrate(self, src: SourceDB, force: bool = False) -> MigrationResult:
        t0 = time.perf_counter()
        res = MigrationResult(src.db_id, self.name, "migrated", tables=len(src.tables),
                              rows=sum(t.rows for t in src.tables), notes=list(src.notes))
        try:
            if not force and self.stored_checksum(src.db_id) == src.checksum:
                res.status = "skipped"
            else:
                res.keys_dropped = self.load(src)
            for t in src.tables:
                got = table_checksum(self.read_table(src.db_id, t.name))
                if got != t.checksum:
                    res.mismatches.append(f"{t.name}: source {t.checksum}, {self.name} {got}")
        except Exception as e:  # one DB failing must not stop the others
            res.status = "failed"
            res.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        res.seconds = time.perf_counter() - t0
        return res


def order_by_dependencies(tables: list[Table]) -> list[Table]:
    """Referenced tables first, so foreign keys can be declared at creation where needed."""
    by_name = {t.name.lower(): t for t in tables}
    done, out = set(), []

    def visit(t: Table, stack: set):
        key = t.name.lower()
        if key in done or key in stack:
            return
        stack.add(key)
        for _, ref, _ in t.foreign_keys:
            if ref.lower() in by_name and ref.lower() != key:
                visit(by_name[ref.lower()], stack)
        done.add(key)
        out.append(t)

    for t in tables:
        visit(t, set())
    return out


# ---------------------------------------------------------------- driver

def open_target(engine: str, cfg, duckdb_root: str | Path | None = None) -> Target:
    """The migration target of `engine` (declared by its engine class), with the config's
    admin login; `duckdb_root` overrides where DuckDB's files go."""
    from exesql_ray.engines import engine_class

    return engine_class(engine).migration_target(cfg, root=duckdb_root)


def migrate_dbs(target: Target, dbs: dict[str, str], force: bool = False, progress=None) -> list[MigrationResult]:
    """Migrate every (db_id → SQLite path); one result each, failures included."""
    out = []
    for db_id, path in sorted(dbs.items()):
        try:
            src = read_sqlite(db_id, path)
        except sqlite3.Error as e:
            out.append(MigrationResult(db_id, target.name, "failed", error=f"reading {path}: {e}"))
            continue
        out.append(target.migrate(src, force=force))
        if progress:
            progress(out[-1])
    return out

"""SQLite → PostgreSQL / MySQL (MariaDB) / DuckDB / Oracle, through Arrow.

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
import json
import os
import sqlite3
import tempfile
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
                err = self.try_ddl(f"ALTER TABLE {prefix}{self.ident(t.name)} ADD FOREIGN KEY "
                                   f"({', '.join(self.ident(c) for c in frm)}) REFERENCES {prefix}{self.ident(ref)} "
                                   f"({', '.join(self.ident(c) for c in to)})")
                if err:
                    dropped.append(f"{t.name}({', '.join(frm)}) → {ref}({', '.join(to)}): {err}")
        return dropped

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


def _order_by_dependencies(tables: list[Table]) -> list[Table]:
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


# ---------------------------------------------------------------- PostgreSQL

class PostgresTarget(Target):
    name = "postgres"
    types = {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA"}

    def __init__(self, admin_dsn: str, reader: str):
        import psycopg

        from exesql_ray.engines.postgres import hide_password
        from exesql_ray.errors import UserError

        if not admin_dsn:
            raise UserError("postgres migration needs engines.postgres.admin_dsn (EXESQL_PG_ADMIN_DSN)")
        try:
            self.conn = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as e:
            raise UserError(f"postgres: cannot connect to {hide_password(admin_dsn)}: {str(e).strip().splitlines()[0]}") from None
        self.reader = reader

    def stored_checksum(self, db_id):
        row = self.conn.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
                                (db_id.lower(),)).fetchone()
        if row and row[0] and row[0].startswith("exesql "):
            return row[0].split(" ", 1)[1]
        return None

    def load(self, src):
        s = self.ident(src.db_id)
        dropped = []
        with self.conn.transaction():
            self.conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
            self.conn.execute(f"CREATE SCHEMA {s}")
            for t in src.tables:
                cols = ", ".join(f"{self.ident(c.name)} {self.types[c.kind]}" for c in t.columns)
                self.conn.execute(f"CREATE TABLE {s}.{self.ident(t.name)} ({cols})")
                names = ", ".join(self.ident(c.name) for c in t.columns)
                with self.conn.cursor().copy(f"COPY {s}.{self.ident(t.name)} ({names}) FROM STDIN") as cp:
                    for row in zip(*[a.to_pylist() for a in t.data.columns]):
                        cp.write_row(row)
            dropped += self.add_keys(src, f"{s}.")
            self.conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {self.ident(self.reader)}")
            self.conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {self.ident(self.reader)}")
            self.conn.execute(f"COMMENT ON SCHEMA {s} IS 'exesql {src.checksum}'")
        return dropped

    def try_ddl(self, sql):
        import psycopg

        try:
            with self.conn.transaction():
                self.conn.execute(sql)
        except psycopg.Error as e:
            return str(e).strip().splitlines()[0]
        return None

    def read_table(self, db_id, table):
        return self.conn.execute(f"SELECT * FROM {self.ident(db_id)}.{self.ident(table)}").fetchall()

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- MySQL / MariaDB

class MySQLTarget(Target):
    name = "mysql"
    types = {"int": "BIGINT", "float": "DOUBLE", "text": "LONGTEXT", "blob": "LONGBLOB"}
    META_DB = "exesql_meta"

    def __init__(self, admin_dsn: str, reader: str):
        import MySQLdb

        from exesql_ray.engines.mysql import parse_mysql_dsn, require_folded_table_names
        from exesql_ray.engines.postgres import hide_password
        from exesql_ray.errors import UserError

        if not admin_dsn:
            raise UserError("mysql migration needs engines.mysql.admin_dsn (EXESQL_MYSQL_ADMIN_DSN)")
        try:
            self.conn = MySQLdb.connect(**parse_mysql_dsn(admin_dsn), charset="utf8mb4", autocommit=True,
                                        connect_timeout=5)
        except MySQLdb.OperationalError as e:
            raise UserError(f"mysql: cannot connect to {hide_password(admin_dsn)}: {e.args[-1]}") from None
        try:
            require_folded_table_names(self.conn, admin_dsn)  # before anything is created there
        except UserError:
            self.conn.close()
            raise
        self.reader = reader
        cur = self.conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.META_DB}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.META_DB}.migrations (db_id VARCHAR(128) PRIMARY KEY, checksum VARCHAR(64))")
        cur.execute("SELECT VERSION()")
        self.flavor = "mariadb" if "MariaDB" in cur.fetchone()[0] else "mysql"
        cur.execute("SELECT user, host FROM mysql.user WHERE user = %s", (reader,))
        self.reader_accounts = cur.fetchall()

    def ident(self, name):
        return "`" + name.lower().replace("`", "``") + "`"

    def column_type(self, col, in_key):
        # InnoDB keys need bounded types (768 utf8mb4 characters at most); short text is
        # VARCHAR so that sorting and grouping stay in memory.
        if col.kind == "text":
            if in_key and col.max_len <= 768:
                return f"VARCHAR({max(col.max_len, 1)})"
            if col.max_len <= 255:
                return "VARCHAR(255)"
        if col.kind == "blob" and in_key and col.max_len <= 3072:
            return f"VARBINARY({max(col.max_len, 1)})"
        return self.types[col.kind]

    def stored_checksum(self, db_id):
        cur = self.conn.cursor()
        cur.execute(f"SELECT checksum FROM {self.META_DB}.migrations WHERE db_id = %s", (db_id.lower(),))
        row = cur.fetchone()
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (db_id.lower(),))
        return row[0] if row and cur.fetchone() else None

    def load(self, src):

        db = self.ident(src.db_id)
        cur = self.conn.cursor()
        cur.execute(f"DELETE FROM {self.META_DB}.migrations WHERE db_id = %s", (src.db_id.lower(),))
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        keyed = {(t.name, c) for t in src.tables for c in t.primary_key}
        keyed |= {(t.name, c) for t in src.tables for frm, _, _ in t.foreign_keys for c in frm}
        keyed |= {(ref, c) for t in src.tables for _, ref, to in t.foreign_keys for c in to}
        keyed_l = {(a.lower(), b.lower()) for a, b in keyed}
        for t in src.tables:
            cols = ", ".join(f"{self.ident(c.name)} {self.column_type(c, (t.name.lower(), c.name.lower()) in keyed_l)}"
                             for c in t.columns)
            cur.execute(f"CREATE TABLE {db}.{self.ident(t.name)} ({cols}) ENGINE=InnoDB")
            if t.rows:
                marks = ", ".join(["%s"] * len(t.columns))
                sql = f"INSERT INTO {db}.{self.ident(t.name)} VALUES ({marks})"
                rows = list(zip(*[a.to_pylist() for a in t.data.columns]))
                for i in range(0, len(rows), 2000):
                    cur.executemany(sql, rows[i:i + 2000])
        dropped = self.add_keys(src, f"{db}.")
        for user, host in self.reader_accounts:
            cur.execute(f"GRANT SELECT ON {db}.* TO %s@%s", (user, host))
        cur.execute(f"INSERT INTO {self.META_DB}.migrations VALUES (%s, %s)", (src.db_id.lower(), src.checksum))
        return dropped

    def try_ddl(self, sql):
        import MySQLdb

        try:
            self.conn.cursor().execute(sql)
        except MySQLdb.Error as e:
            return str(e.args[-1])
        return None

    def read_table(self, db_id, table):
        cur = self.conn.cursor()
        cur.execute(f"SELECT * FROM {self.ident(db_id)}.{self.ident(table)}")
        return cur.fetchall()

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- DuckDB

class DuckDBTarget(Target):
    name = "duckdb"
    types = {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR", "blob": "BLOB"}

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._reader = None

    def _path(self, db_id):
        return self.root / f"{db_id}.duckdb"

    def stored_checksum(self, db_id):
        meta = self.root / f"{db_id}.duckdb.json"
        if meta.is_file() and self._path(db_id).is_file():
            return json.loads(meta.read_text()).get("checksum")
        return None

    def load(self, src):
        import duckdb

        self.close()
        dropped = []
        fd, tmp = tempfile.mkstemp(prefix=f".{src.db_id}.", suffix=".duckdb", dir=self.root)
        os.close(fd)
        os.unlink(tmp)
        con = duckdb.connect(tmp)
        try:
            created = set()
            for t in _order_by_dependencies(src.tables):
                cols = [f"{self.ident(c.name)} {self.types[c.kind]}" for c in t.columns]
                pk = [f"PRIMARY KEY ({', '.join(self.ident(c) for c in t.primary_key)})"] if t.primary_key else []
                fks = [(frm, ref, to) for frm, ref, to in t.foreign_keys if ref.lower() in created]
                fk_sql = [f"FOREIGN KEY ({', '.join(self.ident(c) for c in frm)}) REFERENCES {self.ident(ref)} "
                          f"({', '.join(self.ident(c) for c in to)})" for frm, ref, to in fks]
                for frm, ref, to in t.foreign_keys:
                    if ref.lower() not in created:
                        dropped.append(f"{t.name}({', '.join(frm)}) → {ref}: reference cycle or self-reference")
                attempts = [(pk, fk_sql), (pk, []), ([], [])]
                for i, (p, f) in enumerate(attempts):
                    try:
                        con.execute("BEGIN")
                        con.execute(f"CREATE TABLE {self.ident(t.name)} ({', '.join(cols + p + f)})")
                        con.register("src_rows", t.data)
                        con.execute(f"INSERT INTO {self.ident(t.name)} SELECT * FROM src_rows")
                        con.unregister("src_rows")
                        con.execute("COMMIT")
                        if i == 1 and fk_sql:
                            dropped += [f"{t.name}({', '.join(a)}) → {b}: rows violate the key" for a, b, _ in fks]
                        if i == 2:
                            if pk:
                                dropped.append(f"{t.name} primary key ({', '.join(t.primary_key)}): rows violate the key")
                            if fk_sql:
                                dropped += [f"{t.name}({', '.join(a)}) → {b}: rows violate the key" for a, b, _ in fks]
                        break
                    except duckdb.Error:
                        con.execute("ROLLBACK")
                        if i == len(attempts) - 1:
                            raise
                created.add(t.name.lower())
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, self._path(src.db_id))
        Path(tmp + ".wal").unlink(missing_ok=True)
        (self.root / f"{src.db_id}.duckdb.json").write_text(json.dumps({"checksum": src.checksum, "dropped": dropped}))
        return dropped

    def read_table(self, db_id, table):
        import duckdb

        # One read-only connection per DB for its tables (a connection is costly to open).
        if self._reader is None or self._reader[0] != db_id:
            self.close()
            self._reader = (db_id, duckdb.connect(str(self._path(db_id)), read_only=True))
        return self._reader[1].execute(f"SELECT * FROM {self.ident(table)}").fetchall()

    def close(self):
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None


# ---------------------------------------------------------------- Oracle (not run here: no server)

class OracleTarget(Target):
    name = "oracle"
    types = {"int": "NUMBER(19)", "float": "BINARY_DOUBLE", "text": "CLOB", "blob": "BLOB"}

    def __init__(self, admin_dsn: str, reader: str):
        import oracledb

        from exesql_ray.engines.oracle import parse_oracle_dsn

        kw = parse_oracle_dsn(admin_dsn)
        self.conn = oracledb.connect(user=kw["user"], password=kw["password"], dsn=kw["dsn"])
        self.reader = reader
        cur = self.conn.cursor()
        try:
            cur.execute("CREATE TABLE exesql_migrations (db_id VARCHAR2(128) PRIMARY KEY, checksum VARCHAR2(64))")
        except oracledb.DatabaseError:
            pass  # ORA-00955: exists

    def ident(self, name):
        from exesql_ray.engines.oracle import oracle_ident

        return oracle_ident(name)

    def column_type(self, col, in_key):
        if col.kind == "text" and col.max_len <= 4000:
            return f"VARCHAR2({max(col.max_len, 1)} CHAR)"
        return self.types[col.kind]

    def stored_checksum(self, db_id):
        cur = self.conn.cursor()
        cur.execute("SELECT checksum FROM exesql_migrations WHERE db_id = :1", [db_id.lower()])
        row = cur.fetchone()
        return row[0] if row else None

    def load(self, src):
        import secrets

        import oracledb

        user = self.ident(src.db_id)
        cur = self.conn.cursor()
        try:
            cur.execute(f"DROP USER {user} CASCADE")
        except oracledb.DatabaseError:
            pass  # ORA-01918: no such user
        cur.execute(f'CREATE USER {user} IDENTIFIED BY "{secrets.token_hex(12)}" ACCOUNT LOCK QUOTA UNLIMITED ON USERS')
        for t in src.tables:
            cols = ", ".join(f"{self.ident(c.name)} {self.column_type(c, False)}" for c in t.columns)
            cur.execute(f"CREATE TABLE {user}.{self.ident(t.name)} ({cols})")
            if t.rows:
                marks = ", ".join(f":{i + 1}" for i in range(len(t.columns)))
                rows = list(zip(*[a.to_pylist() for a in t.data.columns]))
                cur.executemany(f"INSERT INTO {user}.{self.ident(t.name)} VALUES ({marks})", rows, batcherrors=False)
            cur.execute(f"GRANT SELECT ON {user}.{self.ident(t.name)} TO {self.ident(self.reader)}")
        dropped = self.add_keys(src, f"{user}.")
        cur.execute("MERGE INTO exesql_migrations m USING (SELECT :1 d, :2 c FROM dual) s ON (m.db_id = s.d) "
                    "WHEN MATCHED THEN UPDATE SET m.checksum = s.c WHEN NOT MATCHED THEN INSERT VALUES (s.d, s.c)",
                    [src.db_id.lower(), src.checksum])
        self.conn.commit()
        return dropped

    def try_ddl(self, sql):
        import oracledb

        try:
            self.conn.cursor().execute(sql)
        except oracledb.DatabaseError as e:
            return str(e).splitlines()[0]
        return None

    def read_table(self, db_id, table):
        cur = self.conn.cursor()
        cur.execute(f"SELECT * FROM {self.ident(db_id)}.{self.ident(table)}")
        return [tuple(v.read() if hasattr(v, "read") else v for v in r) for r in cur.fetchall()]

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- driver

def reader_login(engine: str, dsn: str | None) -> str:
    """The SELECT-only login's user name, read from its DSN."""
    if not dsn:
        return "exesql_reader"
    if engine == "postgres":
        from psycopg.conninfo import conninfo_to_dict

        return conninfo_to_dict(dsn).get("user") or "exesql_reader"
    if engine == "mysql":
        from exesql_ray.engines.mysql import parse_mysql_dsn

        return parse_mysql_dsn(dsn)["user"] or "exesql_reader"
    from exesql_ray.engines.oracle import parse_oracle_dsn

    return parse_oracle_dsn(dsn)["user"]


def open_target(engine: str, cfg, duckdb_root: str | Path | None = None) -> Target:
    from exesql_ray.errors import UserError

    if engine == "duckdb":
        from exesql_ray.engines import duckdb_root as default_root

        return DuckDBTarget(duckdb_root or default_root(cfg))
    if engine not in ("postgres", "mysql", "oracle"):
        raise UserError(f"cannot migrate into {engine!r} (engines: postgres, mysql, duckdb, oracle)")
    server = getattr(cfg.engines, engine)
    reader = reader_login(engine, server.dsn)
    cls = {"postgres": PostgresTarget, "mysql": MySQLTarget, "oracle": OracleTarget}[engine]
    return cls(server.admin_dsn, reader)


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

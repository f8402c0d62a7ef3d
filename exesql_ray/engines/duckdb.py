"""DuckDB: one in-process database, every migrated DB file attached read-only.

A connection costs far more than an ATTACH, so the engine opens one, attaches each `<db_id>.duckdb` under `root` read-only, then turns off file access and
locks the configuration. Threads get their own cursor; `USE <db>` switches database.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import duckdb

from exesql_ray.engines.base import Engine, Limits, QueryTimeout, Watchdog
from exesql_ray.engines.sqltext import capped, sorts
from exesql_ray.errors import UserError
from exesql_ray.engines.migrate import Target, order_by_dependencies
from exesql_ray.dialects import PREFIX_RX


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_root(cfg) -> Path:
    """Where a run's migrated DuckDB files are: <run_dir>/duckdb/<db_id>.duckdb."""
    return Path(cfg.run_dir) / "duckdb"


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"
    display_name = "DuckDB"
    types = {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR", "blob": "BLOB"}
    rewrites = ("double_quoted_strings", "extreme_row_without_group", "text_number_comparison", "number_column_vs_word",
                "text_arithmetic", "single_group_order", "text_integer_columns", "numeric_aggregates_over_text",
                "like_case_insensitive", "julianday", "cast_to_integer_truncates", "bare_columns_in_groups",
                "distinct_order_by_unselected")
    templates = {
        "julianday": "(epoch(CAST({x} AS TIMESTAMP)) / 86400.0 + 2440587.5)",
        "row_of_min": "ARG_MIN({b}, {e})",
        "row_of_max": "ARG_MAX({b}, {e})",
        "trunc": "TRUNC({x})",
        "text_as_number": "CASE WHEN {x} IS NULL THEN NULL ELSE COALESCE(TRY_CAST(NULLIF(REGEXP_EXTRACT({x}, '"
                          + PREFIX_RX + "', 1), '') AS DOUBLE), 0) END",
        "text_if_number": "TRY_CAST({x} AS DOUBLE)",
        "numeric_text_compare": "(CASE WHEN {x} IS NULL THEN NULL WHEN TRY_CAST({x} AS DOUBLE) IS NOT NULL "
                                "THEN TRY_CAST({x} AS DOUBLE) {op} {n} ELSE {text} END)",
    }
    error_classes = (
        (r"Parser Error|syntax error", "syntax"),
        (r"Table with name .* does not exist|Table .* does not exist", "unknown_table"),
        (r"Referenced column .* not found|column .* not found|does not have a column|Referenced table .* not found", "unknown_column"),
        (r"Scalar Function with name|Function with name .* does not exist|Aggregate Function with name", "unknown_function"),
        (r"No function matches|Could not convert|Conversion Error|Cannot compare|Cannot mix|implicit cast", "type_mismatch"),
        (r"Ambiguous reference|ambiguous", "ambiguous"),
        (r"must appear in the GROUP BY|GROUP BY clause|aggregate function", "group_by"),
        (r"[Dd]ivision by zero", "division"),
        (r"Permission Error|read-only mode|lock_configuration|disabled by configuration", "permission"),
    )
    # File readers (also stopped by enable_external_access=false), and query()/query_table(),
    # which run SQL held in a string, out of the guard's sight (DuckDB allows one SELECT there).
    denied_functions = frozenset({"read_csv", "read_csv_auto", "read_parquet", "read_json", "read_json_auto",
                                  "read_text", "read_blob", "glob", "sniff_csv", "parquet_scan", "query_table",
                                  "query", "setseed"})  # setseed: the next query's random() would depend on it

    @classmethod
    def from_config(cls, cfg, *, db_root=None, dsn=None) -> "DuckDBEngine":
        return cls(db_root or duckdb_root(cfg), limits=Limits.from_config(cfg))

    @classmethod
    def migration_target(cls, cfg, root=None) -> "DuckDBTarget":
        return DuckDBTarget(root or duckdb_root(cfg))

    def __init__(self, root: str | Path, limits: Limits = Limits(), memory_limit: str = "2GB", threads: int = 1):
        super().__init__(limits)
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"DuckDB folder {self.root}: not a directory (run `exesql-ray db migrate --engine duckdb`)")
        self._dbs = sorted(p.stem for p in self.root.glob("*.duckdb"))
        self._con = duckdb.connect(":memory:")
        for db in self._dbs:
            self._con.execute(f"ATTACH {_lit(str(self.root / (db + '.duckdb')))} AS {quote_ident(db)} (READ_ONLY)")
        self._con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        self._con.execute(f"SET threads = {int(threads)}")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")
        self._con.execute("SET lock_configuration = true")
        self._local = threading.local()
        self._cursors: list = []
        self._cursors_lock = threading.Lock()
        self._watchdog = Watchdog()

    def db_ids(self) -> list[str]:
        return list(self._dbs)

    def _cancel_running(self) -> None:
        with self._cursors_lock:
            cursors = list(self._cursors)
        for cur in cursors:
            cur.interrupt()

    def _cursor(self, db_id: str):
        st = self._local.__dict__
        cur = st.get("cur")
        if cur is None:
            cur = st["cur"] = self._con.cursor()
            st["db"] = None
            with self._cursors_lock:
                self._cursors.append(cur)
        if st["db"] != db_id:
            if db_id not in self._dbs:
                raise LookupError(f"unknown db_id {db_id!r}")
            cur.execute(f"USE {quote_ident(db_id)}")
            st["db"] = db_id
        return cur

    def _statement(self, sql: str, cap: int) -> str:
        # The cap inside a query that sorts: DuckDB then plans a top-N, where `fetchmany` alone
        # lets it sort the whole result first (bench/executor.py: the 1M-row sort). Elsewhere
        # the LIMIT's planning cost more than it saved on Spider.
        return capped(sql, cap + 1, self.dialect) if sorts(sql) else sql

    def _run(self, db_id: str, sql: str, cap: int):
        cur = self._cursor(db_id)
        token = self._watchdog.arm(self.limits.timeout_s, cur.interrupt)
        try:
            statement = self._statement(sql, cap)
            try:
                cur.execute(statement)
            except duckdb.ParserException:
                if statement == sql:
                    raise
                cur.execute(sql)  # the query as written gets its own error, not one about our LIMIT
            rows = cur.fetchmany(cap + 1)
        except duckdb.InterruptException as e:
            raise QueryTimeout() from e
        finally:
            if not self._watchdog.disarm(token):
                # The deadline fired: this cursor may carry the interrupt into its next
                # query, so the thread starts over with a fresh one.
                self._local.__dict__["cur"] = None
        return rows

    def _about_the_environment(self, exc) -> bool:
        return isinstance(exc, (duckdb.OutOfMemoryException, duckdb.IOException))

    def _is_rejection(self, exc) -> bool:
        return isinstance(exc, duckdb.PermissionException) or "read-only mode" in str(exc)

    def close(self) -> None:
        for cur in self._cursors:
            try:
                cur.close()
            except duckdb.Error:
                pass
        self._cursors.clear()
        self._local = threading.local()
        self._con.close()


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------- migration into DuckDB

class DuckDBTarget(Target):
    name = DuckDBEngine.name
    types = DuckDBEngine.types

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
            for t in order_by_dependencies(src.tables):
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


ENGINE = DuckDBEngine
TARGET = DuckDBTarget

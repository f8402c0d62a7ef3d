"""DuckDB: one in-process database, every migrated DB file attached read-only.

A connection costs far more than an ATTACH, so the engine opens one, attaches each `<db_id>.duckdb` under `root` read-only, then turns off file access and
locks the configuration. Threads get their own cursor; `USE <db>` switches database.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from exesql_ray.engines.base import Engine, Limits, QueryTimeout, Watchdog
from exesql_ray.engines.sqltext import capped, sorts
from exesql_ray.errors import UserError


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"
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

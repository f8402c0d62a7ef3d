"""SQLite: the source dialect. One read-only connection per (thread, DB), kept open."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

from exesql_ray.engines.base import Engine, InfraError, Limits, QueryTimeout
from exesql_ray.engines.sqltext import capped, sorts
from exesql_ray.errors import UserError

_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


CACHE_MB = 16  # per connection: its page cache, and what one sort may hold before it spills
# Errors raised before a statement runs, by its text
_SYNTAX = re.compile(r"syntax error|incomplete input|unrecognized token")
# A database file SQLite cannot read: the file's fault, not the query's (an infra_error)
_BROKEN_FILE = re.compile(r"file is not a database|malformed|unable to open database|disk I/O error|database or disk is full")
# The machine's, not the query's: retried, then infra_error
_ENVIRONMENT = re.compile(r"out of memory")
SQLITE_HEADER = b"SQLite format 3\x00"
# Process-wide: SQLite frees cached pages (of all connections) to keep its heap below this.
SOFT_HEAP_LIMIT = 1 << 30


def _authorizer(action, arg1, arg2, db_name, trigger, _allowed=frozenset(_ALLOWED)):
    # Reads only: refuses ATTACH, PRAGMA, writes, schema changes, transactions. SQLite calls
    # it for every table and column a query names: named arguments and a local set, not
    # *args and a global, cost less per call.
    return sqlite3.SQLITE_OK if action in _allowed else sqlite3.SQLITE_DENY


class _Deadline:
    __slots__ = ("at",)

    def __init__(self):
        self.at = float("inf")

    def __call__(self) -> int:
        return 1 if time.monotonic() > self.at else 0


def _check_header(path: str) -> None:
    """A file that is not an SQLite database (or is cut inside its header) is the file's fault:
    an InfraError naming it, so that its rows get `infra_error`, never a verdict about the SQL.
    An empty file is an empty database, as SQLite reads it."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise InfraError(f"sqlite: {path}: {e.strerror}", retry=False) from None
    if head and head != SQLITE_HEADER:
        raise InfraError(f"sqlite: {path}: not an SQLite database file", retry=False)


def _lenient(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _fetch(con, sql: str, cap: int):
    cur = con.execute(sql)
    rows = cur.fetchmany(cap + 1)  # sqlite3 steps row by row: memory stays within the cap
    cur.close()
    return rows


class SQLiteEngine(Engine):
    name = "sqlite"
    dialect = "sqlite"
    display_name = "SQLite"
    types = {"int": "INTEGER", "float": "REAL", "text": "TEXT", "blob": "BLOB"}
    error_classes = (
        (r"syntax error|incomplete input|unrecognized token|near \"", "syntax"),
        (r"no such table", "unknown_table"),
        (r"no such column", "unknown_column"),
        (r"no such function|wrong number of arguments", "unknown_function"),
        (r"ambiguous column", "ambiguous"),
        (r"misuse of aggregate|aggregate functions are not allowed|GROUP BY", "group_by"),
        (r"datatype mismatch|integer overflow", "type_mismatch"),
        (r"not authorized|readonly", "permission"),
    )
    denied_functions = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})

    @classmethod
    def from_config(cls, cfg, *, db_root=None, dsn=None) -> "SQLiteEngine":
        if db_root is None:
            raise UserError("sqlite needs a database folder (--db-root)")
        return cls(db_root=db_root, limits=Limits.from_config(cfg))

    def __init__(self, db_root: str | Path | list | None = None, db_paths: dict[str, str] | None = None,
                 limits: Limits = Limits(), cache_mb: int = CACHE_MB):
        super().__init__(limits)
        self.cache_mb = cache_mb
        self.db_paths: dict[str, str] = dict(db_paths or {})
        # one folder or several (a benchmark's own databases beside Spider's): a db_id found
        # in more than one is the first folder's
        for root in map(Path, [] if db_root is None else db_root if isinstance(db_root, list) else [db_root]):
            if not root.is_dir():
                raise UserError(f"--db-root {root}: not a directory")
            for d in sorted(root.iterdir()):
                for suf in (".sqlite", ".db"):
                    if (d / f"{d.name}{suf}").is_file():
                        self.db_paths.setdefault(d.name, str(d / f"{d.name}{suf}"))
                        break
        self._local = threading.local()
        self._deadlines: list[_Deadline] = []  # every connection's, for `interrupt`

    def _cancel_running(self) -> None:
        for d in list(self._deadlines):
            d.at = float("-inf")  # the progress handler ends the query at its next check

    def db_ids(self) -> list[str]:
        return sorted(self.db_paths)

    def _connection(self, db_id: str):
        cons = getattr(self._local, "cons", None)
        if cons is None:
            cons = self._local.cons = {}
        entry = cons.get(db_id)
        if entry is None:
            path = self.db_paths.get(db_id)
            if path is None:
                raise LookupError(f"unknown db_id {db_id!r}")
            _check_header(path)
            # No statement cache: the execution cache already runs each SQL text once per run,
            # so cached statements would be reused only with it off, or by a benchmark that
            # repeats its queries (where they flattered ours over a one-pass raw loop).
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, cached_statements=0)
            # Take the shared lock once and keep it, instead of locking, checking the file's
            # change counter and unlocking around every statement (bench/executor.py prints the
            # difference on Spider dev). The file cannot change under a held shared
            # lock, so results stay exact; a writer elsewhere waits until this engine closes.
            con.execute("PRAGMA locking_mode=EXCLUSIVE")
            # The page cache size is also the memory a sort (ORDER BY, GROUP BY, DISTINCT) may
            # use before it spills to temp files. At SQLite's default (2 MB) a wrong candidate
            # that joins on != spills and merges; at 16 MB the best-of-8 bench's distinct
            # queries do not. The cache fills only with pages read, so it costs only what the
            # databases read. For big DBs, the process-wide soft heap limit makes SQLite recycle
            # cached pages rather than grow past it.
            con.execute(f"PRAGMA cache_size={-1024 * self.cache_mb}")
            if con.execute("PRAGMA soft_heap_limit").fetchone()[0] == 0:  # not set by the user
                con.execute(f"PRAGMA soft_heap_limit={SOFT_HEAP_LIMIT}")
            con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            con.set_authorizer(_authorizer)
            deadline = _Deadline()
            self._deadlines.append(deadline)
            con.set_progress_handler(deadline, 20_000)
            entry = cons[db_id] = (con, deadline)
        return entry

    def _statement(self, sql: str, cap: int) -> str:
        # The cap goes into the query only where SQLite can use it: under a LIMIT, a sort keeps
        # its top rows instead of sorting (and spilling to a temp file) the whole result, which
        # decides a sort on a large table (bench/executor.py's 1M-row case). Without ORDER BY SQLite
        # streams rows and `fetchmany` stops it early anyway.
        return capped(sql, cap + 1, self.dialect) if sorts(sql) else sql

    def _run(self, db_id: str, sql: str, cap: int):
        try:
            con, deadline = self._connection(db_id)
        except sqlite3.DatabaseError as e:  # the file, read while the connection is set up
            if _BROKEN_FILE.search(str(e)):
                raise InfraError(f"sqlite: {self.db_paths[db_id]}: {e}", retry=False) from e
            raise
        statement = self._statement(sql, cap)
        deadline.at = time.monotonic() + self.limits.timeout_s
        if self.stopping:  # `interrupt` came between the check in `execute` and the line above
            deadline.at = float("-inf")
        try:
            try:
                rows = _fetch(con, statement, cap)
            except sqlite3.OperationalError as e:
                if statement != sql and _SYNTAX.search(str(e)) is not None:
                    # The capped form does not compile: the query as written gets its own error,
                    # not one about the LIMIT we added (`incomplete input`, not `near "LIMIT"`).
                    rows = _fetch(con, sql, cap)
                elif "decode" in str(e):
                    # Text that is not UTF-8 (a few Spider rows): decode leniently, this query
                    # only. The default decoder is C; a Python text_factory on every value costs ~10%.
                    con.text_factory = _lenient
                    try:
                        rows = _fetch(con, statement, cap)
                    finally:
                        con.text_factory = str
                else:
                    raise
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise QueryTimeout() from e
            if _BROKEN_FILE.search(str(e)):
                raise InfraError(f"sqlite: {self.db_paths[db_id]}: {e}", retry=False) from e
            raise
        except sqlite3.DatabaseError as e:  # "database disk image is malformed": a truncated file
            if _BROKEN_FILE.search(str(e)):
                raise InfraError(f"sqlite: {self.db_paths[db_id]}: {e}", retry=False) from e
            raise
        finally:
            deadline.at = float("inf")
        return rows

    def _about_the_environment(self, exc) -> bool:
        return isinstance(exc, sqlite3.Error) and _ENVIRONMENT.search(str(exc)) is not None

    def _is_rejection(self, exc) -> bool:
        s = str(exc)
        return ("not authorized" in s or "readonly" in s or "one statement at a time" in s
                or isinstance(exc, sqlite3.ProgrammingError))

    def close(self) -> None:
        """Closes the calling thread's connections (the others close with their threads)."""
        cons = getattr(self._local, "cons", None) or {}
        for con, _ in cons.values():
            con.close()
        cons.clear()


ENGINE = SQLiteEngine

"""MySQL and MariaDB (MariaDB stands in for MySQL here): one database per db_id.

mysqlclient has no pool of its own; the minimal one below is a LIFO deque of idle
connections and a count of open ones (that is all this engine needs: no per-connection state
beyond the current DB, which is tracked). Per connection, once: `multi_statements` off (the driver's guard), autocommit, and
the server-side timeout — MariaDB's `max_statement_time` (seconds) or MySQL 8's
`max_execution_time` (ms, SELECT only) — and the row cap, `sql_select_limit` (max_rows + 1),
which bounds what the buffered fetch can hold.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from urllib.parse import parse_qs, unquote, urlparse

import MySQLdb

from exesql_ray.engines.base import InfraError, Limits, QueryTimeout
from exesql_ray.engines.server import Received, ServerEngine
from exesql_ray.engines.sqltext import strip_trailing_semicolons
from exesql_ray.dsn import hide_password, socket_path
from exesql_ray.errors import UserError
from exesql_ray.engines.migrate import Target
from exesql_ray.dialects import NUMBER_RX

# MySQL client error codes for a lost or absent server.
_INFRA_CODES = {2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053, 1927}
_ENVIRONMENT_CODES = {1021, 1030, 1037, 1038, 1041, 1114, 1135}
_TIMEOUT_CODES = {1969, 3024, 1317}  # MariaDB max_statement_time, MySQL max_execution_time, interrupted


def parse_mysql_dsn(dsn: str) -> dict:
    """mysql://user:password@host:port/?unix_socket=/path → MySQLdb.connect keyword arguments."""
    u = urlparse(dsn)
    if u.scheme not in ("mysql", "mariadb"):
        raise UserError(f"mysql DSN must look like mysql://user:pw@host:port/ (got {hide_password(dsn)})")
    kw = {"user": unquote(u.username or ""), "password": unquote(u.password or "")}
    q = parse_qs(u.query)
    if "unix_socket" in q:
        try:  # a relative socket is taken from the current directory, and must be there
            kw["unix_socket"] = socket_path(q["unix_socket"][0], "mysql: the unix_socket")
        except ValueError as e:
            raise UserError(str(e)) from None
    else:
        kw["host"] = u.hostname or "127.0.0.1"
        kw["port"] = u.port or 3306
    return kw


def require_folded_table_names(conn, dsn: str) -> None:
    """Refuse a server that compares table names as written (lower_case_table_names=0, MySQL's
    default on Linux). Migration names tables in lower case, queries name them in any case
    (Spider's gold writes `FROM Singer`), and the execution cache's keys fold case: there most
    queries would fail, and the cache would hand `FROM Singer`'s verdict to `FROM singer`."""
    cur = conn.cursor()
    cur.execute("SELECT @@lower_case_table_names")
    table_case = int(cur.fetchone()[0])
    cur.close()
    if table_case == 0:
        raise UserError(f"mysql: {hide_password(dsn)} has lower_case_table_names=0 (table names compared as "
                        "written); exesql-ray needs 1: start the server with --lower-case-table-names=1 (fixed "
                        "when its data directory is initialised; scripts/dbs.sh and docker-compose.yml do so)")


# Privileges that change nothing; anything else (ALL, INSERT, FILE, PROXY, …) could
_READ_ONLY_PRIVILEGES = {"SELECT", "USAGE", "SHOW VIEW", "SHOW DATABASES"}
_GRANT = re.compile(r"^GRANT (.+?) ON ", re.S)


def login_can_change(conn) -> str | None:
    """What the login's grants would let untrusted SQL change (a phrase), or None. Roles
    granted to the login are not expanded (the project's reader has none)."""
    cur = conn.cursor()
    cur.execute("SHOW GRANTS FOR CURRENT_USER()")
    grants = [r[0] for r in cur.fetchall()]
    cur.close()
    for g in grants:
        m = _GRANT.match(g)
        if m is None:
            continue
        privileges = {re.sub(r"\s*\(.*?\)", "", p).strip().upper() for p in m.group(1).split(",")}
        extra = sorted(privileges - _READ_ONLY_PRIVILEGES)
        if extra:
            return f"holds {', '.join(extra)} ({g.split(' TO ')[0]})"
    return None


# 1142 "SELECT command denied … for table `schema`.`table`" naming a schema other than the
# server's own: MariaDB answers so for a schema that does not exist
_MISSING_SCHEMA = r"^1142\b.*for table `(?!(?:mysql|sys|performance_schema|information_schema)`)"

class MySQLEngine(ServerEngine):
    name = "mysql"
    dialect = "mysql"
    display_name = "MySQL"
    types = {"int": "BIGINT", "float": "DOUBLE", "text": "LONGTEXT", "blob": "LONGBLOB"}
    rewrites = ("double_quoted_strings", "extreme_row_without_group", "text_number_comparison", "number_column_vs_word",
                "single_group_order", "julianday", "cast_to_integer_truncates", "bare_columns_in_groups",
                "mysql_binary_strings", "mysql_double_arithmetic", "mysql_binary_collation")
    templates = {
        "julianday": "(TO_DAYS({x}) + 1721059.5 + TIME_TO_SEC(CAST({x} AS DATETIME)) / 86400.0)",
        # No ordered aggregate returns a value: the first of an ordered GROUP_CONCAT (the rewrite
        # casts it back to the column's type); rows without e go last, as SQLite's MIN/MAX skip them.
        "row_of_min": "SUBSTRING_INDEX(GROUP_CONCAT({b} ORDER BY {e} IS NULL, {e} ASC SEPARATOR '\x1f'), '\x1f', 1)",
        "row_of_max": "SUBSTRING_INDEX(GROUP_CONCAT({b} ORDER BY {e} IS NULL, {e} DESC SEPARATOR '\x1f'), '\x1f', 1)",
        "trunc": "TRUNCATE({x}, 0)",
        # REGEXP_INSTR, which MySQL 8 and MariaDB both have (sqlglot writes `x REGEXP p` as
        # REGEXP_LIKE, which MariaDB lacks)
        "numeric_text_compare": "(CASE WHEN {x} IS NULL THEN NULL WHEN REGEXP_INSTR({x}, '" + NUMBER_RX
                                + "') > 0 THEN CAST({x} AS DOUBLE) {op} {n} ELSE {text} END)",
    }
    db_case = "lower"
    # The cap is a session setting (sql_select_limit). MariaDB sets it for one statement
    # (`SET STATEMENT … FOR`); MySQL 8 has only an optimizer hint placed after the top-level
    # SELECT, so there a smaller cap per query is not applied (set when connected).
    early_cap = False
    error_classes = (
        (r"^1064\b", "syntax"),
        # a `schema`.`table` outside the system schemas is one the reader cannot see because it
        # does not exist (the reader may read every migrated database): the query's fault
        (_MISSING_SCHEMA, "unknown_table"),
        (r"^1146\b", "unknown_table"),
        (r"^1054\b", "unknown_column"),
        # 1370: MariaDB checks EXECUTE before existence, so an unknown function reads as
        # "execute command denied"; migrated databases hold no routines at all.
        (r"^(1305|1582|1583|1630|1370)\b", "unknown_function"),
        (r"^1052\b", "ambiguous"),
        (r"^(1055|1056|1140|1111|1463)\b", "group_by"),
        (r"^1365\b", "division"),
        (r"^(1292|1366|1267|1271|1270|3780)\b", "type_mismatch"),
        (r"^(1142|1044|1045|1227|1290|1143)\b", "permission"),
        (r"^3170\b", "resource"),  # the range optimizer's memory: the query's; the rest, _ENVIRONMENT_CODES
    )
    # last_insert_id(x) sets what the connection's next last_insert_id() returns
    denied_functions = frozenset({"get_lock", "release_lock", "release_all_locks", "load_file",
                                  "master_pos_wait", "master_gtid_wait", "source_pos_wait", "last_insert_id"})

    @classmethod
    def reader_user(cls, dsn: str) -> str | None:
        return parse_mysql_dsn(dsn)["user"]

    def __init__(self, dsn: str, limits: Limits = Limits(), max_connections: int = 8, connect_timeout_s: float = 5.0,
                 allow_writable: bool = False):
        super().__init__(limits)
        if not dsn:
            raise UserError("mysql: no DSN configured (engines.mysql.dsn; scripts/dbs.sh writes EXESQL_MYSQL_DSN)")
        self.dsn = dsn
        self._kw = parse_mysql_dsn(dsn)
        self._connect_timeout = int(max(connect_timeout_s, 1))
        # Idle connections, last in first out: deque.append/pop are atomic, so a checkout is
        # one call (queue.Queue plus a semaphore cost a visible share of a Spider query).
        self._idle: collections.deque = collections.deque()
        self._open = 1  # connections open, idle or in use (≤ max_connections); the first below
        self._lock = threading.Lock()
        self._max = max_connections
        self._busy: set = set()  # server thread ids of connections in use, for `interrupt`
        self._dbs = None
        self.flavor = None
        try:
            conn = self._connect()
        except MySQLdb.OperationalError as e:
            raise UserError(f"mysql: cannot connect to {hide_password(dsn)}: {e.args[-1]}") from None
        try:
            require_folded_table_names(conn, dsn)
            self._accept_login(login_can_change(conn), dsn, allow_writable)
        finally:
            self._release(conn)

    def _connect(self):
        conn = MySQLdb.connect(**self._kw, charset="utf8mb4", autocommit=True, multi_statements=False,
                               connect_timeout=self._connect_timeout, local_infile=False)
        cur = conn.cursor()
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
        self.flavor = "mariadb" if "MariaDB" in version else "mysql"
        self.early_cap = self.flavor == "mariadb"
        if self.flavor == "mariadb":
            cur.execute(f"SET SESSION max_statement_time = {self.limits.timeout_s:.3f}")
        else:
            cur.execute(f"SET SESSION max_execution_time = {int(self.limits.timeout_s * 1000)}")
        # The row cap, on the server: a top-level SELECT returns at most max_rows + 1 rows, so
        # the buffered fetch below is bounded (the +1 tells us the result was cut).
        cur.execute(f"SET SESSION sql_select_limit = {self.limits.max_rows + 1}")
        cur.close()
        conn._exesql_db = None
        conn._exesql_thread = conn.thread_id()
        return conn

    def _cancel_running(self) -> None:
        """KILL QUERY for each connection in use, from a connection of its own (the login may
        kill its own threads): the query ends with 1317, at once."""
        busy = list(self._busy)
        if not busy:
            return
        conn = MySQLdb.connect(**self._kw, connect_timeout=self._connect_timeout)
        try:
            cur = conn.cursor()
            for thread in busy:
                try:
                    cur.execute(f"KILL QUERY {int(thread)}")
                except MySQLdb.Error:
                    pass  # it ended meanwhile
        finally:
            conn.close()

    def _acquire(self):
        conn = self._pool_acquire()
        self._busy.add(conn._exesql_thread)
        return conn

    def _pool_acquire(self):
        deadline = None
        while True:
            try:
                return self._idle.pop()
            except IndexError:
                pass
            with self._lock:
                if self._open < self._max:
                    self._open += 1
                    break
            # every connection is in use: wait for one to come back
            if deadline is None:
                deadline = time.monotonic() + 30
            elif time.monotonic() > deadline:
                raise InfraError("mysql: no free connection in 30 s")
            time.sleep(0.001)
        try:
            return self._connect()
        except BaseException as e:
            with self._lock:
                self._open -= 1
            if isinstance(e, MySQLdb.OperationalError):
                raise InfraError(f"mysql: {e}") from e
            raise

    def _release(self, conn, broken: bool = False) -> None:
        self._busy.discard(getattr(conn, "_exesql_thread", None))
        if not broken:
            self._idle.append(conn)
            return
        try:
            conn.close()
        except Exception:
            pass
        with self._lock:
            self._open -= 1

    _checkout, _checkin = _acquire, _release  # the pipelined stream's hooks: this pool as is

    def db_ids(self) -> list[str]:
        if self._dbs is None:
            conn = self._acquire()
            try:
                cur = conn.cursor()
                cur.execute("SHOW DATABASES")
                self._dbs = [r[0] for r in cur.fetchall()
                             if r[0] not in ("information_schema", "performance_schema", "mysql", "sys", "exesql_check")]
            finally:
                self._release(conn)
        return list(self._dbs)

    def _statement(self, sql: str, cap: int) -> str:
        if cap < self.limits.max_rows and self.flavor == "mariadb":
            # a smaller cap for this statement only (the executor's gold + 1)
            return f"SET STATEMENT sql_select_limit = {int(cap) + 1} FOR {strip_trailing_semicolons(sql, self.dialect)}"
        return sql

    def _use_db(self, conn, db_id: str) -> None:
        db = self.db_name(db_id)
        if conn._exesql_db != db:
            conn.select_db(db)
            conn._exesql_db = db

    @staticmethod
    def _driver_error(e: MySQLdb.OperationalError) -> Exception:
        """The driver's error as ours: QueryTimeout, InfraError, or itself (a verdict)."""
        code = e.args[0] if e.args else 0
        if code in _TIMEOUT_CODES:
            return QueryTimeout()
        if code in _INFRA_CODES:
            return InfraError(f"mysql: {e}")
        return e

    def _run(self, db_id: str, sql: str, cap: int):
        conn = self._acquire()
        broken = fetching = False
        try:
            self._use_db(conn, db_id)
            # The driver's C layer, not a cursor: the cursor's Python around the same calls
            # (draining further result sets, description, rowcount, none of which we use)
            # costs a visible share of a query. Values are converted alike (the connection's converters).
            conn.query(self._statement(sql, cap))
            fetching = True
            result = conn.store_result()  # whole, but within sql_select_limit (cap + 1)
            return result.fetch_row(0) if result is not None else ()
        except MySQLdb.OperationalError as e:
            ours = self._driver_error(e)
            broken = isinstance(ours, InfraError) or (fetching and ours is e)
            if ours is e:
                raise
            raise ours from e
        except MySQLdb.Error:
            # An error while rows stream can leave unread packets: do not reuse that connection.
            broken = broken or fetching
            raise
        finally:
            self._release(conn, broken)

    # Pipelined (ServerEngine) on one connection: the protocol allows one query in flight
    # per connection; what overlaps is our Python with the server's work.
    stream_errors = (MySQLdb.Error, InfraError)

    def _send(self, conn, db_id: str, statement: str) -> None:
        self._use_db(conn, db_id)
        conn.send_query(statement)

    def _receive(self, conn) -> Received:
        try:
            conn.read_query_result()
        except MySQLdb.OperationalError as e:
            ours = self._driver_error(e)
            return Received(None, ours, broken=isinstance(ours, InfraError))
        except MySQLdb.Error as e:
            return Received(None, e)
        try:
            result = conn.store_result()
            return Received(result.fetch_row(0) if result is not None else ())
        except MySQLdb.Error as e:
            # an error while rows stream can leave unread packets: that connection is broken
            return Received(None, self._driver_error(e) if isinstance(e, MySQLdb.OperationalError) else e, broken=True)

    def _error_text(self, exc) -> str:
        if isinstance(exc, MySQLdb.Error) and len(exc.args) >= 2:
            return f"{exc.args[0]}: {exc.args[1]}"
        return str(exc)

    def _about_the_environment(self, exc) -> bool:
        # out of (sort) memory, disk full, a full temporary table, the storage engine's errors
        return bool(isinstance(exc, MySQLdb.Error) and exc.args and exc.args[0] in _ENVIRONMENT_CODES)

    def _is_rejection(self, exc) -> bool:
        return bool(isinstance(exc, MySQLdb.Error) and exc.args and exc.args[0] in (1142, 1044, 1227, 1290, 1143)
                    and not re.match(_MISSING_SCHEMA, self._error_text(exc)))

    def reset(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            self._release(conn, broken=True)

    def close(self) -> None:
        self.reset()


# ---------------------------------------------------------------- migration into MySQL / MariaDB

class MySQLTarget(Target):
    name = MySQLEngine.name
    types = MySQLEngine.types
    META_DB = "exesql_meta"

    def __init__(self, admin_dsn: str, reader: str):
        import MySQLdb

        from exesql_ray.engines.mysql import parse_mysql_dsn, require_folded_table_names
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

    def add_foreign_key(self, prefix, table, frm, ref, to):
        """With foreign_key_checks on, InnoDB copies the whole table for each foreign key it
        adds (minutes per key on tables of millions of rows); with them off it adds the key in
        place but does not look at the data. So the data is checked first, by a query, and a
        key it breaks is refused as InnoDB refuses it (error 1452)."""
        import MySQLdb

        cur = self.conn.cursor()
        try:
            cur.execute(self.first_orphan_sql(prefix, table, frm, ref, to))
            if cur.fetchall():
                return ("Cannot add or update a child row: a foreign key constraint fails "
                        f"(a row of {table} has no {ref} row)")
        except MySQLdb.Error as e:
            return str(e.args[-1])
        cur.execute("SET SESSION foreign_key_checks = 0")
        try:
            return self.try_ddl(self.foreign_key_ddl(prefix, table, frm, ref, to))
        finally:
            cur.execute("SET SESSION foreign_key_checks = 1")

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


ENGINE = MySQLEngine
TARGET = MySQLTarget

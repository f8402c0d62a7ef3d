"""PostgreSQL: psycopg_pool of the SELECT-only login; one schema per db_id (lower-case names).

Per connection, once: statement_timeout and a read-only default. Per query: `SET search_path`
only when the connection last served another DB, then one `execute` over the extended
protocol (which refuses multiple statements: the driver's guard) of the candidate wrapped in
`LIMIT max_rows + 1`, so the server caps what the client buffers. A batch (`execute_many`)
sends the same extended-protocol query with libpq's async call, one in flight, so that our
work on one result overlaps the server's on the next. We do not use `cursor.stream()`: in
psycopg 3.3 a failing streamed query is cancelled over a new connection (~2.5 ms per error,
and sampled candidates fail often). Session-changing functions
(set_config, advisory locks, cancelling other backends) are revoked from the login by
`scripts/dbs.sh`.
"""

from __future__ import annotations

import contextlib
import select

import psycopg
import psycopg_pool
from psycopg import sql as psql
from psycopg.adapt import Transformer
from psycopg.pq import ExecStatus

from exesql_ray.engines.base import InfraError, Limits, QueryTimeout
from exesql_ray.engines.server import Received, ServerEngine, first_line
from exesql_ray.engines.sqltext import capped, strip_trailing_semicolons
from exesql_ray.dsn import hide_password, is_relative_socket, socket_path
from exesql_ray.errors import UserError
from exesql_ray.engines.migrate import Target
from exesql_ray.dialects import NUMBER_RX, PREFIX_RX


TUPLES_OK, FATAL_ERROR = ExecStatus.TUPLES_OK, ExecStatus.FATAL_ERROR


def is_connection_loss(exc: BaseException) -> bool:
    """An OperationalError of class 08 (connection) or 57P (the server shutting down, or
    unreachable): about the infrastructure, not the query."""
    return isinstance(exc, psycopg.OperationalError) and (exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P")))


def use_schema(conn: psycopg.Connection, schema: str) -> None:
    """`SET search_path` to the database's schema, only when the connection last served another."""
    if getattr(conn, "_exesql_schema", None) != schema:
        conn.execute(psql.SQL("SET search_path TO {}").format(psql.Identifier(schema)))
        conn._exesql_schema = schema  # type: ignore[attr-defined]


def absolute_sockets(dsn: str) -> str:
    """The DSN with each relative socket folder in `host` made absolute (libpq would look the
    path up as a host name and fail deep in the driver); one line when it is not there."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as e:
        raise UserError(f"postgres: cannot read the DSN {hide_password(dsn)}: {first_line(e)}") from None
    hosts = str(params.get("host") or "").split(",")
    if not any(is_relative_socket(h) for h in hosts):
        return dsn
    try:
        params["host"] = ",".join(socket_path(h, "postgres: the socket folder") if is_relative_socket(h) else h
                                  for h in hosts)
    except ValueError as e:
        raise UserError(str(e)) from None
    return make_conninfo(**params)


# What the login could change: any of these and untrusted SQL could write through it.
_LOGIN_RIGHTS = """
SELECT r.rolsuper, r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls,
  pg_has_role(current_user, 'pg_write_server_files', 'MEMBER')
    OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')
    OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'),
  has_database_privilege(current_database(), 'CREATE'),
  (SELECT n.nspname FROM pg_namespace n WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
     AND has_schema_privilege(n.oid, 'CREATE') LIMIT 1),
  (SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'f') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
     AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') LIMIT 1)
FROM pg_roles r WHERE r.rolname = current_user
"""


def login_can_change(conn) -> str | None:
    """What the connection's login could change (a phrase for the refusal), or None."""
    superuser, roles, files, create_db, schema, table = conn.execute(_LOGIN_RIGHTS).fetchone()
    if superuser:
        return "is a superuser"
    if roles:
        return "may create roles or databases, replicate or bypass row security"
    if files:
        return "may read or write the server's files or run programs (pg_*_server_* roles)"
    if create_db:
        return "may create schemas in the database"
    if schema:
        return f"may create objects in schema {schema}"
    if table:
        return f"may write table {table}"
    return None


class PostgresEngine(ServerEngine):
    name = "postgres"
    dialect = "postgres"
    display_name = "PostgreSQL"
    types = {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA"}
    rewrites = ("double_quoted_strings", "extreme_row_without_group", "text_number_comparison", "number_column_vs_word",
                "text_arithmetic", "single_group_order", "sum_of_conditions", "text_integer_columns",
                "numeric_aggregates_over_text", "like_case_insensitive", "julianday", "integer_division",
                "cast_to_integer_truncates", "bare_columns_in_groups", "distinct_order_by_unselected")
    templates = {
        "julianday": "(EXTRACT(EPOCH FROM CAST({x} AS TIMESTAMP)) / 86400.0 + 2440587.5)",
        "row_of_min": "(ARRAY_AGG({b} ORDER BY {e} ASC NULLS LAST))[1]",
        "row_of_max": "(ARRAY_AGG({b} ORDER BY {e} DESC NULLS LAST))[1]",
        "trunc": "TRUNC({x})",
        "text_as_number": "CASE WHEN {x} IS NULL THEN NULL ELSE COALESCE(CAST(NULLIF(SUBSTRING({x} FROM '" + PREFIX_RX
                          + "'), '') AS DOUBLE PRECISION), 0) END",
        "text_if_number": "CASE WHEN {x} ~ '" + NUMBER_RX + "' THEN CAST({x} AS DOUBLE PRECISION) END",
        "numeric_text_compare": "(CASE WHEN {x} IS NULL THEN NULL WHEN {x} ~ '" + NUMBER_RX
                                + "' THEN CAST({x} AS DOUBLE PRECISION) {op} {n} ELSE {text} END)",
    }
    db_case = "lower"
    error_classes = (
        (r"operator does not exist|^42883: .*function .*\(.*(text|integer|numeric|character)", "type_mismatch"),
        (r"^42601", "syntax"),
        (r"^42P01", "unknown_table"),
        (r"^42703", "unknown_column"),
        (r"^42883", "unknown_function"),
        (r"^22012", "division"),
        (r"^(42804|22P02|42846|22007|22008|42725|2201[0-9A-Z]|22003)", "type_mismatch"),
        (r"^(42702|42P09)", "ambiguous"),
        (r"^42803", "group_by"),
        (r"^(42501|25006)", "permission"),
        (r"^(53|54)", "resource"),  # what is left of 53 after _about_the_environment: limits
    )
    # Functions whose effects outlive the query: settings, locks, other sessions, large objects
    # (stored outside tables: a read-only session may create them), the session's random seed.
    # scripts/dbs.sh also revokes them from the login; this keeps a user's own server safe too.
    denied_functions = frozenset({"set_config", "pg_advisory_lock", "pg_advisory_lock_shared",
                                  "pg_cancel_backend", "pg_terminate_backend", "dblink", "lo_import", "lo_export",
                                  "lo_from_bytea", "lo_create", "lo_creat", "lo_put", "lowrite", "lo_unlink",
                                  "lo_truncate", "lo_truncate64", "lo_open", "pg_notify", "setseed"})

    @classmethod
    def reader_user(cls, dsn: str) -> str | None:
        from psycopg.conninfo import conninfo_to_dict

        return conninfo_to_dict(dsn).get("user")

    def __init__(self, dsn: str, limits: Limits = Limits(), max_connections: int = 8, connect_timeout_s: float = 5.0,
                 allow_writable: bool = False):
        super().__init__(limits)
        if not dsn:
            raise UserError("postgres: no DSN configured (engines.postgres.dsn; scripts/dbs.sh writes EXESQL_PG_DSN)")
        self.dsn = dsn = absolute_sockets(dsn)
        self._timeout_ms = int(limits.timeout_s * 1000)
        try:  # one try first: the pool would retry for connect_timeout_s, logging each failure
            psycopg.connect(dsn, connect_timeout=int(max(connect_timeout_s, 1))).close()
        except (psycopg.OperationalError, UnicodeError) as e:  # UnicodeError: a host name libpq cannot encode
            raise UserError(f"postgres: cannot connect to {hide_password(dsn)}: {first_line(e)}") from None
        self.pool = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=max_connections, open=False, timeout=max(connect_timeout_s, 1.0),
            kwargs={"autocommit": True, "prepare_threshold": None, "connect_timeout": int(max(connect_timeout_s, 1))},
            # No per-checkout health check: it costs a round trip per query. A connection that
            # died surfaces as an InfraError, is discarded by the pool, and the query retried.
            configure=self._configure, name="exesql-postgres",
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
        except psycopg_pool.PoolTimeout:
            raise UserError(f"postgres: cannot connect to {hide_password(dsn)} within {connect_timeout_s:g}s") from None
        self._dbs = None
        self._busy: set = set()
        try:
            with self.pool.connection() as conn, self._catalog(conn):
                what = login_can_change(conn)
            self._accept_login(what, dsn, allow_writable)
        except BaseException:
            self.pool.close()
            raise  # connections with a query in flight, for `interrupt`

    def _cancel_running(self) -> None:
        for conn in list(self._busy):
            conn.cancel_safe(timeout=2.0)  # the server ends the query: QueryCanceled

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute(f"SET statement_timeout = {self._timeout_ms}")
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SET idle_in_transaction_session_timeout = 60000")
        conn._exesql_schema = None  # type: ignore[attr-defined]
        # one cursor per connection, reused: not one object per query
        conn._exesql_cursor = conn.cursor()  # type: ignore[attr-defined]
        conn._exesql_encoding = conn.info.encoding  # type: ignore[attr-defined]
        conn._exesql_tx = Transformer(conn)  # type: ignore[attr-defined]  # rows from a pgresult, for streams

    @contextlib.contextmanager
    def _catalog(self, conn):
        """Lift the candidates' statement_timeout for a query about the login or its schemas:
        on a loaded server it can take longer than a candidate may, and it is no candidate."""
        conn.execute("SET statement_timeout = 0")
        try:
            yield conn
        finally:
            conn.execute(f"SET statement_timeout = {self._timeout_ms}")

    def db_ids(self) -> list[str]:
        if self._dbs is None:
            with self.pool.connection() as conn, self._catalog(conn):
                rows = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(nspname, 'USAGE') "
                    "AND nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'exesql_check') "
                    "AND nspname NOT LIKE 'pg_%' ORDER BY 1").fetchall()
            self._dbs = [r[0] for r in rows]
        return list(self._dbs)

    def _run(self, db_id: str, sql: str, cap: int):
        try:
            with self.pool.connection() as conn:
                self._busy.add(conn)
                try:
                    return self._run_on(conn, db_id, sql, cap)
                finally:
                    self._busy.discard(conn)
        except psycopg_pool.PoolTimeout as e:
            raise InfraError(f"postgres pool: {e}") from e

    def _run_on(self, conn: psycopg.Connection, db_id: str, sql: str, cap: int):
        try:
            use_schema(conn, self.db_name(db_id))
            cur = conn._exesql_cursor
            statement = self._statement(sql, cap)
            try:
                cur.execute(statement)
            except psycopg.errors.SyntaxError as e:
                if not self._error_is_ours(e, sql, cap):
                    raise
                # The query as written ends where it cannot: the error names the LIMIT we added.
                # PREPARE parses it without running it, and fails with the query's own error.
                cur.execute("PREPARE exesql_own AS " + strip_trailing_semicolons(sql, self.dialect))
                cur.execute("DEALLOCATE exesql_own")
                raise  # it compiles alone (not seen): the capped form's error stands
            return cur.fetchall()
        except psycopg.errors.QueryCanceled as e:
            raise QueryTimeout() from e
        except psycopg.OperationalError as e:
            if is_connection_loss(e):
                raise InfraError(f"postgres: {e}") from e
            raise

    # Pipelined (ServerEngine) on one pooled connection, which also saves the pool
    # checkout per query (bench/executor.py). Sent with libpq's
    # own async call (`send_query_params`: the extended protocol, one statement) and read
    # into rows by psycopg's Transformer, as its cursor does. By hand because psycopg's sync
    # API has no "send now, read later" outside pipeline mode, and in pipeline mode a failing
    # query aborts every query queued after it until a Sync, which psycopg sends only from a
    # blocking `sync()`.
    stream_errors = (psycopg.Error, psycopg_pool.PoolTimeout, InfraError)

    def _checkout(self):
        conn = self.pool.getconn()
        self._busy.add(conn)
        return conn

    def _checkin(self, conn: psycopg.Connection, broken: bool) -> None:
        self._busy.discard(conn)
        if broken:
            conn.close()  # the pool discards a closed connection
        self.pool.putconn(conn)

    def _statement(self, sql: str, cap: int) -> str:
        return capped(sql, cap + 1, self.dialect)

    def _error_is_ours(self, exc, sql: str, cap: int) -> bool:
        """A syntax error inside what `capped` added (the query as written is cut short)."""
        if not isinstance(exc, psycopg.errors.SyntaxError):
            return False
        statement = self._statement(sql, cap)
        body = strip_trailing_semicolons(sql, self.dialect)
        if statement == sql or statement == body:  # nothing added
            return False
        try:
            position = int(exc.diag.statement_position or 0)  # 1-based, in characters
        except ValueError:
            return False
        return position > statement.find(body) + len(body)

    def _send(self, conn: psycopg.Connection, db_id: str, statement: str) -> None:
        use_schema(conn, self.db_name(db_id))
        pgconn = conn.pgconn
        pgconn.send_query_params(statement.encode(conn._exesql_encoding), None)  # type: ignore[attr-defined]
        while pgconn.flush():  # non-blocking: wait until the query is out (libpq's recipe:
            readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [])  # read what the
            if readable:  # server sends meanwhile, so that neither side waits on the other)
                pgconn.consume_input()

    def _receive(self, conn: psycopg.Connection) -> Received:
        pgconn = conn.pgconn
        results = []
        try:
            while True:
                while pgconn.is_busy():
                    select.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                res = pgconn.get_result()
                if res is None:
                    break
                results.append(res)
        except (psycopg.OperationalError, OSError) as e:
            return Received(None, InfraError(f"postgres: {e}"), broken=True)
        res = results[0] if results else None
        if res is not None and res.status == TUPLES_OK:
            tx = conn._exesql_tx  # type: ignore[attr-defined]
            tx.set_pgresult(res)
            return Received(tx.load_rows(0, res.ntuples, tuple))
        if res is None or res.status != FATAL_ERROR:
            return Received(None, InfraError(f"postgres: unexpected reply {res and res.status!r}"), broken=True)
        exc = psycopg.errors.error_from_result(res, encoding=conn._exesql_encoding)  # type: ignore[attr-defined]
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return Received(None, QueryTimeout())
        if is_connection_loss(exc):
            return Received(None, InfraError(f"postgres: {exc}"), broken=True)
        return Received(None, exc)

    def _error_text(self, exc) -> str:
        state = getattr(exc, "sqlstate", None) or ""
        return f"{state}: {first_line(exc)}" if state else first_line(exc)

    def _about_the_environment(self, exc) -> bool:
        # 53100 disk full, 53200 out of memory, 53300 too many connections, 58xxx system (I/O)
        # errors; 53400 (temp_file_limit) stays the query's: its own sort or join outgrew it
        return (getattr(exc, "sqlstate", None) or "").startswith(("53100", "53200", "53300", "58"))

    def _is_rejection(self, exc) -> bool:
        return getattr(exc, "sqlstate", None) in ("42501", "25006") or "multiple commands" in str(exc)

    def reset(self) -> None:
        self.pool.check()

    def close(self) -> None:
        self.pool.close()


# ---------------------------------------------------------------- migration into PostgreSQL

class PostgresTarget(Target):
    name = PostgresEngine.name
    types = PostgresEngine.types

    def __init__(self, admin_dsn: str, reader: str):
        import psycopg

        from exesql_ray.errors import UserError

        if not admin_dsn:
            raise UserError("postgres migration needs engines.postgres.admin_dsn (EXESQL_PG_ADMIN_DSN)")
        admin_dsn = absolute_sockets(admin_dsn)
        try:
            self.conn = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
        except (psycopg.OperationalError, UnicodeError) as e:
            raise UserError(f"postgres: cannot connect to {hide_password(admin_dsn)}: {first_line(e)}") from None
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
            return first_line(e)
        return None

    def read_table(self, db_id, table):
        return self.conn.execute(f"SELECT * FROM {self.ident(db_id)}.{self.ident(table)}").fetchall()

    def close(self):
        self.conn.close()


ENGINE = PostgresEngine
TARGET = PostgresTarget

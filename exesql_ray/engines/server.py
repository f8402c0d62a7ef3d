"""Engines with a server (PostgreSQL, MySQL, Oracle): reached by a DSN, refused a login that
could change the database, and streamed: `execute_many` sends the next query while the last
one's rows are normalised and hashed (`pipelined`; one query in flight per connection)."""

from __future__ import annotations

import sys
import time
from itertools import chain
from typing import Any, ClassVar, Iterable, Iterator, NamedTuple


from exesql_ray.dsn import hide_password
from exesql_ray.errors import UserError

from exesql_ray.engines.base import Engine, InfraError, Interrupted, Limits
from exesql_ray.engines.results import Execution


class Received(NamedTuple):
    """A pipelined query's reply (`ServerEngine._receive`)."""
    rows: Any  # the raw rows; None when the query failed
    error: BaseException | None = None
    broken: bool = False  # the connection cannot serve another query


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ServerEngine(Engine):
    """An engine over a database server; subclasses declare their tables, the hooks below,
    and `pipelined = False` where the driver cannot stream."""

    pipelined: ClassVar[bool] = True

    @classmethod
    def from_config(cls, cfg, *, db_root=None, dsn: str | None = None) -> "ServerEngine":
        """`cls(dsn, limits=, max_connections=, allow_writable=)` from `engines.<name>`."""
        server = getattr(cfg.engines, cls.name)
        return cls(dsn or server.dsn, limits=Limits.from_config(cfg),
                   max_connections=server.max_connections, allow_writable=cfg.engines.allow_writable_login)

    @classmethod
    def reader_user(cls, dsn: str) -> str | None:
        """The user name in a DSN."""
        raise NotImplementedError

    @classmethod
    def migration_target(cls, cfg, root=None):
        """The module's `TARGET` with the admin login; the SELECT-only login that `dsn` names
        is given read access to what it creates."""
        server = getattr(cfg.engines, cls.name)
        reader = (cls.reader_user(server.dsn) if server.dsn else None) or "exesql_reader"
        return sys.modules[cls.__module__].TARGET(server.admin_dsn, reader)

    def _accept_login(self, what_it_can: str | None, dsn: str, allow_writable: bool) -> None:
        """Refuse a login that could change something, unless the user said they accept it."""
        if what_it_can is None:
            return
        if not allow_writable:
            raise UserError(f"{self.name}: the login of {hide_password(dsn)} {what_it_can}: untrusted SQL must run as a "
                            "SELECT-only login (scripts/dbs.sh makes one); to accept this one pass "
                            "--allow-writable-login (engines.allow_writable_login: true)")
        self.writable_login = what_it_can

    def execute_many(self, jobs):
        return self._pipelined(jobs) if self.pipelined else super().execute_many(jobs)

    # -- pipelined streams (`pipelined`)
    # Errors that a failed checkout or send may raise: the job then goes to `execute` alone.
    stream_errors: ClassVar[tuple[type[BaseException], ...]] = (InfraError,)

    def _checkout(self):
        """A connection of the engine's pool, held for one stream."""
        raise NotImplementedError

    def _checkin(self, conn, broken: bool) -> None:
        """Give a stream's connection back; `broken`: it must not be reused."""
        raise NotImplementedError

    def _statement(self, sql: str, cap: int):
        """What the engine runs (or `_send` sends) for a guarded query and its cap: the query
        with the engine's row cap applied, where the engine applies it in the SQL."""
        return sql

    def _send(self, conn, db_id: str, statement) -> None:
        """Send one `_statement` (switching DB first if need be) without waiting for it."""
        raise NotImplementedError

    def _receive(self, conn) -> Received:
        """The reply to the query in flight: its rows, or the exception (a QueryTimeout, an
        InfraError or the server's error) and whether the connection is broken."""
        raise NotImplementedError

    def _pipelined(self, jobs: Iterable[tuple[str, str, int | None]]) -> Iterator[Execution]:
        """`execute_many` on one connection: the next query is sent as soon as the last one's
        rows are read, and the last one is normalised, hashed and handed to the caller while
        the server runs the next. One query is in flight at a time, so the server's timeout
        still bounds each verdict; what overlaps is our Python with the server's work.
        Anything unusual (a lost connection, a failed send) goes to `execute` for that job,
        which retries and classifies. elapsed_ms runs from sending to having the rows, so it
        may include some of our own work on the previous query."""
        conn = None
        inflight = None  # (db_id, sql, cap, t0) sent on conn and not read yet
        try:
            for job in chain(jobs, (None,)):  # None: the end, where the last one is read
                if self.stopping and inflight is None:
                    raise Interrupted()
                # The next job is guarded and its statement built before the last one is read,
                # while the server still runs it: between reading and sending, only the send.
                mine = None  # this job's Execution if it is not sent; False: run it alone
                if job is not None:
                    db_id, sql, cap = job
                    cap = self._cap(cap)
                    mine = self._refusal(sql)
                    if mine is None:
                        statement = self._statement(sql, cap)
                done = None
                if inflight is not None:
                    reply = self._receive(conn)
                    if reply.broken:
                        self._checkin(conn, broken=True)
                        conn = None
                    done, inflight = (inflight, reply.rows, reply.error), None
                    if self.stopping:  # perhaps the reply of a query `interrupt` cancelled: no verdict
                        raise Interrupted()
                if job is not None and mine is None:
                    try:
                        if conn is None:
                            conn = self._checkout()
                        t0 = time.perf_counter()
                        self._send(conn, db_id, statement)
                        inflight = (db_id, sql, cap, t0)
                    except self.stream_errors:
                        if conn is not None:
                            self._checkin(conn, broken=True)
                            conn = None
                        mine = False
                if done is not None:
                    yield self._outcome(*done)
                if mine is False:
                    yield self.execute(db_id, sql, cap)
                elif mine is not None:
                    yield mine
        finally:
            if conn is not None:
                # a query still in flight (the caller stopped early) leaves an unread reply
                self._checkin(conn, broken=inflight is not None)

    def _outcome(self, job, raw, exc) -> Execution:
        db_id, sql, cap, t0 = job
        if exc is None:
            return self._finish(raw, cap, t0)
        if isinstance(exc, InfraError) or self._about_the_environment(exc) or self._error_is_ours(exc, sql, cap):
            # not a verdict (retried with backoff), or not the query's own error
            return self.execute(db_id, sql, cap)
        return self._verdict(exc, t0)

    def _error_is_ours(self, exc: BaseException, sql: str, cap: int) -> bool:
        """The stream's error is about what the engine added to the query (its row cap), not the
        query: `execute` then finds the query's own error."""
        return False

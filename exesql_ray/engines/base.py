"""The machinery every engine shares; engine modules declare only what differs.

An engine runs untrusted SQL and returns exactly one `Execution` per call, whatever happens:
the guard first (`sqltext.guard`), then the engine's `_run`, then a verdict, a retry or
`infra_error`. Engines with a server build on `server.ServerEngine`.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Iterator



from exesql_ray.errors import UserError
from exesql_ray.engines.results import Execution, normalize_rows, result_hash
from exesql_ray.engines.sqltext import SYNTAX_PREFIX, guard


class InfraError(Exception):
    """The engine, not the SQL, failed (connection lost, server gone, a broken database file):
    never a verdict; retried unless `retry` is False (what a retry cannot mend)."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


class QueryTimeout(Exception):
    pass


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C): the query in flight gets no verdict. `records`: the
    records of the rows that had finished, in input order (filled in by the executor)."""

    def __init__(self, records=()):
        super().__init__("interrupted")
        self.records = list(records)


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    max_rows: int = 10_000
    retries: int = 3
    backoff_s: float = 0.2

    @classmethod
    def from_config(cls, cfg) -> "Limits":
        return cls(timeout_s=cfg.execution.timeout_s, max_rows=cfg.execution.max_rows)


class Engine(ABC):
    """Owns the execution path; subclasses declare their tables and implement `_run`.

    Thread-safe: the executor may call `execute` from several threads; each engine keeps a
    pool (or one connection per thread where its driver wants that).
    """

    name: ClassVar[str]
    dialect: ClassVar[str]  # sqlglot's dialect: the guard's tokens, the translations' output
    display_name: ClassVar[str]  # how prompts name the dialect
    # Column type per kind of stored value (int, float, text, blob): what migration creates
    # (its Target may narrow a column, e.g. MySQL's keys) and what prompts show.
    types: ClassVar[dict[str, str]]
    # How prompts write table and column names: None (as the source has them) or "upper".
    prompt_case: ClassVar[str | None] = None
    # The translation rewrites this engine needs (names in exesql_ray.translate.rewrites, which
    # applies them in its own order) and the SQL text they write here, by template name.
    rewrites: ClassVar[tuple[str, ...]] = ()
    templates: ClassVar[dict[str, str]] = {}
    # (regex over "<code>: <message>", error class), first match wins; unmatched → "other".
    error_classes: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Functions that change session or server state and survive the query (locks, settings).
    denied_functions: ClassVar[frozenset[str]] = frozenset()
    # How the engine names a db_id's schema/database: None (as is), "lower" or "upper".
    db_case: ClassVar[str | None] = None
    # Whether a per-query row cap below max_rows makes the engine stop early (the executor
    # then fetches a candidate only up to one row more than its gold has).
    early_cap: ClassVar[bool] = True

    @classmethod
    def from_config(cls, cfg, *, db_root=None, dsn: str | None = None) -> "Engine":
        """The engine as the config (and `exesql_ray.engines.open_engine`) builds it."""
        raise NotImplementedError

    @classmethod
    def migration_target(cls, cfg, root=None):
        """Where `db migrate` loads the source databases (a `migrate.Target`)."""
        raise UserError(f"cannot migrate into {cls.name!r}: it reads the source databases as they are")

    def db_name(self, db_id: str) -> str:
        return db_id.lower() if self.db_case == "lower" else db_id.upper() if self.db_case == "upper" else db_id

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self._compiled = [(re.compile(p, re.I), c) for p, c in self.error_classes]
        self.stopping = False
        # what the login could change, where the user accepted a writable one (else refused)
        self.writable_login: str | None = None

    def interrupt(self) -> None:
        """Stop (from another thread or a signal handler): the queries in flight end now where
        the engine can cancel them (else at their deadline), and every call from here on raises
        Interrupted instead of giving a verdict: a cancelled query is not the SQL's fault."""
        self.stopping = True
        try:
            self._cancel_running()
        except Exception:  # best effort: the deadline still ends the query
            pass

    def _cancel_running(self) -> None:
        """Cancel the queries in flight, if the engine can (called by `interrupt`)."""

    # -- what each engine implements
    @abstractmethod
    def _run(self, db_id: str, sql: str, cap: int) -> list[tuple]:
        """Run one guarded query; return its raw rows, fetched only to cap + 1 (more is
        allowed): `execute` cuts them to `cap` and marks the result truncated. No column
        names: nothing compares by name, and PostgreSQL's driver would build them per query.

        Raise QueryTimeout on the deadline, InfraError when the engine is unreachable, and
        let the driver's own errors through for classification.
        """

    @abstractmethod
    def db_ids(self) -> list[str]:
        """The databases this engine can run against."""

    def _error_text(self, exc: BaseException) -> str:
        return str(exc).strip()

    def _is_rejection(self, exc: BaseException) -> bool:
        """The driver's or server's own guard refused the statement (a read-only violation)."""
        return False

    def _about_the_environment(self, exc: BaseException) -> bool:
        """The server's error is about the machine, not the SQL (out of memory, disk full, too
        many connections, an I/O error): retried, then `infra_error`, never a verdict."""
        return False

    def reset(self) -> None:
        """Drop connections after an infrastructure error; the next call reconnects."""

    def close(self) -> None:
        pass

    # -- the machinery
    def classify(self, text: str) -> str:
        for rx, cls in self._compiled:
            if rx.search(text):
                return cls
        return "other"

    def execute(self, db_id: str, sql: str, cap: int | None = None) -> Execution:
        """One record, whatever happens; at most `cap` rows (default and ceiling: max_rows)."""
        cap = self._cap(cap)
        refusal = self._refusal(sql)
        if refusal is not None:
            return refusal
        attempt = 0
        while True:
            if self.stopping:
                raise Interrupted()
            t0 = time.perf_counter()
            try:
                raw = self._run(db_id, sql, cap)
            except Exception as e:
                if self.stopping:  # cancelled by `interrupt`, or ended while we stop: no verdict
                    raise Interrupted() from None
                if not (isinstance(e, InfraError) or self._about_the_environment(e)):
                    return self._verdict(e, t0)
                attempt += 1
                if attempt > self.limits.retries or not getattr(e, "retry", True):
                    return Execution("infra_error", error=self._error_text(e)[:500],
                                     elapsed_ms=(time.perf_counter() - t0) * 1e3)
                self.reset()
                time.sleep(self.limits.backoff_s * 2 ** (attempt - 1))
                continue
            if self.stopping:
                raise Interrupted()
            return self._finish(raw, cap, t0)

    def execute_many(self, jobs: Iterable[tuple[str, str, int | None]]) -> Iterator[Execution]:
        """One Execution per (db_id, sql, cap) job, in order. Engines with a server override
        this to send the next query before they (and the caller) are done with the last one."""
        for db_id, sql, cap in jobs:
            yield self.execute(db_id, sql, cap)

    # -- the parts of `execute`, shared with pipelined `execute_many`
    def _cap(self, cap: int | None) -> int:
        return self.limits.max_rows if cap is None else min(cap, self.limits.max_rows)

    def _refusal(self, sql: str) -> Execution | None:
        """The guard's verdict as an Execution, or None if `sql` may run."""
        t0 = time.perf_counter()
        refusal = guard(sql, self.dialect, self.denied_functions)
        if refusal is None:
            return None
        elapsed = (time.perf_counter() - t0) * 1e3
        if refusal.startswith(SYNTAX_PREFIX):
            return Execution("error", error_class="syntax", error=refusal[len(SYNTAX_PREFIX):], elapsed_ms=elapsed)
        return Execution("rejected", error_class="permission", error=refusal, elapsed_ms=elapsed)

    def _finish(self, raw, cap: int, t0: float) -> Execution:
        """Raw rows (fetched to cap + 1 at most) → the `ok` Execution; a `timeout` when they came
        after the deadline: some functions swallow the server's cut and return a value anyway
        (MariaDB's BENCHMARK and SLEEP), and a result past the limit is a timeout everywhere."""
        if time.perf_counter() - t0 >= self.limits.timeout_s:
            return self._verdict(QueryTimeout(), t0)
        truncated = len(raw) > cap
        rows = normalize_rows(raw[:cap] if truncated else raw)
        return Execution("ok", elapsed_ms=(time.perf_counter() - t0) * 1e3, row_count=len(rows),
                         truncated=truncated, result_hash=result_hash(rows), rows=rows)

    def _verdict(self, exc: BaseException, t0: float) -> Execution:
        """A failed query's Execution: timeout, the engine's refusal, or a classified error."""
        elapsed = (time.perf_counter() - t0) * 1e3
        if isinstance(exc, QueryTimeout):
            return Execution("timeout", error_class="resource", error=f"exceeded {self.limits.timeout_s:g}s",
                             elapsed_ms=elapsed)
        text = self._error_text(exc)
        if self._is_rejection(exc):
            return Execution("rejected", error_class="permission", error=text[:500], elapsed_ms=elapsed)
        return Execution("error", error_class=self.classify(text), error=text[:500], elapsed_ms=elapsed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Watchdog:
    """One thread that calls `on_expire` for deadlines that pass: a Timer thread per query
    would cost more to start than a typical Spider query takes. The heap holds only
    (deadline, token); callbacks are dropped on disarm so no cursor outlives its query here."""

    def __init__(self):
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Any] = {}
        self._next = 0
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="exesql-watchdog", daemon=True)
        self._thread.start()

    def arm(self, timeout_s: float, on_expire) -> int:
        with self._cv:
            self._next += 1
            token = self._next
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, token))
            self._live[token] = on_expire
            if self._heap[0][1] == token:
                self._cv.notify()
            return token

    def disarm(self, token: int) -> bool:
        """True if the deadline had not fired."""
        with self._cv:
            return self._live.pop(token, None) is not None

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                wait = None if not self._heap else self._heap[0][0] - time.monotonic()
                if wait is None or wait > 0:
                    self._cv.wait(timeout=wait if wait is None else min(wait, 1.0))
                    continue
                _, token = heapq.heappop(self._heap)
                fn = self._live.pop(token, None)
            if fn is not None:
                try:
                    fn()
                except Exception:
                    pass
                fn = None  # do not hold the cursor while waiting for the next deadline

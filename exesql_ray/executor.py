"""Execute rows of (id, db_id, sql[, gold_sql]) on one engine: one record per input row, always.

Pure logic (no Ray): `exesql-ray execute` uses it directly, and the executor actor wraps it.
Malformed rows (no id or sql, an unknown db_id, text that is not UTF-8) get a `rejected`
record and the run goes on. Results are cached by (engine, db_id, normalised SQL), so gold
queries and duplicate candidates run once per executor.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from exesql_ray.compare import CompareOptions, query_orders, results_match
from exesql_ray.engines.base import Engine, Execution, cache_key

RECORD_FIELDS = ("id", "db_id", "sql", "status", "error_class", "error", "elapsed_ms", "row_count",
                 "truncated", "result_hash", "match", "gold_status", "cached")


class ExecutionCache:
    """LRU of executions by (engine, db_id, normalised SQL); only verdicts about the SQL are
    kept (infra errors are not). Bounded by entries and by rows held."""

    def __init__(self, max_entries: int = 100_000, max_rows: int = 5_000_000):
        self._d: OrderedDict[tuple, Execution] = OrderedDict()
        self._rows = 0
        self.max_entries, self.max_rows = max_entries, max_rows
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            ex = self._d.get(key)
            if ex is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return ex

    def put(self, key, ex: Execution, replace: bool = False) -> None:
        if ex.status == "infra_error":
            return
        with self._lock:
            if key in self._d:
                if not replace:
                    return
                self._rows -= len(self._d.pop(key).rows or ())
            self._d[key] = ex
            self._rows += len(ex.rows or ())
            while len(self._d) > self.max_entries or self._rows > self.max_rows:
                _, old = self._d.popitem(last=False)
                self._rows -= len(old.rows or ())


@dataclass
class ExecutorStats:
    executions: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_error_class: Counter = field(default_factory=Counter)
    cache_hits: int = 0
    cache_misses: int = 0

    def as_dict(self) -> dict:
        return {"executions": self.executions, "by_status": dict(self.by_status),
                "by_error_class": dict(self.by_error_class), "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses}


_BLANK = {**dict.fromkeys(RECORD_FIELDS), "elapsed_ms": 0.0, "row_count": 0, "truncated": False, "cached": False}


def _record(rid, db_id, sql) -> dict:
    """A record with every field of RECORD_FIELDS, not yet executed."""
    return {**_BLANK, "id": rid, "db_id": db_id, "sql": sql}


def _text(v) -> str | None:
    """A usable SQL/id string, or None; bytes must be UTF-8."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8")  # UnicodeDecodeError → caller rejects the row
    if not isinstance(v, str):
        v = str(v)
    return v


class Executor:
    def __init__(self, engine: Engine, *, cache: bool = True, compare: CompareOptions = CompareOptions(),
                 workers: int = 1, cache_entries: int = 100_000):
        self.engine = engine
        self.cache = ExecutionCache(cache_entries) if cache else None
        self.compare = compare
        self.workers = max(1, workers)
        self._known_dbs = {engine.db_name(d) for d in engine.db_ids()}
        self._lock = threading.Lock()
        self._matches: dict = {}  # (gold key, candidate key) → match: duplicates compare once
        self.stats = ExecutorStats()

    def refresh_dbs(self) -> None:
        self._known_dbs = {self.engine.db_name(d) for d in self.engine.db_ids()}

    def _execute(self, db_id: str, sql: str, cap: int | None = None) -> tuple[Execution, object, bool]:
        """(execution, its cache key or None, served from the cache). `cap`: rows wanted at
        most (None: max_rows); a cached result cut off below what is wanted runs again."""
        if self.cache is None:
            return self.engine.execute(db_id, sql, cap), None, False
        ck = (db_id, cache_key(sql, self.engine.dialect))
        hit = self.cache.get(ck)
        if hit is not None and not (hit.truncated and (cap is None or cap > hit.row_count)):
            return hit, ck, True
        ex = self.engine.execute(db_id, sql, cap)
        self.cache.put(ck, ex, replace=hit is not None)
        return ex, ck, False

    def execute_sql(self, db_id: str, sql: str) -> Execution:
        """One execution through the cache (a cached one is marked `cached`)."""
        ex, _, cached = self._execute(db_id, sql)
        return dataclasses.replace(ex, cached=True) if cached else ex

    def _match(self, gold: Execution, gold_key, pred: Execution, pred_key, gold_sql: str) -> bool:
        if gold_key is not None and pred_key is not None:
            mk = (gold_key, pred_key)
            hit = self._matches.get(mk)
            if hit is not None:
                return hit
        if gold.result_hash == pred.result_hash and not self._ordered(gold_sql):
            m = True  # identical multisets
        else:
            m = results_match(gold.rows, pred.rows, gold_sql=gold_sql, opts=self.compare,
                              gold_dialect=self.engine.dialect)
        if gold_key is not None and pred_key is not None:
            if len(self._matches) > 200_000:
                self._matches.clear()
            self._matches[mk] = m
        return m

    def _ordered(self, gold_sql: str) -> bool:
        if self.compare.order == "strict":
            return True
        if self.compare.order == "ignore":
            return False
        return query_orders(gold_sql, self.engine.dialect)

    def run_row(self, row: dict) -> dict:
        rid, sql, db_id, gold_sql = row.get("id"), row.get("sql"), row.get("db_id"), row.get("gold_sql")
        if not (type(rid) is str and type(sql) is str and type(db_id) is str
                and (gold_sql is None or type(gold_sql) is str)):  # the common case skips _text
            try:
                rid, sql, db_id, gold_sql = _text(rid), _text(sql), _text(db_id), _text(gold_sql)
            except UnicodeDecodeError as e:
                out = _record(None if rid is None else str(rid), row.get("db_id"), None)
                return self._rejected(out, f"text is not UTF-8 (byte {e.start})")
        out = _record(rid, db_id, sql)
        if row.get("_error"):
            return self._rejected(out, row["_error"])
        if rid is None or rid == "":
            return self._rejected(out, "missing id")
        if sql is None or not sql.strip():
            return self._rejected(out, "missing sql")
        if db_id is None or db_id == "":
            return self._rejected(out, "missing db_id")
        if self.engine.db_name(db_id) not in self._known_dbs:
            return self._rejected(out, f"unknown db_id {db_id!r} for engine {self.engine.name}")
        gold = gold_key = cap = None
        if gold_sql:
            gold, gold_key, _ = self._execute(db_id, gold_sql)
            if gold.status == "ok" and not gold.truncated and self.compare.rows == "bag" and self.engine.early_cap:
                # more rows than the gold cannot match a multiset: fetch one more at most
                # (a candidate that drops its WHERE stops after gold + 1 rows, not after the join)
                cap = gold.row_count + 1
        ex, key, cached = self._execute(db_id, sql, cap)
        out["status"], out["error_class"], out["error"] = ex.status, ex.error_class, ex.error
        out["elapsed_ms"], out["row_count"], out["truncated"] = round(ex.elapsed_ms, 3), ex.row_count, ex.truncated
        out["result_hash"], out["cached"] = ex.result_hash, cached
        if gold is not None:
            out["gold_status"] = gold.status
            if gold.status == "ok" and ex.status == "ok":
                out["match"] = self._match(gold, gold_key, ex, key, gold_sql)
            elif gold.status == "ok":
                out["match"] = False
        self._count(out)
        return out

    def _rejected(self, out: dict, why: str) -> dict:
        out.update(status="rejected", error_class="input", error=why)
        self._count(out)
        return out

    def _count(self, out: dict) -> None:
        with self._lock:
            self.stats.executions += 1
            self.stats.by_status[out["status"]] += 1
            if out["error_class"]:
                self.stats.by_error_class[out["error_class"]] += 1
            if self.cache is not None:
                self.stats.cache_hits, self.stats.cache_misses = self.cache.hits, self.cache.misses

    def run(self, rows, progress=None) -> list[dict]:
        """Records in input order, one per row."""
        rows = list(rows)
        if self.workers == 1 or len(rows) < 2:
            out = []
            for r in rows:
                out.append(self.run_row(r))
                if progress:
                    progress(1)
            return out
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"exec-{self.engine.name}") as pool:
            results = []
            for rec in pool.map(self.run_row, rows):
                results.append(rec)
                if progress:
                    progress(1)
            return results

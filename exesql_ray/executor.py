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
from typing import NamedTuple
from dataclasses import dataclass, field

from exesql_ray.compare import CompareOptions, query_orders, results_match
from exesql_ray.engines.base import Engine, Interrupted
from exesql_ray.engines.results import Execution
from exesql_ray.engines.sqltext import cache_key

# truncated: the result had more rows than execution.max_rows; stopped_early: it had more rows
# than the gold, so it stopped at gold + 1 and cannot match (row_count is then a lower bound).
RECORD_FIELDS = ("id", "db_id", "sql", "status", "error_class", "error", "elapsed_ms", "row_count",
                 "truncated", "stopped_early", "result_hash", "match", "gold_status", "gold_error", "cached")


class ExecutionCache:
    """LRU of executions by (engine, db_id, normalised SQL); only verdicts about the SQL are
    kept (infra errors are not). Bounded by entries and by rows held."""

    def __init__(self, max_entries: int = 100_000, max_rows: int = 5_000_000):
        self._d: OrderedDict[tuple, Execution] = OrderedDict()
        self._rows = 0
        self.max_entries, self.max_rows = max_entries, max_rows
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    def count_hit(self, n: int = 1) -> None:
        """Hits served otherwise than by `get` (the same SQL twice in one stream of jobs)."""
        with self._lock:
            self.hits += n

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


_BLANK = {**dict.fromkeys(RECORD_FIELDS), "elapsed_ms": 0.0, "row_count": 0, "truncated": False,
          "stopped_early": False, "cached": False}


def _record(rid, db_id, sql) -> dict:
    """A record with every field of RECORD_FIELDS, not yet executed."""
    return {**_BLANK, "id": rid, "db_id": db_id, "sql": sql}


def _id_text(v) -> str | None:
    return None if v is None else v if isinstance(v, str) else str(v)


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

    def _usable(self, hit: Execution | None, cap: int | None) -> bool:
        """A cached execution serves a call that wants `cap` rows (None: max_rows) unless it was
        cut off below that."""
        top = self.engine.limits.max_rows
        want = top if cap is None else min(cap, top)
        return hit is not None and not (hit.truncated and want > hit.row_count)

    def execute_sql(self, db_id: str, sql: str) -> Execution:
        """One execution through the cache (a cached one is marked `cached`)."""
        jobs = _Jobs(self)
        ref = jobs.add(db_id, sql, None)
        ex = jobs.result(ref)
        if self.cache is not None:
            self.cache.count_hit(jobs.hits)
        return dataclasses.replace(ex, cached=True) if ref.served else ex

    def _match(self, gold: Execution, gold_key, pred: Execution, pred_key, gold_sql: str) -> bool:
        if gold_key is not None and pred_key is not None:
            mk = (gold_key, pred_key)
            hit = self._matches.get(mk)
            if hit is not None:
                return hit
        if gold.result_hash == pred.result_hash and (gold.rows == pred.rows or not self._ordered(gold_sql)):
            m = True  # identical multisets, and in the same order or where order does not count
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
        return self.run([row])[0]

    def _check(self, row: dict) -> _Checked:
        """(the row's record, its gold SQL); the record is already `rejected` if the row is
        malformed (then the gold is None)."""
        rid, sql, db_id, gold_sql = row.get("id"), row.get("sql"), row.get("db_id"), row.get("gold_sql")
        if not (type(rid) is str and type(sql) is str and type(db_id) is str
                and (gold_sql is None or type(gold_sql) is str)):  # the common case skips _text
            for name, v in (("sql", sql), ("db_id", db_id), ("gold_sql", gold_sql)):
                if v is not None and not isinstance(v, (str, bytes, bytearray)):
                    out = _record(_id_text(rid), db_id if isinstance(db_id, str) else None, None)
                    return _Checked(self._rejected(out, f"`{name}` is a {type(v).__name__}, not text"), None)
            try:
                rid, sql, db_id, gold_sql = _text(rid), _text(sql), _text(db_id), _text(gold_sql)
            except UnicodeDecodeError as e:
                out = _record(None if rid is None else str(rid), row.get("db_id"), None)
                return _Checked(self._rejected(out, f"text is not UTF-8 (byte {e.start})"), None)
        out = _record(rid, db_id, sql)
        if row.get("_error"):
            return _Checked(self._rejected(out, row["_error"]), None)
        if rid is None or rid == "":
            return _Checked(self._rejected(out, "missing id"), None)
        if sql is None or not sql.strip():
            return _Checked(self._rejected(out, "missing sql"), None)
        if db_id is None or db_id == "":
            return _Checked(self._rejected(out, "missing db_id"), None)
        if self.engine.db_name(db_id) not in self._known_dbs:
            return _Checked(self._rejected(out, f"unknown db_id {db_id!r} for engine {self.engine.name}"), None)
        return _Checked(out, gold_sql or None)

    def _check_all(self, rows: list[dict]) -> tuple[list, list]:
        """`_check` per row, except that with the cache on, a row that repeats an earlier good
        row's (db_id, sql, gold_sql) is a copy: `_Copy(that row's index, its own id)` in `copy_of`,
        None in `checked`. Best-of-N repeats most rows; a copy skips all their bookkeeping.
        Its hits are counted as the row would have had them."""
        if self.cache is None:
            return [self._check(r) for r in rows], [None] * len(rows)
        checked: list = []
        copy_of: list = []
        first: dict = {}
        hits = 0
        for i, row in enumerate(rows):
            db_id, sql, gold_sql, rid = row.get("db_id"), row.get("sql"), row.get("gold_sql"), row.get("id")
            key = None
            if type(db_id) is str and type(sql) is str and (gold_sql is None or type(gold_sql) is str):
                key = (db_id, sql, gold_sql)
                j = first.get(key)
                if j is not None and type(rid) is str and rid and not row.get("_error"):
                    checked.append(None)
                    copy_of.append(_Copy(j, rid))
                    hits += 2 if gold_sql else 1
                    continue
            c = self._check(row)
            checked.append(c)
            copy_of.append(None)
            if key is not None and c.record["status"] is None:
                first.setdefault(key, i)
        if hits:
            self.cache.count_hit(hits)
        return checked, copy_of

    def _run_chunk(self, rows: list[dict], progress) -> list[dict]:
        records: list[dict] = []
        try:
            return self._run_chunk_into(records, rows, progress)
        except Interrupted:
            raise Interrupted(records) from None  # the rows finished before the query in flight

    def _run_chunk_into(self, records: list[dict], rows: list[dict], progress) -> list[dict]:
        """Records for a few hundred rows, in two passes, each one stream of jobs through
        `engine.execute_many` (which a server engine pipelines): first every gold not cached,
        then every candidate, capped by its gold. A SQL text that recurs in the chunk is one
        job (its widest cap) when the cache is on, as the cache would have served it, and a
        row that repeats an earlier one gets a copy of its record (`_check_all`)."""
        checked, copy_of = self._check_all(rows)
        golds = _Jobs(self)
        gold_refs = [golds.add(c.record["db_id"], c.gold_sql, None) if c is not None and c.gold_sql is not None
                     and c.record["status"] is None else None for c in checked]
        golds.run_all()
        cands = _Jobs(self)
        plans: list[_Candidate | None] = []
        for c, gold_ref in zip(checked, gold_refs):
            if c is None or c.record["status"] is not None:  # a copy, or rejected
                plans.append(None)
                continue
            gold = cap = None
            if gold_ref is not None:
                gold = golds.result(gold_ref)
                if gold.status == "ok" and not gold.truncated and self.compare.rows == "bag" and self.engine.early_cap:
                    # more rows than the gold cannot match a multiset: fetch one more at most
                    # (a candidate that drops its WHERE stops after gold + 1 rows, not after the join)
                    cap = gold.row_count + 1
            plans.append(_Candidate(gold, gold_ref, cands.add(c.record["db_id"], c.record["sql"], cap), cap))
        keep = self.cache is not None  # else each job serves one row: drop its rows once used
        for c, plan, copy in zip(checked, plans, copy_of):
            if copy is not None:
                out = {**records[copy.of], "id": copy.id, "cached": True}
            else:
                out = c.record
            if plan is not None:
                ex = cands.result(plan.ref)  # pulls the candidates' stream up to this one
                self._fill(out, ex, plan, c.gold_sql)
                if not keep:
                    cands.drop(plan.ref)
                    if plan.gold_ref is not None:
                        golds.drop(plan.gold_ref)
            records.append(out)
            if progress:
                progress(1)
        if self.cache is not None:
            self.cache.count_hit(golds.hits + cands.hits)
        self._count(records)
        return records

    def _fill(self, out: dict, ex: Execution, plan: _Candidate, gold_sql: str | None) -> None:
        out["status"], out["error_class"], out["error"] = ex.status, ex.error_class, ex.error
        out["elapsed_ms"], out["row_count"] = round(ex.elapsed_ms, 3), ex.row_count
        # cut below max_rows: by a gold's row count + 1 (this row's, or a wider one of the same
        # SQL in the pass), not by the max_rows cap
        cut_by_gold = ex.truncated and ex.row_count < self.engine.limits.max_rows
        out["truncated"], out["stopped_early"] = ex.truncated and not cut_by_gold, cut_by_gold
        out["result_hash"], out["cached"] = ex.result_hash, plan.ref.served
        gold = plan.gold
        if gold is not None:
            out["gold_status"] = gold.status
            if gold.status != "ok":
                out["gold_error"] = gold.error or gold.status
            if gold.status == "ok" and ex.status == "ok":
                out["match"] = self._match(gold, plan.gold_ref.key, ex, plan.ref.key, gold_sql)
            elif gold.status == "ok":
                out["match"] = False

    def _rejected(self, out: dict, why: str) -> dict:
        out.update(status="rejected", error_class="input", error=why)
        return out

    def _count(self, records: list[dict]) -> None:
        """Fold a chunk's records into the stats (once per chunk: one lock, counts in C)."""
        statuses = Counter(r["status"] for r in records)
        classes = Counter(r["error_class"] for r in records if r["error_class"])
        with self._lock:
            self.stats.executions += len(records)
            self.stats.by_status.update(statuses)
            self.stats.by_error_class.update(classes)
            if self.cache is not None:
                self.stats.cache_hits, self.stats.cache_misses = self.cache.hits, self.cache.misses

    def run(self, rows, progress=None) -> list[dict]:
        """Records in input order, one per row. Rows go in chunks (bounding the results held
        at once); with `workers` > 1, chunks run on that many threads, each its own stream.
        After `engine.interrupt()` it raises Interrupted holding the records of the rows
        finished before the first one left without a verdict."""
        rows = list(rows)
        size = CHUNK_ROWS if self.workers == 1 else THREAD_CHUNK_ROWS
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        results: list[dict] = []
        try:
            if self.workers == 1 or len(chunks) < 2:
                for chunk in chunks:
                    results.extend(self._run_chunk(chunk, progress))
                return results
            with ThreadPoolExecutor(self.workers, thread_name_prefix=f"exec-{self.engine.name}") as pool:
                for recs in pool.map(lambda c: self._run_chunk(c, None), chunks):
                    results.extend(recs)
                    if progress:
                        progress(len(recs))
                return results
        except Interrupted as e:
            raise Interrupted(results + e.records) from None


CHUNK_ROWS = 256  # per stream of jobs: a few hundred results held at once, at most
THREAD_CHUNK_ROWS = 32  # with several threads: small chunks, so that slow ones spread out


class _Checked(NamedTuple):
    """A row after its checks: its record (already `rejected` if the row is malformed) and gold."""
    record: dict
    gold_sql: str | None


class _Copy(NamedTuple):
    """A row that repeats an earlier one of its chunk: that row's index, and its own id."""
    of: int
    id: str


@dataclasses.dataclass(slots=True)
class _Job:
    """One execution for `engine.execute_many`; `cap` widens when the SQL recurs in the pass."""
    db_id: str
    sql: str
    cap: int | None
    key: tuple | None  # the cache key (None: cache off)
    replaces: bool  # a cached execution, cut below this cap, is replaced by this one


class _Ref(NamedTuple):
    """What `_Jobs.add` hands back for one row."""
    target: int | Execution  # the job's index, or the cached Execution itself
    key: tuple | None  # the cache key
    served: bool  # served by the cache or an earlier job of the pass (the record's `cached`)


class _Candidate(NamedTuple):
    """A candidate row's plan in a chunk: its gold's execution, and its own job."""
    gold: Execution | None
    gold_ref: _Ref | None
    ref: _Ref
    cap: int | None  # the gold's row count + 1, or None (execution.max_rows)


class _Jobs:
    """The executions one pass of a chunk needs, as jobs for `engine.execute_many`.

    `add` returns a reference (job index or a cached Execution, cache key, served from the
    cache). With the cache on, a SQL text already cached is not a job, and one that recurs
    in the pass is one job, widened to the largest cap asked for; the hit counts are those
    the row-by-row order would have given. With the cache off, every reference is a job of
    its own."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.jobs: list[_Job] = []
        self.by_key: dict = {}
        self.results: list[Execution | None] = []
        self._stream = None
        self.hits = 0  # hits served within the pass: the caller adds them to the cache's count

    def add(self, db_id: str, sql: str, cap: int | None) -> _Ref:
        executor = self.executor
        if executor.cache is None:
            self.jobs.append(_Job(db_id, sql, cap, None, False))
            return _Ref(len(self.jobs) - 1, None, False)
        ck = (db_id, cache_key(sql, executor.engine.dialect))
        i = self.by_key.get(ck)
        if i is not None:
            job = self.jobs[i]
            job.cap = None if job.cap is None or cap is None else max(job.cap, cap)
            self.hits += 1
            return _Ref(i, ck, True)
        hit = executor.cache.get(ck)
        if executor._usable(hit, cap):
            return _Ref(hit, ck, True)
        self.jobs.append(_Job(db_id, sql, cap, ck, hit is not None))
        i = self.by_key[ck] = len(self.jobs) - 1
        return _Ref(i, ck, False)

    def result(self, ref: _Ref) -> Execution:
        what = ref.target
        if what.__class__ is not int:
            return what  # a cached Execution
        if what >= len(self.results):
            self._pull(what)
        return self.results[what]

    def _pull(self, upto: int) -> None:
        if self._stream is None:
            self._stream = self.executor.engine.execute_many((j.db_id, j.sql, j.cap) for j in self.jobs)
        cache, results, jobs = self.executor.cache, self.results, self.jobs
        while len(results) <= upto:
            ex = next(self._stream)
            job = jobs[len(results)]
            if job.key is not None:
                cache.put(job.key, ex, replace=job.replaces)
            results.append(ex)
        if len(results) == len(jobs):
            self._stream.close()  # the engine gives its connection back now, not at garbage collection

    def run_all(self) -> None:
        if self.jobs:
            self._pull(len(self.jobs) - 1)

    def drop(self, ref: _Ref) -> None:
        """Forget a job's rows (cache off: no other row of the chunk needs them)."""
        if ref.target.__class__ is int:
            self.results[ref.target] = None

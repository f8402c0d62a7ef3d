"""Executor actors: one engine's pool and cache per actor, fed by Ray Data `map_batches` (or
called directly with `records`, as GRPO's reward function does).

`controller.sample.execute_dataset(ds, engine, cfg)` adds the execution record to every row
of `ds` (input columns pass through). Ray Data runs `ExecuteBatch` in an actor pool of
`execution.actors[engine]` actors; Ray Data's `max_restarts=-1` with `max_task_retries=-1` means a
crashed actor is restarted and the batch it held is run again from its input, so every input
row still yields exactly one record (a batch's output is emitted only once it completes).
Metrics go to the Ray dashboard (Prometheus) through `ray.util.metrics`, tagged by engine.
"""

from __future__ import annotations

import pyarrow as pa

from exesql_ray.compare import CompareOptions
from exesql_ray.config import Config
from exesql_ray.executor import RECORD_FIELDS, Executor

RECORD_TYPES = {
    "id": pa.string(), "db_id": pa.string(), "sql": pa.string(), "status": pa.string(),
    "error_class": pa.string(), "error": pa.string(), "elapsed_ms": pa.float64(), "row_count": pa.int64(),
    "truncated": pa.bool_(), "stopped_early": pa.bool_(), "result_hash": pa.string(), "match": pa.bool_(),
    "gold_status": pa.string(), "gold_error": pa.string(), "cached": pa.bool_(),
}
LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]


class EngineMetrics:
    """Counters and a latency histogram per engine for the Ray dashboard."""

    def __init__(self, engine: str, labels: dict | None = None):
        from ray.util import metrics

        # stage: sample / eval / execute (the CLI); iteration: iter-k, base or "" (Grafana's filters)
        self.tags = {"engine": engine, "stage": "execute", "iteration": "", **(labels or {})}
        keys = tuple(self.tags)
        self.executions = metrics.Counter("exesql_executions", "SQL executions by status",
                                          tag_keys=(*keys, "status"))
        self.errors = metrics.Counter("exesql_execution_errors", "failed executions by error class",
                                      tag_keys=(*keys, "error_class"))
        self.timeouts = metrics.Counter("exesql_execution_timeouts", "executions stopped at the deadline",
                                        tag_keys=keys)
        self.cache_hits = metrics.Counter("exesql_execution_cache_hits", "executions served from the cache",
                                          tag_keys=keys)
        self.latency = metrics.Histogram("exesql_execution_latency_ms", "time in the engine per execution (ms)",
                                         boundaries=LATENCY_BOUNDARIES_MS, tag_keys=keys)

    def observe(self, records: list[dict]) -> None:
        for r in records:
            self.executions.inc(1, {**self.tags, "status": r["status"]})
            if r["error_class"] and r["status"] != "ok":
                self.errors.inc(1, {**self.tags, "error_class": r["error_class"]})
            if r["status"] == "timeout":
                self.timeouts.inc(1, self.tags)
            if r.get("cached"):
                self.cache_hits.inc(1, self.tags)
            elif r["status"] in ("ok", "error", "timeout"):
                self.latency.observe(r["elapsed_ms"], self.tags)


class ExecuteBatch:
    """Callable class for `map_batches`: built once per actor, called once per batch."""

    def __init__(self, engine: str, config: dict, db_root: str | list[str] | None = None, labels: dict | None = None):
        from exesql_ray.engines import open_engine

        cfg = Config.model_validate(config)
        self.engine = open_engine(engine, cfg, db_root=db_root)
        self.executor = Executor(self.engine, cache=cfg.execution.cache,
                                 compare=CompareOptions.from_config(cfg.compare),
                                 workers=cfg.execution.threads_per_actor)
        self.metrics = EngineMetrics(engine, labels)
        import os
        import socket

        # which process ran a row: the stage's summary counts the actors at work over time
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def records(self, rows: list[dict]) -> list[dict]:
        """The execution record of each row (id, db_id, sql[, gold_sql]), in order: the same
        actor called directly, as GRPO's reward function does (exesql_ray/train/grpo.py)."""
        records = self.executor.run(rows)
        self.metrics.observe(records)
        return records

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        records = self.records(rows)
        out = []
        for row, rec in zip(rows, records):
            merged = {k: v for k, v in row.items() if k not in RECORD_TYPES}
            merged.update(rec)
            merged["executor_actor"] = self.name
            out.append(merged)
        passthrough = [f for f in batch.schema if f.name not in RECORD_TYPES and f.name != "executor_actor"]
        schema = pa.schema(passthrough + [pa.field(k, RECORD_TYPES[k]) for k in RECORD_FIELDS]
                           + [pa.field("executor_actor", pa.string())])
        return pa.Table.from_pylist(out, schema=schema)

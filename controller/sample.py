"""Stage 2 on Ray Data: questions → generator replicas (best-of-N) → one row per candidate →
the target engine's executor actors → shards on disk, streaming.

Each engine is one chain `from_items → map_batches(GenerateCandidates) → execute_dataset`;
the chains are unioned, so every engine's executors run while generation goes on, and the
driver writes each shard the moment its last candidate arrives (`ShardWriter`). Generator
replicas are long-lived actors (their weights are swapped between iterations, not
restarted); the map step only routes a batch to one of them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from actors.executor import ExecuteBatch
from actors.sampler import GenerateCandidates
from exesql_ray.config import Config, executor_pool
from exesql_ray.sample_stage import (QUESTION_TYPES, ActorTrace, SamplePlan, ShardWriter, plan_sampling,
                                     summarize_sampling)
from exesql_ray.summaries import SampleSummary
from exesql_ray.engines import SOURCE

QUESTION_SCHEMA = pa.schema(list(QUESTION_TYPES.items()))


def execute_dataset(ds, engine: str, cfg: Config, db_root: str | list[str] | None = None, labels: dict | None = None):
    """`ds` with the execution record of each row on `engine` (rows need id, db_id, sql);
    `labels` ({"stage": …, "iteration": …}) tag the actors' metrics."""
    from ray.data import ActorPoolStrategy

    ex = cfg.execution
    fewest, most = executor_pool(ex, engine)
    return ds.map_batches(
        ExecuteBatch,
        fn_constructor_kwargs={"engine": engine, "config": cfg.model_dump(mode="json"),
                               "db_root": db_root if db_root is None or isinstance(db_root, list) else str(db_root), "labels": labels},
        batch_size=ex.batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=fewest) if fewest == most else ActorPoolStrategy(min_size=fewest,
                                                                                        max_size=most),
        num_cpus=ex.actor_num_cpus.get(engine, 0.25),
        resources=ex.actor_resources.get(engine) or None,
        # Ray Data's actor pool already runs actors with max_restarts=-1 and
        # max_task_retries=-1 (ray 2.60, ActorPoolMapOperator); passing them as extra remote
        # args is deprecated. tests/test_executor_actors.py kills an actor to hold it to that.
    )


def candidates_dataset(plan: SamplePlan, cfg: Config, generators: list, engine: str):
    """The generation half for one engine (also used alone by bench/sample.py)."""
    import ray
    from ray.data import ActorPoolStrategy

    rows = [q for s in plan.todo if s.engine == engine for q in s.questions]
    bs = cfg.sample.generate_batch_size
    # one block per generator call, built here: a repartition would need a free CPU for its
    # all-to-all tasks, which the actors may hold on a small machine
    ds = ray.data.from_arrow([pa.Table.from_pylist(rows[i:i + bs], schema=QUESTION_SCHEMA)
                              for i in range(0, len(rows), bs)])
    return ds.map_batches(GenerateCandidates, fn_constructor_kwargs={
        "generators": generators, "model_path": plan.model_path, "iteration": plan.iteration, "n": plan.n,
        "temperature": cfg.generation.temperature},
        batch_size=bs, batch_format="pyarrow", compute=ActorPoolStrategy(size=max(1, 2 * len(generators))),
        num_cpus=0)


class StageMetrics:
    """Candidates by outcome per engine, stage and iteration, and the running pass rate, for
    the Ray dashboard (Prometheus); the executor actors add executions, latency, errors."""

    def __init__(self, labels: dict):
        from ray.util import metrics

        self.labels = labels
        keys = ("engine", *labels)
        self.candidates = metrics.Counter("exesql_candidates", "candidates judged, by outcome",
                                          tag_keys=(*keys, "outcome"))
        self.pass_rate = metrics.Gauge("exesql_pass_rate", "share of this stage's candidates that passed so far",
                                       tag_keys=keys)
        self.seen: dict[str, list[int]] = {}

    def observe(self, rows: list[dict]) -> None:
        """`rows` as ShardWriter.add leaves them: scored."""
        for r in rows:
            tags = {"engine": r["engine"], **self.labels}
            self.candidates.inc(1, {**tags, "outcome": r["outcome"]})
            c = self.seen.setdefault(r["engine"], [0, 0])
            c[0] += r["outcome"] == "pass"
            c[1] += 1
        for engine, (ok, n) in self.seen.items():
            self.pass_rate.set(ok / n, {"engine": engine, **self.labels})


def sample_on_ray(plan: SamplePlan, cfg: Config, generators: list, progress=None,
                  labels: dict | None = None, trace: ActorTrace | None = None) -> ShardWriter:
    """Run the plan's missing shards; returns the writer (its `missing` is empty on success).
    `labels` ({"stage": sample|eval, "iteration": …}) tag the metrics; `trace` counts the
    executor actors at work."""
    writer = ShardWriter(plan)
    engines = [e for e in plan.engines if any(s.engine == e for s in plan.todo)]
    if not engines:
        return writer
    labels = labels or {"stage": "sample", "iteration": f"iter-{plan.iteration}"}
    metrics = StageMetrics(labels)
    chains = [execute_dataset(candidates_dataset(plan, cfg, generators, e), e, cfg,
                              db_root=plan.db_roots if e == SOURCE else None, labels=labels) for e in engines]
    ds = chains[0].union(*chains[1:]) if len(chains) > 1 else chains[0]
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        rows = batch.to_pylist()
        for path in writer.add(rows):
            if progress:
                progress(path)
        metrics.observe(rows)
        if trace is not None:
            trace.observe(rows)
    return writer


def check_engines(work: list[tuple[Config, SamplePlan]]) -> None:
    """Open (and close) each engine the plans still need: a database not migrated, a server
    down or a wrong login is one line here, not an error deep inside a Ray Data UDF."""
    from exesql_ray.engines import open_engine

    for c, p in work:
        for e in sorted({s.engine for s in p.todo}):
            open_engine(e, c, db_root=p.db_roots if e == SOURCE else None).close()


def sample_preflight(cfg: Config, iteration: int) -> None:
    """What the sampling stage needs, checked before Ray starts: the policy's weights and
    every engine's databases."""
    check_engines([(cfg, plan_sampling(cfg, iteration))])


def run_plans(work: list[tuple[Config, SamplePlan]], generators: list | None, progress,
              labels: dict | None = None) -> ActorTrace:
    """Sample the missing shards of each (config, plan), on the given replicas or on replicas
    started (from the first plan's model and generation settings) and removed here. Returns
    the executor actors' trace."""
    import ray

    from actors.generator import start_generators

    trace = ActorTrace()
    work = [(c, p) for c, p in work if p.todo]
    if not work:
        return trace
    check_engines(work)  # an engine that cannot open fails here, before any model is loaded
    own = generators is None
    if own:
        generators = start_generators(work[0][1].model_path, work[0][0].generation)
    import time

    total, done, t0 = sum(len(p.todo) for _, p in work), [0], time.time()

    def shard_written(path) -> None:
        done[0] += 1
        spent = time.time() - t0
        eta = spent / done[0] * (total - done[0])
        progress(f"  wrote shard {done[0]}/{total} ({spent:.0f} s, ETA {eta:.0f} s): {path}")

    try:
        for c, p in work:
            writer = sample_on_ray(p, c, generators, progress=shard_written, labels=labels, trace=trace)
            if writer.missing:
                raise RuntimeError(f"sampling ended with candidates missing: {writer.missing}")
    finally:
        if own:
            for g in generators:
                ray.kill(g)
    return trace


def run_sample_stage(cfg: Config, iteration: int, generators: list | None = None,
                     progress=print, root: Path | None = None) -> SampleSummary:
    """Plan, sample what is missing, summarise. Starts generator replicas unless given some
    (the pipeline keeps its replicas across iterations and swaps their weights). `root`: another
    folder than the run's for the shards (bench/learning.py times the stage there)."""
    import time

    t0 = time.time()
    plan = plan_sampling(cfg, iteration, root=root)
    progress(f"sample iteration {iteration}: {plan.questions} questions × {len(plan.engines)} engines × n={plan.n} "
             f"from {plan.model_path}; {len(plan.todo)} of {len(plan.shards)} shards to do")
    trace = run_plans([(cfg, plan)], generators, progress)
    return summarize_sampling(plan, cfg, time.time() - t0, executor_actors=trace.as_dict())

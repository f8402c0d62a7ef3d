"""Executor scaling on the BIRD-sized workload (`exesql-ray data synth --scale bird`).

    python bench/scale.py [--candidates 1200] [--engines duckdb,postgres,mysql] [--rows 1000000]

1. builds the workload (idempotent) and migrates it into each engine, verified as Spider is;
2. per engine, runs the first `--candidates` of workload.jsonl (whole questions, 8 samples
   each) through Ray Data executor actor pools of 1, 2 and 4 actors, one query thread each:
   candidates/s, p50/p99 engine time per executed query, cache hits, timeouts and each
   actor's peak memory, all in one run so that the ratios are side by side;
3. the autoscaling pool ({min: 1, max: 4}) against a fixed pool of 4 on the same work, with
   the autoscaling pool's actor count over time;
4. a three-node cluster (`ray start`, scripts/local_cluster.py) that loses a worker node in
   the middle of the run: ids lost and duplicated, verdicts that changed;
5. the executor CPUs per engine that keep one vLLM replica of a 7B model the bottleneck on
   BIRD train × 8 samples × 3 dialects (the replica's throughput is a published figure).

Last line, one JSON object: candidates_per_s, p99_ms, autoscale_vs_fixed, node_loss,
bird_cpus_per_engine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections import Counter

from common import ROOT, run_folder, setup_servers

from exesql_ray.config import ActorRange, load_config

# A published vLLM throughput for a 7B model: DeepSeek-R1-Distill-Qwen-7B on one A100 80GB,
# 3,363 output tokens/s with vLLM's default settings (third-party figures collected at
# https://www.morphllm.com/vllm-benchmarks, 2026-04). An SQL candidate for BIRD is about 80
# output tokens (BIRD golds are longer than Spider's; our Spider samples average 40).
VLLM_7B_TOKENS_PER_S = 3363
TOKENS_PER_CANDIDATE = 80
BIRD_TRAIN_QUESTIONS = 9428
SAMPLES = 8
DIALECTS = 3


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(math.ceil(q / 100 * len(s))) - 1)]


class PeakMemory:
    """The peak RSS of each executor actor process (Ray names them after the UDF), sampled."""

    def __init__(self, every_s: float = 0.5):
        self.peak: dict[int, int] = {}
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            for p in psutil.process_iter(["pid", "cmdline"]):
                try:
                    if any("ExecuteBatch" in part for part in (p.info["cmdline"] or [])):
                        rss = p.memory_info().rss
                        self.peak[p.pid] = max(self.peak.get(p.pid, 0), rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def blocks(rows: list[dict], cfg):
    """A Ray dataset of the rows, one block per execution batch: every actor gets work at once."""
    import ray

    return ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // cfg.execution.batch_size))


def run_pool(rows: list[dict], engine: str, cfg, actors, window_s: float = 2.0) -> dict:
    """The rows through one executor pool; what came back and how fast."""
    from controller.sample import execute_dataset
    from exesql_ray.sample_stage import ActorTrace

    cfg = cfg.model_copy(deep=True)
    cfg.execution.actors = {engine: actors}
    trace = ActorTrace(window_s=window_s)
    out = []
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        ds = execute_dataset(blocks(rows, cfg), engine, cfg)
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            got = batch.to_pylist()
            trace.observe(got)
            out.extend(got)
        seconds = time.perf_counter() - t0
    executed = [r["elapsed_ms"] for r in out if not r["cached"] and r["status"] in ("ok", "error", "timeout")]
    return {"rows": out, "seconds": seconds, "candidates_per_s": len(out) / seconds,
            "p50_ms": percentile(executed, 50), "p99_ms": percentile(executed, 99),
            "cache_hit_rate": sum(bool(r["cached"]) for r in out) / len(out),
            "timeouts": sum(r["status"] == "timeout" for r in out),
            "statuses": dict(Counter(r["status"] for r in out)),
            "peak_mb_per_actor": round(max(mem.peak.values(), default=0) / 2**20),
            "actors_seen": len({r["executor_actor"] for r in out}),
            "trace": trace.as_dict().get(engine, []), "window_s": window_s}


def migrate(data, cfg, engines) -> dict:
    """Each engine loaded and verified (skipped where the same data is already there)."""
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    dbs = {p.name: str(p / f"{p.name}.sqlite") for p in sorted((data / "database").iterdir())}
    out = {}
    for engine in engines:
        target = open_target(engine, cfg)
        t0 = time.perf_counter()
        try:
            results = migrate_dbs(target, dbs)
        finally:
            target.close()
        bad = [r for r in results if not r.verified]
        if bad:
            sys.exit(f"bench: {engine} migration not verified: {bad}")
        out[engine] = {"seconds": round(time.perf_counter() - t0, 1),
                       "loaded_now": {r.db_id: r.seconds for r in results if r.status == "migrated"}}
    return out


def node_loss(rows: list[dict], engine: str, cfg, reference: dict[str, str]) -> dict:
    """The rows through executor actors on two worker nodes of a local cluster; one worker is
    killed (its raylet, by PID) once a third of the rows are back, and a new one joins."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import ray

    from local_cluster import LocalCluster

    from controller.sample import execute_dataset

    cluster = LocalCluster(temp_dir="/tmp/exesql-scale-bench", base=56700)
    cfg = cfg.model_copy(deep=True)
    cfg.execution.actors = {engine: 2}
    cfg.execution.actor_resources = {engine: {"executor": 1}}
    seen: Counter = Counter()
    statuses: dict[str, str] = {}  # id → status:error_class
    try:
        cluster.start_head(cpus=1)
        workers = [cluster.add_worker(cpus=1, resources={"executor": 1}) for _ in range(2)]
        cluster.wait_for_nodes(3)
        ray.init(address=cluster.address, log_to_driver=False)
        ds = execute_dataset(blocks(rows, cfg), engine, cfg)
        killed = None
        t0 = time.perf_counter()
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for r in batch.to_pylist():
                seen[r["id"]] += 1
                statuses[r["id"]] = f"{r['status']}:{r['error_class'] or ''}"
            if killed is None and sum(seen.values()) >= len(rows) // 3:
                victim = next((w for w in workers if cluster.executor_processes(w)), workers[0])
                killed = cluster.kill_node(victim)
                cluster.add_worker(cpus=1, resources={"executor": 1})
        seconds = time.perf_counter() - t0
    finally:
        ray.shutdown()
        cluster.down()
    ids = {r["id"] for r in rows}
    changed = sorted((i, reference.get(i), s) for i, s in statuses.items() if reference.get(i) not in (None, s))
    return {"lost": len(ids - set(seen)), "duplicated": sum(n - 1 for n in seen.values() if n > 1),
            "verdicts_changed": len(changed), "changed": changed[:10], "killed_raylet_pid": killed,
            "seconds": round(seconds, 1),
            "new_errors_or_timeouts": sum(s.split(":")[0] in ("error", "timeout") for _, _, s in changed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", type=int, default=1200, help="the first N of workload.jsonl (multiple of 8)")
    ap.add_argument("--engines", default="duckdb,postgres,mysql")
    ap.add_argument("--rows", type=int, default=1_000_000, help="the workload's scale (data synth --rows)")
    ap.add_argument("--actors", default="1,2,4")
    ap.add_argument("--timeout", type=float, default=2.0, help="execution.timeout_s")
    ap.add_argument("--skip-node-loss", action="store_true")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    counts = [int(a) for a in args.actors.split(",")]

    import ray

    from exesql_ray.data.synth_bird import synthesize_bird

    setup_servers()
    data = run_folder("bird")
    t0 = time.perf_counter()
    summary = synthesize_bird(data, rows=args.rows, progress=print)
    print(f"workload: {summary['workload']:,} candidates ({summary['distinct_sql']:,} distinct), "
          f"{summary['train']} train questions, rows {summary['rows']} ({time.perf_counter() - t0:.0f} s)")
    cfg = load_config(None, [f"run_dir={run_folder('bird-run')}", f"execution.timeout_s={args.timeout}",
                             "execution.max_rows=1000", "execution.threads_per_actor=1", "execution.batch_size=16",
                             *[f"execution.actor_num_cpus.{e}=0.25" for e in engines]])
    loads = migrate(data, cfg, engines)
    for e, m in loads.items():
        print(f"migrate {e}: {m['seconds']} s (loaded now: {m['loaded_now'] or 'none, already there'})")

    with open(data / "workload.jsonl") as f:
        rows = [json.loads(next(f)) for _ in range(args.candidates)]
    for r in rows:
        r.pop("kind", None)
        r.pop("cost", None)

    results: dict[str, dict] = {}
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    try:
        for engine in engines:
            eng_rows = [dict(r, engine=engine) for r in rows]
            run_pool(eng_rows[:16], engine, cfg, 1)  # warm the engine's buffers before timing
            results[engine] = {}
            for k in counts:
                res = run_pool(eng_rows, engine, cfg, k)
                results[engine][k] = res
                print(f"{engine:8s} actors={k}: {res['candidates_per_s']:7.1f} cand/s  p50 {res['p50_ms']:.1f} ms  "
                      f"p99 {res['p99_ms']:.0f} ms  cache hits {res['cache_hit_rate']:.0%}  "
                      f"timeouts {res['timeouts']}  "
                      f"peak {res['peak_mb_per_actor']} MB/actor  {res['statuses']}")
            rates = [results[engine][k]["candidates_per_s"] for k in counts]
            print(f"{engine:8s} scaling {' → '.join(f'{k}: {r / rates[0]:.2f}×' for k, r in zip(counts, rates))} "
                  f"(this machine has {os.cpu_count()} cores for the actors and the engine's own work)")
        auto_engine = "postgres" if "postgres" in engines else engines[0]
        auto_rows = [dict(r, engine=auto_engine) for r in rows]
        fixed = run_pool(auto_rows, auto_engine, cfg, 4)
        auto = run_pool(auto_rows, auto_engine, cfg, ActorRange(min=1, max=4))
        # actors that returned work, per trace window: what the pool held while it worked
        busy = {name: sum(n for _, n in r["trace"]) * r["window_s"] for name, r in (("auto", auto), ("fixed", fixed))}
        print(f"autoscale {{1..4}} vs fixed 4 on {auto_engine}: {auto['seconds']:.1f} s vs {fixed['seconds']:.1f} s; "
              f"actor-seconds at work {busy['auto']:.0f} vs {busy['fixed']:.0f}; "
              f"autoscaling actors over time (s, count): {auto['trace']}")
    finally:
        ray.shutdown()

    loss = None
    if not args.skip_node_loss:
        engine = "postgres" if "postgres" in engines else engines[0]
        reference = {r["id"]: f"{r['status']}:{r['error_class'] or ''}" for r in results[engine][counts[0]]["rows"]}
        loss = node_loss([dict(r, engine=engine) for r in rows], engine, cfg, reference)
        print(f"node loss ({engine}, 3-node cluster, a worker killed a third of the way): {loss}")

    # sizing: executor CPUs per engine for BIRD train × 8 × 3 dialects behind one 7B replica
    gen_per_s = VLLM_7B_TOKENS_PER_S / TOKENS_PER_CANDIDATE
    per_cpu = {}
    cpus = {}
    print(f"\nsizing: one vLLM replica of a 7B model ≈ {VLLM_7B_TOKENS_PER_S} tokens/s ÷ {TOKENS_PER_CANDIDATE} "
          f"tokens per candidate = {gen_per_s:.0f} candidates/s, split over {DIALECTS} dialects")
    print("| engine | best candidates/s here | CPUs used here | candidates/s per CPU | executor CPUs per engine |")
    print("|---|---|---|---|---|")
    for engine, by_k in results.items():
        best_k = max(by_k, key=lambda k: by_k[k]["candidates_per_s"])
        # this machine has 2 cores: past 2 busy query threads the engine and the actors share them
        used = min(best_k, 2)
        per_cpu[engine] = by_k[best_k]["candidates_per_s"] / used
        cpus[engine] = max(1, math.ceil(gen_per_s / DIALECTS / per_cpu[engine] * 1.25))  # 25% headroom
        print(f"| {engine} | {by_k[best_k]['candidates_per_s']:.1f} ({best_k} actors) | {used} | "
              f"{per_cpu[engine]:.1f} | {cpus[engine]} |")
    total = BIRD_TRAIN_QUESTIONS * SAMPLES * DIALECTS
    print(f"BIRD train × {SAMPLES} × {DIALECTS} = {total:,} candidates: "
          f"{total / gen_per_s / 3600:.1f} h of one replica")

    headline = {
        "candidates_per_s": {e: {str(k): round(v["candidates_per_s"], 1) for k, v in by_k.items()}
                             for e, by_k in results.items()},
        "p99_ms": {e: round(by_k[counts[0]]["p99_ms"], 1) for e, by_k in results.items()},
        "autoscale_vs_fixed": round(auto["candidates_per_s"] / fixed["candidates_per_s"], 3),
        "node_loss": {"lost": loss["lost"], "duplicated": loss["duplicated"]} if loss else None,
        "bird_cpus_per_engine": cpus,
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    main()

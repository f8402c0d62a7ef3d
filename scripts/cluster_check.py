"""`ray job submit` of the pipeline to a multi-node Ray cluster on this machine, the way a
cluster user runs it, with worker nodes lost on the way if asked:

    .venv/bin/python scripts/cluster_check.py [--out .run/cluster-check] [--kill-during sample,evaluate] \\
        [key.sub=value ...]

A head (the job's driver, the dashboard, the generator replica: `generator`) and two workers
(the executor actors: `executor`) start with `ray start` (scripts/local_cluster.py). With
`--kill-during sample`, the first worker's raylet is killed by PID once the job's sampling stage
has written its first shard, and a new worker joins; `evaluate` does the same to the second
worker in the last evaluation. The job's metrics are scraped from every node while it runs.
OUT gets run/ (the run folder), job.log, metrics.txt and kills.json (what was killed, when, how
many executor actors died with it, and whether its replacement joined: on a loaded machine
`ray start` can time out, and the job goes on without it). Exit status: the job's.

With `--watch`, the run is also watched as a user watches it (scripts/watch.py): a real
Prometheus scrapes every node, and once sampling has written a shard headless Chromium opens the
dashboard's actors, jobs and cluster pages. OUT/watch gets the screenshots, each page's
rendered text, the scraped metric names and checks.json: the job and the executors on the
pages, the generator and the executors alive (the dashboard's state API) while sampling, every
metric docs/engines.md names in Prometheus, executions per engine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from local_cluster import ROOT, LocalCluster

ON_CLUSTER = ["generation.resources={generator: 1}",
              "execution.actor_resources={duckdb: {executor: 1}, postgres: {executor: 1}, mysql: {executor: 1}}"]


def scrape(cluster: LocalCluster, out: Path, stop: threading.Event) -> None:
    """Every 3 s, each node's exesql metrics (a finished job's workers stop reporting)."""
    with open(out, "a") as f:
        while not stop.wait(3):
            for node in list(cluster.nodes):
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=5).read()
                except OSError:
                    continue
                f.writelines(ln + "\n" for ln in text.decode().splitlines() if ln.startswith("ray_exesql_"))


def submit(cluster: LocalCluster, args: list[str], log: Path, on_line) -> int:
    """`ray job submit` of jobs/pipeline.py; each line of its log goes to `on_line`. A fresh
    head's job agent takes a few seconds to come up ("No available agent"): retry then."""
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [ray, "job", "submit", "--address", cluster.dashboard, "--working-dir", ".", "--",
           sys.executable, "jobs/pipeline.py", *args]
    for _ in range(10):
        lines = []
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**cluster.env, "PYTHONUNBUFFERED": "1"}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(log, "w") as f:
            for line in proc.stdout:
                f.write(line)
                f.flush()
                lines.append(line)
                on_line(line)
        proc.wait()
        if proc.returncode == 0 or not any("No available agent" in ln for ln in lines):
            return proc.returncode
        time.sleep(5)
    return proc.returncode


DOC_METRICS = ("exesql_executions", "exesql_execution_errors", "exesql_execution_timeouts",
               "exesql_execution_cache_hits", "exesql_execution_latency_ms")
# the actors page first: sampling a small run is over in seconds
PAGES = [("#/actors", "dashboard_actors.png"), ("#/jobs", "dashboard_jobs.png"), ("#/cluster", "dashboard_cluster.png")]


class Watch:
    """Prometheus from the start; the dashboard in Chromium once sampling is under way."""

    def __init__(self, cluster: LocalCluster, folder: Path, base_port: int):
        from watch import Prometheus

        self.cluster, self.folder = cluster, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.prometheus = Prometheus(folder / "prometheus", port=base_port + 690)
        self.texts: dict[str, str] = {}
        self.alive: list[str] = []  # classes of the ALIVE actors, from the state API, mid-sampling
        self.shooter: threading.Thread | None = None
        self.follow_nodes()

    def follow_nodes(self) -> None:
        self.prometheus.set_targets([n.metrics_port for n in self.cluster.nodes])

    def sampling_busy(self) -> None:
        """Screenshots once sampling has written a shard: its executor actors are at work."""
        from watch import alive_actor_classes, screenshots

        def shoot():
            self.texts = screenshots(self.cluster.dashboard, [(f, self.folder / png) for f, png in PAGES], wait_s=5)
            self.alive = alive_actor_classes(self.cluster.dashboard)
            for f, text in self.texts.items():
                (self.folder / f"{f.strip('#/')}.txt").write_text(text)

        if self.shooter is None:
            self.shooter = threading.Thread(target=shoot, daemon=True)
            self.shooter.start()

    def finish(self, run: Path) -> dict:
        if self.shooter is not None:
            self.shooter.join(120)
        time.sleep(4)  # one more scrape
        names = self.prometheus.names()
        executions = self.prometheus.by_engine("ray_exesql_executions_total")
        self.prometheus.stop()
        jobs, actors = self.texts.get("#/jobs", ""), self.texts.get("#/actors", "")
        # Ray exports a counter once it has counted something: a name is missing where the run
        # had no such event (no timeout, no cache hit), and that is checked against the records
        import pyarrow.parquet as pq

        records = [r for f in run.glob("*/iter-*/**/part-*.parquet")
                   for r in pq.read_table(f, columns=["status", "cached"]).to_pylist()]
        events = {"exesql_execution_timeouts": sum(r["status"] == "timeout" for r in records),
                  "exesql_execution_cache_hits": sum(bool(r["cached"]) for r in records)}
        checks = {
            "job_on_jobs_page": "raysubmit_" in jobs,
            "executors_on_actors_page": "ExecuteBatch" in actors,
            "generator_alive_mid_sampling": "Generator" in self.alive,
            "executors_alive_mid_sampling": any("ExecuteBatch" in c for c in self.alive),
            "doc_metrics_in_prometheus": {m: any(n.startswith(f"ray_{m}") for n in names) or events.get(m) == 0
                                          for m in DOC_METRICS},
            "events_in_records": events,
            "executions_by_engine": executions,
            "every_engine_in_prometheus": {"duckdb", "postgres", "mysql"} <= set(executions),
        }
        (self.folder / "prometheus_names.txt").write_text("\n".join(names) + "\n")
        (self.folder / "checks.json").write_text(json.dumps(checks, indent=1))
        return checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / ".run" / "cluster-check"))
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--kill-during", default="", help="comma-separated: sample, evaluate")
    ap.add_argument("--base-port", type=int, default=56400)
    ap.add_argument("--workers", type=int, default=2, help="worker nodes (each kill needs one)")
    ap.add_argument("--watch", action="store_true", help="Prometheus and the dashboard in Chromium (OUT/watch)")
    ap.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    kill_during = {k for k in args.kill_during.split(",") if k}
    unknown = kill_during - {"sample", "evaluate"}
    if unknown:
        sys.exit(f"cluster_check: --kill-during {','.join(sorted(unknown))}: not a stage (sample, evaluate)")
    # a short temp dir: Ray's socket paths must fit in 107 characters
    cluster = LocalCluster(f"/tmp/exesql-cc-{args.base_port}", args.base_port)
    cluster.down()
    stop = threading.Event()
    kills: list[dict] = []
    watch = None
    try:
        cluster.start_head(cpus=2, resources={"generator": 1}, dashboard=True)
        workers = [cluster.add_worker(cpus=2) for _ in range(args.workers)]
        cluster.wait_for_nodes(1 + args.workers)
        print(f"cluster_check: head and {args.workers} workers up; dashboard {cluster.dashboard}", flush=True)
        (out / "metrics.txt").write_text("")
        watch = Watch(cluster, out / "watch", args.base_port) if args.watch else None
        threading.Thread(target=scrape, args=(cluster, out / "metrics.txt", stop), daemon=True).start()
        state = {"stage": None, "evaluations": 0}
        t0 = time.time()

        def on_line(line: str) -> None:
            print(line, end="", flush=True)
            if re.match(r"sample iteration \d+:", line):
                state["stage"] = "sample"
            if watch and state["stage"] == "sample" and "wrote shard 1/" in line:
                watch.sampling_busy()
            elif re.match(r"evaluate \S+ on \S+:", line):
                state["stage"] = "evaluate"
                state["evaluations"] += 1
            elif "wrote shard 1/" in line and state["stage"] in kill_during and workers:
                # evaluate: the last evaluation, after training (the first ones run before sampling)
                if state["stage"] == "evaluate" and "sample" in kill_during and not any(
                        k["stage"] == "sample" for k in kills):
                    return
                node = workers.pop(0)
                lost = cluster.executor_processes(node)
                pid = cluster.kill_node(node)
                kills.append({"stage": state["stage"], "node": node.name, "raylet_pid": pid,
                              "executor_actors": lost, "at_s": round(time.time() - t0, 1)})
                print(f"cluster_check: killed {node.name} (raylet {pid}, {lost} executor actors) "
                      f"during {state['stage']}", flush=True)
                kill_during.discard(state["stage"])
                try:  # a node joins in its place
                    cluster.add_worker(cpus=2)
                    kills[-1]["replacement"] = "joined"
                except RuntimeError as e:
                    # `ray start` on a loaded machine can time out before its raylet registers; the
                    # job needs no new node, and what the check claims is about the node it lost
                    kills[-1]["replacement"] = "did not start: " + str(e).strip().splitlines()[-1][:300]
                    print(f"cluster_check: the node meant to replace {node.name} did not start; going on",
                          flush=True)
                if watch:
                    watch.follow_nodes()

        status = submit(cluster, ["--config", args.config, f"run_dir={out / 'run'}", *ON_CLUSTER, *args.overrides],
                        out / "job.log", on_line)
        if watch:
            checks = watch.finish(out / "run")
            print(f"cluster_check: watch: {json.dumps(checks)}", flush=True)
            flat = [checks["job_on_jobs_page"], checks["executors_on_actors_page"],
                    checks["generator_alive_mid_sampling"], checks["executors_alive_mid_sampling"],
                    checks["every_engine_in_prometheus"],
                    *checks["doc_metrics_in_prometheus"].values()]
            if status == 0 and not all(flat):
                status = 3
    finally:
        stop.set()
        if watch:
            watch.prometheus.stop()
        cluster.down()
    (out / "kills.json").write_text(json.dumps(kills, indent=1))
    print(f"cluster_check: job exit {status}; {len(kills)} nodes killed; metric samples "
          f"{sum(1 for _ in open(out / 'metrics.txt'))}", flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()

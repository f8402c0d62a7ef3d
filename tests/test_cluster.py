"""A real multi-node Ray cluster on this machine (scripts/local_cluster.py: a head and two
workers started with `ray start`): the generator on the head, the executor actors on the
workers. One worker's raylet is killed by PID in the middle of the sampling stage, and another
in the middle of an evaluation; each stage finishes with every candidate exactly once and every
verdict the one a fresh execution gives (nothing the dead node was running is recorded as an
error or a timeout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from conftest import ROOT, run_config

sys.path.insert(0, str(ROOT / "scripts"))
from local_cluster import LocalCluster  # noqa: E402

ON_CLUSTER = ["generation.resources={generator: 1}",
              "execution.actor_resources={duckdb: {executor: 1}, postgres: {executor: 1}, mysql: {executor: 1}}",
              "execution.actors={duckdb: 2, postgres: 2, mysql: 2}",
              "execution.actor_num_cpus={duckdb: 0.5, postgres: 0.25, mysql: 0.25}",
              # small executor batches: many in flight on each actor when its node dies
              "execution.batch_size=8", "generation.n=8", "generation.max_tokens=48", "sample.shard_size=8"]


def _executor_processes(cluster: LocalCluster, node) -> int:
    """Executor actor processes running under the node's raylet."""
    raylet = cluster.raylet_pid(node)
    r = subprocess.run(["ps", "-o", "cmd=", "--ppid", str(raylet)], capture_output=True, text=True)
    return sum("ExecuteBatch" in line for line in r.stdout.splitlines())


def _run_and_kill(cluster: LocalCluster, node, args: list[str], log: Path) -> tuple[int, int, str]:
    """Run the CLI on the cluster; when its first shard is written, kill `node`'s raylet.
    Returns (exit code, executor processes that died with the node, stdout)."""
    env = {**cluster.env, "RAY_ADDRESS": cluster.address, "PYTHONUNBUFFERED": "1"}
    # progress lines go to stderr, the stage's summary to stdout: read them as one stream
    proc = subprocess.Popen([sys.executable, "-m", "controller", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, lost = [], -1
    for line in proc.stdout:
        out.append(line)
        if lost < 0 and "wrote shard 1/" in line:
            lost = _executor_processes(cluster, node)
            cluster.kill_node(node)
    proc.wait(timeout=600)
    log.write_text("".join(out))
    return proc.returncode, lost, "".join(out)


def _check_exactly_once_and_fresh(cfg, folder: Path, per_engine: int) -> dict:
    """Every shard's candidates: ids unique, `per_engine` per engine, and each verdict the one
    the engine gives the same SQL now (in this process, no Ray)."""
    from exesql_ray.engines import open_engine
    from exesql_ray.executor import Executor

    counts = {}
    for engine in ("duckdb", "postgres", "mysql"):
        rows = [r for f in sorted((folder / engine).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == per_engine, (engine, len(ids), len(set(ids)))
        assert not any(r["outcome"] == "infra" for r in rows), engine
        ex = Executor(open_engine(engine, cfg), cache=False)
        try:
            fresh = {x["id"]: x for x in ex.run([{k: r[k] for k in ("id", "db_id", "sql", "gold_sql")} for r in rows])}
        finally:
            ex.engine.close()
        verdict = ("status", "error_class", "result_hash", "match")
        differ = [(r["id"], [r[k] for k in verdict], [fresh[r["id"]][k] for k in verdict]) for r in rows
                  if any(r[k] != fresh[r["id"]][k] for k in verdict)]
        assert differ == [], (engine, differ[:5])
        counts[engine] = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    return counts


def test_a_node_lost_mid_stage_loses_and_duplicates_nothing(db_servers, translated_run, synth_data, tiny):
    run = Path(tempfile.mkdtemp(prefix="exesql-cluster-run-"))
    for d in ("d_trans", "duckdb", "translate"):
        shutil.copytree(translated_run / d, run / d)
    # a short temp dir: Ray's socket paths must fit in 107 characters
    cluster = LocalCluster(tempfile.mkdtemp(prefix="exesql-cl-", dir="/tmp"), base=56400)
    cfg = run_config(run, synth_data, tiny, *ON_CLUSTER)
    common = ["--config", "configs/quickstart.yaml", f"run_dir={run}", f"data.path={synth_data}",
              f"model.path={tiny}", "data.synth_per_template=4", "execution.timeout_s=2", "data.limit=48",
              "generation.num_cpus=0.5", "sample.generate_batch_size=8", *ON_CLUSTER]
    t0 = time.time()
    try:
        cluster.start_head(cpus=2, resources={"generator": 1})
        first, second = cluster.add_worker(cpus=2), cluster.add_worker(cpus=2)
        cluster.wait_for_nodes(3)

        # sampling: 48 questions × n=8 × 3 engines; the first worker dies after the first shard
        rc, lost, out = _run_and_kill(cluster, first, ["sample", "--iteration", "0", *common], run / "sample.log")
        assert rc == 0, out[-5000:]
        assert lost > 0, "no executor actor was on the killed node"
        assert "sample iteration 0 → mysql: 48 questions, 384 candidates" in out, out[-2000:]
        print(f"sampling: {lost} executor actors died with the node;",
              _check_exactly_once_and_fresh(cfg, run / "sample" / "iter-0", 48 * 8))

        # a node joins in its place; evaluation (greedy, the train split's verified gold) loses the other
        cluster.add_worker(cpus=2)
        cluster.wait_for_nodes(3)
        rc, lost, out = _run_and_kill(cluster, second, ["evaluate", "--model", str(tiny), *common,
                                                        "data.eval_splits=[train]", "execution.batch_size=2",
                                                        "sample.shard_size=4"], run / "eval.log")
        assert rc == 0, out[-5000:]
        assert lost > 0, "no executor actor was on the killed node"
        folder = next((run / "eval").glob("*/train"))
        print(f"evaluation: {lost} executor actors died with the node;", _check_exactly_once_and_fresh(cfg, folder, 48))
    finally:
        cluster.down()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
    print(f"cluster test: {time.time() - t0:.0f} s")

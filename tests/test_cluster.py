"""`ray job submit` of the quickstart pipeline to a real multi-node Ray cluster on this machine
(scripts/cluster_check.py: a head and two workers started with `ray start`; the generator on
the head, the executor actors on the workers). One worker's raylet is killed by PID in the
middle of sampling and another in the middle of the last evaluation, a new worker joining
after each. The job finishes; every candidate is recorded exactly once, with the verdict a
fresh execution of its SQL gives (nothing the dead nodes were running is recorded as an error
or a timeout); the job's metrics reach each node's Prometheus endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from conftest import ROOT, SAMPLE_OVERRIDES, run_config
from test_pipeline import PIPELINE

# more, smaller batches than the pipeline tests: many in flight on each actor when its node dies;
# one epoch of SFT (the kills land in sampling and evaluation, not in training)
ON_CLUSTER = ["data.limit=24", "generation.n=8", "sample.shard_size=4", "execution.batch_size=2",
              "execution.actors={duckdb: 2, postgres: 2, mysql: 2}", "pipeline.evaluate_base=false",
              "train.sft.first_epochs=1", "train.sft.epochs=1"]


def _shard_rows(folder: Path, engine: str) -> list[dict]:
    return [r for f in sorted((folder / engine).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def _exactly_once_and_fresh(cfg, folder: Path, expected: dict[str, int]) -> dict:
    """Every shard's candidates: ids unique, `expected[engine]` of them, and each verdict the one
    the engine gives the same SQL now (in this process, no Ray, no cache)."""
    from exesql_ray.engines import open_engine
    from exesql_ray.executor import Executor

    verdict = ("status", "error_class", "result_hash", "match")
    counts = {}
    for engine, want in expected.items():
        rows = _shard_rows(folder, engine)
        assert len(rows) == len({r["id"] for r in rows}) == want, (engine, len(rows), want)
        assert not any(r["outcome"] == "infra" for r in rows), engine
        ex = Executor(open_engine(engine, cfg), cache=False)
        try:
            fresh = {x["id"]: x for x in ex.run([{k: r[k] for k in ("id", "db_id", "sql", "gold_sql")} for r in rows])}
        finally:
            ex.engine.close()
        differ = [(r["id"], [r[k] for k in verdict], [fresh[r["id"]][k] for k in verdict]) for r in rows
                  if any(r[k] != fresh[r["id"]][k] for k in verdict)]
        assert differ == [], (engine, differ[:5])
        counts[engine] = dict(sorted({s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}.items()))
    return counts


def test_a_job_on_a_cluster_that_loses_a_node_mid_stage_loses_and_duplicates_nothing(
        db_servers, migrated_synth, synth_data, tiny, tmp_path):
    out = tmp_path / "job"
    overrides = [f"data.path={synth_data}", f"model.path={tiny}", "data.synth_per_template=4", "execution.timeout_s=2",
                 *SAMPLE_OVERRIDES, *PIPELINE, *ON_CLUSTER]
    r = subprocess.run([sys.executable, "scripts/cluster_check.py", "--out", str(out), "--kill-during", "sample,evaluate",
                        *overrides], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-3000:])
    log = (out / "job.log").read_text()
    assert "succeeded" in log
    last = json.loads([ln for ln in log.splitlines() if ln.startswith('{"ex"')][-1])
    run = out / "run"
    assert set(last["ex"]) == {"iter-0", "iter-1"} and last["report"] == str(run / "report" / "report.md")
    assert (run / "report" / "ex.png").is_file()

    # one worker lost mid-sampling, another mid-evaluation, each holding executor actors
    kills = json.loads((out / "kills.json").read_text())
    assert [k["stage"] for k in kills] == ["sample", "evaluate"], kills
    assert all(k["executor_actors"] > 0 for k in kills), kills

    cfg = run_config(run, synth_data, tiny, *PIPELINE, *ON_CLUSTER)
    sample = json.loads((run / "sample" / "iter-1" / "summary.json").read_text())
    print("sampling:", _exactly_once_and_fresh(cfg, run / "sample" / "iter-1",
                                               {e: s["questions_planned"] * 8 for e, s in sample["engines"].items()}))
    evaluation = json.loads((run / "eval" / "iter-1" / "metrics.json").read_text())
    planned = {e: a["questions"] for e, a in evaluation["splits"]["dev"].items()}
    print("evaluation:", _exactly_once_and_fresh(cfg, run / "eval" / "iter-1" / "dev", planned))
    print("kills:", kills)

    # the job's metrics, from every node's endpoint while it ran
    metrics = (out / "metrics.txt").read_text()
    for name in ("ray_exesql_candidates_total", "ray_exesql_executions_total", "ray_exesql_pass_rate",
                 "ray_exesql_execution_latency_ms_bucket"):
        assert name in metrics, name
    assert 'stage="sample"' in metrics and 'iteration="iter-1"' in metrics

    # the Grafana dashboard queries only names in that scrape, or counters of events the run
    # did not have (Ray exports a counter once it has counted something)
    import re

    scraped = {line.split("{")[0].split(" ")[0] for line in metrics.splitlines()}
    queried = set(re.findall(r"ray_exesql_[a-z_]+", (ROOT / "configs" / "grafana" / "exesql_dashboard.json").read_text()))
    records = [r for f in run.glob("*/iter-*/**/part-*.parquet") for r in pq.read_table(f).to_pylist()]
    absent = {"ray_exesql_execution_timeouts_total": sum(r["status"] == "timeout" for r in records),
              "ray_exesql_execution_cache_hits_total": sum(bool(r["cached"]) for r in records)}
    assert all(name in scraped or absent.get(name) == 0 for name in queried), (queried - scraped, absent)

"""Stage 2 on the quickstart config under a local Ray: N candidates per question, one execution
record each, a summary whose counts add up; killed replicas and executors lose and duplicate
nothing; a re-run redoes only missing shards. Rewards and pair mining on the stage's rows."""

import os
import shutil
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import TARGETS_HERE, run_cli, run_config
from exesql_ray.prompts import extract_sql, schema_text, sql_prompt
from exesql_ray.rewards import mine_pairs, outcome, pass_at, reward_mode, split_valid_neg
from exesql_ray.sample_stage import SHARD_SCHEMA, plan_sampling

ENGINES = TARGETS_HERE


def _rows(run, engine):
    return [r for p in sorted((run / "sample" / "iter-0" / engine).glob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def test_stage_writes_n_candidates_per_question_with_one_record_each(sampled_run):
    from exesql_ray.config import executor_pool

    cfg, summary = sampled_run
    n = cfg.generation.n
    assert summary.questions == 48
    for engine in ENGINES:
        rows = _rows(Path(cfg.run_dir), engine)
        st = summary.engines[engine]
        assert len(rows) == st.candidates == 48 * n and st.complete
        assert len({r["id"] for r in rows}) == len(rows)
        per_q = {}
        for r in rows:
            per_q.setdefault(r["question_id"], []).append(r["sample_idx"])
        assert len(per_q) == 48 and all(sorted(v) == list(range(n)) for v in per_q.values())
        assert all(r["status"] in ("ok", "error", "timeout", "rejected", "infra_error") for r in rows)
        assert all(r["engine"] == engine and r["iteration"] == 0 and r["prompt"] for r in rows)
        # the summary's counts add up
        for key in ("by_status", "by_outcome", "by_reward_mode"):
            assert sum(getattr(st, key).values()) == len(rows), key
        assert st.d_valid + st.d_neg <= len(rows)
        assert st.d_valid == sum(1 for _ in pq.read_table(cfg_path(cfg, "d_valid", engine)).to_pylist())
        assert sum(st.gold.values()) == 48 and st.gold["verified"] >= 44
        assert st.by_reward_mode.get("match", 0) == 4 * st.gold["verified"]
        assert 0 <= st.pass_at_1 <= st.pass_at_n <= 1
        # the executor actors at work over time: this engine's one actor (quickstart) in each window
        trace, (_, most) = summary.executor_actors[engine], executor_pool(cfg.execution, engine)
        assert trace and all(1 <= n <= most for _, n in trace), trace
        # reward and outcome agree with the execution record
        for r in rows:
            assert r["outcome"] == outcome(r, r["reward_mode"]) and r["reward"] == float(r["outcome"] == "pass")
        pairs = pq.read_table(cfg_path(cfg, "dpo_pairs", engine)).to_pylist()
        assert len(pairs) == st.dpo_pairs and all(p["chosen"] != p["rejected"] for p in pairs)
        assert max(sum(p["question_id"] == q for p in pairs) for q in per_q) <= cfg.train.dpo.max_pairs_per_question


def cfg_path(cfg, name, engine):
    return Path(cfg.run_dir) / "sample" / "iter-0" / name / f"{engine}.parquet"


def _executor_pids():
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or ()).startswith("ray::") and "ExecuteBatch" in " ".join(p.info["cmdline"])]


def test_killed_generator_and_executor_mid_run_lose_nothing(ray_local, translated_run, synth_data, tiny, tmp_path):
    from actors.generator import start_generators
    from controller.sample import run_sample_stage

    run = tmp_path / "run"
    shutil.copytree(translated_run / "d_trans", run / "d_trans")
    shutil.copytree(translated_run / "duckdb", run / "duckdb")
    # more generation than execution, in small batches: the kills land while both are busy
    cfg = run_config(run, synth_data, tiny, "generation.n=8", "generation.max_tokens=48",
                     "sample.generate_batch_size=4", "execution.batch_size=16")
    (gen,) = start_generators(str(tiny), cfg.generation)
    pid = ray_local.get(gen.__ray_call__.remote(lambda self: os.getpid()))
    events = []

    def on_progress(msg):
        if "wrote" not in msg:
            return
        events.append(msg)
        if len(events) == 1:
            ray_local.kill(gen, no_restart=False)  # a replica crash: Ray restarts it
            pids = _executor_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                events.append(f"killed executor {pids[0]}")

    try:
        summary = run_sample_stage(cfg, 0, generators=[gen], progress=on_progress)
        pid_after = ray_local.get(gen.__ray_call__.remote(lambda self: os.getpid()))
    finally:
        ray_local.kill(gen)
    assert any("killed executor" in e for e in events)
    assert sum("wrote" in e for e in events) == 9  # 3 engines × 3 shards, written after the kills too
    assert pid_after != pid  # the replica was restarted and carried on
    for engine in ENGINES:
        rows = _rows(run, engine)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == 48 * 8 == summary.engines[engine].candidates
        assert all(r["status"] != "infra_error" for r in rows)


def test_rerun_redoes_only_the_missing_shard(ray_local, sampled_run):
    from controller.sample import run_sample_stage

    cfg, summary = sampled_run
    root = Path(cfg.run_dir) / "sample" / "iter-0"
    victim = root / "postgres" / "part-00001.parquet"
    saved = victim.read_bytes()
    victim.unlink()
    before = {p: p.stat().st_mtime_ns for p in root.glob("*/part-*.parquet")}
    plan = plan_sampling(cfg, 0)
    assert [Path(s.path) for s in plan.todo] == [victim]
    try:
        again = run_sample_stage(cfg, 0, progress=lambda m: None)
        assert all(p.stat().st_mtime_ns == t for p, t in before.items())
        assert again.engines["postgres"].candidates == summary.engines["postgres"].candidates
        assert pq.read_table(victim).schema.equals(SHARD_SCHEMA)
    finally:
        victim.write_bytes(saved)  # the session's other tests read the first run


def test_sample_cli_errors_name_what_is_missing(tmp_path, synth_data):
    r = run_cli("sample", "--config", "configs/quickstart.yaml", "--iteration", "1",
                f"run_dir={tmp_path}", f"data.path={synth_data}")
    assert r.returncode == 2
    assert "train iteration 0 first" in r.stderr and str(tmp_path) in r.stderr


def test_prompt_has_dialect_schema_keys_and_question(spider_engines):
    from conftest import shared
    from exesql_ray.schema import schema_of

    db = str(shared("spider/database/concert_singer/concert_singer.sqlite"))
    text = schema_text(schema_of(db), "oracle", db, values=2)
    assert "CREATE TABLE SINGER" in text and "NUMBER(19)" in text and "PRIMARY KEY (SINGER_ID)" in text
    assert "FOREIGN KEY (STADIUM_ID) REFERENCES STADIUM(STADIUM_ID)" in text and "-- e.g." in text
    p = sql_prompt(engine="postgres", schema="CREATE TABLE t (a BIGINT);", question="How many?", evidence="a is age")
    assert "PostgreSQL" in p and "External knowledge: a is age" in p and p.index("How many?") > p.index("CREATE")


@pytest.mark.parametrize("text,sql", [
    ("```sql\nSELECT a FROM t;\n```", "SELECT a FROM t"),
    ("Here:\n```\nSELECT 1\n``` and more text", "SELECT 1"),
    ("```sql\nSELECT a FROM t WHERE", "SELECT a FROM t WHERE"),  # cut off by max_tokens
    ("The answer is SELECT count(*) FROM t; because", "SELECT count(*) FROM t"),
    ("with x as (select 1) select * from x", "with x as (select 1) select * from x"),
    ("no sql here", "no sql here"),
    # the query after the CREATE TABLE a small instruction model imagines first
    ("```sql\nCREATE TABLE t (a INT);\nSELECT a FROM t;\n```", "SELECT a FROM t"),
    ("```sql\nCREATE TABLE t (a INT);\n```", "CREATE TABLE t (a INT)"),
])
def test_extract_sql(text, sql):
    assert extract_sql(text) == sql


def test_rewards_split_and_pairs_on_the_stage_rows(sampled_run):
    cfg, _ = sampled_run
    rows = _rows(Path(cfg.run_dir), "postgres")
    valid, neg = split_valid_neg(rows)
    # duplicates removed per question: no (question, normalised SQL) twice
    from exesql_ray.engines.sqltext import cache_key

    keys = [(r["question_id"], cache_key(r["sql"] or "", "postgres")) for r in valid + neg]
    assert len(keys) == len(set(keys))
    # two identical passing answers to one question count once, and pair against each negative kind
    q = rows[0]["question_id"]
    ok = dict(rows[0], sql="SELECT 1", outcome="pass", sample_idx=0)
    ok2 = dict(ok, sql="select   1", sample_idx=1, id="dup")
    bad = [dict(rows[0], sql=f"SELECT {i} FROM nope", outcome="error", id=f"e{i}") for i in range(5)]
    wrong = [dict(rows[0], sql=f"SELECT {i + 10}", outcome="wrong", id=f"w{i}") for i in range(5)]
    v, n = split_valid_neg([ok, ok2, *bad, *wrong])
    assert len(v) == 1 and len(n) == 10
    pairs = mine_pairs(v, n, max_pairs_per_question=4)
    assert len(pairs) == 4 and sorted(p["rejected_kind"] for p in pairs) == ["error", "error", "wrong", "wrong"]
    assert all(p["question_id"] == q and "SELECT 1" in p["chosen"] for p in pairs)
    # without a passing sample, the verified gold is the chosen side only when asked
    assert mine_pairs([], n, gold=None) == []
    assert mine_pairs([], n, gold={("postgres", q): "SELECT 2"})[0]["chosen_from"] == "gold"
    stats = pass_at([ok, *bad[:3]])["postgres"]
    assert stats == {"questions": 1, "pass@1": 0.25, "pass@N": 1.0, "frontier_share": 1.0}
    assert reward_mode("auto", "") == "exec" and reward_mode("auto", "SELECT 1") == "match"
    assert outcome({"status": "infra_error"}, "match") == "infra"


def test_evaluate_greedy_one_answer_per_question_with_ex_by_difficulty(ray_local, translated_run, synth_data, tiny,
                                                                       tmp_path):
    from controller.evaluate import run_eval_stage

    run = tmp_path / "run"
    shutil.copytree(translated_run / "d_trans", run / "d_trans")
    shutil.copytree(translated_run / "duckdb", run / "duckdb")
    # the translated split doubles as the eval split here: every question has a verified gold
    cfg = run_config(run, synth_data, tiny, "data.eval_splits=[train]", "data.limit=24")
    m = run_eval_stage(cfg, None, progress=lambda msg: None)  # the base model
    assert m.model == str(tiny) and m.compare["rows"] == "bag"
    for engine in ENGINES:
        a = m.splits["train"][engine]
        rows = [r for p in sorted((run / "eval" / "base" / "train" / engine).glob("part-*.parquet"))
                for r in pq.read_table(p).to_pylist()]
        assert len(rows) == a.questions == 24 and {r["sample_idx"] for r in rows} == {0}
        assert a.judged + a.no_gold == 24 and a.judged >= 20
        assert sum(d["n"] for d in a.by_difficulty.values()) == a.judged
        assert 0.0 <= a.ex <= 1.0 and all(r["reward_mode"] in ("match", "exec") for r in rows)
    assert (run / "eval" / "base" / "metrics.json").is_file()


def test_actor_trace_counts_distinct_actors_per_window():
    from exesql_ray.sample_stage import ActorTrace

    now = [0.0]
    trace = ActorTrace(window_s=10, clock=lambda: now[0])
    trace.observe([{"engine": "duckdb", "executor_actor": "h:1"}, {"engine": "duckdb", "executor_actor": "h:1"}])
    now[0] = 12
    trace.observe([{"engine": "duckdb", "executor_actor": "h:1"}, {"engine": "duckdb", "executor_actor": "h:2"},
                   {"engine": "mysql", "executor_actor": "h:3"}, {"engine": "mysql"}])
    now[0] = 35
    trace.observe([{"engine": "duckdb", "executor_actor": "h:2"}])
    assert trace.as_dict() == {"duckdb": [[0, 1], [10, 2], [30, 1]], "mysql": [[10, 1]]}

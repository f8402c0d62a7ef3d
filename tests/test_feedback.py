"""The feedback stages' pure parts: pass@k, frontier questions, rejection-sampled SFT rows,
pairs from the model's own samples; and GRPO's reward function on real engines."""

import asyncio
import itertools

import pytest

from exesql_ray.prompts import extract_sql
from exesql_ray.rewards import (GRPO_REWARD, clause_count, grpo_reward, is_frontier, mine_pairs, pass_at, pass_at_k,
                                pass_counts,
                                runs_but_wrong_share,
                                split_valid_neg, valid_for_sft)
from conftest import TARGETS_HERE


def _cand(engine, qid, i, outcome, sql=None):
    return {"engine": engine, "question_id": qid, "sample_idx": i, "id": f"{engine}:{qid}#{i}",
            "sql": sql or f"SELECT {i}", "outcome": outcome, "prompt": f"p-{qid}", "completion": ""}


@pytest.mark.parametrize("n,c", [(8, 0), (8, 1), (8, 3), (8, 8), (5, 2), (16, 5)])
def test_pass_at_k_matches_a_brute_force_count(n, c):
    samples = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        draws = list(itertools.combinations(range(n), k))
        brute = sum(any(samples[i] for i in d) for d in draws) / len(draws)
        assert pass_at_k(n, c, k) == pytest.approx(brute)
    with pytest.raises(ValueError):
        pass_at_k(n, c, n + 1)


def test_pass_at_reports_the_curve_and_the_frontier_share():
    rows = ([_cand("duckdb", "a", i, "pass") for i in range(8)]                       # solved
            + [_cand("duckdb", "b", i, "pass" if i < 2 else "wrong") for i in range(8)]  # frontier
            + [_cand("duckdb", "c", i, "error") for i in range(8)]                       # unsolved
            + [_cand("duckdb", "c", 8, "infra")])                                        # not judged
    s = pass_at(rows, ks=(1, 2, 4, 8))["duckdb"]
    assert s["questions"] == 3 and s["frontier_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["pass@1"] == pytest.approx((1 + 2 / 8 + 0) / 3, abs=1e-4)
    assert s["pass_at_k"][1] == s["pass@1"] and s["pass_at_k"][8] == s["pass@N"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["pass_at_k"][2] == pytest.approx((1 + pass_at_k(8, 2, 2)) / 3, abs=1e-4)
    assert pass_counts(rows)[("duckdb", "c")] == (0, 8)
    assert [is_frontier(*x) for x in ((0, 8), (3, 8), (8, 8))] == [False, True, False]


def test_rejection_sampled_sft_weights_the_frontier():
    rows = ([_cand("postgres", "solved", i, "pass", f"SELECT {i} AS x") for i in range(8)]
            + [_cand("postgres", "front", i, "pass" if i < 5 else "wrong", f"SELECT {i} + 1") for i in range(8)])
    valid, _ = split_valid_neg(rows)
    counts = pass_counts(rows)
    picked = valid_for_sft(valid, counts, per_frontier=3, per_solved=1)
    assert [r["question_id"] for r in picked] == ["solved", "front", "front", "front"]
    assert valid_for_sft(valid, counts, per_frontier=3, per_solved=0) == [r for r in picked if r["question_id"] == "front"]


def test_pairs_come_from_the_models_own_samples_and_gold_only_as_fallback():
    own = ([_cand("mysql", "q1", i, "pass", f"SELECT a FROM t WHERE b = {i}") for i in range(2)]
           + [_cand("mysql", "q1", i, "wrong", f"SELECT a FROM t WHERE b > {i}") for i in range(2, 5)]
           + [_cand("mysql", "q1", i, "error", f"SELEC a FROM t{i}") for i in range(5, 8)])
    none_right = [_cand("mysql", "q2", i, "wrong", f"SELECT c FROM u LIMIT {i + 1}") for i in range(8)]
    valid, neg = split_valid_neg(own + none_right)
    gold = {("mysql", "q1"): "SELECT gold1", ("mysql", "q2"): "SELECT gold2"}
    pairs = mine_pairs(valid, neg, gold=gold, max_pairs_per_question=4, seed=0)
    q1 = [p for p in pairs if p["question_id"] == "q1"]
    q2 = [p for p in pairs if p["question_id"] == "q2"]
    assert len(q1) == 4 and all(p["chosen_from"] == "sample" and "gold1" not in p["chosen"] for p in q1)
    assert {p["chosen"] for p in q1} == {"```sql\nSELECT a FROM t WHERE b = 0\n```", "```sql\nSELECT a FROM t WHERE b = 1\n```"}
    assert sorted(p["rejected_kind"] for p in q1) == ["error", "error", "wrong", "wrong"]
    assert len(q2) == 4 and all(p["chosen_from"] == "gold" and "gold2" in p["chosen"] for p in q2)
    # without the gold fallback, a question no sample got right gives no pair
    assert mine_pairs(valid, neg, gold=None, max_pairs_per_question=4, seed=0) == q1


def test_clause_count_reads_keywords_not_strings_or_names():
    assert clause_count("SELECT a FROM t JOIN u ON t.x = u.y WHERE a = 'where' GROUP BY a HAVING count(*) > 1 "
                        "ORDER BY a LIMIT 3", "postgres") == 6
    assert clause_count('SELECT "limit" FROM t', "postgres") == 0
    assert clause_count("SELECT `where` FROM t WHERE b = 1", "mysql") == 1


def test_same_clauses_pairs_each_rejected_answer_with_a_chosen_one_of_its_shape():
    valid = [_cand("duckdb", "q", 0, "pass", "SELECT a FROM t WHERE b = 1"),
             _cand("duckdb", "q", 1, "pass", "SELECT a FROM t JOIN u ON t.k = u.k WHERE u.b = 1")]
    neg = [_cand("duckdb", "q", 2, "wrong", "SELECT a FROM t"),                        # 0 clauses: no partner
           _cand("duckdb", "q", 3, "wrong", "SELECT a FROM t WHERE b = 2"),            # 1
           _cand("duckdb", "q", 4, "error", "SELECT a FROM t JOIN u ON t.k = u.k WHERE c = 1")]  # 2
    pairs = mine_pairs(valid, neg, max_pairs_per_question=4, seed=0, same_clauses=True, dialect="duckdb")
    shapes = [(clause_count(extract_sql(p["chosen"]), "duckdb"), clause_count(extract_sql(p["rejected"]), "duckdb"))
              for p in pairs]
    assert sorted(shapes) == [(1, 1), (2, 2)]
    # without it the short rejected answer is mined too, against a chosen one with more clauses
    assert len(mine_pairs(valid, neg, max_pairs_per_question=4, seed=0)) == 3


def test_grpo_reward_shape():
    assert GRPO_REWARD == {"pass": 1.0, "wrong": 0.1, "error": 0.0, "infra": None}
    assert grpo_reward({"status": "ok", "match": True}, "match") == 1.0
    assert grpo_reward({"status": "ok", "match": False}, "match") == 0.1
    assert grpo_reward({"status": "ok", "match": False}, "exec") == 1.0  # exec: running is passing
    assert grpo_reward({"status": "error"}, "match") == 0.0
    assert grpo_reward({"status": "timeout"}, "match") == 0.0
    assert grpo_reward({"status": "infra_error"}, "match") is None


@pytest.mark.parametrize("engine", TARGETS_HERE)
def test_grpo_reward_function_runs_answers_on_the_engine(ray_local, spider_engines, engine):
    """ExecutionReward through a real executor actor: a right answer 1, one that runs with the
    wrong result 0.1, one that fails 0; an answer without a fence is read like sampling reads it."""
    import ray

    from actors.executor import ExecuteBatch
    from exesql_ray.config import load_config
    from exesql_ray.train.grpo import ExecutionReward

    cfg = load_config(None, ["run_dir=.run/spider", "execution.timeout_s=10"])
    actor = ray.remote(ExecuteBatch).remote(engine, cfg.model_dump(mode="json"))
    try:
        reward = ExecutionReward({engine: actor})
        gold = "SELECT count(*) FROM singer"
        answers = [[{"role": "assistant", "content": "```sql\nSELECT count(*) FROM singer\n```"}],
                   [{"role": "assistant", "content": "```sql\nSELECT count(*) FROM stadium\n```"}],
                   [{"role": "assistant", "content": "```sql\nSELECT count(*) FROM no_such_table\n```"}],
                   [{"role": "assistant", "content": "SELECT COUNT(*) FROM singer"}]]
        n = len(answers)
        got = asyncio.run(reward(prompts=[None] * n, completions=answers, engine=[engine] * n,
                                 db_id=["concert_singer"] * n, gold_sql=[gold] * n, reward_mode=["match"] * n,
                                 question_id=["q"] * n))
        assert got == [1.0, 0.1, 0.0, 1.0]
        with pytest.raises(KeyError):
            asyncio.run(reward(prompts=[None], completions=answers[:1], engine=["oracle"], db_id=["concert_singer"],
                               gold_sql=[gold], reward_mode=["match"]))
    finally:
        ray.kill(actor)


def test_frontier_selection_for_grpo_reads_the_rounds_shards(tmp_path):
    """grpo_rows: the frontier questions of each engine's round, with what the reward needs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from exesql_ray.config import load_config
    from exesql_ray.sample_stage import SHARD_SCHEMA
    from exesql_ray.train.data import grpo_rows

    cfg = load_config(None, [f"run_dir={tmp_path}", "engines.targets=[duckdb]"])
    rows = []
    for qid, passes in (("front", 3), ("solved", 8), ("unsolved", 0)):
        for i in range(8):
            rows.append({**_cand("duckdb", qid, i, "pass" if i < passes else "wrong"), "db_id": "d", "gold_sql": "G",
                         "reward_mode": "match", "shard": 0, "iteration": 1})
    shard = tmp_path / "sample" / "iter-1" / "duckdb" / "part-00000.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in SHARD_SCHEMA.names} for r in rows],
                                        schema=SHARD_SCHEMA), shard)
    got, counts = grpo_rows(cfg, 1)
    assert [r["question_id"] for r in got] == ["front"] and got[0]["gold_sql"] == "G"
    assert counts["duckdb_frontier"] == 1 and counts["duckdb_solved"] == 1 and counts["duckdb_unsolved"] == 1
    cfg.train.grpo.questions = "all"
    assert len(grpo_rows(cfg, 1)[0]) == 3


def test_the_pair_cap_is_shared_by_engine_and_prefers_own_samples():
    from exesql_ray.train.data import cap_pairs

    rows = ([{"engine": "duckdb", "chosen_from": "gold", "i": i} for i in range(100)]
            + [{"engine": "duckdb", "chosen_from": "sample", "i": i} for i in range(30)]
            + [{"engine": "postgres", "chosen_from": "sample", "i": i} for i in range(200)]
            + [{"engine": "mysql", "chosen_from": "sample", "i": i} for i in range(20)])
    got = cap_pairs(rows, 150, TARGETS_HERE, "0/1/dpo")
    per = {e: [r for r in got if r["engine"] == e] for e in TARGETS_HERE}
    assert len(got) == 150 and len(per["mysql"]) == 20  # mysql's unused share goes to the others
    assert len(per["duckdb"]) == 65 and len(per["postgres"]) == 65
    assert [r["chosen_from"] for r in per["duckdb"][:30]] == ["sample"] * 30  # own samples before the gold
    assert got == cap_pairs(rows, 150, TARGETS_HERE, "0/1/dpo")  # seeded


def test_length_grouped_batches_pad_less_and_keep_every_row():
    """Batches of similar length: every row once, little padding, a seeded random batch order."""
    import random

    from exesql_ray.train.data import length_grouped_order

    rng = random.Random(1)
    lengths = [rng.randint(80, 1000) for _ in range(289)]

    def padding(order):
        batches = [order[i:i + 8] for i in range(0, len(order), 8)]
        return sum(max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b) for b in batches)

    order = length_grouped_order(lengths, 8, seed=0)
    assert sorted(order) == list(range(len(lengths)))
    assert order == length_grouped_order(lengths, 8, seed=0)  # every rank builds the same order
    assert order != length_grouped_order(lengths, 8, seed=1)  # a new one each epoch
    shuffled = list(range(len(lengths)))
    rng.shuffle(shuffled)
    assert padding(order) < 0.1 * padding(shuffled)
    firsts = [lengths[order[i]] for i in range(0, len(order), 8)]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)  # not a curriculum


def test_runs_but_wrong_share_counts_what_the_exec_reward_would_accept_wrongly():
    rows = [{"status": "ok", "match": True}, {"status": "ok", "match": False}, {"status": "ok", "match": False},
            {"status": "error", "match": None}, {"status": "ok", "match": None}]  # no gold: not judged
    assert runs_but_wrong_share(rows) == round(2 / 3, 4)
    assert runs_but_wrong_share([{"status": "error", "match": None}]) is None

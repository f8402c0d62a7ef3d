"""Stage 2, the pure part: which questions to sample (`plan_sampling`), how completions become
candidate rows (`explode`), how finished rows land as shards (`ShardWriter`), and the stage
summary with D_Valid / D_Neg (`summarize_sampling`). `controller/sample.py` streams the rows
through generator replicas and executor actors on Ray Data.

A shard is `sample.shard_size` questions of one engine, × N candidates, written whole and
atomically to `<run_dir>/sample/iter-<k>/<engine>/part-NNNNN.parquet`; a re-run plans only
the shards not on disk, so a crashed stage resumes where it stopped.
"""

from __future__ import annotations

import random
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exesql_ray.config import Config
from exesql_ray.data import db_roots, load_dataset, write_parquet_atomic
from exesql_ray.engines import SOURCE, engine_class
from exesql_ray.errors import UserError
from exesql_ray.io import shard_done, write_json
from exesql_ray.prompts import schema_text, sql_prompt
from exesql_ray.rewards import mine_pairs, pass_at, reward_mode, score, split_valid_neg
from exesql_ray.runs import base_model, policy_for, sample_dir
from exesql_ray.schema import schema_of
from exesql_ray.summaries import SampleEngine, SampleSummary

QUESTION_TYPES = {
    "question_id": pa.string(), "engine": pa.string(), "shard": pa.int64(), "db_id": pa.string(),
    "difficulty": pa.string(), "prompt": pa.string(), "gold_sql": pa.string(), "gold_from": pa.string(), "reward_mode": pa.string(),
    "seed": pa.int64(),
}
CANDIDATE_TYPES = {
    "id": pa.string(), "iteration": pa.int64(), "sample_idx": pa.int64(), "completion": pa.string(),
    "sql": pa.string(), **{k: v for k, v in QUESTION_TYPES.items() if k != "seed"},
}
EXECUTION_TYPES = {
    "status": pa.string(), "error_class": pa.string(), "error": pa.string(), "elapsed_ms": pa.float64(),
    "row_count": pa.int64(), "truncated": pa.bool_(), "result_hash": pa.string(), "match": pa.bool_(),
    "gold_status": pa.string(), "cached": pa.bool_(), "outcome": pa.string(), "reward": pa.float64(),
}
SHARD_SCHEMA = pa.schema(list({**CANDIDATE_TYPES, **EXECUTION_TYPES}.items()))


@dataclass
class SampleShard:
    engine: str
    index: int
    path: str
    questions: list[dict]


@dataclass
class SamplePlan:
    iteration: int
    engines: list[str]
    root: Path
    model_path: str
    n: int
    shards: list[SampleShard]  # every shard of the stage
    todo: list[SampleShard]  # the ones not on disk yet
    questions: int
    skipped_missing_db: int
    db_roots: list[str] | None  # the SQLite database folders (sqlite as a target engine)
    gold_source: dict[str, Counter] = field(default_factory=dict)


def verified_gold(cfg: Config, engine: str) -> dict[str, str]:
    """question id → the stage-1 translation verified on `engine` (empty when stage 1 has not run)."""
    path = Path(cfg.run_dir) / "d_trans" / f"{engine}.parquet"
    if not path.is_file():
        return {}
    t = pq.read_table(path, columns=["id", "sql"])
    return dict(zip(t.column("id").to_pylist(), t.column("sql").to_pylist()))


def sample_seed(seed: int, iteration: int, engine: str, question_id: str) -> int:
    """Per-question sampling seed: a retried batch draws the same samples again."""
    return zlib.crc32(f"{seed}/{iteration}/{engine}/{question_id}".encode())


def split_questions(cfg: Config, ds, split: str) -> list:
    """The run's questions of one split (data.limit, then data.questions' seeded subset)."""
    from exesql_ray.data import subset

    return subset(ds.splits.get(split, []), cfg.data.limit, cfg.data.questions.get(split), f"{cfg.seed}/{split}")


def plan_sampling(cfg: Config, iteration: int, engines: list[str] | None = None,
                  root: Path | None = None, model: Path | None = None) -> SamplePlan:
    """The stage's shards for iteration k (`root`: where they go, default the sample folder;
    `model`: what samples, default the policy of iteration k)."""
    if iteration < 0:
        raise UserError(f"--iteration {iteration}: must be 0 or more")
    engines = engines or list(cfg.engines.targets)
    split = cfg.sample.split or cfg.data.train_split
    ds = load_dataset(cfg.data.dataset, cfg.data.path, [split])
    examples = split_questions(cfg, ds, split)
    if not examples:
        raise UserError(f"sample.split {split!r}: no questions in {cfg.data.path}")
    if cfg.sample.max_questions and cfg.sample.max_questions < len(examples):
        pick = set(random.Random(f"{cfg.seed}/{iteration}").sample(range(len(examples)), cfg.sample.max_questions))
        examples = [e for i, e in enumerate(examples) if i in pick]
    with_db = [e for e in examples if e.has_db]
    model = model or policy_for(cfg, iteration)
    if not (model / "config.json").is_file():
        raise UserError(f"iteration {iteration} samples from {model}, which holds no model "
                        + ("(run `exesql-ray model tiny` or `exesql-ray model embedded`, or set model.path)" if model == base_model(cfg)
                           else f"(train iteration {iteration - 1} first)" if model == policy_for(cfg, iteration)
                           else "(train that iteration first)"))
    root = root or sample_dir(cfg, iteration)
    size = cfg.sample.shard_size
    shards, gold_source = [], {}
    schemas: dict[tuple, str] = {}
    for engine in engines:
        gold = verified_gold(cfg, engine)
        src = gold_source[engine] = Counter()
        rows = []
        for e in with_db:
            key = (e.db_id, engine, tuple(e.tables))
            if key not in schemas:
                schemas[key] = schema_text(schema_of(e.db_path), engine, e.db_path, cfg.prompt.sample_values, e.tables,
                                               cfg.prompt.schema_format)
            g = gold.get(e.id) or (e.sqlite_sql if engine == SOURCE else e.dialect_gold.get(engine)) or ""
            gold_from = "verified" if e.id in gold else "dataset" if g else "none"
            src[gold_from] += 1
            rows.append({"question_id": e.id, "engine": engine, "db_id": e.db_id, "difficulty": e.difficulty,
                         "prompt": sql_prompt(engine=engine, schema=schemas[key], question=e.question,
                                              evidence=e.evidence),
                         "gold_sql": g, "gold_from": gold_from, "reward_mode": reward_mode(cfg.sample.reward, g),
                         "seed": sample_seed(cfg.seed, iteration, engine, e.id)})
        for i in range(0, len(rows), size):
            part = rows[i:i + size]
            for r in part:
                r["shard"] = i // size
            shards.append(SampleShard(engine, i // size, str(root / engine / f"part-{i // size:05d}.parquet"), part))
    todo = [s for s in shards if not shard_done(s.path, {q["question_id"] for q in s.questions}, "question_id")]
    return SamplePlan(iteration, engines, root, str(model), cfg.generation.n, shards, todo, len(with_db),
                      len(examples) - len(with_db), db_roots(with_db), gold_source)


def explode(questions: list[dict], completions: list[list[str]], iteration: int) -> list[dict]:
    """One row per candidate: the question's fields, the sample's index, text and SQL."""
    from exesql_ray.prompts import extract_sql

    out = []
    for q, outs in zip(questions, completions):
        base = {k: q[k] for k in QUESTION_TYPES if k != "seed"}
        for j, text in enumerate(outs):
            out.append({**base, "id": f"{q['engine']}:{q['question_id']}#{j}", "iteration": iteration,
                        "sample_idx": j, "completion": text, "sql": extract_sql(text)})
    return out


class ActorTrace:
    """Executor actors seen per engine and time window: each executed row names the actor
    process that ran it (`executor_actor`, host:pid, so a restarted actor counts anew), and a
    window counts the distinct ones that returned work in it. Ray Data's autoscaling pool adds
    actors while the executor is the bottleneck; this is how a stage's summary shows it."""

    def __init__(self, window_s: float = 10.0, clock=time.monotonic):
        self.window_s, self.clock, self.start = window_s, clock, clock()
        self.seen: dict[str, dict[int, set[str]]] = {}

    def observe(self, rows: list[dict]) -> None:
        window = int((self.clock() - self.start) // self.window_s)
        for r in rows:
            if r.get("executor_actor"):
                self.seen.setdefault(r["engine"], {}).setdefault(window, set()).add(r["executor_actor"])

    def as_dict(self) -> dict[str, list[list[int]]]:
        return {e: [[int(w * self.window_s), len(actors)] for w, actors in sorted(ws.items())]
                for e, ws in sorted(self.seen.items())}


class ShardWriter:
    """Collects executed candidates (keyed by id: a retried batch cannot duplicate one) and
    writes each shard atomically once all its candidates are in."""

    def __init__(self, plan: SamplePlan):
        self.expected = {(s.engine, s.index): (s.path, len(s.questions) * plan.n) for s in plan.todo}
        self.pending: dict[tuple, dict[str, dict]] = {k: {} for k in self.expected}
        self.written: list[str] = []

    def add(self, rows: list[dict]) -> list[str]:
        """Score `rows` in place (outcome, reward) and keep them; returns the shards written."""
        done = []
        for r in score(rows):
            key = (r["engine"], r["shard"])
            if key not in self.pending:
                continue  # shard already written (a late duplicate)
            self.pending[key][r["id"]] = r
            path, want = self.expected[key]
            if len(self.pending[key]) == want:
                got = sorted(self.pending.pop(key).values(), key=lambda x: (x["question_id"], x["sample_idx"]))
                rows_out = [{k: c.get(k) for k in SHARD_SCHEMA.names} for c in got]
                write_parquet_atomic(pa.Table.from_pylist(rows_out, schema=SHARD_SCHEMA), path)
                done.append(path)
        self.written.extend(done)
        return done

    @property
    def missing(self) -> dict[tuple, int]:
        return {k: self.expected[k][1] - len(v) for k, v in self.pending.items()}


def read_candidates(plan: SamplePlan, engine: str) -> list[dict]:
    files = [s.path for s in plan.shards if s.engine == engine and Path(s.path).is_file()]
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist() if files else []


def summarize_sampling(plan: SamplePlan, cfg: Config, seconds: float,
                       executor_actors: dict | None = None) -> SampleSummary:
    """Counts from the plan's shards on disk, pass@1 / pass@N per engine; writes D_Valid, D_Neg and the
    DPO pairs per engine next to the shards, and summary.json."""
    summary = SampleSummary(iteration=plan.iteration, model=plan.model_path, n=plan.n, questions=plan.questions,
                            skipped_missing_db=plan.skipped_missing_db, seconds=round(seconds, 1), engines={},
                            executor_actors=executor_actors or {})
    tokenizer = _tokenizer(plan.model_path)
    for engine in plan.engines:
        rows = read_candidates(plan, engine)
        if not rows:
            continue
        valid, neg = split_valid_neg(rows)
        gold = {(engine, r["question_id"]): r["gold_sql"] for r in rows if r["gold_sql"]}
        pairs = mine_pairs(valid, neg, gold=gold if cfg.train.dpo.gold_as_chosen else None,
                           max_pairs_per_question=cfg.train.dpo.max_pairs_per_question, seed=cfg.seed,
                           same_clauses=cfg.train.dpo.same_clauses, dialect=engine_class(engine).dialect)
        for name, part in (("d_valid", valid), ("d_neg", neg)):
            write_parquet_atomic(pa.Table.from_pylist([{k: r[k] for k in SHARD_SCHEMA.names} for r in part],
                                                      schema=SHARD_SCHEMA), plan.root / name / f"{engine}.parquet")
        write_parquet_atomic(pa.Table.from_pylist(pairs, schema=PAIR_SCHEMA), plan.root / "dpo_pairs" / f"{engine}.parquet")
        questions = {r["question_id"] for r in rows}
        planned = sum(len(s.questions) for s in plan.shards if s.engine == engine)
        summary.engines[engine] = SampleEngine.from_dict({
            "questions": len(questions), "questions_planned": planned, "candidates": len(rows),
            "complete": len(rows) == planned * plan.n,
            "by_status": dict(Counter(r["status"] for r in rows)),
            "by_outcome": dict(Counter(r["outcome"] for r in rows)),
            "by_reward_mode": dict(Counter(r["reward_mode"] for r in rows)),
            "gold": dict(plan.gold_source.get(engine, {})),
            "d_valid": len(valid), "d_neg": len(neg), "dpo_pairs": len(pairs),
            "dpo_pairs_by_kind": dict(Counter(p["rejected_kind"] for p in pairs)),
            **pass_at(rows, ks=powers_of_two(plan.n)).get(engine, {}),
            "tokens": token_counts(rows, tokenizer, cfg.generation.answer_prefix) if tokenizer else {},
        })
    plan.root.mkdir(parents=True, exist_ok=True)
    write_json(plan.root / "summary.json", summary.to_dict(), "the sampling stage's summary")
    return summary


def _tokenizer(model_path: str):
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError):  # a model folder without a tokenizer: no token counts
        return None


def token_counts(rows: list[dict], tokenizer, answer_prefix: str = "") -> dict[str, int]:
    """The generation's work: prompt tokens under the chat template, each question's once (its
    n samples share the prefill through vLLM's prefix cache), and completion tokens (the
    answer prefix the generator wrote into the prompt left out)."""
    prompts = {r["question_id"]: r["prompt"] for r in rows}
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts.values()]
    prompt = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0
    outs = [(r["completion"] or "").removeprefix(answer_prefix) for r in rows]
    completion = sum(len(ids) for ids in tokenizer(outs, add_special_tokens=False)["input_ids"]) if outs else 0
    return {"prompt": prompt, "completion": completion}


def powers_of_two(n: int) -> tuple[int, ...]:
    """1, 2, 4, … up to n, and n itself: the k of the pass@k curve."""
    ks = [1]
    while ks[-1] * 2 <= n:
        ks.append(ks[-1] * 2)
    return tuple(dict.fromkeys([*ks, n]))


PAIR_SCHEMA = pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
                         ("rejected_kind", pa.string()), ("engine", pa.string()), ("question_id", pa.string()),
                         ("chosen_from", pa.string())])

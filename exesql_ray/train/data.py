"""Training rows from the earlier stages' files, in TRL's conversational formats.

SFT: D_Valid of iteration k (every target engine) ∪ D_Trans (the verified translations of
the sampled questions, with the same prompt the model samples from), each (prompt, answer)
once. DPO: the pairs the sampling stage mined. Rows too long for `max_length` are dropped
and counted, not truncated: a cut answer teaches a wrong query.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from exesql_ray.config import Config
from exesql_ray.errors import UserError
from exesql_ray.prompts import sql_answer
from exesql_ray.runs import ends_with_dpo, sample_dir


def _read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist() if path.is_file() else []


def sft_rows(cfg: Config, iteration: int) -> tuple[list[dict], Counter]:
    from exesql_ray.sample_stage import plan_sampling

    root = sample_dir(cfg, iteration)
    rows, seen, counts = [], set(), Counter()

    def add(prompt: str, answer: str, source: str):
        if (prompt, answer) in seen:
            counts[f"{source}_duplicate"] += 1
            return
        seen.add((prompt, answer))
        rows.append({"prompt": prompt, "completion": answer, "source": source})
        counts[source] += 1

    for engine in cfg.engines.targets:
        for r in _read(root / "d_valid" / f"{engine}.parquet"):
            add(r["prompt"], sql_answer(r["sql"]), "d_valid")
    if cfg.train.sft.with_translations:
        # the verified translations of the split, also when sampling took a subset
        # (sample.max_questions), or of that subset (train.sft.translations: sampled); the
        # prompts are the ones the model samples from
        full = cfg.model_copy(deep=True)
        sampled = cfg.train.sft.translations == "sampled" and ends_with_dpo(cfg, iteration)
        if not sampled:
            full.sample.max_questions = None
        plan = plan_sampling(full, iteration)
        keep = cfg.train.sft.translation_engines_per_question
        for shard in plan.shards:
            for q in shard.questions:
                if q["gold_from"] == "verified" and (keep is None or _taught_on(q, plan.engines, keep)):
                    add(q["prompt"], sql_answer(q["gold_sql"]), "d_trans")
    if not rows:
        raise UserError(f"SFT iteration {iteration}: no training rows: {root}/d_valid holds no passing candidates "
                        f"and no verified translations were found under {Path(cfg.run_dir) / 'd_trans'} "
                        "(run `exesql-ray translate` and `exesql-ray sample` first)")
    return rows, counts


def _taught_on(q: dict, engines: list[str], k: int) -> bool:
    """Whether question q's translation for q["engine"] is one of the k its id picks: a
    rotation over the engines, the same in every iteration and on every machine."""
    start = zlib.crc32(q["question_id"].encode()) % len(engines)
    return q["engine"] in [engines[(start + i) % len(engines)] for i in range(min(k, len(engines)))]


def dpo_rows(cfg: Config, iteration: int) -> tuple[list[dict], Counter]:
    root = sample_dir(cfg, iteration) / "dpo_pairs"
    rows = [r for e in cfg.engines.targets for r in _read(root / f"{e}.parquet")]
    if not rows:
        raise UserError(f"DPO iteration {iteration}: no pairs under {root} (run `exesql-ray sample --iteration "
                        f"{iteration}` first; a question needs a passing and a failing answer)")
    cap = cfg.train.dpo.max_pairs
    if cap and len(rows) > cap:
        import random

        rows = random.Random(f"{cfg.seed}/{iteration}/dpo").sample(rows, cap)
    return rows, Counter(r["rejected_kind"] for r in rows)


def conversational(row: dict, stage: str) -> dict:
    user = [{"role": "user", "content": row["prompt"]}]
    if stage == "sft":
        return {"prompt": user, "completion": [{"role": "assistant", "content": row["completion"]}]}
    return {"prompt": user, "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def within_length(rows: list[dict], tokenizer, max_length: int, stage: str) -> tuple[list[dict], int]:
    """Rows whose prompt + longest answer fit in max_length tokens under the chat template."""
    keep = []
    for r in rows:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                               add_generation_prompt=True)
        answers = [r["completion"]] if stage == "sft" else [r["chosen"], r["rejected"]]
        # + 4: the template's end-of-turn tokens after the answer
        longest = max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) + 4
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + longest <= max_length:
            keep.append(r)
    return keep, len(rows) - len(keep)

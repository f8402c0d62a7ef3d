"""GRPO's reward function: the answers TRL's GRPOTrainer samples run on the executor actors.

The same actors (`actors/executor.py` ExecuteBatch: one engine's guarded pool, its cache and
the comparator) and the same outcome rule (`rewards.grpo_reward`) as the sampling stage, so a
GRPO reward and a sampled candidate's verdict are the same judgement. Per-engine prompts, one
model: a batch mixes engines, and each answer goes to its own engine's actor. The function is
async (TRL runs it on its event loop): the engines' calls are awaited together.

This module holds actor handles but imports no Ray: an ObjectRef is awaitable.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from exesql_ray.prompts import extract_sql
from exesql_ray.rewards import grpo_reward


def completion_text(completion) -> str:
    """TRL hands a conversational completion as a list of messages, a plain one as text."""
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")
    return completion or ""


class ExecutionReward:
    """`reward(prompts, completions, engine=[…], db_id=[…], gold_sql=[…], reward_mode=[…], …)`
    → one reward per completion (None where the machine failed: TRL leaves it out)."""

    __name__ = "execution"  # TRL logs rewards/<name>/mean

    def __init__(self, executors: dict):
        self.executors = executors  # engine → actor handle with `records.remote(rows)`

    async def __call__(self, prompts, completions, engine, db_id, gold_sql, reward_mode, question_id=None,
                       **_) -> list[float | None]:
        by_engine: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(engine):
            by_engine[e].append(i)
        rows = {e: [{"id": f"grpo-{i}", "db_id": db_id[i], "sql": extract_sql(completion_text(completions[i])),
                     "gold_sql": gold_sql[i] if reward_mode[i] == "match" else None} for i in idx]
                for e, idx in by_engine.items()}
        missing = sorted(set(rows) - set(self.executors))
        if missing:
            raise KeyError(f"no executor for engine(s) {missing}")
        records = await asyncio.gather(*(self.executors[e].records.remote(rows[e]) for e in rows))
        rewards: list[float | None] = [None] * len(completions)
        for e, recs in zip(rows, records):
            for i, rec in zip(by_engine[e], recs):
                rewards[i] = grpo_reward(rec, reward_mode[i])
        return rewards

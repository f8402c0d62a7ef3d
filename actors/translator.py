"""Translator actors: Ray Data `map_batches` over planned shards (`controller/translate.py`);
each actor keeps its executors (SQLite + target engines) across shards. A restarted actor redoes only shards not
yet written (a shard is written whole, atomically)."""

from __future__ import annotations

from exesql_ray.config import Config
from exesql_ray.translate_stage import ShardTask, ShardTranslator


class TranslateShards:
    def __init__(self, config: dict, db_roots: list[str] | None):
        self.worker = ShardTranslator(Config.model_validate(config), db_roots)

    def __call__(self, batch: dict) -> dict:
        outs = [self.worker(ShardTask(engine=e, path=p, examples=list(x)))
                for e, p, x in zip(batch["engine"], batch["path"], batch["examples"])]
        return {k: [o[k] for o in outs] for k in ("path", "engine", "examples", "written")}

"""The translation stage: every example × target engine → a verdict record; verified rows
are D_Trans. Work is planned as shards (`plan`), each translated whole and written atomically
to `<run_dir>/translate/<engine>/part-NNNNN.parquet`, so a re-run skips finished shards.
`ShardTranslator` does one shard; the runner (`controller/translate.py`) runs it in Ray actors
(`actors/translator.py`)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exesql_ray.compare import CompareOptions
from exesql_ray.config import Config
from exesql_ray.data import Example, db_roots, load_dataset, write_parquet_atomic
from exesql_ray.engines import SOURCE, open_engine
from exesql_ray.engines.base import InfraError
from exesql_ray.errors import EngineDown
from exesql_ray.executor import Executor
from exesql_ray.io import shard_done, write_json
from exesql_ray.sample_stage import split_questions
from exesql_ray.summaries import TranslateEngine, TranslateSummary
from exesql_ray.translate import TRANSLATION_FIELDS, translate_example

SCHEMA = pa.schema([(k, pa.int64() if k == "attempts" else pa.string()) for k in TRANSLATION_FIELDS])


@dataclass
class ShardTask:
    engine: str
    path: str
    examples: list[dict]  # Example as a dict: tasks travel to Ray actors


@dataclass
class Plan:
    engines: list[str]
    root: Path
    tasks: list[ShardTask]  # the shards not written yet
    examples: int
    skipped_missing_db: int
    db_roots: list[str] | None
    shards: dict[str, list[Path]]  # engine → every shard of the stage, done or not


def repair_backend(cfg: Config):
    r = cfg.translate.repair
    if r.backend == "none" or r.max_rounds == 0:
        return None
    from exesql_ray.translate import OpenAICompatible

    return OpenAICompatible(r.base_url, r.model, r.api_key_env)


def plan(cfg: Config) -> Plan:
    engines = cfg.translate.engines or [e for e in cfg.engines.targets if e != SOURCE]
    splits = cfg.translate.splits or cfg.data.splits
    ds = load_dataset(cfg.data.dataset, cfg.data.path, splits)
    examples = [e for s in splits for e in split_questions(cfg, ds, s)]
    with_db = [e for e in examples if e.has_db]
    root = Path(cfg.run_dir) / "translate"
    size = cfg.translate.shard_size
    tasks, shards = [], {}
    for engine in engines:
        for i in range(0, len(with_db), size):
            path = root / engine / f"part-{i // size:05d}.parquet"
            shards.setdefault(engine, []).append(path)
            part = with_db[i:i + size]
            if not shard_done(path, {e.id for e in part}, "id"):
                tasks.append(ShardTask(engine, str(path), [dataclasses.asdict(e) for e in part]))
    return Plan(engines, root, tasks, len(with_db), len(examples) - len(with_db), db_roots(with_db), shards)


class ShardTranslator:
    """Holds the SQLite executor and one executor per target engine; translates shards."""

    def __init__(self, cfg: Config, db_roots: list[str] | None):
        self.cfg = cfg
        self.sqlite = Executor(open_engine(SOURCE, cfg, db_root=db_roots))
        self.targets: dict[str, Executor] = {}
        self.backend = repair_backend(cfg)
        self.opts = CompareOptions.from_config(cfg.compare)

    def __call__(self, task: ShardTask) -> dict:
        if shard_done(task.path, {e["id"] for e in task.examples}, "id"):  # an earlier attempt's (a restarted actor)
            return {"path": task.path, "engine": task.engine, "examples": len(task.examples), "written": False}
        target = self.targets.get(task.engine)
        if target is None:
            target = self.targets[task.engine] = Executor(open_engine(task.engine, self.cfg))
        examples = [Example(**e) for e in task.examples]
        try:
            with ThreadPoolExecutor(self.cfg.translate.workers) as pool:
                recs = list(pool.map(lambda e: translate_example(
                    e, task.engine, self.sqlite, target, backend=self.backend,
                    max_rounds=self.cfg.translate.repair.max_rounds, opts=self.opts), examples))
        except InfraError as e:
            raise EngineDown(f"translate {task.engine}: {e}; {Path(task.path).name} was not written (the shards "
                             "written are kept): run the same command again once the engine is back") from None
        write_parquet_atomic(pa.Table.from_pylist(recs, schema=SCHEMA), task.path)
        return {"path": task.path, "engine": task.engine, "examples": len(recs), "written": True}

    def close(self) -> None:
        for ex in [self.sqlite, *self.targets.values()]:
            ex.engine.close()


def summarize(p: Plan, seconds: float) -> TranslateSummary:
    """Counts from the stage's shards on disk; D_Trans (verified rows) per engine."""
    summary = TranslateSummary(examples=p.examples, skipped_missing_db=p.skipped_missing_db, engines={},
                               seconds=round(seconds, 1))
    for engine in p.engines:
        shards = [pq.read_table(f) for f in p.shards.get(engine, []) if f.is_file()]
        if not shards:
            continue
        table = pa.concat_tables(shards)
        verdicts = Counter(table.column("verdict").to_pylist())
        verified = table.filter(pc.equal(table.column("verdict"), "verified"))
        write_parquet_atomic(verified, p.root.parent / "d_trans" / f"{engine}.parquet")
        n = table.num_rows - verdicts.get("gold_error", 0)
        summary.engines[engine] = TranslateEngine(
            verdicts=dict(verdicts), verified_by_method=dict(Counter(verified.column("method").to_pylist())),
            verified_share=round(verdicts["verified"] / n, 4) if n else None,
            gold_errors=verdicts.get("gold_error", 0),
            verified_of_all=round(verdicts["verified"] / table.num_rows, 4) if table.num_rows else None)
    (p.root / "summary.json").parent.mkdir(parents=True, exist_ok=True)
    write_json(p.root / "summary.json", summary.to_dict(), "the translation stage's summary")
    return summary

"""The translation stage: every example × target engine → a verdict record; verified rows
are D_Trans. Sharded Parquet under `<run_dir>/translate/<engine>/`; a re-run skips shards that
are already written (a shard is written whole, atomically, or not at all)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exesql_ray.compare import CompareOptions
from exesql_ray.config import Config
from exesql_ray.data import load_dataset, write_parquet_atomic
from exesql_ray.engines import open_engine
from exesql_ray.executor import Executor
from exesql_ray.translate import TRANSLATION_FIELDS, translate_example

SCHEMA = pa.schema([(k, pa.int64() if k == "attempts" else pa.string()) for k in TRANSLATION_FIELDS])


def repair_backend(cfg: Config):
    r = cfg.translate.repair
    if r.backend == "none" or r.max_rounds == 0:
        return None
    from exesql_ray.repair import OpenAICompatible

    return OpenAICompatible(r.base_url, r.model, r.api_key_env)


def run_translate(cfg: Config, progress=print) -> dict:
    engines = cfg.translate.engines or [e for e in cfg.engines.targets if e != "sqlite"]
    splits = cfg.translate.splits or [cfg.data.train_split, *cfg.data.eval_splits]
    ds = load_dataset(cfg.data.dataset, cfg.data.path, splits)
    examples = [e for s in splits for e in ds.splits.get(s, [])][: None]
    if cfg.data.limit:
        examples = [e for s in splits for e in ds.splits.get(s, [])[: cfg.data.limit]]
    skipped_no_db = sum(not e.has_db for e in examples)
    examples = [e for e in examples if e.has_db]
    root = Path(cfg.run_dir) / "translate"
    backend = repair_backend(cfg)
    opts = CompareOptions.from_config(cfg.compare)
    db_root = Path(examples[0].db_path).parent.parent if examples else None
    summary = {"examples": len(examples), "skipped_missing_db": skipped_no_db, "engines": {}}
    sqlite = Executor(open_engine("sqlite", cfg, db_root=db_root))
    for engine in engines:
        target = Executor(open_engine(engine, cfg))
        out_dir = root / engine
        counts, methods, t0 = Counter(), Counter(), time.time()
        size = cfg.translate.shard_size
        for i in range(0, len(examples), size):
            shard = out_dir / f"part-{i // size:05d}.parquet"
            if not shard.exists():
                chunk = examples[i:i + size]
                with ThreadPoolExecutor(cfg.translate.workers) as pool:
                    recs = list(pool.map(lambda e: translate_example(
                        e, engine, sqlite, target, backend=backend, max_rounds=cfg.translate.repair.max_rounds,
                        opts=opts), chunk))
                write_parquet_atomic(pa.Table.from_pylist(recs, schema=SCHEMA), shard)
                progress(f"translate {engine}: shard {shard.name} ({len(recs)} examples)")
            table = pq.read_table(shard)
            counts.update(table.column("verdict").to_pylist())
            methods.update(m for m, v in zip(table.column("method").to_pylist(), table.column("verdict").to_pylist())
                           if v == "verified")
        d_trans = [pq.read_table(p).filter(pa.compute.equal(pq.read_table(p).column("verdict"), "verified"))
                   for p in sorted(out_dir.glob("part-*.parquet"))]
        if d_trans:
            write_parquet_atomic(pa.concat_tables(d_trans), root.parent / "d_trans" / f"{engine}.parquet")
        n = sum(counts.values()) - counts.get("gold_error", 0)
        summary["engines"][engine] = {"verdicts": dict(counts), "verified_by_method": dict(methods),
                                      "verified_share": round(counts["verified"] / n, 4) if n else None,
                                      "seconds": round(time.time() - t0, 1)}
        target.engine.close()
    sqlite.engine.close()
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

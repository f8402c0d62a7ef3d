"""Stage 1 on Ray: the plan's shards (`exesql_ray.translate_stage.plan`) through translator
actors (Ray Data `map_batches` over `actors.translator.TranslateShards`), then the summary of
every shard on disk. Shards already written are skipped, so a re-run resumes."""

from __future__ import annotations

import time
from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.summaries import TranslateSummary
from exesql_ray.translate_stage import Plan, plan, summarize
from exesql_ray.engines import SOURCE


def translate_on_ray(cfg: Config, p: Plan, progress=None) -> list[dict]:
    """Translate the plan's missing shards; one output row per shard."""
    import ray

    from actors.translator import TranslateShards

    if not p.tasks:
        return []
    rows = [{"engine": t.engine, "path": t.path, "examples": t.examples} for t in p.tasks]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    out = ds.map_batches(TranslateShards, fn_constructor_kwargs={"config": cfg.model_dump(mode="json"),
                                                                "db_roots": p.db_roots},
                         batch_size=1, batch_format="numpy", concurrency=cfg.translate.workers, num_cpus=1)
    done = []
    for row in out.iter_rows():
        done.append(row)
        if progress:
            progress(f"translate {row['engine']}: {Path(row['path']).name} ({row['examples']} examples)")
    return done


def translate_preflight(cfg: Config) -> None:
    """What stage 1 needs, checked before Ray starts: every target engine opens (DuckDB's
    migrated files, the servers and their logins) and SQLite finds the databases."""
    from exesql_ray.engines import open_engine

    p = plan(cfg)
    for engine in sorted({t.engine for t in p.tasks}):
        open_engine(engine, cfg).close()
    if p.tasks:
        open_engine(SOURCE, cfg, db_root=p.db_roots).close()


def run_translate_stage(cfg: Config, progress=print) -> TranslateSummary:
    """Plan, translate what is missing on Ray, summarise (D_Trans per engine)."""
    t0 = time.time()
    p = plan(cfg)
    progress(f"translate: {p.examples} examples × {len(p.engines)} engines, {len(p.tasks)} shards to do")
    translate_on_ray(cfg, p, progress)
    return summarize(p, time.time() - t0)

"""Migration: the SQLite databases a run's questions use, copied into each target engine and
verified (exesql_ray/engines/migrate.py does the work; `exesql-ray db migrate` is its CLI)."""

from __future__ import annotations

from exesql_ray.config import Config
from exesql_ray.engines import SOURCE


def migrate_databases(cfg: Config, progress) -> dict:
    """Migrate and verify the databases of the questions the run uses into each target engine
    (already migrated ones are checked by checksum and skipped); {engine: databases}."""
    from exesql_ray.data import load_dataset
    from exesql_ray.engines.migrate import migrate_dbs, open_target
    from exesql_ray.sample_stage import split_questions

    ds = load_dataset(cfg.data.dataset, cfg.data.path, cfg.data.splits)
    # the databases of the questions the run uses (data.limit, data.questions)
    dbs = {e.db_id: e.db_path for s in ds.splits for e in split_questions(cfg, ds, s) if e.has_db}
    out = {}
    for engine in [e for e in cfg.engines.targets if e != SOURCE]:
        target = open_target(engine, cfg)
        try:
            results = migrate_dbs(target, dbs)
        finally:
            target.close()
        bad = [r.db_id for r in results if not r.verified]
        if bad:
            raise RuntimeError(f"migrate → {engine}: {len(bad)} databases not verified: {bad[:5]}")
        out[engine] = len(results)
        progress(f"migrate → {engine}: {len(results)} databases verified")
    return out

"""The whole loop on Ray: migrate → translate → for each iteration: evaluate, sample, SFT,
DPO → evaluate the last policy. Every stage skips what its folder already holds (shards,
models), so a re-run after a crash resumes where it stopped; `<run_dir>/pipeline.json`
records each finished stage.

Generator replicas live across iterations and take new weights with `reload` (no restart)
when the training workers fit beside them; when they do not (the GPUs, or a 2-core
laptop's CPUs, are taken by the replicas) the replicas are removed before training and
started again, on the new weights, afterwards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from exesql_ray.config import Config


class Manifest:
    """Finished stages with their key figures, rewritten after each stage."""

    def __init__(self, cfg: Config):
        self.path = Path(cfg.run_dir) / "pipeline.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"stages": {}}

    def record(self, name: str, info: dict) -> None:
        self.data["stages"][name] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _migrate(cfg: Config, progress) -> dict:
    from exesql_ray.data import load_dataset
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    ds = load_dataset(cfg.data.dataset, cfg.data.path, [cfg.data.train_split, *cfg.data.eval_splits])
    dbs = {e.db_id: e.db_path for exs in ds.splits.values() for e in exs if e.has_db}
    out = {}
    for engine in [e for e in cfg.engines.targets if e != "sqlite"]:
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


def _training_fits_beside_generators(cfg: Config) -> bool:
    """Whether the Ray Train workers can be scheduled while the replicas hold their share;
    if not, the replicas go (else training waits for them forever) and come back after."""
    import ray

    t = cfg.train
    per = {"CPU": 1.0, "GPU": 1.0 if t.use_gpu else 0.0, **t.resources_per_worker}
    free = ray.available_resources()
    return all(free.get(k, 0.0) >= t.num_workers * v for k, v in per.items() if v > 0)


def run_pipeline(cfg: Config, progress=print) -> dict:
    import ray

    from actors.generator import start_generators
    from actors.sampler import run_eval_stage, run_sample_stage
    from exesql_ray.runs import policy_for
    from exesql_ray.train import run_training
    from exesql_ray.translate_stage import run_translate

    m = Manifest(cfg)
    m.record("migrate", {"databases": _migrate(cfg, progress)})
    tr = run_translate(cfg, progress=progress)
    m.record("translate", {e: s["verified_share"] for e, s in tr["engines"].items()})
    if not cfg.model.path:
        from exesql_ray.tinymodel import build_for_run

        build_for_run(cfg)  # a no-op when the folder already holds this config's model
    generators = None
    try:
        for k in range(cfg.pipeline.iterations + 1):
            if generators is None:
                generators = start_generators(str(policy_for(cfg, k)), cfg.generation)
            ev = run_eval_stage(cfg, k, generators, progress=progress)
            ex = {s: {e: a["ex"] for e, a in es.items()} for s, es in ev["splits"].items()}
            m.record(f"evaluate/iter-{k}", ex)
            progress(f"policy of iteration {k}: EX {json.dumps(ex)}")
            if k == cfg.pipeline.iterations:
                break
            sa = run_sample_stage(cfg, k, generators, progress=progress)
            m.record(f"sample/iter-{k}", {e: {"pass@1": s["pass@1"], "pass@N": s["pass@N"], "d_valid": s["d_valid"],
                                              "dpo_pairs": s["dpo_pairs"]} for e, s in sa["engines"].items()})
            if not _training_fits_beside_generators(cfg):  # the trainer needs what the replicas hold
                for g in generators:
                    ray.kill(g)
                generators = None
            for stage in ("sft", "dpo"):
                st = run_training(cfg, k, stage, progress=progress)
                m.record(f"{stage}/iter-{k}", {"model": st["model"], "first": st["first"], "last": st["last"],
                                               "rows": st["rows"]})
    finally:
        for g in generators or []:
            ray.kill(g)
    return m.data

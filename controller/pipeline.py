"""The whole loop on Ray: migrate → translate → iteration 0 (SFT on the verified
translations) → iterations 1..N (sample → SFT → DPO) with EX after each → the report.

`<run_dir>/pipeline.json` is the manifest: a stage listed there is complete and a re-run
skips it; a stage that was interrupted is run again and resumes from what its folder holds
(finished sample shards, training checkpoints). `<run_dir>/config.yaml` is the resolved
config of the run; a re-run whose config changes what the results mean is refused.

Generator replica actors live across iterations and load new weights with `reload` (a new
engine in the same actor) when the training workers fit beside them; when they do not (the
GPUs, or a laptop's CPUs, are taken by the replicas) the replicas are removed before
training and started again, on the new weights, afterwards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from exesql_ray.config import Config, dump_config
from exesql_ray.errors import UserError

# Settings that change what a finished stage's output means; the rest (servers, actor and
# worker counts, iterations) may change between a run and its resumption.
RESULT_KEYS = ("seed", "data.", "model.", "prompt.", "compare.", "sample.", "generation.n", "generation.temperature",
               "generation.top_p", "generation.max_tokens", "train.sft.", "train.dpo.", "pipeline.sample_base",
               "engines.targets")


class Manifest:
    """Finished stages with their key figures and seconds, rewritten after each stage."""

    def __init__(self, cfg: Config):
        self.path = Path(cfg.run_dir) / "pipeline.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"stages": {}}

    def done(self, name: str) -> bool:
        return name in self.data["stages"]

    def record(self, name: str, info: dict, seconds: float) -> None:
        self.data["stages"][name] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1),
                                     **info}
        from exesql_ray.io import write_json

        write_json(self.path, self.data, f"the manifest's record of stage {name}")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def pin_config(cfg: Config, progress=print) -> None:
    """Write `<run_dir>/config.yaml`; on a re-run, refuse a config that changes results."""
    path = Path(cfg.run_dir) / "config.yaml"
    text = dump_config(cfg)  # DSNs as ${VAR} references or with passwords hidden: no secret on disk
    new = _flat(yaml.safe_load(text))
    if path.is_file():
        old = _flat(yaml.safe_load(path.read_text()) or {})
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        bad = [k for k in changed if any(k == p or (p.endswith(".") and k.startswith(p)) for p in RESULT_KEYS)]
        if bad:
            raise UserError(f"{path}: this run was made with other settings for {', '.join(bad)} "
                            f"(was {', '.join(repr(old.get(k)) for k in bad)}); use another run_dir, or delete "
                            f"{path.parent} to start over")
        if changed:
            progress(f"resuming {cfg.run_dir} with changed settings: {', '.join(changed)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _dataset(cfg: Config, progress) -> dict:
    if cfg.data.dataset != "synth":
        return {"dataset": cfg.data.dataset, "path": cfg.data.path}
    from exesql_ray.data.synth import synthesize

    s = synthesize(cfg.data.path, seed=cfg.data.synth_seed, per_template=cfg.data.synth_per_template)
    progress(f"dataset synth at {cfg.data.path}: train {s['train']}, dev {s['dev']} questions")
    return {"dataset": "synth", "train": s["train"], "dev": s["dev"]}


def _training_fits_beside_generators(cfg: Config) -> bool:
    """Whether the Ray Train workers can be scheduled while the replicas hold their share;
    if not, the replicas go (else training waits for them forever) and come back after."""
    import ray

    t = cfg.train
    per = {"CPU": 1.0, "GPU": 1.0 if t.use_gpu else 0.0, **t.resources_per_worker}
    free = ray.available_resources()
    return all(free.get(k, 0.0) >= t.num_workers * v for k, v in per.items() if v > 0)


class Replicas:
    """The pipeline's generator replicas: started on first use, kept across stages (each stage
    reloads the weights it needs), removed before training when the trainer needs what they
    hold, and at the end."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.actors: list = []

    def replicas_for(self, model: Path) -> list:
        """Replicas serving `model` (started here, or reloaded by the stage itself)."""
        from actors.generator import start_generators

        if not self.actors:
            self.actors = start_generators(str(model), self.cfg.generation)
        return self.actors

    def make_room_for_training(self) -> None:
        if self.actors and not _training_fits_beside_generators(self.cfg):
            self.close()

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def __enter__(self) -> Replicas:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_stage(manifest: Manifest, name: str, func, progress) -> dict | None:
    """Run a stage unless the manifest lists it as done; record its figures and seconds."""
    if manifest.done(name):
        progress(f"{name}: done already (pipeline.json)")
        return None
    t0 = time.time()
    info = func()
    manifest.record(name, info, time.time() - t0)
    return info


SAMPLE_FIGURES = {"candidates", "pass_at_1", "pass_at_n", "pass_at_k", "frontier_share", "d_valid", "d_neg",
                  "dpo_pairs", "tokens"}
TRAIN_FIGURES = {"model", "rows", "sources", "global_step", "first", "last", "tokens", "train_seconds"}


def run_pipeline(cfg: Config, progress=print) -> dict:
    from controller.evaluate import run_eval_stage
    from controller.migrate import migrate_databases
    from controller.sample import run_sample_stage
    from controller.train import run_training
    from controller.translate import run_translate_stage
    from exesql_ray.evaluate import evaluated_model
    from exesql_ray.models import EMBEDDED, ensure_embedded
    from exesql_ray.report import write_report
    from exesql_ray.runs import ends_with_dpo, policy_for, uses_tiny_model
    from exesql_ray.tinymodel import build_for_run

    pin_config(cfg, progress)
    if cfg.engines.allow_writable_login:
        progress("WARNING: engines.allow_writable_login is on: a server login that could change the databases "
                 "is accepted for untrusted SQL")
    manifest = Manifest(cfg)

    def stage(name: str, func) -> None:
        run_stage(manifest, name, func, progress)

    with Replicas(cfg) as replicas:
        def evaluate(iteration: int | None) -> dict:
            ev = run_eval_stage(cfg, iteration, replicas.replicas_for(evaluated_model(cfg, iteration)),
                                progress=progress)
            progress(f"EX {ev.iteration}: {json.dumps(ev.ex())}")
            return {"model": ev.model, "ex": ev.ex()}

        def sample(k: int) -> dict:
            sa = run_sample_stage(cfg, k, replicas.replicas_for(policy_for(cfg, k)), progress=progress)
            return {e: s.model_dump(include=SAMPLE_FIGURES, by_alias=True) for e, s in sa.engines.items()}

        def train(k: int, which: str) -> dict:
            replicas.make_room_for_training()
            return run_training(cfg, k, which, progress=progress).model_dump(include=TRAIN_FIGURES)

        def translate() -> dict:
            return {e: s.to_dict() for e, s in run_translate_stage(cfg, progress=progress).engines.items()}

        stage("dataset", lambda: _dataset(cfg, progress))
        stage("migrate", lambda: {"databases": migrate_databases(cfg, progress)})
        stage("translate", translate)
        if uses_tiny_model(cfg):
            stage("model", lambda: {"tiny": str(build_for_run(cfg)[0])})
        elif cfg.model.path in EMBEDDED:  # once per machine; the manifest does not skip it
            ensure_embedded(cfg.model.path, progress)
        if cfg.pipeline.evaluate_base:
            stage("evaluate/base", lambda: evaluate(None))
        for k in range(cfg.pipeline.iterations + 1):
            if ends_with_dpo(cfg, k):
                stage(f"sample/iter-{k}", lambda k=k: sample(k))
            stage(f"sft/iter-{k}", lambda k=k: train(k, "sft"))
            if ends_with_dpo(cfg, k):  # DPO, or GRPO (train.method)
                stage(f"{cfg.train.method}/iter-{k}", lambda k=k: train(k, cfg.train.method))
            stage(f"evaluate/iter-{k}", lambda k=k: evaluate(k))

    t0 = time.time()  # rebuilt on every run, finished or resumed: it shows the latest numbers
    manifest.record("report", {"path": str(write_report(cfg.run_dir))}, time.time() - t0)
    return manifest.data

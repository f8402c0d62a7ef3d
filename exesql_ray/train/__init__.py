"""Stage 3: SFT then DPO for iteration k, on Ray Train `TorchTrainer` workers running TRL.

    iteration k samples from    policy_for(k)   (base model, then the model after k-1: runs.py)
    SFT  policy_for(k)        → train/iter-k/sft/model     on D_Valid(k) ∪ D_Trans
         (iteration 0 without sampling: D_Trans only, train.sft.first_epochs)
    DPO  train/iter-k/sft/model → train/iter-k/dpo/model   on the mined pairs, reference:
         policy_for(k) (train.dpo.reference: iteration_start) or the SFT model (sft)

A stage whose `model/` exists is done and skipped; one with checkpoints resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.errors import UserError
from exesql_ray.runs import policy_for, train_dir

DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"


def deepspeed_config(cfg: Config) -> dict | None:
    """The ZeRO config as a dict (it travels to the workers, wherever they run)."""
    t = cfg.train
    if t.strategy == "ddp":
        return None
    path = Path(t.deepspeed_config) if t.deepspeed_config else DEEPSPEED_DIR / f"{t.strategy}.json"
    if not path.is_file():
        raise UserError(f"train.deepspeed_config: {path} not found")
    try:
        ds = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"train.deepspeed_config: {path} is not valid JSON (line {e.lineno})") from None
    want = {"zero2": 2, "zero3": 3}[t.strategy]
    got = ds.get("zero_optimization", {}).get("stage")
    if got != want:
        raise UserError(f"train.strategy {t.strategy} but {path} has zero_optimization.stage {got}")
    return ds


def stage_paths(cfg: Config, iteration: int, stage: str) -> tuple[Path, Path, Path]:
    """(start model, reference model, output folder) of one stage."""
    start = policy_for(cfg, iteration)
    out = train_dir(cfg, iteration) / stage
    if stage == "sft":
        return start, start, out
    sft = train_dir(cfg, iteration) / "sft" / "model"
    if not (sft / "config.json").is_file():
        raise UserError(f"DPO iteration {iteration} starts from {sft}, which holds no model "
                        f"(run `exesql-ray train sft --iteration {iteration}` first)")
    return sft, (start if cfg.train.dpo.reference == "iteration_start" else sft), out


def prepare_rows(cfg: Config, iteration: int, stage: str, start: Path) -> tuple[list[dict], dict]:
    from transformers import AutoTokenizer

    from exesql_ray.train.data import dpo_rows, sft_rows, within_length

    rows, counts = sft_rows(cfg, iteration) if stage == "sft" else dpo_rows(cfg, iteration)
    s = cfg.train.sft if stage == "sft" else cfg.train.dpo
    rows, too_long = within_length(rows, AutoTokenizer.from_pretrained(str(start)), s.max_length, stage)
    if not rows:
        raise UserError(f"{stage} iteration {iteration}: every row is longer than train.{stage}.max_length="
                        f"{s.max_length} tokens")
    for i, r in enumerate(rows):
        r["key"] = i
    return rows, {"sources": dict(counts), "dropped_too_long": too_long, "rows": len(rows)}


def run_training(cfg: Config, iteration: int, stage: str, progress=print) -> dict:
    """Train one stage on Ray Train (Ray must be initialised); returns its summary."""
    import ray
    from ray.train import DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from exesql_ray.train.loops import dpo_loop, sft_loop

    if stage not in ("sft", "dpo"):
        raise UserError(f"train stage {stage!r}: expected sft or dpo")
    start, reference, out = stage_paths(cfg, iteration, stage)
    if not (start / "config.json").is_file():
        raise UserError(f"{stage} iteration {iteration} starts from {start}, which holds no model")
    summary_path = out / "summary.json"
    if (out / "model" / "config.json").is_file() and summary_path.is_file():
        progress(f"train {stage} iteration {iteration}: done already ({out / 'model'})")
        return json.loads(summary_path.read_text())
    t0 = time.time()
    ds_config = deepspeed_config(cfg)  # a bad ZeRO config fails before any data is read
    rows, data_info = prepare_rows(cfg, iteration, stage, start)
    t = cfg.train
    s = t.sft if stage == "sft" else t.dpo
    out.mkdir(parents=True, exist_ok=True)
    loop_config = {"model": str(start.resolve()), "reference": str(reference.resolve()), "out": str(out.resolve()),
                   "stage": _stage_settings(s, stage, iteration), "bf16": t.bf16, "use_gpu": t.use_gpu,
                   "gradient_checkpointing": t.gradient_checkpointing, "seed": cfg.seed,
                   "deepspeed": ds_config, "beta": getattr(s, "beta", None)}
    progress(f"train {stage} iteration {iteration}: {data_info['rows']} rows ({data_info['sources']}), "
             f"{t.num_workers} workers, {t.strategy}, from {start}")
    trainer = _interruptible(TorchTrainer)(
        sft_loop if stage == "sft" else dpo_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=t.num_workers, use_gpu=t.use_gpu,
                                     resources_per_worker=t.resources_per_worker or None),
        datasets={"train": ray.data.from_items(rows)},
        dataset_config=DataConfig(datasets_to_split=[]),
        run_config=RunConfig(name=f"{stage}-iter-{iteration}", storage_path=str((out / "ray").resolve()),
                             failure_config=FailureConfig(max_failures=t.max_failures),
                             worker_runtime_env={"env_vars": {"OMP_NUM_THREADS": str(t.threads_per_worker)}}),
    )
    with _progress_lines(out / "metrics.jsonl", f"train {stage} iteration {iteration}", progress), \
            _sigint_restored():
        try:
            trainer.fit()
        except Exception:
            if trainer.interrupted:  # the abort ends the controller: fit raises that it died
                raise KeyboardInterrupt from None
            raise
    if trainer.interrupted:  # the workers were stopped; their last checkpoint stays for a re-run
        raise KeyboardInterrupt
    info = json.loads((out / "model" / "exesql_train.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = {"stage": stage, "iteration": iteration, "model": str(out / "model"), "from": str(start),
               "reference": str(reference) if stage == "dpo" else None, "strategy": t.strategy,
               "workers": t.num_workers, **data_info, "resumed_from": info.get("resumed_from"),
               "global_step": info.get("global_step"),
               "max_steps": info.get("max_steps"), "seconds": round(time.time() - t0, 1),
               "first": _first_last(metrics, first=True), "last": _first_last(metrics, first=False)}
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def _interruptible(trainer_class):
    """The trainer with Ctrl-C as an interrupt of the whole command. Ray Train's `fit` sets a
    SIGINT handler of its own that aborts the run and returns as if it had ended (a third
    Ctrl-C exits 0): here the handler aborts the run and notes it, and `run_training` raises
    KeyboardInterrupt once `fit` has returned. (Ray's hook is private: if it is renamed, Ray's
    own handler applies, and `_sigint_restored` still removes it after `fit`.)"""

    class Interruptible(trainer_class):
        interrupted = False

        def _register_sigint_handler(self, controller):
            import ray

            def on_sigint(signum, frame):
                self.interrupted = True
                try:
                    ray.get(controller.abort.remote())
                except ray.exceptions.RayError:
                    pass  # the controller is gone already

            signal.signal(signal.SIGINT, on_sigint)

    return Interruptible


@contextlib.contextmanager
def _sigint_restored():
    """Ray Train leaves its SIGINT handler installed after `fit`; Ctrl-C during a later stage
    would then abort a finished training run and be otherwise ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _progress_lines(metrics: Path, what: str, progress, every_s: float = 20.0):
    """While the workers train, a line every `every_s` from the metrics file rank 0 appends:
    step of steps, loss, time spent and left (the workers' own logs stay in Ray's folder)."""
    stop = threading.Event()
    t0 = time.time()
    start = metrics.stat().st_size if metrics.is_file() else 0  # a resumed stage appends

    def watch():
        last = None
        while not stop.wait(every_s):
            try:
                with open(metrics) as f:
                    f.seek(start)
                    rows = [json.loads(x) for x in f.read().splitlines() if x.strip()]
            except (OSError, ValueError):
                continue
            rows = [r for r in rows if "loss" in r and "max_steps" in r]
            if not rows or rows[-1]["step"] == last:
                continue
            r = rows[-1]
            last, first = r["step"], rows[0]["step"]
            spent = time.time() - t0
            done = max(1, r["step"] - first + 1)
            eta = spent / done * (r["max_steps"] - r["step"])
            progress(f"  {what}: step {r['step']}/{r['max_steps']}, loss {r['loss']:.4f}, {spent:.0f} s, "
                     f"ETA {eta:.0f} s")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _stage_settings(s, stage: str, iteration: int) -> dict:
    d = s.model_dump()
    if stage == "sft" and iteration == 0 and d.get("first_epochs"):
        d["epochs"] = d["first_epochs"]
    return d


HEADLINE = ("loss", "rewards/margins", "rewards/accuracies")


def _first_last(metrics: list[dict], first: bool, window: int = 3) -> dict:
    """Mean of the first (or last) few logged steps for the headline metrics."""
    steps = [m for m in metrics if "loss" in m and "train_runtime" not in m]
    part = steps[:window] if first else steps[-window:]
    return {k: round(sum(m[k] for m in part) / len(part), 4) for k in HEADLINE if part and all(k in m for m in part)}

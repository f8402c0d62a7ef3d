"""Stage 3 on Ray Train: one stage (SFT, DPO or GRPO of iteration k) as `TorchTrainer` workers running
the library's loops (`exesql_ray/train/loops.py`) on the library's plan; progress lines from
the metrics rank 0 writes; Ctrl-C stops the workers and the command (their last checkpoint
stays for a re-run). GRPO also gets one executor actor per engine, started here and handed to
the workers, for its reward function."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
import json
import signal
import threading
import time
from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.errors import disk_full_under
from exesql_ray.summaries import TrainSummary
from exesql_ray.train import finished, plan_training, summarize_training


def run_training(cfg: Config, iteration: int, stage: str, progress=print) -> TrainSummary:
    """Train one stage on Ray Train (Ray must be initialised); returns its summary."""
    import ray
    from ray.train import DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from exesql_ray.train.loops import dpo_loop, grpo_loop, sft_loop

    done = finished(cfg, iteration, stage)
    if done is not None:
        progress(f"train {stage} iteration {iteration}: done already ({done.model})")
        return done
    t0 = time.time()
    p = plan_training(cfg, iteration, stage)
    start, out, rows, data_info, t = p.start, p.out, p.rows, p.data_info, cfg.train
    out.mkdir(parents=True, exist_ok=True)
    progress(f"train {stage} iteration {iteration}: {data_info['rows']} rows ({data_info['sources']}), "
             f"{t.num_workers} workers, {t.strategy}, from {start}")
    executors = start_reward_executors(cfg, rows) if stage == "grpo" else {}
    trainer = _interruptible(TorchTrainer)(
        {"sft": sft_loop, "dpo": dpo_loop, "grpo": grpo_loop}[stage],
        train_loop_config={**asdict(p.settings), "executors": executors},
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
        except Exception as e:
            if trainer.interrupted:  # the abort ends the controller: fit raises that it died
                raise KeyboardInterrupt from None
            full = disk_full_under(out, _checkpoint_bytes(start))
            if full is not None:
                raise full from e
            raise
        finally:
            for actor in executors.values():
                ray.kill(actor)
    if trainer.interrupted:  # the workers were stopped; their last checkpoint stays for a re-run
        raise KeyboardInterrupt
    return summarize_training(cfg, p, time.time() - t0)


def _checkpoint_bytes(model: Path) -> int:
    """About what one checkpoint of `model` takes, at most: float32 weights (twice the size of
    bf16 ones as stored) and Adam's two moments."""
    weights = sum(f.stat().st_size for f in Path(model).glob("*.safetensors"))
    return 6 * weights


def start_reward_executors(cfg: Config, rows: list[dict]) -> dict:
    """One executor actor per engine GRPO's questions use (actors/executor.py ExecuteBatch, the
    sampling stage's own), restarted by Ray if it dies; the reward function calls `records`."""
    import ray

    from actors.executor import ExecuteBatch
    from exesql_ray.engines import open_engine

    engines = sorted({r["engine"] for r in rows})
    for engine in engines:  # a database not migrated, a server down: one line here, not in a worker
        open_engine(engine, cfg).close()
    actor = ray.remote(ExecuteBatch)
    out = {}
    for engine in engines:
        out[engine] = actor.options(num_cpus=cfg.execution.actor_num_cpus.get(engine, 0.25), max_restarts=-1,
                                    max_task_retries=-1).remote(
            engine, cfg.model_dump(mode="json"), labels={"stage": "grpo", "iteration": ""})
    return out


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

"""Training throughput on CPU: 1 vs 2 Ray Train workers (DDP) and 2 workers under DeepSpeed
ZeRO-2, side by side in one run.

    .venv/bin/python bench/train.py

Data: what the earlier stages wrote for the first Spider dev questions (bench/sample.py's
setup: translations verified on PostgreSQL and DuckDB, best-of-8 samples of the tiny model):
SFT on D_Valid ∪ D_Trans. Model: the tiny model built from Spider dev's corpus. Each figure is
trained tokens (prompt + completion, TRL's `num_tokens`, all workers) over the trainer's own
`train_runtime` (start-up excluded), same rows, same per-worker batch, BENCH_EPOCHS epochs.
Last line: {"tokens_per_s": {"ddp_1": a, "ddp_2": b, "zero2_2": c}}.
"""

from __future__ import annotations

import json
import os
import shutil

EPOCHS = os.environ.get("BENCH_EPOCHS", "1")
RUNS = {"ddp_1": ["train.num_workers=1"], "ddp_2": ["train.num_workers=2"],
        "zero2_2": ["train.num_workers=2", "train.strategy=zero2"]}


def main() -> None:
    import ray

    from controller.sample import run_sample_stage
    from bench.sample import RUN, bench_config, setup
    from controller.train import run_training

    cfg = setup([f"model.path={RUN / 'model' / 'tiny'}"])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    run_sample_stage(cfg, 0, progress=lambda m: None)  # skipped when bench/sample.py wrote it
    rates = {}
    for name, extra in RUNS.items():
        run = RUN / "bench-train" / name
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(RUN / "sample" / "iter-0", run / "sample" / "iter-0")
        shutil.copytree(RUN / "d_trans", run / "d_trans")
        # stages 1-2 are done (copied above): only the run's training settings differ
        c = bench_config([f"model.path={RUN / 'model' / 'tiny'}", f"run_dir={run}", f"train.sft.epochs={EPOCHS}",
                   "train.sft.save_steps=100000", *extra])
        s = run_training(c, 0, "sft", progress=lambda m: None)
        metrics = [json.loads(line) for line in (run / "train" / "iter-0" / "sft" / "metrics.jsonl").read_text().splitlines()]
        tokens = max(m.get("num_tokens", 0) for m in metrics)
        runtime = next(m["train_runtime"] for m in metrics if "train_runtime" in m)
        rates[name] = round(tokens / runtime, 1)
        print(f"{name}: {s.rows} rows, {s.global_step} steps, {tokens:.0f} tokens in {runtime:.1f} s "
              f"→ {rates[name]:.0f} tokens/s (loss {s.first.get('loss')} → {s.last.get('loss')})", flush=True)
    print(f"2 workers over 1 (DDP): {rates['ddp_2'] / rates['ddp_1']:.2f}×; ZeRO-2 over DDP (2 workers): "
          f"{rates['zero2_2'] / rates['ddp_2']:.2f}×")
    print(json.dumps({"tokens_per_s": rates}))


if __name__ == "__main__":
    main()

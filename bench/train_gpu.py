"""SFT then DPO under Ray Train on one CUDA GPU, bf16: DDP against DeepSpeed ZeRO-3.

    python bench/train_gpu.py          # on a machine with a CUDA GPU

It checks the GPU path of stage 3 (`controller.train.run_training`: TorchTrainer, NCCL, TRL's
SFT and DPO trainers, ZeRO-3 partitioning and the 16-bit gather at save) and measures it.
Data: what bench/sample.py left in .run/bench-sample (the verified translations and best-of-8
samples of its first Spider dev questions; BENCH_RUN elsewhere). Model: nothing is downloaded,
so it is a random-init Qwen2 of GPU_BENCH_HIDDEN × GPU_BENCH_LAYERS (default 1024 × 12,
≈150M parameters) over that run's tokenizer: throughput and memory are what this measures,
not quality. Each figure is trained tokens (TRL's `num_tokens`) over the trainer's own
`train_runtime`; peak memory is `torch.cuda.max_memory_allocated` on the worker.
Last line: {"gpu": …, "params_m": …, "tokens_per_s": {run: x}, "peak_gib": {run: x},
"loss": {run: [first, last]}}.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from common import ROOT  # bench/common.py
SOURCE = Path(os.environ.get("BENCH_RUN", ROOT / ".run" / "bench-sample"))
HIDDEN = int(os.environ.get("GPU_BENCH_HIDDEN", "1024"))
LAYERS = int(os.environ.get("GPU_BENCH_LAYERS", "12"))
EPOCHS = os.environ.get("BENCH_EPOCHS", "3")
GPU = ["train.use_gpu=true", "train.bf16=true", "train.num_workers=1", "train.resources_per_worker={CPU: 2, GPU: 1}",
       "train.sft.batch_size=8", "train.sft.grad_accum=1", "train.dpo.batch_size=4", "train.dpo.grad_accum=1",
       f"train.sft.epochs={EPOCHS}", "train.sft.first_epochs=null", "train.dpo.epochs=1", "train.dpo.max_pairs_per_question=4",
       "train.sft.save_steps=100000", "train.dpo.save_steps=100000", "train.sft.learning_rate=1e-4",
       "train.dpo.learning_rate=5e-6"]
RUNS = {"ddp": ["train.strategy=ddp"], "zero3": ["train.strategy=zero3"]}


def build_model(out: Path) -> float:
    """A random-init Qwen2 of the bench's size over the run's tokenizer; millions of parameters."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tiny = SOURCE / "model" / "tiny"
    config = AutoConfig.from_pretrained(tiny)
    config.update({"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HIDDEN // 64,
                   "num_key_value_heads": max(1, HIDDEN // 256), "intermediate_size": 4 * HIDDEN,
                   "head_dim": 64, "layer_types": ["full_attention"] * LAYERS})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(out)
    return sum(p.numel() for p in model.parameters()) / 1e6


def main() -> None:
    import ray
    import torch

    from bench.sample import bench_config
    from controller.train import run_training

    if not torch.cuda.is_available():
        sys.exit("bench/train_gpu.py: no CUDA GPU visible (torch.cuda.is_available() is False)")
    for need in ("d_trans", "sample/iter-0", "model/tiny/tokenizer.json"):
        if not (SOURCE / need).exists():
            sys.exit(f"bench/train_gpu.py: {SOURCE / need} is missing: run bench/sample.py first (or set BENCH_RUN)")
    gpu = torch.cuda.get_device_name(0)
    work = SOURCE / "bench-train-gpu"
    shutil.rmtree(work, ignore_errors=True)
    params = build_model(work / "base")
    print(f"{gpu}: random-init Qwen2 {HIDDEN}×{LAYERS}, {params:.0f}M parameters", flush=True)
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    rates, peaks, losses = {}, {}, {}
    for name, extra in RUNS.items():
        run = work / name
        shutil.copytree(SOURCE / "sample" / "iter-0", run / "sample" / "iter-0")
        shutil.copytree(SOURCE / "d_trans", run / "d_trans")
        cfg = bench_config([f"run_dir={run}", f"model.path={work / 'base'}", *GPU, *extra])
        for stage in ("sft", "dpo"):
            s = run_training(cfg, 0, stage, progress=lambda m: None)
            out = run / "train" / "iter-0" / stage
            metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            info = json.loads((out / "model" / "exesql_train.json").read_text())
            runtime = next(m["train_runtime"] for m in metrics if "train_runtime" in m)
            tokens = max(m.get("num_tokens", 0) for m in metrics)
            key = f"{stage}_{name}"
            rates[key] = round(tokens / runtime, 1)
            peaks[key] = info.get("peak_gpu_gib")
            losses[key] = [s.first.get("loss"), s.last.get("loss")]
            extra_dpo = f", reward accuracy {s.last.get('rewards/accuracies')}" if stage == "dpo" else ""
            print(f"{key}: {s.rows} rows, {s.global_step} steps, {tokens:.0f} tokens in {runtime:.1f} s → "
                  f"{rates[key]:.0f} tokens/s, peak {peaks[key]} GiB, loss {losses[key][0]} → {losses[key][1]}"
                  f"{extra_dpo} ({s.seconds} s with start-up)", flush=True)
    print(f"ZeRO-3 over DDP on 1 GPU: SFT {rates['sft_zero3'] / rates['sft_ddp']:.2f}×, "
          f"DPO {rates['dpo_zero3'] / rates['dpo_ddp']:.2f}×")
    print(json.dumps({"gpu": gpu, "params_m": round(params, 1), "tokens_per_s": rates, "peak_gib": peaks,
                      "loss": losses}))


if __name__ == "__main__":
    main()

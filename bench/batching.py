"""SFT batches: random against length-grouped, side by side on the same rows, and where a
training step's time goes (a fixed part and a part per token).

    .venv/bin/python bench/batching.py [--rows 96]

SmolLM2-135M-Instruct, bf16 autocast on CPU, TRL's SFTTrainer in this process (the loop our
Ray Train workers run, without Ray), batch 8; rows: the verified DuckDB translations of the
learning bench's Spider train questions (its run folder, else stage 1 is needed first). Each
arm trains a fresh copy of the model for one epoch on the same rows with the same seed; the
arms alternate (random, grouped, random, grouped) so that a slow minute of this shared machine
falls on both. Per step: its wall time and the tokens of its batch (padding included), fitted
as time = fixed + tokens × per_token (least squares over both arms' steps).
Last line: {"grouped_over_random": r, "padding_share": {"random": x, "grouped": y},
"step_fixed_s": a, "step_per_1k_tokens_s": b}.
"""

from __future__ import annotations

import argparse
import json
import time

from common import LEARNING_RUN as RUN  # bench/common.py
from common import learning_rows


def sft_rows(n: int) -> list[dict]:
    """The first `n` of iteration 0's SFT rows of the learning bench's run (its verified translations)."""
    return learning_rows("sft", 0, n, needs="d_trans")


def train_arm(rows: list[dict], model: str, grouped: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from exesql_ray.train.data import conversational
    from exesql_ray.train.loops import TokenCount, _length_grouped, cpu_has_bf16
    from exesql_ray.train.settings import WorkerSettings

    torch.set_num_threads(2)
    seconds: list[float] = []  # per step (one batch a step: no gradient accumulation)

    class PerBatch(TokenCount):
        """TokenCount that also keeps each batch's size, padding included."""

        def __init__(self, collate):
            super().__init__(collate)
            self.sizes: list[int] = []

        def __call__(self, features):
            batch = super().__call__(features)
            self.sizes.append(int(batch["input_ids"].numel()))
            return batch

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            seconds.append(time.perf_counter() - self.t0)

    args = SFTConfig(output_dir=str(RUN / "bench" / "batching"), num_train_epochs=1, learning_rate=1e-4,
                     per_device_train_batch_size=8, max_length=768, logging_steps=1, save_strategy="no",
                     report_to=[], bf16=cpu_has_bf16(), use_cpu=True, disable_tqdm=True, completion_only_loss=True,
                     model_init_kwargs={"dtype": "float32"}, seed=0, data_seed=0,
                     gradient_checkpointing=False)  # as our loop (train.gradient_checkpointing); TRL's default is on
    settings = WorkerSettings(stage="sft", model=model, reference=model, out="", hyper={}, seed=0, bf16="auto",
                              use_gpu=False, length_grouped=grouped)
    trainer = _length_grouped(SFTTrainer, settings)(
        model=model, args=args, train_dataset=Dataset.from_list([conversational(r, "sft") for r in rows]),
        processing_class=AutoTokenizer.from_pretrained(model), callbacks=[StepTimes()])
    counter = trainer.data_collator = PerBatch(trainer.data_collator)
    result = trainer.train()
    steps = [{"s": s, "tokens": n} for s, n in zip(seconds, counter.sizes)]
    return {"seconds": result.metrics["train_runtime"], "tokens": counter.totals, "steps": steps}


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / max(1e-9, sum((x - mx) ** 2 for x, _ in points))
    return my - b * mx, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=96)
    args = ap.parse_args()
    from exesql_ray.models import DEFAULT_MODEL, ensure_embedded

    model = str(ensure_embedded(DEFAULT_MODEL, lambda m: None))
    rows = sft_rows(args.rows)
    arms: dict[str, list[dict]] = {"random": [], "grouped": []}
    for name in ("random", "grouped", "random", "grouped"):
        arms[name].append(train_arm(rows, model, grouped=name == "grouped"))
        r = arms[name][-1]
        real = r["tokens"]["prompt"] + r["tokens"]["completion"]
        print(f"{name}: {len(r['steps'])} steps, {real} tokens + {r['tokens']['padding']} padding in "
              f"{r['seconds']:.1f} s → {real / r['seconds']:.1f} real tokens/s", flush=True)
    secs = {k: sum(r["seconds"] for r in v) for k, v in arms.items()}
    pad = {k: round(sum(r["tokens"]["padding"] for r in v)
                    / sum(r["tokens"]["prompt"] + r["tokens"]["completion"] + r["tokens"]["padding"] for r in v), 3)
           for k, v in arms.items()}
    points = [(s["tokens"], s["s"]) for v in arms.values() for r in v for s in r["steps"] if s["tokens"] > 0]
    fixed, per_token = fit(points)
    ratio = secs["random"] / secs["grouped"]
    print(f"grouped batches over random ones, same rows: {ratio:.2f}× the speed; padding {pad['random']:.0%} → "
          f"{pad['grouped']:.0%} of the tokens computed")
    print(f"a step costs {fixed:.2f} s + {per_token * 1000:.2f} s per 1,000 tokens of its batch "
          f"(fit over {len(points)} steps)")
    print(json.dumps({"grouped_over_random": round(ratio, 3), "padding_share": pad, "step_fixed_s": round(fixed, 3),
                      "step_per_1k_tokens_s": round(per_token * 1000, 3)}))


if __name__ == "__main__":
    main()

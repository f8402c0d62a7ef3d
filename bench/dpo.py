"""DPO's cost: each pair's prompt read once, against the rows read whole, side by side.

    .venv/bin/python bench/dpo.py [--pairs 64]

SmolLM2-135M-Instruct (the learning bench's iteration-2 SFT model when its run folder has it,
else the embedded base model), bf16 autocast on CPU, TRL's DPOTrainer in this process (the loop
our Ray Train workers run, without Ray), batch 4, the reference log-probs computed once before
training (configs/spider_cpu.yaml); rows: the first pairs of the learning bench's iteration-2
DPO data (its own passing answers against failing ones, the gold where none passed). Arms:
- before: the loop as it was: TRL's fused LM head for the reference pass (it runs inside the
  trainer's constructor, before the compact head was patched in), then the compact head in
  training, every row read whole (prompt + chosen, prompt + rejected);
- after: the compact head from the start, each pair's prompt read once (exesql_ray/train/lm_head.py).
Each arm trains a fresh copy of the model for one epoch on the same rows with the same seed;
the arms alternate (before, after, before, after). Printed: the reference pass's and the
training's seconds, tokens/s counting every row's tokens (what the rows hold), and how far the
arms' reference log-probs and per-step losses differ (they compute the same function).
Last line: {"after_over_before": r, "reference_pass_ratio": r, "training_ratio": r,
"max_ref_logp_diff": d, "max_loss_diff": d, "pairs": n}.
"""

from __future__ import annotations

import argparse
import json
import time

from common import LEARNING_RUN as RUN  # bench/common.py
from common import learning_rows


def dpo_rows(n: int) -> list[dict]:
    """The first `n` of iteration 2's DPO pairs of the learning bench's run."""
    return learning_rows("dpo", 2, n, needs="sample/iter-2/dpo_pairs")


def train_arm(rows: list[dict], model: str, shared: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from exesql_ray.train.data import conversational
    from exesql_ray.train.lm_head import compact_fused_lm_head
    from exesql_ray.train.loops import TokenCount, _compact_heads, _length_grouped, _text_length, cpu_has_bf16
    from exesql_ray.train.settings import WorkerSettings

    torch.set_num_threads(2)
    data = sorted((conversational(r, "dpo") for r in rows), key=_text_length)  # as dpo_loop orders them
    args = DPOConfig(output_dir=str(RUN / "bench" / "dpo"), num_train_epochs=1, learning_rate=1e-5, beta=0.1,
                     per_device_train_batch_size=4, max_length=768, logging_steps=1, save_strategy="no",
                     report_to=[], bf16=cpu_has_bf16(), use_cpu=True, disable_tqdm=True, seed=0, data_seed=0,
                     gradient_checkpointing=False,  # as train.gradient_checkpointing (the shared path needs it off)
                     model_init_kwargs={"dtype": torch.float32}, precompute_ref_log_probs=True,
                     precompute_ref_batch_size=16, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0])
    settings = WorkerSettings(stage="dpo", model=model, reference=model, out="", hyper={}, seed=0, bf16="auto",
                              use_gpu=False, length_grouped=True)
    trainer_class = _length_grouped(DPOTrainer, settings)
    if shared:
        trainer_class = _compact_heads(trainer_class, shared_prompt=True)
    t0 = time.perf_counter()
    # a fingerprint of its own: TRL caches reference log-probs by dataset and weights, and would
    # hand a later arm in this process the first arm's instead of computing them
    rows_ds = Dataset(Dataset.from_list(data).data, fingerprint=f"bench-dpo-{time.time_ns()}")
    trainer = trainer_class(model=model, args=args, train_dataset=rows_ds,
                            processing_class=AutoTokenizer.from_pretrained(model))
    built = time.perf_counter() - t0  # loading, tokenizing and the reference pass
    compact_fused_lm_head(trainer.model, shared_prompt=shared)
    counter = trainer.data_collator = TokenCount(trainer.data_collator)
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    ref = list(trainer.train_dataset["ref_chosen_logps"]) + list(trainer.train_dataset["ref_rejected_logps"])
    return {"built_s": built, "train_s": result.metrics["train_runtime"], "tokens": counter.totals,
            "losses": losses, "ref_logps": ref}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=64)
    args = ap.parse_args()
    from exesql_ray.models import DEFAULT_MODEL, ensure_embedded

    trained = RUN / "train" / "iter-2" / "sft" / "model"
    model = str(trained if (trained / "config.json").is_file() else ensure_embedded(DEFAULT_MODEL, lambda m: None))
    rows = dpo_rows(args.pairs)
    print(f"{len(rows)} pairs, model {model}", flush=True)
    arms: dict[str, list[dict]] = {"before": [], "after": []}
    for name in ("before", "after", "before", "after"):
        r = train_arm(rows, model, shared=name == "after")
        arms[name].append(r)
        real = r["tokens"]["prompt"] + r["tokens"]["completion"]
        print(f"{name}: constructor (reference pass included) {r['built_s']:.1f} s, training {r['train_s']:.1f} s, "
              f"{real} row tokens → {real / r['train_s']:.1f} tokens/s in training", flush=True)
    total = {k: sum(r["built_s"] + r["train_s"] for r in v) for k, v in arms.items()}
    built = {k: sum(r["built_s"] for r in v) for k, v in arms.items()}
    train = {k: sum(r["train_s"] for r in v) for k, v in arms.items()}
    ref_diff = max(abs(a - b) for x in arms["before"] for y in arms["after"]
                   for a, b in zip(x["ref_logps"], y["ref_logps"]))
    loss_diff = max(abs(a - b) for x in arms["before"] for y in arms["after"] for a, b in zip(x["losses"], y["losses"]))
    ratio = total["before"] / total["after"]
    print(f"each prompt read once, against whole rows, same pairs: {ratio:.2f}× the speed of the stage "
          f"(reference pass and start {built['before'] / built['after']:.2f}×, training "
          f"{train['before'] / train['after']:.2f}×)")
    print(f"the arms agree: reference log-probs differ by at most {ref_diff:.4f} nats, per-step losses by "
          f"{loss_diff:.4f}")
    print(json.dumps({"after_over_before": round(ratio, 3),
                      "reference_pass_ratio": round(built["before"] / built["after"], 3),
                      "training_ratio": round(train["before"] / train["after"], 3),
                      "max_ref_logp_diff": round(ref_diff, 5), "max_loss_diff": round(loss_diff, 5),
                      "pairs": len(rows)}))


if __name__ == "__main__":
    main()

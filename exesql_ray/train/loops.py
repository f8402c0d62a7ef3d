"""`train_loop_per_worker` for SFT, DPO and GRPO: TRL trainers inside Ray Train workers.

Ray Train starts the workers and the process group (gloo on CPU, NCCL on GPUs); TRL's trainer
(a transformers Trainer) runs DDP or DeepSpeed ZeRO in it. Every worker reads the whole
dataset with `ray.train.get_dataset_shard` (the trainer is built with `datasets_to_split=[]`)
and the trainer's distributed sampler gives each rank its part: splitting in both places would
leave each rank 1/world² of the rows.

Checkpoints: the trainer saves every `save_steps` under `<stage>/checkpoints`; a restarted
run (a crash, a killed job, Ray Train's own retry) resumes from the newest one. The final
model is written with `save_pretrained` + the tokenizer to `<stage>/model` (atomically), which
is what the generator replicas load.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from exesql_ray.train.data import conversational, length_grouped_order, phased_order
from exesql_ray.train.lm_head import compact_fused_lm_head
from exesql_ray.train.settings import WorkerSettings


def _rows_from_shard() -> list[dict]:
    import ray.train

    rows = list(ray.train.get_dataset_shard("train").iter_rows())
    # the same order on every rank: the distributed sampler splits by position
    return sorted(rows, key=lambda r: r["key"])


def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(c: WorkerSettings) -> bool:
    """train.bf16 on this worker: `auto` asks the device it runs on."""
    if c.bf16 != "auto":
        return bool(c.bf16)
    if c.use_gpu:
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def weights_dtype(c: WorkerSettings) -> str:
    """bf16 weights on GPUs; on CPU float32 weights under bf16 autocast (Trainer's bf16 on
    CPU), which keeps the optimizer's updates exact."""
    return "bfloat16" if c.use_gpu and use_bf16(c) else "float32"


def _common_args(c: WorkerSettings, out: Path) -> dict:
    s = c.hyper
    args = dict(output_dir=str(out / "checkpoints"), num_train_epochs=s["epochs"], learning_rate=s["learning_rate"],
                per_device_train_batch_size=s["batch_size"], gradient_accumulation_steps=s["grad_accum"],
                warmup_steps=s["warmup_ratio"],  # below 1: transformers reads it as a share of the steps
                max_length=s["max_length"], logging_steps=1,
                save_strategy="steps", save_steps=s["save_steps"], save_total_limit=2, report_to=[],
                bf16=use_bf16(c), use_cpu=not c.use_gpu, seed=c.seed, data_seed=c.seed,
                lr_scheduler_type="cosine", dataloader_num_workers=0, disable_tqdm=True,
                gradient_checkpointing=c.gradient_checkpointing, remove_unused_columns=True)
    if c.deepspeed:
        args["deepspeed"] = c.deepspeed
    return args


def _init_distributed(c: WorkerSettings) -> None:
    """ZeRO-3 under Ray Train needs DeepSpeed's own view of the process group, made before
    any model is built (docs/platform.md: else from_pretrained sees world size 1)."""
    if c.deepspeed:
        import deepspeed

        deepspeed.init_distributed(dist_backend="nccl" if c.use_gpu else "gloo")


REPORT_EVERY_STEPS = 10


def _report_callback(path: Path):
    """Each trainer log line to Ray Train (the dashboard) and, on rank 0, to metrics.jsonl."""
    from transformers import TrainerCallback

    class ReportToRay(TrainerCallback):
        parent = os.getppid()  # the raylet that started this worker

        def on_step_end(self, args, state, control, **kw):
            # Orphaned (its raylet killed with the driver), a worker would train on until the
            # next report barrier and could write a checkpoint beside a re-run's: stop now.
            if os.getppid() != self.parent:
                os._exit(1)

        def on_log(self, args, state, control, logs=None, **kw):
            import ray.train

            logs = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            logs["step"] = state.global_step
            logs["max_steps"] = state.max_steps
            if state.is_world_process_zero:
                with open(path, "a") as f:
                    f.write(json.dumps(logs) + "\n")
            # ray.train.report is a barrier across the workers: every few steps (the same on
            # every rank, else they wait for each other forever), not every step
            if state.global_step % REPORT_EVERY_STEPS == 0 or state.global_step >= state.max_steps:
                ray.train.report(logs)

    return ReportToRay()


class TokenCount:
    """Wraps a TRL collator: counts the prompt, completion and padding tokens of every batch it
    builds (the cost a stage pays; padding is the part a packed batch would not).
    `shared_prompt`: DPO reads a pair's prompt once (lm_head.py); `prompt_shared` counts the
    prompt tokens its rows hold that the backbone did not read again."""

    def __init__(self, collate, shared_prompt: bool = False):
        self.collate = collate
        self.shared_prompt = shared_prompt
        self.totals = {"prompt": 0, "completion": 0, "padding": 0, "prompt_shared": 0}

    def __call__(self, features):
        batch = self.collate(features)
        ids, mask = batch.get("input_ids"), batch.get("attention_mask")
        if ids is None:
            return batch
        real = int(mask.sum()) if mask is not None else ids.numel()
        if "completion_mask" in batch:  # DPO
            completion = int(batch["completion_mask"].sum())
        elif "labels" in batch:  # SFT with completion_only_loss: the prompt's labels are -100
            completion = int((batch["labels"] != -100).sum())
        else:
            completion = 0
        self.totals["padding"] += ids.numel() - real
        self.totals["completion"] += completion
        self.totals["prompt"] += real - completion
        if self.shared_prompt and "completion_mask" in batch:
            self.totals["prompt_shared"] += (real - completion) // 2
        return batch


def _count_tokens(trainer, shared_prompt: bool = False) -> TokenCount:
    counter = TokenCount(trainer.data_collator, shared_prompt)
    trainer.data_collator = counter
    return counter


class EpochOrder:
    """A sampler over `order(seed)`: the same order on every rank (the distributed dataloader
    deals its batches out), a new one each epoch (the seed plus the epoch)."""

    def __init__(self, size: int, order, seed: int):
        self.size, self.order, self.seed, self.epoch = size, order, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return iter(self.order(self.seed + self.epoch))


def _row_lengths(dataset) -> list[int]:
    """Tokens a tokenized row puts in a batch: SFT's input_ids; DPO's prompt with the longer of
    its two answers (the pair is padded as one)."""
    if "input_ids" in dataset.column_names:
        return [len(x) for x in dataset["input_ids"]]
    return [len(p) + max(len(c), len(r)) for p, c, r in
            zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])]


def _batch_order(trainer_class, c: WorkerSettings, phases: list[int] | None = None):
    """`trainer_class` whose training batches group rows of similar length (train.length_grouped),
    or keep rows of several phases in phase order."""
    if phases and len(set(phases)) > 1:
        class Phased(trainer_class):
            def _get_train_sampler(self, train_dataset=None):
                return EpochOrder(len(phases), lambda seed: phased_order(phases, seed), self.args.seed)

        return Phased
    if not c.length_grouped:
        return trainer_class

    class LengthGrouped(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            ds = train_dataset if train_dataset is not None else self.train_dataset
            lengths, size = _row_lengths(ds), self.args.per_device_train_batch_size
            return EpochOrder(len(lengths), lambda seed: length_grouped_order(lengths, size, seed), self.args.seed)

    return LengthGrouped


def _compact_heads(trainer_class, shared_prompt: bool = False):
    """`trainer_class` whose models score with the compact LM head (lm_head.py) from the
    start: DPO's reference pass runs inside the trainer's __init__, before code after the
    constructor could patch them. `shared_prompt`: DPO reads each pair's prompt once."""

    class CompactHeads(trainer_class):
        def compact_heads(self):
            for m in (self.model, getattr(self, "ref_model", None)):
                if m is not None:
                    compact_fused_lm_head(m, shared_prompt=shared_prompt)

        def _precompute_ref_logps(self, *args, **kwargs):
            self.compact_heads()
            return super()._precompute_ref_logps(*args, **kwargs)

    return CompactHeads


def _finish(trainer, tokenizer, out: Path, info: dict) -> None:
    """Final weights in Hugging Face format; every rank takes part (ZeRO-3 gathers)."""
    import torch

    if torch.cuda.is_available():
        info["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    tmp = out / "model.tmp"
    trainer.save_model(str(tmp))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(tmp))
        (tmp / "exesql_train.json").write_text(json.dumps(info, indent=1))
        final = out / "model"
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    trainer.accelerator.wait_for_everyone()


def _resume_point(out: Path) -> str | None:
    """The newest complete checkpoint: the trainer writes trainer_state.json after the
    weights and optimizer state, so a folder without it was cut off mid-save."""
    done = [p for p in (out / "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return str(max(done, key=lambda p: int(p.name.split("-")[1]))) if done else None


def _text_length(row: dict) -> int:
    """Characters of a conversational DPO row's prompt and longer answer (before tokenizing)."""
    text = lambda m: sum(len(x["content"]) for x in m) if isinstance(m, list) else len(m)  # noqa: E731
    return text(row["prompt"]) + max(text(row["chosen"]), text(row["rejected"]))


def sft_loop(config: dict) -> None:
    c = WorkerSettings.of(config)
    _init_distributed(c)
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    out = Path(c.out)
    given = _rows_from_shard()
    rows = [conversational(r, "sft") for r in given]
    phases = [r.get("phase") or 0 for r in given]  # train.sft.rows_from may order rows in phases
    tokenizer = AutoTokenizer.from_pretrained(c.model)
    args = SFTConfig(**_common_args(c, out), completion_only_loss=True,
                     model_init_kwargs={"dtype": weights_dtype(c)})
    trainer = _compact_heads(_batch_order(SFTTrainer, c, phases))(
        model=c.model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        callbacks=[_report_callback(out / "metrics.jsonl")])
    trainer.compact_heads()
    tokens = _count_tokens(trainer)
    resume = _resume_point(out)
    result = trainer.train(resume_from_checkpoint=resume)
    _finish(trainer, tokenizer, out, {"stage": "sft", "from": c.model, "rows": len(rows),
                                      "resumed_from": resume, "global_step": result.global_step,
                                      "max_steps": trainer.state.max_steps, "tokens": tokens.totals,
                                      "train_seconds": result.metrics.get("train_runtime")})


def dpo_loop(config: dict) -> None:
    c = WorkerSettings.of(config)
    _init_distributed(c)
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    out = Path(c.out)
    rows = [conversational(r, "dpo") for r in _rows_from_shard()]
    rows.sort(key=lambda r: _text_length(r))  # the reference pass reads them in order: little padding
    tokenizer = AutoTokenizer.from_pretrained(c.model)
    dtype = getattr(torch, weights_dtype(c))
    # DPOConfig first: under ZeRO-3 it installs the config that from_pretrained partitions by
    s = c.hyper
    # nll_weight: TRL's combined loss, DPO's sigmoid plus an NLL term on the chosen answer (RPO)
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, s["nll_weight"]]} if s.get("nll_weight") else {}
    args = DPOConfig(**_common_args(c, out), beta=c.beta, model_init_kwargs={"dtype": dtype},
                     precompute_ref_log_probs=bool(s.get("precompute_reference")),
                     precompute_ref_batch_size=4 * s["batch_size"], **losses)
    ref = None  # None: TRL copies the starting policy
    if c.reference != c.model:
        ref = AutoModelForCausalLM.from_pretrained(c.reference, dtype=dtype)
    trainer = _compact_heads(_batch_order(DPOTrainer, c), shared_prompt=True)(
        model=c.model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        callbacks=[_report_callback(out / "metrics.jsonl")])
    trainer.compact_heads()
    tokens = _count_tokens(trainer, shared_prompt=not c.gradient_checkpointing)
    resume = _resume_point(out)
    result = trainer.train(resume_from_checkpoint=resume)
    _finish(trainer, tokenizer, out, {"stage": "dpo", "from": c.model, "reference": c.reference,
                                      "beta": c.beta, "rows": len(rows), "resumed_from": resume,
                                      "global_step": result.global_step, "max_steps": trainer.state.max_steps,
                                      "tokens": tokens.totals, "train_seconds": result.metrics.get("train_runtime")})


def grpo_loop(config: dict) -> None:
    """TRL's GRPOTrainer on the frontier questions; its reward function calls the executor
    actors the controller started (`c.executors`: engine → handle). Generation inside the
    trainer is transformers `generate` (vLLM's colocated mode needs CUDA)."""
    c = WorkerSettings.of(config)
    _init_distributed(c)
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from exesql_ray.train.grpo import ExecutionReward

    out = Path(c.out)
    s = c.hyper
    rows = [conversational(r, "grpo") for r in _rows_from_shard()]
    tokenizer = AutoTokenizer.from_pretrained(c.model)
    common = _common_args(c, out)
    common.pop("max_length")  # GRPO bounds the answer (max_completion_length); prompts were checked
    common["remove_unused_columns"] = False  # the reward reads engine, db_id, gold_sql, reward_mode
    if s.get("max_steps"):
        common["max_steps"] = s["max_steps"]
    args = GRPOConfig(**common, beta=s["beta"], num_generations=s["num_generations"],
                      max_completion_length=s["max_completion_length"], temperature=s["temperature"],
                      model_init_kwargs={"dtype": weights_dtype(c)})
    trainer = GRPOTrainer(model=c.model, reward_funcs=[ExecutionReward(c.executors)], args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=[_report_callback(out / "metrics.jsonl")])
    resume = _resume_point(out)
    result = trainer.train(resume_from_checkpoint=resume)
    _finish(trainer, tokenizer, out, {"stage": "grpo", "from": c.model, "rows": len(rows), "resumed_from": resume,
                                      "global_step": result.global_step, "max_steps": trainer.state.max_steps,
                                      "train_seconds": result.metrics.get("train_runtime")})

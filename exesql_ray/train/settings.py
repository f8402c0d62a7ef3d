"""What a Ray Train worker is told: one stage's settings, sent as a dict (`asdict`) in
`train_loop_config` and read back with `WorkerSettings.of`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class WorkerSettings:
    stage: str  # sft, dpo or grpo
    model: str  # the weights training starts from
    reference: str  # DPO's reference model (the start itself, unless train.dpo.reference says otherwise)
    out: str  # the stage's folder: checkpoints/, model/, metrics.jsonl
    # train.<stage> as a dict (epochs, learning_rate, batch_size, warmup_ratio, max_length, …);
    # warmup_ratio goes to the trainer's warmup_steps, which reads a value below 1 as a ratio
    hyper: dict
    seed: int
    bf16: bool | str  # True, False or "auto" (asks the device the worker runs on)
    use_gpu: bool
    gradient_checkpointing: bool = False
    length_grouped: bool = True
    deepspeed: dict | None = None  # the ZeRO config, or None for plain DDP
    beta: float | None = None  # DPO's and GRPO's KL weight
    # GRPO: engine → executor actor handle (added by the controller: not sent through asdict)
    executors: dict = field(default_factory=dict)

    @classmethod
    def of(cls, config: dict) -> WorkerSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

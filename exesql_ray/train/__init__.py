"""Stage 3: SFT then DPO (or GRPO) for iteration k, on Ray Train `TorchTrainer` workers running TRL.

    iteration k samples from    policy_for(k)   (base model, then the model after k-1: runs.py)
    SFT  policy_for(k)        → train/iter-k/sft/model     on D_Valid(k) ∪ D_Trans
         (iteration 0 without sampling: D_Trans only, train.sft.first_epochs)
    DPO  train/iter-k/sft/model → train/iter-k/dpo/model   on the mined pairs, reference:
         policy_for(k) (train.dpo.reference: iteration_start) or the SFT model (sft)
    GRPO train/iter-k/sft/model → train/iter-k/grpo/model  (train.method: grpo) online on the
         round's frontier questions, rewarded by the executor actors (train/grpo.py)

A stage whose `model/` exists is done and skipped; one with checkpoints resumes from them.
This package plans a stage (`plan_training`: its models, rows, loop settings) and summarises
it (`summarize_training`); `controller/train.py` runs it on Ray Train, and `loops.py` holds
what each worker runs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.errors import UserError
from exesql_ray.runs import policy_for, train_dir
from exesql_ray.summaries import TrainSummary
from exesql_ray.train.settings import WorkerSettings

STAGES = ("sft", "dpo", "grpo")
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
        raise UserError(f"{stage.upper()} iteration {iteration} starts from {sft}, which holds no model "
                        f"(run `exesql-ray train sft --iteration {iteration}` first)")
    if stage == "grpo":
        return sft, sft, out
    return sft, (start if cfg.train.dpo.reference == "iteration_start" else sft), out


def stage_rows(cfg: Config, iteration: int, stage: str):
    from exesql_ray.train.data import dpo_rows, grpo_rows, sft_rows

    return {"sft": sft_rows, "dpo": dpo_rows, "grpo": grpo_rows}[stage](cfg, iteration)


def prepare_rows(cfg: Config, iteration: int, stage: str, start: Path) -> tuple[list[dict], dict]:
    from transformers import AutoTokenizer

    from exesql_ray.train.data import within_length

    rows, counts = stage_rows(cfg, iteration, stage)
    s = getattr(cfg.train, stage)
    room = s.max_length - (s.max_completion_length if stage == "grpo" else 0)  # GRPO: the prompt and its answers
    rows, too_long = within_length(rows, AutoTokenizer.from_pretrained(str(start)), room, stage)
    if not rows:
        raise UserError(f"{stage} iteration {iteration}: every row is longer than train.{stage}.max_length="
                        f"{s.max_length} tokens")
    for i, r in enumerate(rows):
        r["key"] = i
    return rows, {"sources": dict(counts), "dropped_too_long": too_long, "rows": len(rows)}


@dataclass
class TrainPlan:
    """One stage, ready for Ray Train's workers."""

    stage: str
    iteration: int
    start: Path
    reference: Path
    out: Path
    rows: list[dict]
    data_info: dict
    settings: WorkerSettings  # what the worker loops (train/loops.py) read

    @property
    def summary_path(self) -> Path:
        return self.out / "summary.json"


def finished(cfg: Config, iteration: int, stage: str) -> TrainSummary | None:
    """The summary of a stage already done (its model and summary written), else None."""
    if stage not in STAGES:
        raise UserError(f"train stage {stage!r}: expected sft, dpo or grpo")
    out = train_dir(cfg, iteration) / stage
    if (out / "model" / "config.json").is_file() and (out / "summary.json").is_file():
        return TrainSummary.from_dict(json.loads((out / "summary.json").read_text()))
    return None


def check_inputs(cfg: Config, iteration: int, stage: str) -> None:
    """What a stage needs, before Ray starts (a stage already done needs nothing): the model it
    starts from, a valid ZeRO config, and rows from the earlier stages. Each missing one is a
    UserError naming what to run first."""
    if finished(cfg, iteration, stage) is not None:
        return
    start, _, _ = stage_paths(cfg, iteration, stage)
    if not (start / "config.json").is_file():
        raise UserError(f"{stage} iteration {iteration} starts from {start}, which holds no model"
                        + (f" (train iteration {iteration - 1} first)" if iteration else ""))
    deepspeed_config(cfg)
    stage_rows(cfg, iteration, stage)


def plan_training(cfg: Config, iteration: int, stage: str) -> TrainPlan:
    if stage not in STAGES:
        raise UserError(f"train stage {stage!r}: expected sft, dpo or grpo")
    start, reference, out = stage_paths(cfg, iteration, stage)
    if not (start / "config.json").is_file():
        raise UserError(f"{stage} iteration {iteration} starts from {start}, which holds no model")
    ds_config = deepspeed_config(cfg)  # a bad ZeRO config fails before any data is read
    rows, data_info = prepare_rows(cfg, iteration, stage, start)
    t = cfg.train
    s = getattr(t, stage)
    settings = WorkerSettings(stage=stage, model=str(start.resolve()), reference=str(reference.resolve()),
                              out=str(out.resolve()), hyper=_stage_settings(s, stage, iteration), seed=cfg.seed,
                              bf16=t.bf16, use_gpu=t.use_gpu, gradient_checkpointing=t.gradient_checkpointing,
                              length_grouped=t.length_grouped, deepspeed=ds_config, beta=getattr(s, "beta", None))
    return TrainPlan(stage, iteration, start, reference, out, rows, data_info, settings)


def summarize_training(cfg: Config, plan: TrainPlan, seconds: float) -> TrainSummary:
    """The stage's summary from what its workers wrote (written to `summary.json`)."""
    out, t = plan.out, cfg.train
    info = json.loads((out / "model" / "exesql_train.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = TrainSummary.from_dict({
        "stage": plan.stage, "iteration": plan.iteration, "model": str(out / "model"), "from": str(plan.start),
        "reference": str(plan.reference) if plan.stage == "dpo" else None, "strategy": t.strategy,
        "workers": t.num_workers, **plan.data_info, "resumed_from": info.get("resumed_from"),
        "global_step": info.get("global_step"), "max_steps": info.get("max_steps"), "seconds": round(seconds, 1),
        "first": first_last(metrics, first=True), "last": first_last(metrics, first=False),
        "tokens": info.get("tokens") or {}, "train_seconds": info.get("train_seconds")})
    plan.summary_path.write_text(json.dumps(summary.to_dict(), indent=1))
    # The stage is finished (its model and summary are written): its checkpoints were for
    # resuming it and are most of the run folder (a 135M model's optimizer state is ~1.6 GB).
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return summary


def _stage_settings(s, stage: str, iteration: int) -> dict:
    d = s.model_dump()
    if stage == "sft" and iteration == 0 and d.get("first_epochs"):
        d["epochs"] = d["first_epochs"]
    return d


# loss; DPO's margin, pair accuracy and the chosen answer's log-prob (an NLL term keeps it from
# falling); GRPO's mean reward and its share of groups whose rewards were all equal (no signal)
HEADLINE = ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "reward", "frac_reward_zero_std")


def first_last(metrics: list[dict], first: bool, window: int = 3) -> dict:
    """Mean of the first (or last) `window` logged steps for the headline metrics: what the
    summary's and the report's `first` and `last` are (one step alone is noisy)."""
    steps = [m for m in metrics if "loss" in m and "train_runtime" not in m]
    part = steps[:window] if first else steps[-window:]
    return {k: round(sum(m[k] for m in part) / len(part), 4) for k in HEADLINE if part and all(k in m for m in part)}

"""Where each stage of a run keeps its output: one folder per stage and iteration.

    <run_dir>/model/tiny                      the random-init tiny model (model.path: tiny), fast tests only
    <run_dir>/d_trans/<engine>.parquet        stage 1: verified translations
    <run_dir>/sample/iter-<k>/<engine>/part-NNNNN.parquet, d_valid/, d_neg/, summary.json
    <run_dir>/train/iter-<k>/sft, dpo         checkpoints (Hugging Face folders)
    <run_dir>/eval/base, eval/iter-<k>        EX of the base model, of the model after iteration k

Iteration 0 is SFT on the verified translations (D_Trans), from the base model; with
`pipeline.sample_base` it first samples from the base model too, adds D_Valid to the SFT
data and ends with DPO, like every later iteration. Iteration k ≥ 1 samples from the model
after iteration k-1, then SFT → DPO.
"""

from __future__ import annotations

from pathlib import Path

from exesql_ray.config import Config


def uses_tiny_model(cfg: Config) -> bool:
    return cfg.model.path in (None, "tiny")


def base_model(cfg: Config) -> Path:
    """The folder of the model a run starts from: the tiny model built for the run, an
    embedded model's converted folder (exesql_ray/models.py, made by `ensure_embedded`), or
    the folder model.path names."""
    from exesql_ray.models import EMBEDDED, embedded_dir

    if uses_tiny_model(cfg):
        return Path(cfg.run_dir) / "model" / "tiny"
    if cfg.model.path in EMBEDDED:
        return embedded_dir(cfg.model.path)
    return Path(cfg.model.path)


def sample_dir(cfg: Config, iteration: int) -> Path:
    return Path(cfg.run_dir) / "sample" / f"iter-{iteration}"


def train_dir(cfg: Config, iteration: int) -> Path:
    return Path(cfg.run_dir) / "train" / f"iter-{iteration}"


def ends_with_dpo(cfg: Config, iteration: int) -> bool:
    """Iteration 0 is SFT only unless it samples from the base model (pipeline.sample_base)."""
    return iteration > 0 or cfg.pipeline.sample_base


def model_after(cfg: Config, iteration: int) -> Path:
    """The model iteration k hands on: its DPO (or GRPO: train.method) output, or iteration 0's
    SFT output."""
    return train_dir(cfg, iteration) / (cfg.train.method if ends_with_dpo(cfg, iteration) else "sft") / "model"


def policy_for(cfg: Config, iteration: int) -> Path:
    """The model iteration k samples from and starts training from: the base model for
    iteration 0, then the model after the previous iteration."""
    return base_model(cfg) if iteration == 0 else model_after(cfg, iteration - 1)

"""Where each stage of a run keeps its output: one folder per stage and iteration.

    <run_dir>/model/tiny                      the embedded default model (model.path unset)
    <run_dir>/d_trans/<engine>.parquet        stage 1: verified translations
    <run_dir>/sample/iter-<k>/<engine>/part-NNNNN.parquet, d_valid/, d_neg/, summary.json
    <run_dir>/train/iter-<k>/sft, dpo         checkpoints (Hugging Face folders)
"""

from __future__ import annotations

from pathlib import Path

from exesql_ray.config import Config


def base_model(cfg: Config) -> Path:
    return Path(cfg.model.path) if cfg.model.path else Path(cfg.run_dir) / "model" / "tiny"


def sample_dir(cfg: Config, iteration: int) -> Path:
    return Path(cfg.run_dir) / "sample" / f"iter-{iteration}"


def train_dir(cfg: Config, iteration: int) -> Path:
    return Path(cfg.run_dir) / "train" / f"iter-{iteration}"


def policy_for(cfg: Config, iteration: int) -> Path:
    """The model iteration k samples from: the base model, then the last iteration's DPO output."""
    if iteration == 0:
        return base_model(cfg)
    return train_dir(cfg, iteration - 1) / "dpo" / "model"

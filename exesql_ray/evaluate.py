"""Execution accuracy (EX) of a policy, per engine, split, dataset and difficulty.

Evaluation is the sampling stage with one greedy answer per question (n=1, temperature 0)
on each of `data.eval_splits`, judged in `match` mode against the gold query verified for
that engine by stage 1 (SQLite: the dataset's own gold). A question with no verified gold on
an engine is counted as `no_gold` and left out of that engine's EX, never guessed. The
comparison semantics (`compare.*`) are printed with every result.

    <run_dir>/eval/base/…, eval/iter-<k>/<split>/<engine>/part-NNNNN.parquet, metrics.json
`base` measures the base model, `iter-k` the model after iteration k (exesql_ray/runs.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.errors import UserError
from exesql_ray.intervals import paired_bootstrap, wilson
from exesql_ray.io import write_json
from exesql_ray.runs import base_model, model_after
from exesql_ray.sample_stage import SamplePlan, plan_sampling, read_candidates
from exesql_ray.summaries import Accuracy, EvalSummary


def eval_name(iteration: int | None) -> str:
    """`base` (iteration None) or `iter-k`: the folder and the report's column."""
    return "base" if iteration is None else f"iter-{iteration}"


def eval_root(cfg: Config, iteration: int | None, name: str | None = None) -> Path:
    return Path(cfg.run_dir) / "eval" / (name or eval_name(iteration))


def evaluated_model(cfg: Config, iteration: int | None) -> Path:
    return base_model(cfg) if iteration is None else model_after(cfg, iteration)


def model_tag(cfg: Config, model: Path) -> str:
    """The folder name under eval/ for a model given by path: `iter-k` for a model of this
    run, the embedded name, else the folder's own name."""
    model = Path(model).resolve()
    run = Path(cfg.run_dir).resolve()
    if run / "train" in model.parents:
        parts = model.relative_to(run / "train").parts  # iter-k, sft|dpo, model
        k = int(parts[0].split("-")[1])
        return parts[0] if model == model_after(cfg, k).resolve() else f"{parts[0]}-{parts[1]}"
    if base_model(cfg).resolve() == model:
        return "base"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model.name) or "model"


def benchmark_config(cfg: Config, dataset: str, path: str, splits: list[str]) -> Config:
    """The run's settings (engines, prompt, comparator, generation) on another dataset's
    splits, in a folder of their own under the run: `<run_dir>/benchmarks/<dataset>/` holds
    stage 1's verified gold for those splits, DuckDB copies of their databases, and one
    eval/<model>/ per model evaluated. Nothing in it depends on what the run trained on."""
    b = cfg.model_copy(deep=True)
    b.run_dir = str(Path(cfg.run_dir) / "benchmarks" / dataset)
    b.data.dataset = dataset
    b.data.path = path
    b.data.eval_splits = list(splits)
    b.data.train_split = splits[0]
    b.data.limit = None
    b.translate.splits = list(splits)
    b.translate.engines = None
    return b


def eval_config(cfg: Config, split: str) -> Config:
    """The sampling settings of an evaluation: one greedy answer, judged by result."""
    e = cfg.model_copy(deep=True)
    e.sample.split = split
    e.sample.reward = "match"
    e.sample.max_questions = None
    e.generation.n = 1
    e.generation.temperature = 0.0
    return e


def plan_evaluation(cfg: Config, iteration: int | None, model: Path | None = None,
                    name: str | None = None) -> list[tuple[str, Config, SamplePlan]]:
    """One greedy sampling plan per eval split, for the model after iteration k (None: the
    base model), or for `model` (any folder) filed under eval/`name`."""
    out, model = [], model or evaluated_model(cfg, iteration)
    if not (Path(model) / "config.json").is_file():
        raise UserError(f"evaluating {eval_name(iteration) if name is None else name} reads {model}, which holds "
                        f"no model (" + ("set model.path or run `exesql-ray model embedded`" if iteration is None
                                         else f"train iteration {iteration} first") + ")")
    for split in cfg.data.eval_splits:
        ecfg = eval_config(cfg, split)
        out.append((split, ecfg, plan_sampling(ecfg, iteration or 0, root=eval_root(cfg, iteration, name) / split,
                                               model=model)))
    return out


def accuracy(rows: list[dict]) -> dict:
    """EX over rows (one greedy answer per question), with the breakdown by difficulty."""
    judged = [r for r in rows if r["reward_mode"] == "match" and r["outcome"] != "infra"]
    by_diff: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in judged:
        c = by_diff[r["difficulty"] or "all"]
        c[0] += r["outcome"] == "pass"
        c[1] += 1
    ok = sum(r["outcome"] == "pass" for r in judged)
    lo, hi = wilson(ok, len(judged))
    return {"questions": len({r["question_id"] for r in rows}), "judged": len(judged),
            "no_gold": sum(r["reward_mode"] != "match" for r in rows),
            "infra_errors": sum(r["outcome"] == "infra" for r in rows),
            "ex": round(ok / len(judged), 4) if judged else None,
            "ci95": [round(lo, 4), round(hi, 4)] if judged else None,
            # per question, for paired comparisons between models (`gains`)
            "outcomes": {r["question_id"]: int(r["outcome"] == "pass") for r in judged},
            "runs": round(sum(r["status"] == "ok" for r in judged) / len(judged), 4) if judged else None,
            "by_difficulty": {d: {"ex": round(a / n, 4), "n": n} for d, (a, n) in sorted(by_diff.items())}}


def summarize_evaluation(cfg: Config, iteration: int | None, plans, model: str,
                         name: str | None = None) -> EvalSummary:
    metrics = EvalSummary(iteration=name or eval_name(iteration), model=str(model), dataset=cfg.data.dataset,
                          compare=cfg.compare.model_dump(), splits={})
    for split, _, plan in plans:
        metrics.splits[split] = {e: Accuracy.from_dict(accuracy(read_candidates(plan, e))) for e in plan.engines}
    root = eval_root(cfg, iteration, name)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "metrics.json", metrics.to_dict(), "an evaluation's metrics")
    return metrics


def gains(evals: dict[str, dict]) -> dict[str, dict[str, dict[str, dict]]]:
    """{split: {engine: {"B vs A": paired bootstrap}}} between evaluations of one run
    ({name: metrics.json}, in the order measured): each later model against the first (the
    base model) and against the one just before it, over the questions both judged."""
    names = list(evals)
    out: dict = {}
    for i, name in enumerate(names[1:], start=1):
        pairs = [names[0]] + ([names[i - 1]] if i > 1 else [])
        for split, engines in evals[name]["splits"].items():
            for engine, a in engines.items():
                for before in pairs:
                    b = evals[before]["splits"].get(split, {}).get(engine)
                    if b is None or "outcomes" not in a or "outcomes" not in b:
                        continue
                    out.setdefault(split, {}).setdefault(engine, {})[f"{name} vs {before}"] = \
                        paired_bootstrap(b["outcomes"], a["outcomes"])
    return out


def gain_intervals(split_gains: dict[str, dict[str, dict]]) -> dict[str, dict[str, list]]:
    """{"B vs A": {engine: [lo, hi]}} from one split of `gains`: the headline lines' shape."""
    out: dict = {}
    for engine, by_pair in split_gains.items():
        for name, b in by_pair.items():
            out.setdefault(name, {})[engine] = [b["lo"], b["hi"]]
    return out

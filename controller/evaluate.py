"""Evaluation: EX of a model on the run's eval splits, or on any benchmark's, on the sampling
stage's machinery (greedy, one candidate per question and engine; exesql_ray/evaluate.py
plans and scores it)."""

from __future__ import annotations

from controller.sample import check_engines, run_plans
from exesql_ray.config import Config
from exesql_ray.summaries import EvalSummary


def eval_preflight(cfg: Config, iteration: int | None, model=None, name: str | None = None) -> None:
    """What an evaluation of the run's own eval splits needs (models, databases), checked before
    Ray starts."""
    from exesql_ray.evaluate import plan_evaluation

    check_engines([(ecfg, plan) for _, ecfg, plan in plan_evaluation(cfg, iteration, model=model, name=name)])


def run_eval_stage(cfg: Config, iteration: int | None, generators: list | None = None, progress=print,
                   model=None, name: str | None = None) -> EvalSummary:
    """EX of the model after iteration k (None: the base model), or of `model` filed under
    eval/`name`, on every eval split (exesql_ray/evaluate.py)."""
    from exesql_ray.evaluate import eval_name, plan_evaluation, summarize_evaluation

    plans = plan_evaluation(cfg, iteration, model=model, name=name)
    model = plans[0][2].model_path if plans else ""
    for split, _, plan in plans:
        progress(f"evaluate {name or eval_name(iteration)} on {split}: {plan.questions} questions × "
                 f"{len(plan.engines)} engines, greedy, from {model}; {len(plan.todo)} of {len(plan.shards)} "
                 f"shards to do")
    run_plans([(ecfg, plan) for _, ecfg, plan in plans], generators, progress,
               labels={"stage": "eval", "iteration": name or eval_name(iteration)})
    return summarize_evaluation(cfg, iteration, plans, model, name)


def run_benchmark_eval(cfg: Config, dataset: str, path: str, splits: list[str], model, name: str,
                       progress=print, generators: list | None = None) -> tuple[Config, EvalSummary]:
    """EX of `model` on any dataset's splits, with the run's engines and settings: migrate
    their databases, verify the gold for each engine by stage 1 (skipped where done), then
    evaluate. Returns (the benchmark's config, the metrics)."""
    from controller.migrate import migrate_databases
    from controller.translate import run_translate_stage
    from exesql_ray.evaluate import benchmark_config

    bcfg = benchmark_config(cfg, dataset, path, splits)
    migrate_databases(bcfg, progress)
    tr = run_translate_stage(bcfg, progress=progress)
    for engine, st in tr.engines.items():
        progress(f"gold for {engine} on {dataset} {'/'.join(splits)}: {st.describe()} (stage 1)")
    return bcfg, run_eval_stage(bcfg, None, generators, progress=progress, model=model, name=name)

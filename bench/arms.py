"""bench/learning.py's one-flag experiments on its finished run (.run/learning-match):

    --mix single|mixed|replay   dialect mixes of iteration 0's training (exesql_ray/train/mix.py)
    --hold-out ENGINE           train on the other dialects, evaluate on ENGINE and on SQLite
    --n-ablation                one sampling round at n=16 from iteration 0's model: pass@k, and
                                the D_Valid each N would have given

Each arm's model trains on iteration 0's data, stage 1's verified translations of the run's
train questions, at the same token budget (the `mixed` arm's); it starts from the base model
with the run's SFT settings, in random batches, and is evaluated greedy on the run's dev
questions against their verified gold, filed under the run's eval/<arm>/.
"""

from __future__ import annotations

import time
from pathlib import Path

MIXED = "mix-mixed"


def _need(cfg, what: Path, hint: str) -> None:
    if not what.exists():
        raise SystemExit(f"bench: {what} is missing: {hint}")


def translations(cfg) -> dict[str, list[dict]]:
    """engine → iteration 0's training rows: every train question's verified translation with
    the prompt the model samples from."""
    from exesql_ray.prompts import sql_answer
    from exesql_ray.runs import base_model
    from exesql_ray.sample_stage import plan_sampling

    plan = plan_sampling(cfg, 0, model=base_model(cfg), root=Path(cfg.run_dir) / "bench" / "unused")
    out: dict[str, list[dict]] = {}
    for shard in plan.shards:
        for q in shard.questions:
            if q["gold_from"] == "verified":
                out.setdefault(q["engine"], []).append({"question_id": q["question_id"], "engine": q["engine"],
                                                         "prompt": q["prompt"], "completion": sql_answer(q["gold_sql"])})
    return out


def token_counter(model: Path):
    """Tokens of a row under the chat template (prompt + answer), as SFT reads it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))

    def count(row: dict) -> int:
        text = tok.apply_chat_template([{"role": "user", "content": row["prompt"]},
                                        {"role": "assistant", "content": row["completion"]}], tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count


def train_arm(cfg, arm, say) -> tuple[Path, dict]:
    """SFT of the base model on the arm's rows, in its own folder under the run's bench/arms/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from controller.train import run_training
    from exesql_ray.io import atomic_write
    from exesql_ray.runs import train_dir

    folder = Path(cfg.run_dir) / "bench" / "arms" / arm.name
    folder.mkdir(parents=True, exist_ok=True)
    rows_file = folder / "rows.parquet"
    if not rows_file.is_file():
        table = pa.Table.from_pylist([{k: r[k] for k in ("prompt", "completion", "phase", "engine", "question_id")}
                                      for r in arm.rows])
        atomic_write(rows_file, lambda tmp: pq.write_table(table, tmp), "an arm's training rows")
    acfg = cfg.model_copy(deep=True)
    acfg.run_dir = str(folder)
    acfg.train.sft.rows_from = str(rows_file)
    acfg.train.length_grouped = False
    summary = run_training(acfg, 0, "sft", progress=say)
    return train_dir(acfg, 0) / "sft" / "model", summary.to_dict()


def evaluate_arm(cfg, name: str, model: Path, engines: list[str], say) -> dict:
    """EX of `model` on the run's dev questions, on `engines`: {engine: accuracy dict}."""
    from controller.evaluate import run_eval_stage

    ecfg = cfg.model_copy(deep=True)
    ecfg.engines.targets = list(engines)
    m = run_eval_stage(ecfg, None, progress=say, model=model, name=name)
    split = cfg.data.eval_splits[0]
    return {e: m.splits[split][e].to_dict() for e in engines}


def dialect_arms(cfg, mix: str | None, held_out: str | None, say) -> dict:
    """--mix or --hold-out: train and evaluate each model of the arm (and the mixed arm it is
    compared with), print per-dialect EX, the spread and the gains; return the JSON line."""
    from exesql_ray.intervals import paired_bootstrap
    from exesql_ray.runs import base_model
    from exesql_ray.train.mix import build_arms, hold_out_arm

    _need(cfg, Path(cfg.run_dir) / "d_trans", "run bench/learning.py first (its stage 1)")
    engines = list(cfg.engines.targets)
    rows = translations(cfg)
    count = token_counter(base_model(cfg))
    arms = build_arms(rows, "mixed", engines, count, cfg.seed)
    budget = arms[0].tokens
    if mix and mix != "mixed":
        arms += build_arms(rows, mix, engines, count, cfg.seed)
    if held_out:
        arms.append(hold_out_arm(rows, held_out, engines, count, cfg.seed))
    results: dict[str, dict] = {}
    for arm in arms:
        name = arm.name if arm.name.startswith("hold-out") else f"mix-{arm.name}"
        say(f"arm {name}: {len(arm.rows)} rows in {arm.engines}, {arm.tokens} tokens (budget {budget})")
        model, summary = train_arm(cfg, arm, say)
        eval_on = [held_out, "sqlite"] if arm.name.startswith("hold-out") else arm.engines
        trained = summary.get("tokens") or {}
        results[name] = {"engines": arm.engines, "rows": len(arm.rows), "tokens_claimed": arm.tokens,
                         "tokens_trained": trained.get("prompt", 0) + trained.get("completion", 0),
                         "model": model, "ex": evaluate_arm(cfg, name, model, eval_on, say)}
    if held_out:  # the mixed model on SQLite too, for the comparison
        results[MIXED]["ex"].update(evaluate_arm(cfg, MIXED, results[MIXED]["model"], ["sqlite"], say))

    print(f"dialect arms on {len(next(iter(results[MIXED]['ex'].values()))['outcomes'])} Spider dev questions "
          f"(greedy, 95% Wilson), each model trained on about {budget} tokens of iteration 0's data:")
    ex: dict[str, dict] = {}
    gains: dict[str, dict] = {}
    for name, r in results.items():
        for e, acc in r["ex"].items():
            ex.setdefault(name, {})[e] = acc["ex"]
            print(f"  {name:<22} {e:<9} {acc['ex']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]  "
                  f"({r['rows']} rows, {r['tokens_trained']} tokens trained, {r['tokens_claimed']} claimed)")
            if name != MIXED and e in results[MIXED]["ex"]:
                b = paired_bootstrap(results[MIXED]["ex"][e]["outcomes"], acc["outcomes"])
                gains.setdefault(name, {})[e] = [b["gain"], b["lo"], b["hi"]]
                print(f"  {'':<22} {'':<9} against {MIXED}: {b['gain']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}] "
                      f"{'beyond its interval' if b['beyond'] else 'within noise'}")
    # single: the three single-dialect models together form one column, one per dialect
    columns: dict[str, dict] = {}
    for name, d in ex.items():
        col = "mix-single" if name.startswith("mix-single-") else name
        columns.setdefault(col, {}).update({e: x for e, x in d.items() if e in engines})
    spread = {c: round(max(d.values()) - min(d.values()), 4) for c, d in columns.items() if len(d) > 1}
    for c, s in spread.items():
        print(f"  per-dialect spread (max − min EX) of {c}: {s:.3f}")
    return {"mix": mix, "hold_out": held_out, "ex": ex, "gain_vs_mixed": gains, "spread": spread,
            "tokens": {n: {"claimed": r["tokens_claimed"], "trained": r["tokens_trained"]} for n, r in results.items()},
            "questions": {n: {e: a["judged"] for e, a in r["ex"].items()} for n, r in results.items()}}


def n_ablation(cfg, n: int, questions: int, say) -> dict:
    """One sampling round at n samples per question from iteration 0's model on a seeded subset
    of the run's train questions, in the run's bench/n-ablation/ folder: pass@k (unbiased
    estimator) for k = 1, 2, 4, … n, and for each N the D_Valid (`split_valid_neg`, as the
    stage builds it) and the frontier share that sampling only the first N would have given."""
    from controller.sample import run_sample_stage
    from exesql_ray.rewards import pass_at, split_valid_neg
    from exesql_ray.runs import train_dir
    from exesql_ray.sample_stage import powers_of_two

    _need(cfg, train_dir(cfg, 0) / "sft" / "model" / "config.json", "run bench/learning.py first (its iteration 0)")
    acfg = cfg.model_copy(deep=True)
    acfg.generation.n = n
    acfg.sample.max_questions = questions
    root = Path(cfg.run_dir) / "bench" / f"n-ablation-{n}x{questions}"
    t0 = time.time()
    run_sample_stage(acfg, 1, progress=say, root=root)
    seconds = time.time() - t0
    import pyarrow as pa
    import pyarrow.parquet as pq

    ks = powers_of_two(n)
    out = {"n": n, "questions": questions, "pass_at": {}, "d_valid": {}, "frontier_share": {},
           "seconds": round(seconds)}
    for e in acfg.engines.targets:
        cols = ["engine", "question_id", "sample_idx", "sql", "outcome"]
        rows = pa.concat_tables([pq.read_table(f, columns=cols) for f in sorted((root / e).glob("part-*.parquet"))]
                                ).to_pylist()
        out["pass_at"][e] = pass_at(rows, ks)[e]["pass_at_k"]
        out["d_valid"][e], out["frontier_share"][e] = {}, {}
        for k in ks:
            first = [r for r in rows if r["sample_idx"] < k]
            out["d_valid"][e][k] = len(split_valid_neg(first)[0])
            out["frontier_share"][e][k] = pass_at(first)[e]["frontier_share"]
        say(f"n-ablation {e}: " + ", ".join(f"pass@{k} {v:.3f}" for k, v in out["pass_at"][e].items())
            + "; D_Valid by N " + ", ".join(f"{k}: {v}" for k, v in out["d_valid"][e].items()))
    return out

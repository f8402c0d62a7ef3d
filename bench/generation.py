"""Generation throughput of the sampling stage's generator, settings side by side on the same prompts.

    .venv/bin/python bench/generation.py [--questions 96] [--n 8] [--model smollm2-135m-instruct]

Inputs: the first `--questions` Spider train questions with a database, each as the DuckDB prompt
the sampling stage writes (compact schema), SmolLM2-135M-Instruct by default; best-of-n at
temperature 0.8, 128 new tokens, the ```sql answer prefix and the closing fence as stop, the
same seeds in every arm. The generator class is the replica's own (actors/generator.py), run
in this process so that only vLLM is timed. Arms (each a fresh engine):
  before    the config's settings until 2026-12-07: 48 prompts a call, 1 GiB KV cache
  batch     every prompt in one call, 1 GiB KV cache
  kv        every prompt in one call, a KV cache sized to hold them (generation.cpu_kv_cache_gib)
  top_p     as kv, with top_p 1.0 (temperature alone: no sort of the vocabulary per token)
LM throughput counts prompt plus completion tokens (each prompt once: the n samples share it)
per second; prefill and decode are both the model's work.
Last line: {"tokens_per_s": {arm: {"prompt": p, "completion": c}}, "lm_tokens_per_s": {arm: x},
"speedup": {arm: x over the first arm}, "matmul_share": {arm: x}}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from common import DATA  # bench/common.py


def prompts_for(questions: int) -> list[str]:
    from exesql_ray.data import load_dataset
    from exesql_ray.prompts import schema_text, sql_prompt
    from exesql_ray.schema import schema_of

    spider = DATA / "spider"
    if not (spider / "train_spider.json").is_file():
        sys.exit(f"bench: Spider is missing: {spider}/train_spider.json (set EXESQL_DATA)")
    train = [e for e in load_dataset("spider", spider, ["train"]).splits["train"] if e.has_db][:questions]
    schemas: dict[str, str] = {}
    out = []
    for e in train:
        if e.db_id not in schemas:
            schemas[e.db_id] = schema_text(schema_of(e.db_path), "duckdb", e.db_path, 0, e.tables, "compact")
        out.append(sql_prompt(engine="duckdb", schema=schemas[e.db_id], question=e.question))
    return out


def run_arm(model: str, prompts: list[str], n: int, batch: int, kv_gib: int, top_p: float) -> dict:
    from actors.generator import Generator, cpu_env
    from exesql_ray.config import GenerationConfig

    cfg = GenerationConfig(n=n, temperature=0.8, max_tokens=128, cpu_kv_cache_gib=kv_gib, top_p=top_p)
    os.environ.update(cpu_env(cfg))
    gen = Generator(model, cfg.model_dump())
    texts = gen.chat(prompts)
    seeds = list(range(len(prompts)))
    gen.generate(texts[:4], n=n, seeds=seeds[:4])  # warm-up, outside the timing
    t0 = time.perf_counter()
    outs = []
    for i in range(0, len(texts), batch):
        outs += gen.generate(texts[i:i + batch], n=n, seeds=seeds[i:i + batch])
    seconds = time.perf_counter() - t0
    tok = gen.tokenizer
    pre = len(cfg.answer_prefix)
    prompt_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    completion = sum(len(tok(c[pre:], add_special_tokens=False)["input_ids"]) for o in outs for c in o)
    gen.close()
    return {"seconds": round(seconds, 1), "prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "candidates": sum(len(o) for o in outs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=96)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--arms", default="before,batch,kv,top_p", help="which arms, comma-separated (before first)")
    args = ap.parse_args()

    from exesql_ray.flops import lm_flops_per_token, matmul_rate
    from exesql_ray.models import resolve_model

    model = str(resolve_model(args.model, lambda m: print(m, file=sys.stderr)))
    prompts = prompts_for(args.questions)
    rate = matmul_rate()
    per_token = lm_flops_per_token(model, training=False)
    print(f"{len(prompts)} prompts × n={args.n}; bf16 matmul limit of this machine {rate / 1e9:.0f} GFLOP/s; "
          f"{per_token / 1e6:.0f} MFLOP per token (forward)")
    arms = {"before": (48, 1, 0.95), "batch": (len(prompts), 1, 0.95), "kv": (len(prompts), 4, 0.95),
            "top_p": (len(prompts), 4, 1.0)}
    arms = {k: arms[k] for k in args.arms.split(",")}
    results = {}
    for name, (batch, kv, top_p) in arms.items():
        r = results[name] = run_arm(model, prompts, args.n, batch, kv, top_p)
        lm = (r["prompt_tokens"] + r["completion_tokens"]) / r["seconds"]
        r["lm_tokens_per_s"] = round(lm)
        r["matmul_share"] = round(lm * per_token / rate, 4)
        print(f"{name:<7} {batch:>4} prompts a call, KV {kv} GiB, top_p {top_p}: {r['seconds']:>6.1f} s, prompt "
              f"{r['prompt_tokens']} + completion {r['completion_tokens']} tokens → {lm:.0f} LM tokens/s "
              f"({r['completion_tokens'] / r['seconds']:.0f} completion tokens/s), {r['matmul_share']:.1%} of the "
              f"matmul limit", flush=True)
    base = next(iter(results.values()))["lm_tokens_per_s"]  # the first arm named (before, by default)
    print(json.dumps({
        "tokens_per_s": {k: {"prompt": round(r["prompt_tokens"] / r["seconds"]),
                             "completion": round(r["completion_tokens"] / r["seconds"])} for k, r in results.items()},
        "lm_tokens_per_s": {k: r["lm_tokens_per_s"] for k, r in results.items()},
        "speedup": {k: round(r["lm_tokens_per_s"] / base, 2) for k, r in results.items()},
        "matmul_share": {k: r["matmul_share"] for k, r in results.items()}}))


if __name__ == "__main__":
    main()

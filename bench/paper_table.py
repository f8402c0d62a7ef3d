"""The paper's evaluation table: EX per engine on Spider dev, Spider-Syn, Spider-DK and the
Dr.Spider sets that run on Spider's databases, for the learning bench's models.

    .venv/bin/python bench/paper_table.py [--questions 300] [--models base,iter-0,final]
                                          [--datasets spider,spider_syn,spider_dk,dr_spider]

Models are those of the learning bench's run (.run/learning-match; `final` is its last
iteration). Each dataset's gold is verified per engine by stage 1, as Spider's is, under the
run's benchmarks/<dataset>/; every cell is at most --questions questions, a seeded subset, the
same for every model. Dr.Spider: the NLQ_* and SQL_* sets with a questions file; the DB_* sets
ship without their perturbed databases and are left out (so are NLQ sets with gold SQL only).
Printed: the verified share per set and engine with the verdicts of what did not verify; one
table per model with 95% Wilson intervals and questions per cell; the final model's drop from
Spider dev per set (the paper's over-fitting check).
Last line: {"ex": {model: {dataset: {engine: x}}}, "ci95": {model: {dataset: {engine: [lo, hi]}}},
"verified": {dataset: {engine: share}}, "questions": {dataset: n}, "minutes": m}
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common import DATA, LEARNING_RUN, ROOT, require_data, setup_servers  # bench/common.py

VARIANT_DIRS = {"spider_syn": "spider_variants/spider_syn", "spider_realistic": "spider_variants/spider_realistic",
                "spider_dk": "spider_variants/spider_dk", "dr_spider": "spider_variants/dr_spider"}


def dr_spider_sets() -> list[str]:
    """The Dr.Spider sets that run on Spider's own databases (NLQ_*, SQL_*) and that the reader
    loads (it leaves out sets that ship gold SQL only)."""
    from exesql_ray.data.spider import load_dr_spider

    ds = load_dr_spider(require_data(VARIANT_DIRS["dr_spider"]), None)
    return sorted(s for s in ds.splits if s.startswith(("NLQ_", "SQL_")))


def model_paths(cfg, names: list[str]) -> dict:
    """name → (iteration or None for the base model, its folder)."""
    from exesql_ray.runs import base_model, model_after

    out = {}
    last = cfg.pipeline.iterations
    for n in names:
        k = last if n == "final" else None if n == "base" else int(n.split("-")[1])
        path = base_model(cfg) if k is None else model_after(cfg, k)
        if not (path / "config.json").is_file():
            raise SystemExit(f"bench: {path} holds no model: run bench/learning.py first")
        out[n] = (k, path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=300, help="questions per cell at most (seeded)")
    ap.add_argument("--models", default="base,iter-0,final")
    ap.add_argument("--datasets", default="spider,spider_syn,spider_dk,dr_spider")
    ap.add_argument("--sets", default=None, help="Dr.Spider sets (comma-separated; default: every NLQ_* and SQL_* "
                                                 "set with questions)")
    args = ap.parse_args()
    t0 = time.time()
    setup_servers()
    from actors.generator import start_generators
    from controller.evaluate import run_benchmark_eval, run_eval_stage
    from controller.ray_start import local_ray
    from exesql_ray.config import load_config

    cfg = load_config(ROOT / "configs" / "spider_cpu.yaml", [f"run_dir={LEARNING_RUN}"])
    engines = list(cfg.engines.targets)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    models = model_paths(cfg, args.models.split(","))
    sets = args.sets.split(",") if args.sets else dr_spider_sets()
    groups = []  # (the table's name for a one-split dataset, reader, path, splits)
    for d in args.datasets.split(","):
        if d == "spider":
            groups.append(("spider_dev", "spider", str(require_data("spider")), ["dev"]))
        elif d == "dr_spider":
            groups.append((None, "dr_spider", str(DATA / VARIANT_DIRS[d]), sets))
        elif d in VARIANT_DIRS:
            groups.append((d, d, str(require_data(VARIANT_DIRS[d])), ["dev"]))
        else:
            raise SystemExit(f"bench: --datasets {d!r}: expected spider, {', '.join(VARIANT_DIRS)}")
    ray = local_ray()
    ex, ci, verified, questions, verdicts = {}, {}, {}, {}, {}
    for model, (k, mpath) in models.items():
        gens = start_generators(str(mpath), cfg.generation)  # one set of replicas per model, for every set
        try:
            for label, reader, path, splits in groups:
                if reader == "spider":  # the run's own dev subset and verified gold
                    bcfg, m = cfg, run_eval_stage(cfg, k, gens, progress=say)
                else:  # filed as <model>-<N>q: other evaluations of the model (--full-dev) keep theirs
                    c = cfg.model_copy(deep=True)
                    c.data.questions = {s: args.questions for s in splits}
                    bcfg, m = run_benchmark_eval(c, reader, path, splits, mpath, f"{model}-{args.questions}q",
                                                 progress=say, generators=gens)
                for split in splits:
                    name = label or split
                    for e in engines:
                        a = m.splits[split][e]
                        ex.setdefault(model, {}).setdefault(name, {})[e] = a.ex
                        ci.setdefault(model, {}).setdefault(name, {})[e] = a.ci95
                        questions[name] = max(questions.get(name, 0), a.judged)
                    if name not in verified:
                        summary = verified_by_split(bcfg, reader, split)
                        verified[name] = {e: s["share"] for e, s in summary.items()}
                        verdicts[name] = {e: s["verdicts"] for e, s in summary.items()}
        finally:
            for g in gens:
                ray.kill(g)

    print(f"gold verified per set and engine by stage 1 (of the {args.questions}-question subsets):")
    for name in verified:
        parts = []
        for e in engines:
            rest = ", ".join(f"{k} {v}" for k, v in verdicts[name][e].items() if k != "verified")
            parts.append(f"{e} {verified[name][e]:.1%}" + (f" ({rest})" if rest else ""))
        print(f"  {name:<24} " + "  ".join(parts))
    for model in models:
        print(f"\nEX of {model} (95% Wilson; questions per cell):")
        print(f"  {'dataset':<24} {'n':>4} " + "".join(f"{e:>22}" for e in engines))
        for name in ex[model]:
            print(f"  {name:<24} {questions[name]:>4} " + "".join(
                f"{ex[model][name][e]:.3f} [{ci[model][name][e][0]:.2f}, {ci[model][name][e][1]:.2f}]".rjust(22)
                if ex[model][name][e] is not None else f"{'-':>22}" for e in engines))
    final = list(models)[-1]
    if "spider_dev" in ex[final]:
        print(f"\n{final}: drop from Spider dev per set (the over-fitting check; negative: lower than on dev)")
        for name in ex[final]:
            if name != "spider_dev":
                print(f"  {name:<24} " + "  ".join(
                    f"{e} {ex[final][name][e] - ex[final]['spider_dev'][e]:+.3f}" for e in engines
                    if ex[final][name][e] is not None and ex[final]["spider_dev"][e] is not None))
    print(json.dumps({"ex": ex, "ci95": ci, "verified": verified, "questions": questions,
                      "minutes": round((time.time() - t0) / 60, 1)}))


def verified_by_split(bcfg, dataset: str, split: str) -> dict:
    """Per engine: the share of the split's questions (those with a database, of the subset)
    whose gold stage 1 verified, and the verdicts of the others, from the stage's shards."""
    from collections import Counter
    from pathlib import Path

    import pyarrow.parquet as pq

    out = {}
    for e in bcfg.engines.targets:
        rows = [r for f in sorted((Path(bcfg.run_dir) / "translate" / e).glob("*.parquet"))
                for r in pq.read_table(f, columns=["id", "verdict"]).to_pylist()
                if r["id"].startswith(f"{dataset}/{split}/")]
        counts = Counter(r["verdict"] for r in rows)
        out[e] = {"share": round(counts["verified"] / len(rows), 4) if rows else 0.0, "verdicts": dict(counts)}
    return out


if __name__ == "__main__":
    main()

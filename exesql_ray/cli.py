"""`exesql-ray …`: a few verbs over the library. Settings live in the config, not in flags.

Bad input (a UserError) prints one line on stderr and exits 2; nothing half-written stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from exesql_ray.errors import UserError


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

    if not args.out.endswith(".parquet"):
        raise UserError(f"--out {args.out}: expected a .parquet file")
    ds = load_dataset(args.dataset, args.path, args.splits, args.db_root)
    examples = [e for exs in ds.splits.values() for e in exs]
    out = write_parquet_atomic(examples_to_table(examples), args.out)
    missing = sum(not e.has_db for e in examples)
    print(f"wrote {len(examples)} examples ({missing} with a missing DB) from {', '.join(ds.splits)} to {out}")
    return 0


def cmd_data_synth(args) -> int:
    from exesql_ray.data.synth import synthesize

    summary = synthesize(args.out, seed=args.seed, per_template=args.per_template, force=args.force)
    print(f"synth dataset at {args.out}: train {summary['train']}, dev {summary['dev']} questions "
          f"on {len(summary['dbs'])} DBs ({', '.join(summary['dbs'])})")
    return 0


def cmd_config_show(args) -> int:
    from exesql_ray.config import dump_config, load_config

    print(dump_config(load_config(args.config, args.overrides)), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exesql-ray", description=__doc__.splitlines()[0])
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
    p = dsub.add_parser("synth", help="write the offline quickstart dataset (Spider layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-template", type=int, default=4, help="questions per template (a quarter go to dev)")
    p.add_argument("--force", action="store_true", help="replace --out if it holds something else")
    p.set_defaults(func=cmd_data_synth)

    cfg = sub.add_parser("config", help="validate and print a config")
    csub = cfg.add_subparsers(dest="config_command", required=True)
    p = csub.add_parser("show", help="print the resolved config")
    p.add_argument("--config", help="YAML file (default: built-in defaults)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value")
    p.set_defaults(func=cmd_config_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"exesql-ray: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

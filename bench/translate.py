"""Translation quality, measured by execution (one command):

    .venv/bin/python bench/translate.py       (starts the DB servers, migrates Spider if needed)

1. Spider dev (gold with DBs) and train (all with DBs): share of SQLite gold whose translation
   returns the SQLite result on PostgreSQL, MariaDB and DuckDB — (a) plain sqlglot, (b) ours
   without an LLM — and our remaining failures by class with an example each.
2. BIRD Mini-Dev (schemas only, no data): how often our PostgreSQL and MySQL translations of
   its SQLite gold compile (EXPLAIN against empty schemas), against its hand-written gold.
   Each side gets the schema its SQL expects: ours with our identifier policy (lower case),
   theirs as BIRD's PostgreSQL setup names them (simple names unquoted, the rest quoted).
Last line: one JSON object with the headline figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict

from common import DATA, run_folder, setup_servers  # bench/common.py
RUN = run_folder("spider")
ENGINES = ("postgres", "mysql", "duckdb")


def setup() -> None:
    setup_servers()
    for engine in ENGINES:
        r = subprocess.run([sys.executable, "-m", "controller", "db", "migrate", "--dataset", "spider", "--path",
                            str(DATA / "spider"), "--engine", engine, f"run_dir={RUN}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"migration into {engine} failed:\n{r.stdout}{r.stderr}")


def spider_shares():
    from exesql_ray.config import load_config
    from exesql_ray.data import load_dataset
    from exesql_ray.engines import open_engine
    from exesql_ray.executor import Executor
    from exesql_ray.schema import schema_of
    from exesql_ray.translate import translation_candidates, transpile_plain, verify

    cfg = load_config(None, [f"run_dir={RUN}", "execution.timeout_s=20", "execution.max_rows=100000"])
    ds = load_dataset("spider", DATA / "spider", ["dev", "train"])
    sqlite = Executor(open_engine("sqlite", cfg, db_root=DATA / "spider" / "database"))
    examples = [e for s in ("dev", "train") for e in ds.splits[s] if e.has_db]
    shares, failures = {}, {}
    lengths = {e: [0, 0] for e in ENGINES}  # characters of the kept translations, of their gold
    methods = {e: Counter() for e in ENGINES}
    for engine in ENGINES:
        target = Executor(open_engine(engine, cfg))
        counts = {"sqlglot": Counter(), "ours": Counter()}
        by_split = defaultdict(Counter)
        classes: dict[str, list] = defaultdict(list)
        t0 = time.time()
        for e in examples:
            gold = sqlite.execute_sql(e.db_id, e.sqlite_sql)
            if gold.status != "ok":
                continue  # gold that fails on SQLite is reported by `data stats`, not translated
            for kind in ("sqlglot", "ours"):
                # ours: what stage 1 keeps, the first candidate that verifies (translate_example)
                tries = [transpile_plain(e.sqlite_sql, engine)] if kind == "sqlglot" else \
                    translation_candidates(e.sqlite_sql, engine, schema_of(e.db_path))
                for tr in tries:
                    if tr.sql is None:
                        v, pred = "error", None
                    else:
                        pred = target.execute_sql(e.db_id, tr.sql)
                        v, _ = verify(gold, pred, e.sqlite_sql, tr.sql, engine=engine,
                                      run_gold=lambda q, d=e.db_id: sqlite.execute_sql(d, q),
                                      run_pred=lambda q, d=e.db_id: target.execute_sql(d, q))
                    if v == "verified":
                        break
                counts[kind][v] += 1
                if kind == "ours" and v == "verified":
                    lengths[engine][0] += len(tr.sql)
                    lengths[engine][1] += len(e.sqlite_sql.strip().rstrip(";").rstrip())
                    methods[engine][tr.method] += 1
                if kind == "ours":
                    by_split[e.split][v == "verified"] += 1
                    if v != "verified":
                        cls = "translate_error" if pred is None else (
                            f"error:{pred.error_class}" if pred.status != "ok" else "mismatch")
                        classes[cls].append((e.id, e.sqlite_sql, tr.sql, (pred.error if pred else tr.error) or ""))
        n = sum(counts["ours"].values())
        shares[engine] = {k: round(c["verified"] / n, 4) for k, c in counts.items()}
        print(f"{engine:8s} {n} gold (dev {sum(by_split['dev'].values())}, train {sum(by_split['train'].values())}): "
              f"plain sqlglot {shares[engine]['sqlglot']:.1%}, ours {shares[engine]['ours']:.1%} "
              f"(dev {by_split['dev'][True] / max(1, sum(by_split['dev'].values())):.1%}, "
              f"train {by_split['train'][True] / max(1, sum(by_split['train'].values())):.1%}) in {time.time() - t0:.0f} s",
              flush=True)
        ratio = lengths[engine][0] / max(1, lengths[engine][1])
        shares[engine]["length_ratio"] = round(ratio, 3)
        print(f"         kept translations are {ratio:.3f}x the gold's length; verified as "
              + ", ".join(f"{m} {n}" for m, n in methods[engine].most_common()), flush=True)
        for cls, items in sorted(classes.items(), key=lambda kv: -len(kv[1])):
            qid, src, out, err = items[0]
            print(f"    {len(items):4d} {cls}: e.g. {qid}: {src[:110]}\n         → {(out or '')[:110]}\n"
                  f"         {err.splitlines()[0][:120] if err else ''}")
        failures[engine] = {cls: len(items) for cls, items in classes.items()}
        target.engine.close()
    sqlite.engine.close()
    return shares, failures


# ---------------------------------------------------------------- BIRD Mini-Dev: compile only

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KINDS = {"integer": "int", "real": "float", "number": "float", "text": "text", "date": "text", "datetime": "text",
          "time": "text", "blob": "blob", "boolean": "int"}


def bird_schemas():
    from exesql_ray.schema import Schema

    tables = json.loads((DATA / "bird_minidev" / "dev_tables.json").read_text())
    out = {}
    for t in tables:
        cols = defaultdict(dict)
        for (ti, name), typ in zip(t["column_names_original"], t["column_types"]):
            if ti >= 0:
                cols[t["table_names_original"][ti]][name] = _KINDS.get(typ.lower(), "text")
        out[t["db_id"]] = cols
    ours = {db: Schema({tb.lower(): {c.lower(): k for c, k in cs.items()} for tb, cs in tbs.items()})
            for db, tbs in out.items()}
    return out, ours


def _ident(name: str, engine: str, policy: str) -> str:
    """Always quoted (BIRD has columns named like keywords: `cross`). Ours: lower case, as our
    migration names them. Theirs: as BIRD's PostgreSQL setup, where plain names were created
    unquoted (so folded to lower case) and the others keep their case."""
    q = '"' if engine == "postgres" else "`"
    if policy == "ours" or _PLAIN.match(name):
        name = name.lower()
    return f"{q}{name}{q}"


def bird_compiles():
    import MySQLdb
    import psycopg

    from exesql_ray.data import load_dataset
    from exesql_ray.engines.mysql import parse_mysql_dsn
    from exesql_ray.translate import translate_rules

    raw, ours_schema = bird_schemas()
    types = {"postgres": {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA"},
             "mysql": {"int": "BIGINT", "float": "DOUBLE", "text": "TEXT", "blob": "LONGBLOB"}}
    exs = load_dataset("bird", DATA / "bird_minidev", ["minidev"]).splits["minidev"]
    result = {}
    for engine in ("postgres", "mysql"):
        if engine == "postgres":
            con = psycopg.connect(os.environ["EXESQL_PG_ADMIN_DSN"], autocommit=True)
            run = con.execute
        else:
            con = MySQLdb.connect(**parse_mysql_dsn(os.environ["EXESQL_MYSQL_ADMIN_DSN"]), autocommit=True)
            cur = con.cursor()
            run = cur.execute
        # empty schemas: bird_<policy>_<db> (PostgreSQL schemas, MySQL databases)
        for policy in ("ours", "gold"):
            for db, tbs in raw.items():
                space = f"bird_{policy}_{db}"
                run(f"DROP {'SCHEMA' if engine == 'postgres' else 'DATABASE'} IF EXISTS {space}"
                    + (" CASCADE" if engine == "postgres" else ""))
                run(f"CREATE {'SCHEMA' if engine == 'postgres' else 'DATABASE'} {space}")
                for tb, cs in tbs.items():
                    cols = ", ".join(f"{_ident(c, engine, policy)} {types[engine][k]}" for c, k in cs.items())
                    run(f"CREATE TABLE {space}.{_ident(tb, engine, policy)} ({cols})")
        counts = Counter()
        for e in exs:
            tr = translate_rules(e.sqlite_sql, engine, ours_schema[e.db_id])
            for side, sql in (("ours", tr.sql), ("gold", e.dialect_gold.get(engine))):
                if not sql:
                    continue
                space = f"bird_{side}_{e.db_id}"
                try:
                    if engine == "postgres":
                        run(f"SET search_path TO {space}")
                    else:
                        con.select_db(space)
                    run("EXPLAIN " + sql.strip().rstrip(";"))
                    if engine == "mysql":
                        cur.fetchall()
                    counts[side] += 1
                except (psycopg.Error, MySQLdb.Error):
                    pass
        result[engine] = {"ours": counts["ours"], "gold": counts["gold"]}
        print(f"BIRD Mini-Dev on {engine}: {len(exs)} SQLite gold; ours compile {counts['ours']}, "
              f"hand-written {engine} gold compiles {counts['gold']}", flush=True)
        con.close()
    return result


def main() -> None:
    setup()
    shares, _ = spider_shares()
    bird = bird_compiles()
    print(json.dumps({"verified_share": shares, "bird_minidev_compiles": bird}))


if __name__ == "__main__":
    main()

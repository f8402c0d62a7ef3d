"""Executor speed on Spider dev gold SQL, measured side by side (ratios, not absolute times).

    .venv/bin/python bench/executor.py            (starts the DB servers, migrates if needed)

Per engine (SQLite, DuckDB, PostgreSQL, MariaDB):
  raw      one persistent connection (opened once and kept across rounds: its set-up is not
           timed), no guards, a tight loop (switching DB as needed);
           on SQLite also with our connection settings (the shared lock held, not taken
           per statement; a 16 MB page cache, which sorts use before they spill), so that
           the guards' and the cache's own share show apart from those settings
  guarded  ours: guard, timeout, row cap, normalisation, hashing, one record per query;
           no cache, guard memo cleared every round; on SQLite also split per query into
           SQLite inside our engine (`_run`: settings, authorizer, deadline, cap) and our
           Python around it (guard, normalise and hash, record)
  best8    ours on a best-of-8 workload (8 candidates per question with realistic duplicates,
           each compared with the gold result), cache on, over the raw loop on the same
           workload (each candidate once, each gold once); candidates/s over raw gold
           queries/s is printed beside it. Ours fetches a candidate to gold + 1 rows at most
           (more cannot match), the raw loop fetches all: that is part of what is measured.
SQLite also against a BIRD/OmniSQL-style harness (process pool, a new connection per query,
func_timeout). PostgreSQL under Ray Data: 2 executor actors over 1, steady state (from the
first batch out to the last; actor start-up is printed beside it). Migration: all Spider DBs
reloaded (--force) per engine. Rounds alternate raw/ours; each figure is the best round (raw
vs guarded: 3 pairs a round, as those loops are short and their ratio the noisiest).
Last line: one JSON object with the headline figures.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from common import ROOT, DATA, run_folder, setup_servers  # bench/common.py
RUN = run_folder("spider")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# raw and guarded loops per round (under a second each): their ratio is the noisiest figure
GUARD_PAIRS = int(os.environ.get("BENCH_GUARD_PAIRS", "3"))


def migrate(engine: str, force: bool) -> float:
    t0 = time.perf_counter()
    args = [sys.executable, "-m", "controller", "db", "migrate", "--dataset", "spider", "--path",
            str(DATA / "spider"), "--engine", engine, f"run_dir={RUN}"] + (["--force"] if force else [])
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"migration into {engine} failed:\n{r.stdout}\n{r.stderr}")
    return time.perf_counter() - t0


# ---------------------------------------------------------------- raw loops

# One persistent connection per raw loop, kept across rounds, so that what is timed is the
# queries: opening it is not (DuckDB's ATTACH of 163 files alone takes ~0.25 s).
_RAW_CONS: dict = {}


def _raw_con(key, connect):
    con = _RAW_CONS.get(key)
    if con is None:
        con = _RAW_CONS[key] = connect()
    return con


def close_raw() -> None:
    for con in _RAW_CONS.values():
        for c in con.values() if isinstance(con, dict) else [con]:
            c.close()
    _RAW_CONS.clear()


def raw_sqlite_capped(jobs, roots):
    """The raw loop (our connection settings) over (db, sql, cap) jobs, each fetched to cap + 1
    rows at most (None: all), as ours fetches a candidate: what ours would cost with no
    overhead of its own."""
    from exesql_ray.engines.sqlite import CACHE_MB

    cons = _raw_con(("sqlite-capped",), dict)
    for db, sql, cap in jobs:
        con = cons.get(db)
        if con is None:
            con = cons[db] = sqlite3.connect(f"file:{roots[db]}?mode=ro", uri=True, cached_statements=0)
            con.execute("PRAGMA locking_mode=EXCLUSIVE")
            con.execute(f"PRAGMA cache_size={-1024 * CACHE_MB}")
        try:
            cur = con.execute(sql)
            cur.fetchall() if cap is None else cur.fetchmany(cap + 1)
            cur.close()
        except sqlite3.Error:
            pass


def capped_jobs(workload, gold_rows: dict, dialect: str) -> list:
    """Ours' jobs for a best-of-8 workload, with no overhead: each gold once (all rows), each
    other distinct query once at the widest cap asked for (gold + 1 rows)."""
    from exesql_ray.engines.sqltext import cache_key

    jobs: dict = {}
    for r in workload:
        db, gold = r["db_id"], r["gold_sql"]
        jobs.setdefault((db, cache_key(gold, dialect)), [db, gold, None])
    for r in workload:
        db, sql = r["db_id"], r["sql"]
        n = gold_rows.get((db, r["gold_sql"]))
        cap = None if n is None else n + 1
        job = jobs.setdefault((db, cache_key(sql, dialect)), [db, sql, cap])
        if job[2] is not None:
            job[2] = None if cap is None else max(job[2], cap)
    return [tuple(j) for j in jobs.values()]


def raw_sqlite(queries, roots, our_settings: bool = False):
    from exesql_ray.engines.sqlite import CACHE_MB

    cons = _raw_con(("sqlite", our_settings), dict)  # db_id → its connection
    for db, sql in queries:
        con = cons.get(db)
        if con is None:
            # no statement cache: a query is prepared each time, as in one pass over the queries
            con = cons[db] = sqlite3.connect(f"file:{roots[db]}?mode=ro", uri=True, cached_statements=0)
            if our_settings:  # our engine's connection settings (exesql_ray/engines/sqlite.py)
                con.execute("PRAGMA locking_mode=EXCLUSIVE")
                con.execute(f"PRAGMA cache_size={-1024 * CACHE_MB}")
        try:
            con.execute(sql).fetchall()
        except sqlite3.Error:
            pass


# The four raw loops stay separate plain loops, alike in shape: a shared helper would add a
# call per query to the baseline it is measuring.
def _raw_loop(queries, use_db, run, errors) -> None:
    """The plain driver loop the engines are measured against: switch database when it
    changes, run, fetch everything, ignore the query's own errors."""
    current = None
    for db, sql in queries:
        if db != current:
            use_db(db)
            current = db
        try:
            run(sql)
        except errors:
            pass


def raw_duckdb(queries, _):
    import duckdb

    def connect():
        con = duckdb.connect(":memory:")
        for f in sorted((RUN / "duckdb").glob("*.duckdb")):
            con.execute(f"ATTACH '{f}' AS \"{f.stem}\" (READ_ONLY)")
        return con

    cur = _raw_con("duckdb", connect)
    _raw_loop(queries, lambda db: cur.execute(f'USE "{db}"'), lambda sql: cur.execute(sql).fetchall(), duckdb.Error)


def raw_postgres(queries, _):
    import psycopg

    # prepare_threshold=None: psycopg would otherwise prepare a query run 5 times (rounds repeat
    # the queries; one pass would not), and so does our engine
    con = _raw_con("postgres", lambda: psycopg.connect(os.environ["EXESQL_PG_DSN"], autocommit=True,
                                                       prepare_threshold=None))
    _raw_loop(queries, lambda db: con.execute(f'SET search_path TO "{db.lower()}"'),
              lambda sql: con.execute(sql).fetchall(), psycopg.Error)


def raw_mysql(queries, _):
    import MySQLdb

    from exesql_ray.engines.mysql import parse_mysql_dsn

    con = _raw_con("mysql", lambda: MySQLdb.connect(**parse_mysql_dsn(os.environ["EXESQL_MYSQL_DSN"]),
                                                    charset="utf8mb4", autocommit=True))
    cur = con.cursor()

    def run(sql):
        cur.execute(sql)
        cur.fetchall()

    _raw_loop(queries, lambda db: con.select_db(db.lower()), run, MySQLdb.Error)
    cur.close()


RAW = {"sqlite": raw_sqlite, "duckdb": raw_duckdb, "postgres": raw_postgres, "mysql": raw_mysql}


def ours(engine_name: str):
    from exesql_ray.config import load_config
    from exesql_ray.engines import open_engine

    cfg = load_config(None, [f"run_dir={RUN}", "execution.timeout_s=30", "execution.max_rows=100000"])
    root = DATA / "spider" / "database" if engine_name == "sqlite" else None
    return open_engine(engine_name, cfg, db_root=root)


def clear_memos():
    from exesql_ray.compare import query_orders
    from exesql_ray.engines import sqltext

    with sqltext._INSPECT_LOCK:
        sqltext._INSPECT_CACHE.clear()
    sqltext._KEYS.clear()
    query_orders.cache_clear()


def engine_part(engine, queries):
    """Only what our SQLite engine hands to SQLite: `_run` (our connection and its settings,
    the authorizer, the deadline, the row cap, fetchmany), none of our Python around it (the
    guard, normalising, hashing, the record). Run on queries that run: none raises."""
    cap = engine.limits.max_rows
    for db, sql in queries:
        engine._run(db, sql, cap)


def python_parts(engine, queries) -> dict:
    """µs a query of the two parts of `execute` that are plain Python: the guard, and
    normalising and hashing a result (on rows fetched once, beforehand). Best of 15."""
    cap = engine.limits.max_rows
    raws = [engine._run(db, sql, cap) for db, sql in queries]
    out = {}
    for part, fn in (("guard", lambda: [engine._refusal(sql) for _, sql in queries]),
                     ("normalise_and_hash", lambda: [engine._finish(r, cap, 0.0) for r in raws])):
        best = 1e9
        for _ in range(15):
            clear_memos()
            best = min(best, timed(fn))
        out[part] = best / len(queries) * 1e6
    return out


def guarded_loop(engine, queries):
    from exesql_ray.executor import Executor

    ex = Executor(engine, cache=False)
    recs = ex.run({"id": str(i), "db_id": db, "sql": sql} for i, (db, sql) in enumerate(queries))
    assert len(recs) == len(queries)
    return recs


# ---------------------------------------------------------------- best-of-8 workload

def perturb(sql: str, rng: random.Random) -> str:
    """A wrong-but-plausible candidate, as a sampled model writes them."""
    choices = []
    if " DESC" in sql.upper():
        choices.append(lambda s: re.sub(r"(?i)\bDESC\b", "ASC", s, count=1))
    if re.search(r"(?i)\bLIMIT\s+\d+", sql):
        choices.append(lambda s: re.sub(r"(?i)\bLIMIT\s+(\d+)", lambda m: f"LIMIT {int(m.group(1)) + 1}", s, count=1))
    if re.search(r"(?i)\bcount\(\*\)", sql):
        choices.append(lambda s: re.sub(r"(?i)count\(\*\)", "count(DISTINCT *)", s, count=1))
    if re.search(r"(?i)\bWHERE\b", sql):
        choices.append(lambda s: re.sub(r"(?i)\bWHERE\b.*?(?=\bGROUP\b|\bORDER\b|\bLIMIT\b|$)", "", s, count=1))
    choices.append(lambda s: s.replace("=", "!=", 1) if "=" in s else s + " LIMIT 1")
    choices.append(lambda s: re.sub(r"(?i)^SELECT\s+", "SELECT DISTINCT ", s, count=1))
    return rng.choice(choices)(sql)


def best_of_8(queries, seed: int = 0):
    """8 candidates per question: about half the gold verbatim, a fifth the gold re-spaced or
    re-cased, the rest wrong variants (some repeated), the way temperature sampling repeats."""
    rng = random.Random(seed)
    rows = []
    for qi, (db, gold) in enumerate(queries):
        wrong = [perturb(gold, rng) for _ in range(2)]
        for k in range(8):
            u = rng.random()
            if u < 0.5:
                sql = gold
            elif u < 0.7:
                sql = " ".join(gold.split()).lower() if rng.random() < 0.5 else gold.replace(" ,", ",") + ";"
            else:
                sql = rng.choice(wrong)
            rows.append({"id": f"{qi}-{k}", "db_id": db, "sql": sql, "gold_sql": gold})
    return rows


# ---------------------------------------------------------------- BIRD-style harness

def _bird_execute(args):
    from func_timeout import FunctionTimedOut, func_timeout

    db_path, sql = args

    def run():
        con = sqlite3.connect(db_path)
        cur = con.cursor()
        cur.execute(sql)
        out = cur.fetchall()
        con.close()
        return out

    try:
        return len(func_timeout(30.0, run))
    except FunctionTimedOut:
        return -1
    except Exception:
        return -2


def bird_style(queries, roots):
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_bird_execute, [(roots[db], sql) for db, sql in queries], chunksize=1))


# ---------------------------------------------------------------- BIRD-scale sorts

BIG_DB, BIG_ROWS = "big_sales", 1_000_000
# (gold, wrong candidates) on one 1M-row table (the size of BIRD's larger tables): candidates
# that sort without the gold's LIMIT, the mistake a sampled model makes most with ORDER BY.
BIG_WORKLOAD = [
    ("SELECT name FROM sales ORDER BY amount DESC LIMIT 1",
     ["SELECT name FROM sales ORDER BY amount DESC", "SELECT name FROM sales ORDER BY amount",
      "SELECT name, amount FROM sales ORDER BY amount DESC"]),
    ("SELECT name, amount FROM sales WHERE region = 'r7' ORDER BY amount DESC LIMIT 5",
     ["SELECT name, amount FROM sales WHERE region = 'r7' ORDER BY amount DESC",
      "SELECT name, amount FROM sales WHERE region != 'r7' ORDER BY amount DESC",
      "SELECT name, amount FROM sales ORDER BY amount DESC, name"]),
    ("SELECT region, count(*) FROM sales GROUP BY region ORDER BY count(*) DESC LIMIT 3",
     ["SELECT region, name FROM sales ORDER BY region", "SELECT DISTINCT name FROM sales ORDER BY name"]),
]


def big_engines() -> dict:
    """SQLite and DuckDB engines over a 1M-row DB built once under .run/bench-big (DuckDB's
    through our migration)."""
    from exesql_ray.config import load_config
    from exesql_ray.engines import open_engine
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    root = ROOT / ".run" / "bench-big"
    path = root / "sqlite" / BIG_DB / f"{BIG_DB}.sqlite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        rng = random.Random(0)
        con = sqlite3.connect(tmp)
        con.execute("CREATE TABLE sales (sale_id INTEGER PRIMARY KEY, name TEXT, region TEXT, amount REAL)")
        con.executemany("INSERT INTO sales VALUES (?, ?, ?, ?)",
                        ((i, f"item {rng.randrange(200_000)}", f"r{rng.randrange(50)}", round(rng.random() * 1e4, 2))
                         for i in range(BIG_ROWS)))
        con.commit()
        con.close()
        tmp.rename(path)
    cfg = load_config(None, [f"run_dir={root}", "execution.timeout_s=60", "execution.max_rows=100000"])
    target = open_target("duckdb", cfg, duckdb_root=root / "duckdb")
    try:
        assert all(r.verified for r in migrate_dbs(target, {BIG_DB: str(path)}))
    finally:
        target.close()
    return {"sqlite": open_engine("sqlite", cfg, db_root=root / "sqlite"),
            "duckdb": open_engine("duckdb", cfg, db_root=root / "duckdb")}


def big_sorts() -> dict:
    """Ours on BIG_WORKLOAD (each candidate capped by its gold + 1 rows), with the cap inside
    the sorting query, over the same engine with the cap left to `fetchmany` (how both engines
    ran before): side by side, best of ROUNDS."""
    from exesql_ray.executor import Executor

    rows = [{"id": f"{i}-{k}", "db_id": BIG_DB, "sql": cand, "gold_sql": gold}
            for i, (gold, cands) in enumerate(BIG_WORKLOAD) for k, cand in enumerate(cands)]
    out = {}
    for name, engine in big_engines().items():
        best = {"in_query": 1e9, "fetchmany": 1e9}
        for _ in range(ROUNDS):
            for how in best:
                if how == "fetchmany":
                    engine._statement = lambda sql, cap: sql  # the engine as it was: no LIMIT added
                t = timed(Executor(engine, cache=True).run, rows)
                engine.__dict__.pop("_statement", None)
                best[how] = min(best[how], t)
        engine.close()
        out[name] = round(best["fetchmany"] / best["in_query"], 2)
        print(f"{name:8s} {len(rows)} sorting candidates on a {BIG_ROWS:,}-row table: cap inside the query "
              f"{best['in_query'] * 1e3:7.0f} ms, cap by fetchmany only {best['fetchmany'] * 1e3:7.0f} ms: "
              f"{out[name]:.2f}x", flush=True)
    return out


# ---------------------------------------------------------------- Ray: 2 actors over 1

def ray_actors(queries, n_actors: int) -> tuple[float, float]:
    """(seconds in all, steady-state queries/s): the rate from the first batch out to the
    last, so that starting the actors (imports, connection pools: about a second each, and
    two of them start at once on these 2 cores) is not counted as execution."""
    import ray

    from controller.sample import execute_dataset
    from exesql_ray.config import load_config

    cfg = load_config(None, [f"run_dir={RUN}", "execution.cache=false", "execution.batch_size=128",
                             f"execution.actors.postgres={n_actors}", "execution.threads_per_actor=1"])
    rows = [{"id": str(i), "db_id": db, "sql": sql} for i, (db, sql) in enumerate(queries)]
    ds = ray.data.from_items(rows, override_num_blocks=32)
    t0 = time.perf_counter()
    n, first, t_first = 0, 0, None
    for batch in execute_dataset(ds, "postgres", cfg).iter_batches(batch_size=None, batch_format="pyarrow"):
        if t_first is None:
            t_first, first = time.perf_counter(), batch.num_rows
        n += batch.num_rows
    t_end = time.perf_counter()
    assert n == len(rows)
    return t_end - t0, (n - first) / max(t_end - t_first, 1e-9)


def timed(fn, *a):
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def main() -> None:
    from exesql_ray.data import load_dataset

    setup_servers()
    dev = [e for e in load_dataset("spider", DATA / "spider", ["dev"]).splits["dev"] if e.has_db]
    roots = {e.db_id: e.db_path for e in dev}
    gold = [(e.db_id, e.sqlite_sql) for e in dev]
    print(f"Spider dev gold: {len(gold)} queries on {len(roots)} DBs; {ROUNDS} rounds ({ROUNDS * GUARD_PAIRS} for raw "
          f"vs guarded), best round kept", flush=True)

    migrate_s = {}
    for engine in ("postgres", "mysql", "duckdb"):
        migrate_s[engine] = round(migrate(engine, force=True), 1)
        print(f"migrate all Spider DBs into {engine}: {migrate_s[engine]} s", flush=True)

    guarded_vs_raw, cached_vs_raw, rates = {}, {}, {}
    for name in ("sqlite", "duckdb", "postgres", "mysql"):
        engine = ours(name)
        # the queries this engine runs as written (SQLite dialect gold; translation is stage 1)
        gold_recs = guarded_loop(engine, gold)
        runnable = [(db, sql) for (db, sql), r in zip(gold, gold_recs) if r["status"] == "ok"]
        workload = best_of_8(runnable)
        gold_rows = {(db, sql): r["row_count"] for (db, sql), r in zip(gold, gold_recs)
                     if r["status"] == "ok" and not r["truncated"]}
        floor_jobs = capped_jobs(workload, gold_rows, engine.dialect) if name == "sqlite" else []
        from exesql_ray.executor import Executor

        # The same best-of-8 workload through the raw loop: every candidate once, and each
        # question's gold once (a reward harness without a cache, and without guards).
        raw_workload = [(r["db_id"], r["sql"]) for r in workload] + runnable
        # The ceiling of caching alone: the raw loop over each distinct query once (by our
        # cache key), no overhead at all. Ours can pass it only by stopping wrong results early.
        from exesql_ray.engines.sqltext import cache_key

        distinct = list({(db, cache_key(sql, engine.dialect)): (db, sql) for db, sql in raw_workload}.values())
        best = {"raw": 1e9, "guarded": 1e9, "best8": 1e9, "raw8": 1e9, "distinct": 1e9, "raw_same": 1e9, "raw8_same": 1e9,
                "floor8": 1e9, "best8_threads": 1e9, "engine_part": 1e9}
        for _ in range(ROUNDS):
            for _ in range(GUARD_PAIRS):  # short loops: more pairs, so both minima settle
                best["raw"] = min(best["raw"], timed(RAW[name], runnable, roots))
                if name == "sqlite":
                    best["raw_same"] = min(best["raw_same"], timed(raw_sqlite, runnable, roots, True))
                    best["engine_part"] = min(best["engine_part"], timed(engine_part, engine, runnable))
                clear_memos()
                best["guarded"] = min(best["guarded"], timed(guarded_loop, engine, runnable))
            best["raw8"] = min(best["raw8"], timed(RAW[name], raw_workload, roots))
            if name == "sqlite":
                best["raw8_same"] = min(best["raw8_same"], timed(raw_sqlite, raw_workload, roots, True))
                best["floor8"] = min(best["floor8"], timed(raw_sqlite_capped, floor_jobs, roots))
                clear_memos()
                best["best8_threads"] = min(best["best8_threads"], timed(Executor(engine, cache=True, workers=2).run, workload))
            best["distinct"] = min(best["distinct"], timed(RAW[name], distinct, roots))
            clear_memos()
            ex = Executor(engine, cache=True)
            t = timed(ex.run, workload)
            best["best8"] = min(best["best8"], t)
        engine.close()
        close_raw()
        raw_qps = len(runnable) / best["raw"]
        g_qps = len(runnable) / best["guarded"]
        b_cps = len(workload) / best["best8"]
        raw8_cps = len(workload) / best["raw8"]
        guarded_vs_raw[name] = round(g_qps / raw_qps, 3)
        cached_vs_raw[name] = round(b_cps / raw8_cps, 2)
        rates[name] = {"queries": len(runnable), "raw_qps": round(raw_qps), "guarded_qps": round(g_qps),
                       "best_of_8_candidates_per_s": round(b_cps), "raw_best_of_8_candidates_per_s": round(raw8_cps),
                       "cache_only_ceiling": round(best["raw8"] / best["distinct"], 2),
                       "cache_hit_rate": round(ex.cache.hits / max(1, ex.cache.hits + ex.cache.misses), 3)}
        print(f"{name:8s} {len(runnable):4d} gold  raw {raw_qps:7.0f} q/s  guarded {g_qps:7.0f} q/s "
              f"({guarded_vs_raw[name]:.2f}x) | best-of-8 ({len(workload)} candidates): raw {raw8_cps:7.0f} cand/s, "
              f"ours cached {b_cps:7.0f} cand/s ({cached_vs_raw[name]:.2f}x; {b_cps / raw_qps:.2f}x raw gold q/s; "
              f"cache hit rate {rates[name]['cache_hit_rate']:.2f}; caching alone could give at most "
              f"{best['raw8'] / best['distinct']:.2f}x: {len(distinct)} distinct of {len(raw_workload)})", flush=True)
        if name == "sqlite":
            # Part of ours over raw is the connection settings, not the guards or the cache:
            # show their own share against a raw loop with the same settings.
            same, same8 = best["raw_same"] / best["guarded"], best["raw8_same"] / best["best8"]
            rates[name]["guarded_vs_raw_same_settings"] = round(same, 3)
            rates[name]["best_of_8_vs_raw_same_settings"] = round(same8, 2)
            print(f"         raw with our connection settings (locking_mode=EXCLUSIVE, cache_size 16 MB) "
                  f"{len(runnable) / best['raw_same']:7.0f} q/s, best-of-8 {len(workload) / best['raw8_same']:7.0f} cand/s: "
                  f"those settings alone {best['raw'] / best['raw_same']:.2f}x and {best['raw8'] / best['raw8_same']:.2f}x raw; "
                  f"ours with all guards {same:.2f}x of it, ours cached on best-of-8 {same8:.2f}x of it", flush=True)
            # Where ours' time per query goes, against raw's: SQLite inside our engine (with its
            # settings and guards), and our Python around it (guard, normalise and hash, record).
            us = {k: best[k] / len(runnable) * 1e6 for k in ("raw", "guarded", "engine_part")}
            parts = python_parts(engine, runnable)
            python_us = us["guarded"] - us["engine_part"]
            record_us = python_us - parts["guard"] - parts["normalise_and_hash"]
            rates[name]["engine_part_vs_raw"] = round(best["raw"] / best["engine_part"], 3)
            rates[name]["python_us_per_query"] = {"all": round(python_us, 1), "guard": round(parts["guard"], 1),
                                                  "normalise_and_hash": round(parts["normalise_and_hash"], 1),
                                                  "record_and_rest": round(record_us, 1)}
            print(f"         per query: raw {us['raw']:.1f} us; ours {us['guarded']:.1f} us = SQLite inside our engine "
                  f"{us['engine_part']:.1f} us ({rates[name]['engine_part_vs_raw']:.2f}x raw: settings, authorizer, deadline, "
                  f"row cap) + our Python {python_us:.1f} us (guard {parts['guard']:.1f}, normalise and hash "
                  f"{parts['normalise_and_hash']:.1f}, record and the rest {record_us:.1f}); 0.9x raw leaves "
                  f"{us['raw'] / 0.9 - us['engine_part']:.1f} us for all of our Python", flush=True)
            # What best-of-8 could reach with no overhead of ours: each distinct query once, at
            # ours' caps, in the raw loop with our settings. And ours with 2 threads, both cores
            # (the raw loop uses one: not the headline, which is one thread against one).
            rates[name]["best_of_8_floor_vs_raw"] = round(best["raw8"] / best["floor8"], 2)
            rates[name]["best_of_8_two_threads_vs_raw"] = round(best["raw8"] / best["best8_threads"], 2)
            print(f"         best-of-8 with no overhead of ours ({len(floor_jobs)} distinct queries at ours' caps, "
                  f"raw loop, our settings) {len(workload) / best['floor8']:7.0f} cand/s: "
                  f"{rates[name]['best_of_8_floor_vs_raw']:.2f}x raw, ours is {best['floor8'] / best['best8']:.2f}x of it; "
                  f"ours with 2 threads (both cores; raw uses one) {len(workload) / best['best8_threads']:7.0f} cand/s: "
                  f"{rates[name]['best_of_8_two_threads_vs_raw']:.2f}x raw", flush=True)

    big_sort_speedup = big_sorts()

    best_raw, best_bird = 1e9, 1e9
    for _ in range(ROUNDS):
        best_raw = min(best_raw, timed(raw_sqlite, gold, roots))
        best_bird = min(best_bird, timed(bird_style, gold, roots))
    close_raw()
    raw_vs_bird = round(best_bird / best_raw, 2)
    print(f"sqlite raw {len(gold) / best_raw:.0f} q/s vs BIRD-style harness {len(gold) / best_bird:.0f} q/s: "
          f"{raw_vs_bird:.2f}x", flush=True)

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    pg_runnable = [(db, sql) for db, sql in gold]  # errors included: they cost the server too
    work = pg_runnable * 10
    t1 = t2 = 1e9
    r1 = r2 = 0.0
    for _ in range(max(1, ROUNDS - 2)):
        a, b = ray_actors(work, 1)
        t1, r1 = min(t1, a), max(r1, b)
        a, b = ray_actors(work, 2)
        t2, r2 = min(t2, a), max(r2, b)
    ray.shutdown()
    two_over_one = round(r2 / r1, 2)
    print(f"postgres under Ray Data, {len(work)} queries, steady state (actor start-up excluded): "
          f"1 actor {r1:.0f} q/s, 2 actors {r2:.0f} q/s: {two_over_one:.2f}x; "
          f"with start-up: {len(work) / t1:.0f} vs {len(work) / t2:.0f} q/s ({t1 / t2:.2f}x)", flush=True)

    rates["big_table_sorts_cap_in_query_vs_fetchmany"] = big_sort_speedup
    print("rates: " + json.dumps(rates))
    print(json.dumps({"guarded_vs_raw": guarded_vs_raw, "cached_best_of_8_vs_raw": cached_vs_raw,
                      "raw_vs_bird_style": raw_vs_bird, "two_actors_over_one": two_over_one,
                      "migrate_s": migrate_s}))


if __name__ == "__main__":
    main()

"""Engines on real servers: values agree across engines, errors are classified, infra errors
are retried, the comparator agrees with plain sqlite3 on Spider dev, the row cap's text.
The executor: tests/test_executor.py; migration: tests/test_migrate.py."""

import json
import sqlite3
import time

import psycopg
import pytest

from conftest import ENGINES_HERE, ROOT, SERVERS_HERE, TARGETS_HERE, run_cli, shared
from exesql_ray.compare import CompareOptions, results_match
from exesql_ray.engines.base import Limits
from exesql_ray.engines.results import normalize_rows
from exesql_ray.errors import UserError

# Queries every engine accepts as written, with values of every kind engines disagree on.
PORTABLE = [
    ("retail_shop", "SELECT count(*), avg(price), sum(stock), min(price), max(name) FROM products"),
    ("retail_shop", "SELECT category, count(*) FROM products GROUP BY category"),
    ("retail_shop", "SELECT order_date, discount FROM orders WHERE customer_id = 3 ORDER BY order_id"),
    ("retail_shop", "SELECT T2.category, sum(T1.quantity * T1.unit_price) FROM order_items AS T1 JOIN products AS T2 "
                    "ON T1.product_id = T2.product_id GROUP BY T2.category"),
    ("school_records", "SELECT avg(grade), count(grade), count(*) FROM enrollments"),
    ("school_records", "SELECT name, gpa FROM students WHERE gpa IS NULL"),
    ("flight_network", "SELECT departure, price, seats FROM flights WHERE flight_id < 5 ORDER BY flight_id"),
    ("flight_network", "SELECT CASE WHEN seats IS NULL THEN 'unknown' ELSE 'known' END, count(*) FROM flights "
                       "GROUP BY CASE WHEN seats IS NULL THEN 'unknown' ELSE 'known' END"),
]


@pytest.mark.parametrize("engine", TARGETS_HERE)
def test_values_agree_with_sqlite(engine, open_test_engine):
    ref, eng = open_test_engine("sqlite"), open_test_engine(engine)
    for db, sql in PORTABLE:
        a, b = ref.execute(db, sql), eng.execute(db, sql)
        assert a.status == b.status == "ok", (sql, a, b)
        assert results_match(a.rows, b.rows, gold_sql=sql), (engine, sql, a.rows[:3], b.rows[:3])


ERRORS = {
    "syntax": "SELEC name FROM products",
    "unknown_table": "SELECT * FROM no_such_table",
    "unknown_column": "SELECT no_such_column FROM products",
    "unknown_function": "SELECT no_such_function(price) FROM products",
    "ambiguous": "SELECT order_id FROM orders JOIN order_items ON orders.order_id = order_items.order_id",
}


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_error_classes(engine, open_test_engine):
    eng = open_test_engine(engine)
    for cls, sql in ERRORS.items():
        ex = eng.execute("retail_shop", sql)
        assert ex.status == "error" and ex.error_class == cls, (engine, cls, ex)
    if engine in ("postgres", "duckdb", "mysql"):
        grp = eng.execute("retail_shop", "SELECT name, count(*) FROM products GROUP BY category")
        assert grp.status == "error" and grp.error_class == "group_by", grp
    if engine == "mysql":
        # a schema that does not exist reads as "SELECT command denied": the query's fault, an
        # unknown table (a DPO negative and an error class), not the guard refusing it ...
        missing = eng.execute("retail_shop", "SELECT teacher_id FROM courses.teacher_id")
        assert missing.status == "error" and missing.error_class == "unknown_table", missing
        # ... while the server's own schemas stay out of reach as a refusal
        system = eng.execute("retail_shop", "SELECT user FROM mysql.user")
        assert system.status == "rejected" and system.error_class == "permission", system
    if engine == "postgres":
        tm = eng.execute("retail_shop", "SELECT * FROM products WHERE name = 5")
        assert tm.error_class == "type_mismatch", tm
        dz = eng.execute("retail_shop", "SELECT 1 / 0")
        assert dz.error_class == "division", dz


def test_sqlite_holds_its_shared_lock_so_results_stay_exact(tmp_path):
    """The SQLite engine keeps its shared lock between statements (no per-statement lock and
    change check): a writer elsewhere is refused while the engine is open, so the engine
    never reads a file that changed under its page cache; once it closes, the writer goes on."""
    from exesql_ray.engines.sqlite import SQLiteEngine

    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "d.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    eng = SQLiteEngine(tmp_path)
    assert eng.execute("d", "SELECT sum(a) FROM t").rows == [(1,)]
    writer = sqlite3.connect(path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        with writer:
            writer.execute("INSERT INTO t VALUES (2)")
    assert eng.execute("d", "SELECT sum(a) FROM t").rows == [(1,)]
    eng.close()
    with writer:
        writer.execute("INSERT INTO t VALUES (2)")
    writer.close()
    eng = SQLiteEngine(tmp_path)
    assert eng.execute("d", "SELECT sum(a) FROM t").rows == [(3,)]
    eng.close()


def test_infra_error_is_retried_not_a_verdict(open_test_engine, db_servers):
    eng = open_test_engine("postgres")
    assert eng.execute("retail_shop", "SELECT 1").status == "ok"
    with psycopg.connect(db_servers["EXESQL_PG_ADMIN_DSN"], autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE usename = 'exesql_reader' AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 1
    ex = eng.execute("retail_shop", "SELECT count(*) FROM customers")
    assert ex.status == "ok" and ex.rows == [(40,)], ex


@pytest.mark.parametrize("engine,dsn,shown", [
    ("postgres", "host=127.0.0.1 port=1 user=u password=s3cret dbname=x", "port=1"),
    ("mysql", "mysql://u:s3cret@127.0.0.1:1/", "127.0.0.1:1")])
def test_an_unreachable_server_is_one_line_at_once_with_the_password_hidden(tmp_path, engine, dsn, shown):
    """One try, one line, exit 2 (not the pool's retries, each logged); the password never shown.
    Oracle's: tests/test_oracle.py."""
    import subprocess
    import sys

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "db_id": "x", "sql": "SELECT 1"}) + "\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "controller", "execute", "--engine", engine, "--dsn", dsn,
                        "--input", str(inp), "--output", str(tmp_path / "out.jsonl")], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert shown in r.stderr and "s3cret" not in r.stderr and "cannot connect" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 6  # the interpreter's start included


def test_mysql_server_that_compares_table_names_as_written_is_refused(db_servers):
    """A MariaDB initialised with lower_case_table_names=0 (MySQL's default on Linux): the
    engine and the migration refuse it with the setting named, instead of failing `FROM Singer` on tables
    migrated as `singer` and sharing cached verdicts between the two. A throwaway server,
    started here on a unix socket (~1 s)."""
    import os
    import shutil
    import subprocess
    import tempfile

    from exesql_ray.engines.mysql import MySQLTarget
    from exesql_ray.engines.mysql import MySQLEngine

    assert shutil.which("mariadbd") and shutil.which("mariadb-install-db"), "run scripts/setup.sh"
    d = tempfile.mkdtemp(prefix="exq-lctn-")  # short: a unix socket path has ~100 bytes
    user = ["--user=root"] if os.geteuid() == 0 else []
    sock, pid = f"{d}/s.sock", f"{d}/pid"
    try:
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={d}/data", *user,
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        server = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={d}/data", f"--socket={sock}",
                                   "--skip-networking", f"--pid-file={pid}", f"--log-error={d}/err.log", *user],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            dsn = f"mysql://root@localhost/?unix_socket={sock}"
            deadline = time.monotonic() + 20
            while not os.path.exists(sock):
                assert time.monotonic() < deadline and server.poll() is None, open(f"{d}/err.log").read()
                time.sleep(0.05)
            with pytest.raises(UserError) as e:
                MySQLEngine(dsn)
            assert "lower_case_table_names=0" in str(e.value) and sock in str(e.value), e.value
            with pytest.raises(UserError) as e:  # migration, before it creates anything
                MySQLTarget(dsn, "exesql_reader")
            assert "lower_case_table_names=0" in str(e.value), e.value
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # the project's own server is set up right
    MySQLEngine(db_servers["EXESQL_MYSQL_DSN"]).close()


def test_spider_dev_gold_matches_plain_sqlite3(tmp_path):
    """Comparator self-check: `exesql-ray execute` on SQLite returns what plain sqlite3 does."""
    from exesql_ray.data import load_dataset

    dev = [e for e in load_dataset("spider", shared("spider"), ["dev"]).splits["dev"] if e.has_db]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": e.id, "db_id": e.db_id, "sql": e.sqlite_sql}) + "\n" for e in dev))
    out = tmp_path / "out.parquet"
    r = run_cli("execute", "--engine", "sqlite", "--db-root", str(shared("spider/database")), "--input", str(inp),
                "--output", str(out), "--max-rows", "100000")
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    recs = {x["id"]: x for x in pq.read_table(out).to_pylist()}
    assert len(recs) == len(dev) == 972
    from exesql_ray.engines.sqlite import SQLiteEngine

    ours = SQLiteEngine(shared("spider/database"))
    mismatches = []
    for e in dev:
        con = sqlite3.connect(f"file:{e.db_path}?mode=ro", uri=True)
        con.text_factory = lambda b: b.decode("utf-8", "replace")
        plain = normalize_rows(con.execute(e.sqlite_sql).fetchall())
        con.close()
        mine = ours.execute(e.db_id, e.sqlite_sql)
        assert recs[e.id]["status"] == "ok" and recs[e.id]["result_hash"] == mine.result_hash
        if not results_match(plain, mine.rows, gold_sql=e.sqlite_sql, opts=CompareOptions(order="strict")):
            mismatches.append(e.id)
    ours.close()
    assert mismatches == []


def test_postgres_row_cap_keeps_rows_and_order(db_servers, spider_migrated):
    """The server-side cap (a LIMIT around the candidate) returns what the bare query returns,
    in the same order, on every Spider dev query PostgreSQL runs as written."""
    from exesql_ray.data import load_dataset
    from exesql_ray.engines.sqltext import capped

    dev = [e for e in load_dataset("spider", shared("spider"), ["dev"]).splits["dev"] if e.has_db]
    compared = 0
    with psycopg.connect(db_servers["EXESQL_PG_DSN"], autocommit=True) as con:
        for e in dev:
            con.execute(f'SET search_path TO "{e.db_id.lower()}"')
            try:
                bare = con.execute(e.sqlite_sql).fetchall()
            except psycopg.Error:
                continue
            # the wrapped form (a comment forces it) and the cheap forms (as is, LIMIT appended)
            assert con.execute(capped(e.sqlite_sql + " -- trailing comment", 100_000, "postgres")).fetchall() == bare, e.id
            assert con.execute(capped(e.sqlite_sql, 100_000, "postgres")).fetchall() == bare, e.id
            compared += 1
    assert compared > 600, compared


def test_row_cap_forms():
    """Every form caps: a LIMIT n above the cap, OFFSET, FETCH, LIMIT ALL, a LIMIT hidden in a
    comment or a string, a LIMIT inside a subquery: all wrapped."""
    from exesql_ray.engines.sqltext import capped

    assert capped("SELECT a FROM t ORDER BY a LIMIT 5;", 100, "sqlite") == "SELECT a FROM t ORDER BY a LIMIT 5"
    assert capped("SELECT a FROM t UNION SELECT b FROM u", 100, "sqlite") == "SELECT a FROM t UNION SELECT b FROM u\nLIMIT 100"
    for sql in ("SELECT a FROM t LIMIT 500", "SELECT a FROM t OFFSET 2", "SELECT a FROM t LIMIT ALL",
                "SELECT a FROM t FETCH FIRST 3 ROWS ONLY", "SELECT a FROM t -- LIMIT 5",
                "SELECT a FROM t /* x */ LIMIT 5", "SELECT a FROM t WHERE a IN (SELECT b FROM u LIMIT 5)",
                "SELECT a FROM t WHERE c = 'limit 5'"):
        assert capped(sql, 100, "sqlite").startswith("SELECT * FROM ("), sql
        assert capped(sql, 100, "sqlite").endswith(") AS exesql_capped LIMIT 100"), sql


def test_row_cap_never_wraps_parentheses_that_do_not_nest():
    """The wrapper's `(` must close at its own `)`: a query whose parentheses do not nest
    (outside strings and comments) is left as written, to fail with its own error."""
    from exesql_ray.engines.sqltext import capped

    for sql in ("SELECT a FROM t) AS x, (SELECT 2 ORDER BY 1 LIMIT 1 OFFSET 0",
                "SELECT a FROM t) AS x, (SELECT 2 ORDER BY 1 -- c",
                "SELECT '(', a FROM t) AS x, (SELECT 2 ORDER BY 1 -- )",
                "SELECT a FROM t WHERE b IN (SELECT c FROM u LIMIT 5"):
        for dialect in ("sqlite", "duckdb", "postgres"):
            assert capped(sql, 100, dialect) == sql, (sql, dialect)
    for sql in ("SELECT a FROM t WHERE c = ')' LIMIT 5 OFFSET 1", "SELECT f(a) FROM t -- )(",
                "SELECT a FROM t WHERE c = $$)$$ LIMIT 5 OFFSET 1"):
        assert capped(sql, 100, "postgres").endswith(") AS exesql_capped LIMIT 100"), sql


# Wrapped by the row cap (ORDER BY and OFFSET), this would be a join that returns rows.
NOT_NESTED = "SELECT name FROM products) AS x, (SELECT 2 AS n ORDER BY 1 LIMIT 1 OFFSET 0"


@pytest.mark.parametrize("engine", ["sqlite", "duckdb", "postgres"])
def test_parentheses_that_do_not_nest_are_a_syntax_error_under_the_row_cap(engine, open_test_engine):
    eng = open_test_engine(engine)
    for ex in (eng.execute("retail_shop", NOT_NESTED, cap=3),
               *eng.execute_many([("retail_shop", NOT_NESTED, 3)])):
        assert ex.status == "error" and ex.error_class == "syntax", ex
        assert "exesql_capped" not in ex.error, ex


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_sorting_query_carries_the_row_cap(engine, open_test_engine):
    """SQLite and DuckDB get the cap as a LIMIT only in a query that sorts (there the engine
    keeps the top rows instead of sorting everything; elsewhere `fetchmany` stops it). The
    capped result is the bare one's first rows, truncated; with ties in the sort key, rows
    of the bare result."""
    eng = open_test_engine(engine)
    assert eng._statement("SELECT name FROM products", 3) == "SELECT name FROM products"
    assert eng._statement("SELECT name FROM products ORDER BY name", 3) == "SELECT name FROM products ORDER BY name\nLIMIT 4"
    assert eng._statement("select name from products order by name limit 2", 3).endswith("limit 2")
    by_id = "SELECT product_id, name FROM products ORDER BY product_id DESC"
    bare = eng.execute("retail_shop", by_id).rows
    assert len(bare) > 4
    top = eng.execute("retail_shop", by_id, cap=3)
    assert top.status == "ok" and top.truncated and top.rows == bare[:3], (top, bare[:4])
    ties = "SELECT category, name FROM products ORDER BY category"
    every = eng.execute("retail_shop", ties).rows
    some = eng.execute("retail_shop", ties, cap=2)
    assert some.truncated and len(some.rows) == 2 and all(r in every for r in some.rows), some
    assert [r[0] for r in some.rows] == [r[0] for r in every[:2]]  # the sort key's order holds


CUT_SHORT = {  # a query that ends where it cannot, as a truncated sample does: its own error
    "sqlite": "incomplete input",
    "duckdb": 'syntax error at or near "BY"',
    "postgres": "42601: syntax error at end of input",
}


@pytest.mark.parametrize("engine", sorted(CUT_SHORT))
def test_query_cut_short_gets_its_own_error_not_one_about_the_row_cap(engine, open_test_engine):
    """The row cap we add (a LIMIT) must not show in the error of a query cut short; the
    pipelined stream (PostgreSQL) says the same as one query at a time."""
    eng = open_test_engine(engine)
    sql = "SELECT name FROM products ORDER BY"
    one = eng.execute("retail_shop", sql, cap=3)
    streamed = list(eng.execute_many([("retail_shop", sql, 3), ("retail_shop", "SELECT 1", None)]))
    for ex in (one, streamed[0]):
        assert ex.status == "error" and ex.error_class == "syntax", ex
        assert CUT_SHORT[engine] in ex.error and "LIMIT" not in ex.error and ")" not in ex.error, ex
    assert streamed[1].status == "ok" and streamed[1].rows == [(1,)]


# Jobs of every kind a stream meets: rows, errors, refusals, a timeout, DB switches, caps.
STREAM = [
    ("retail_shop", "SELECT count(*) FROM orders", None),
    ("retail_shop", "SELECT no_such_column FROM products", None),
    ("retail_shop", "SELECT customer_id, name FROM customers ORDER BY customer_id", None),
    ("retail_shop", "DROP TABLE customers", None),
    ("school_records", "SELECT avg(grade), count(*) FROM enrollments", None),
    ("retail_shop", "SELECT T1.product_id FROM products AS T1, products AS T2", 3),
    ("retail_shop", "SELEC name FROM products", None),
    ("flight_network", "SELECT departure, price FROM flights WHERE flight_id < 5 ORDER BY flight_id", None),
    ("retail_shop", "SELECT a.order_id FROM order_items a, order_items b, order_items c", None),
    ("retail_shop", "SELECT SLEEP(5)", None),
    ("retail_shop", "SELECT * FROM no_such_table", None),
    ("retail_shop", "SELECT name FROM products WHERE product_id = 1;", None),
]


def _verdicts(executions):
    return [(e.status, e.error_class, e.row_count, e.truncated, e.result_hash) for e in executions]


@pytest.mark.parametrize("engine", SERVERS_HERE)
def test_pipelined_stream_agrees_with_one_at_a_time(engine, open_test_engine):
    """`execute_many` sends each query before the last is finished with: the verdicts are the
    ones `execute` gives, job by job, in order (the timeout included)."""
    eng = open_test_engine(engine, timeout_s=1.0, max_rows=500)
    sleep = "SELECT SLEEP(5)" if engine == "mysql" else "SELECT pg_sleep(5)"
    jobs = [(db, sleep if "SLEEP" in sql else sql, cap) for db, sql, cap in STREAM]
    one_by_one = [eng.execute(db, sql, cap) for db, sql, cap in jobs]
    t0 = time.monotonic()
    streamed = list(eng.execute_many(jobs))
    assert time.monotonic() - t0 < 1.0 + 2.0  # one timeout, not more
    assert _verdicts(streamed) == _verdicts(one_by_one)
    assert [e.status for e in streamed].count("timeout") + [e.rows for e in streamed].count([(1,)]) >= 1
    if engine == "postgres":
        assert streamed[9].status == "timeout"
    assert streamed[5].truncated and streamed[5].row_count == 3
    assert streamed[8].truncated and streamed[8].row_count == 500
    assert streamed[3].status == "rejected" and streamed[6].error_class == "syntax"
    assert streamed[1].error == one_by_one[1].error and streamed[10].error == one_by_one[10].error
    assert eng.execute("retail_shop", "SELECT count(*) FROM customers").rows == [(40,)]


def _kill_reader_connections(engine: str, db_servers) -> int:
    """Kill every connection of the SELECT-only login from the admin login; how many."""
    if engine == "postgres":
        with psycopg.connect(db_servers["EXESQL_PG_ADMIN_DSN"], autocommit=True) as admin:
            return len(admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE usename = 'exesql_reader' AND pid <> pg_backend_pid()").fetchall())
    import MySQLdb

    from exesql_ray.engines.mysql import parse_mysql_dsn

    admin = MySQLdb.connect(**parse_mysql_dsn(db_servers["EXESQL_MYSQL_ADMIN_DSN"]), autocommit=True)
    cur = admin.cursor()
    cur.execute("SELECT id FROM information_schema.processlist WHERE user = 'exesql_reader'")
    ids = [r[0] for r in cur.fetchall()]
    for i in ids:
        try:
            cur.execute(f"KILL CONNECTION {int(i)}")
        except MySQLdb.Error:
            pass
    admin.close()
    return len(ids)


@pytest.mark.parametrize("engine", SERVERS_HERE)
def test_stream_retries_a_lost_connection_and_survives_an_abandoned_stream(engine, open_test_engine, db_servers):
    eng = open_test_engine(engine)
    sleep = "SELECT SLEEP(0.5), count(*) FROM customers" if engine == "mysql" else \
        "SELECT pg_sleep(0.5), (SELECT count(*) FROM customers)"
    jobs = [("retail_shop", "SELECT 1", None), ("retail_shop", sleep, None), ("retail_shop", "SELECT count(*) FROM orders", None)]
    stream = eng.execute_many(jobs)
    assert next(stream).rows == [(1,)]  # the sleep is in flight now
    assert _kill_reader_connections(engine, db_servers)
    rest = list(stream)
    assert [e.status for e in rest] == ["ok", "ok"], rest  # retried on a new connection: no verdict lost
    assert rest[0].rows[0][1] == 40
    # a stream dropped with a query in flight: that connection is not reused
    stream = eng.execute_many(jobs)
    next(stream)
    stream.close()
    assert [e.status for e in eng.execute_many(jobs)] == ["ok", "ok", "ok"]
    assert eng.execute("retail_shop", "SELECT 2").rows == [(2,)]


def test_postgres_stream_sends_a_query_larger_than_the_socket_buffer(open_test_engine):
    """The stream sends without blocking: a 1.9 MB query needs several flushes."""
    eng = open_test_engine("postgres")
    big = "SELECT count(*) FROM customers WHERE last_name NOT IN (" + ",".join(f"'n{i}'" for i in range(200_000)) + ")"
    got = list(eng.execute_many([("retail_shop", big, None), ("retail_shop", "SELECT 1", None)]))
    assert [(e.status, e.rows) for e in got] == [("ok", [(40,)]), ("ok", [(1,)])], got[0].error


def test_errors_about_the_machine_are_never_a_verdict(migrated_synth):
    """Out of memory, disk full, too many connections: the environment's fault, so retried and
    then `infra_error`, never an `error` about the SQL. DuckDB's for real (a 20 MB limit); the
    servers' by the errors their drivers raise."""
    import MySQLdb
    import psycopg

    from exesql_ray.engines.duckdb import DuckDBEngine
    from exesql_ray.engines.mysql import MySQLEngine
    from exesql_ray.engines.postgres import PostgresEngine

    eng = DuckDBEngine(ROOT / ".run" / "test-synth" / "duckdb", memory_limit="20MB",
                       limits=Limits(timeout_s=10, retries=1, backoff_s=0.01))
    ex = eng.execute(eng.db_ids()[0], "SELECT count(*) FROM (SELECT DISTINCT a.range * 100000 + b.range "
                                      "FROM range(3000) a, range(3000) b)")
    assert ex.status == "infra_error" and "Out of Memory" in ex.error, ex
    eng.close()
    for state in ("53100", "53200", "53300", "58030"):
        assert PostgresEngine._about_the_environment(None, psycopg.errors.lookup(state)("x")), state
    for state in ("53400", "42601", "22012"):
        assert not PostgresEngine._about_the_environment(None, psycopg.errors.lookup(state)("x")), state
    assert MySQLEngine._about_the_environment(None, MySQLdb.OperationalError(1041, "Out of memory"))
    assert not MySQLEngine._about_the_environment(None, MySQLdb.ProgrammingError(1064, "syntax"))

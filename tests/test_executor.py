"""The executor over real engines: its cache (duplicates run once, keys exact), candidates
fetched only to one row past their gold, and a batch's records equal to row-by-row ones."""

import sqlite3
import threading
import pytest
from exesql_ray.compare import CompareOptions
from exesql_ray.engines.sqltext import cache_key
from exesql_ray.executor import Executor
from conftest import ENGINES_HERE


def test_cache_serves_duplicates(open_test_engine):
    ex = Executor(open_test_engine("postgres"))
    rows = [{"id": str(i), "db_id": "retail_shop", "sql": sql, "gold_sql": "SELECT count(*) FROM orders"}
            for i, sql in enumerate(["SELECT count(*) FROM orders", "select COUNT(*)  from orders;",
                                     "SELECT count(*) FROM orders", "SELECT count(order_id) FROM orders"])]
    recs = ex.run(rows)
    assert [r["match"] for r in recs] == [True] * 4
    # the gold runs first (its size caps the candidate), so the first candidate is its duplicate
    assert [r["cached"] for r in recs] == [True, True, True, False]
    assert ex.cache.hits >= 5  # duplicates and the gold, executed once


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_cache_never_serves_count_with_a_space_for_count(engine, open_test_engine):
    """MySQL and MariaDB refuse `count (*)` (a space before the parenthesis) and run
    `count(*)`; the other engines run both. The cache must not hand one's verdict to the other,
    whichever runs first."""
    eng = open_test_engine(engine)
    gold = "SELECT count(*) FROM orders"
    spaced = "SELECT count (*) FROM orders"
    for order in ([gold, spaced], [spaced, gold]):
        ex = Executor(eng)
        recs = ex.run([{"id": str(i), "db_id": "retail_shop", "sql": sql} for i, sql in enumerate(order)])
        by_sql = {r["sql"]: r for r in recs}
        assert by_sql[gold]["status"] == "ok", recs
        if engine == "mysql":
            assert by_sql[spaced]["status"] == "error" and by_sql[spaced]["error_class"] == "syntax", recs
            assert not by_sql[spaced]["cached"] and not by_sql[gold]["cached"], recs
        else:
            assert by_sql[spaced]["status"] == "ok" and by_sql[order[1]]["cached"], recs


def test_cache_keeps_sqlite_bracketed_names_exact(tmp_path):
    """`[Meal Count (K-12)]` names a column; `[Meal Count(K-12)]` names none. The cache must
    not fold the space inside the brackets and hand one the other's verdict."""
    from exesql_ray.engines.sqlite import SQLiteEngine

    (tmp_path / "schools").mkdir()
    con = sqlite3.connect(tmp_path / "schools" / "schools.sqlite")
    con.execute('CREATE TABLE frpm ("Meal Count (K-12)" INTEGER)')
    con.execute("INSERT INTO frpm VALUES (7)")
    con.commit()
    con.close()
    right, wrong = "SELECT [Meal Count (K-12)] FROM frpm", "SELECT [Meal Count(K-12)] FROM frpm"
    with SQLiteEngine(db_root=tmp_path) as eng:
        for order in ([right, wrong], [wrong, right]):
            recs = {r["sql"]: r for r in Executor(eng).run(
                [{"id": str(i), "db_id": "schools", "sql": sql} for i, sql in enumerate(order)])}
            assert recs[right]["status"] == "ok" and recs[right]["row_count"] == 1, recs
            assert recs[wrong]["status"] == "error" and recs[wrong]["error_class"] == "unknown_column", recs


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_candidate_is_fetched_to_one_row_past_its_gold(engine, open_test_engine):
    """More rows than the gold cannot match a multiset, so a candidate is fetched to gold + 1
    rows at most (MySQL: the session cap only); the same SQL without a gold runs in full."""
    eng = open_test_engine(engine)
    ex = Executor(eng)
    n = eng.execute("retail_shop", "SELECT count(*) FROM products").rows[0][0]
    gold = "SELECT product_id FROM products WHERE product_id = 1"
    cross = "SELECT T1.product_id FROM products AS T1, products AS T2"
    rec = ex.run([{"id": "1", "db_id": "retail_shop", "sql": cross, "gold_sql": gold}])[0]
    assert rec["status"] == "ok" and rec["match"] is False, rec
    if eng.early_cap:  # stopped by the gold's count, not by execution.max_rows
        assert rec["stopped_early"] and not rec["truncated"] and rec["row_count"] == 2, rec
    full = ex.run([{"id": "2", "db_id": "retail_shop", "sql": cross}])[0]
    assert not full["truncated"] and not full["stopped_early"] and full["row_count"] == n * n, full
    assert ex.run([{"id": "3", "db_id": "retail_shop", "sql": cross}])[0]["cached"]  # the full result is kept
    sets = Executor(eng, compare=CompareOptions(rows="set"))  # a set may match with more rows: no early cap
    assert sets.run([{"id": "4", "db_id": "retail_shop", "sql": cross, "gold_sql": gold}])[0]["row_count"] == n * n


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_batch_records_agree_with_row_by_row(engine, open_test_engine):
    """A batch runs as two streams (golds, then candidates capped by their golds), with the
    same SQL in a batch run once: its records are the ones row-by-row execution gives."""
    eng = open_test_engine(engine)
    golds = ["SELECT count(*) FROM orders", "SELECT name FROM products WHERE product_id < 4",
             "SELECT customer_id FROM orders ORDER BY order_id LIMIT 5", "SELECT nope FROM orders"]
    wrong = ["SELECT count(*) FROM order_items", "SELECT name FROM products", "select NAME from products where product_id < 4",
             "SELECT customer_id FROM orders ORDER BY order_id DESC LIMIT 5", "DROP TABLE orders",
             "SELECT T1.name FROM products AS T1, products AS T2", "SELEC 1"]
    rows = []
    for q, gold in enumerate(golds):
        for k in range(8):
            sql = gold if k % 3 == 0 else wrong[(q + k) % len(wrong)]
            rows.append({"id": f"{q}-{k}", "db_id": "retail_shop", "sql": sql, "gold_sql": gold})
    rows += [{"id": "bad", "db_id": "no_such_db", "sql": "SELECT 1"}, {"id": "nogold", "db_id": "retail_shop",
             "sql": "SELECT T1.name FROM products AS T1, products AS T2"}]
    # repeats of earlier rows under new ids (a batch copies their records), a malformed one too
    rows += [{**rows[-1], "id": "nogold-again"}, {**rows[-2], "id": "bad-again"}, {**rows[1], "id": ""}]
    fields = ("id", "status", "error_class", "match", "gold_status", "row_count", "truncated", "result_hash", "cached")

    def agree(got, expected, check_cached):
        """Equal records; except that a SQL text met under several caps runs once, at the widest
        (row by row, it runs again when a wider cap is asked for): where such a text was cut
        off, its records agree on the verdict and have at least as many rows."""
        assert len(got) == len(expected)
        cut = {cache_key(r["sql"], eng.dialect) for r in got + expected if r["truncated"] or r["stopped_early"]}
        for g, e in zip(got, expected):
            n = len(fields) if check_cached else len(fields) - 1
            if e["sql"] and cache_key(e["sql"], eng.dialect) in cut:
                assert [g[f] for f in fields[:5]] == [e[f] for f in fields[:5]], (g, e)
                assert g["row_count"] >= e["row_count"], (g, e)
            else:
                assert [g[f] for f in fields[:n]] == [e[f] for f in fields[:n]], (g, e)

    streams_on = []  # the thread each stream of jobs runs on
    plain_execute_many = eng.execute_many

    def spy(jobs):
        streams_on.append(threading.current_thread().name)
        yield from plain_execute_many(jobs)

    eng.execute_many = spy
    for cache in (True, False):
        ref = Executor(eng, cache=cache)
        expected = [ref.run_row(r) for r in rows]
        for workers in (1, 3):
            streams_on.clear()
            ex = Executor(eng, cache=cache, workers=workers)
            got = ex.run(rows)
            on_pool = [n for n in streams_on if n.startswith(f"exec-{eng.name}")]
            # one thread for workers=1; else every chunk's streams on the executor's own threads
            assert len(on_pool) == (0 if workers == 1 else len(streams_on)) and streams_on, streams_on
            # threads race for the first run of a SQL text: `cached` may differ there
            agree(got, expected, check_cached=workers == 1)
            if cache and workers == 1:  # the hits a repeated row would have had are counted
                assert (ex.cache.hits, ex.cache.misses) == (ref.cache.hits, ref.cache.misses)
            assert (ex.cache is None) == (not cache)
    assert sum(r["match"] is True for r in got) >= 8
    assert sum(r["match"] is False for r in got) >= 8

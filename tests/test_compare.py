"""The comparator's semantics, on values as engines return them."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlglot
from sqlglot import exp

from exesql_ray.compare import CompareOptions, query_orders, results_match
from exesql_ray.dialects import dialect_of
from exesql_ray.engines.results import normalize_rows, result_hash
from tests.conftest import shared


def norm(rows):
    return normalize_rows(rows)


def test_values_normalised_across_engines():
    sqlite = norm([(3, 2.5, "2023-01-01 06:00:00", None, 1)])
    postgres = norm([(Decimal("3.000"), Decimal("2.5000"), dt.datetime(2023, 1, 1, 6), None, True)])
    assert results_match(sqlite, postgres)
    assert result_hash(sqlite) == result_hash(postgres)
    assert norm([(b"abc", b"\xff\x00")]) == [("abc", "ff00")]
    assert norm([(dt.date(2020, 2, 1),)]) == [("2020-02-01",)]


def test_result_hash_is_the_multiset_and_the_same_in_every_process():
    rows = [(2, "b"), (1, None), (2, "b")]
    assert result_hash(rows) == result_hash([(1, None), (2, "b"), (2, "b")])  # order-free
    assert result_hash(rows) != result_hash([(1, None), (2, "b")])  # counts matter
    assert result_hash([("ab", "c")]) != result_hash([("a", "bc")])  # rows do not run together
    assert result_hash(norm(((1, "x"),))) == result_hash([(1, "x")])  # a driver's tuple of tuples
    # A fixed digest: records written by other processes (actors, resumed runs) compare with
    # these, so the serialisation must not depend on the process (marshal format 2 does not).
    assert result_hash([(1, "a", 2.5, None)]) == "ddced44ed972266a33b07cd7"


def test_bag_vs_set_and_order():
    gold = [(1,), (1,), (2,)]
    assert results_match(gold, [(2,), (1,), (1,)])
    assert not results_match(gold, [(1,), (2,)])
    assert results_match(gold, [(1,), (2,)], opts=CompareOptions(rows="set"))
    ordered = "SELECT a FROM t ORDER BY a"
    assert query_orders(ordered) and not query_orders("SELECT a FROM (SELECT a FROM t ORDER BY a)")
    assert not results_match([(1,), (2,)], [(2,), (1,)], gold_sql=ordered)
    assert results_match([(1,), (2,)], [(2,), (1,)], gold_sql="SELECT a FROM t")
    assert not results_match([(1,), (2,)], [(2,), (1,)], opts=CompareOptions(order="strict"))


@pytest.mark.parametrize("sql,orders", [
    ("SELECT a FROM t ORDER BY a;", True),
    ("(SELECT a FROM t ORDER BY a)", True),
    ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
    ("SELECT a FROM (SELECT a FROM t ORDER BY a) AS s", False),
    ("SELECT a, rank() OVER (ORDER BY b) FROM t", False),
    ("SELECT 'order by' FROM t", False),
    ("SELECT a FROM t WHERE a IN (SELECT a FROM u ORDER BY a LIMIT 3)", False),
])
def test_query_orders_reads_the_top_level(sql, orders):
    assert query_orders(sql) is orders


def _orders_by_parse(sql: str, dialect: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read=dialect_of(dialect))
    except Exception:
        return "order by" in sql.lower()
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return tree is not None and tree.args.get("order") is not None


def test_query_orders_agrees_with_a_full_parse_on_all_gold():
    """query_orders reads tokens for speed; on every Spider and BIRD gold query it must say
    what sqlglot's parse tree says."""
    gold = []
    for rel, dialect in [("spider/train_gold.sql", "sqlite"), ("spider/dev_gold.sql", "sqlite"),
                         ("bird_minidev/mini_dev_sqlite_gold.sql", "sqlite"),
                         ("bird_minidev/mini_dev_postgresql_gold.sql", "postgres"),
                         ("bird_minidev/mini_dev_mysql_gold.sql", "mysql")]:
        gold += [(line.rsplit("\t", 1)[0], dialect) for line in shared(rel).read_text().splitlines() if line.strip()]
    assert len(gold) > 10_000
    differ = [(sql, d) for sql, d in gold if query_orders.__wrapped__(sql, d) != _orders_by_parse(sql, d)]
    assert differ == []


def test_float_tolerance_and_types():
    assert results_match([(0.1 + 0.2,)], [(0.3,)])
    assert not results_match([(0.3,)], [(0.31,)])
    assert not results_match([("1",)], [(1,)])  # text is not a number
    assert not results_match([(None,)], [(0,)])
    # the tolerance is for floats: two ints compare exactly, an int and a float within it
    assert not results_match([(1_000_000,)], [(1_000_001,)])
    assert results_match([(1_000_000,)], [(1_000_000.0000001,)])
    assert results_match([(3,)], [(3.0,)])
    big = [(2**60 + 1,), (2**60,)]  # one float for both: sorted by their exact values
    assert results_match(big, big[::-1]) and not results_match(big, [(2**60,), (2**60,)])


def test_column_order_option():
    gold, pred = [(1, "a"), (2, "b")], [("a", 1), ("b", 2)]
    assert not results_match(gold, pred)
    assert results_match(gold, pred, opts=CompareOptions(column_order=False))
    assert not results_match([(1, 2)], [(1, 2, 3)])
    assert results_match([], [])

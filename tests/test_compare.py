"""The comparator's semantics, on values as engines return them."""

import datetime as dt
from decimal import Decimal

from exesql_ray.compare import CompareOptions, query_orders, results_match
from exesql_ray.engines.base import normalize_rows, result_hash


def norm(rows):
    return normalize_rows(rows)


def test_values_normalised_across_engines():
    sqlite = norm([(3, 2.5, "2023-01-01 06:00:00", None, 1)])
    postgres = norm([(Decimal("3.000"), Decimal("2.5000"), dt.datetime(2023, 1, 1, 6), None, True)])
    assert results_match(sqlite, postgres)
    assert result_hash(sqlite) == result_hash(postgres)
    assert norm([(b"abc", b"\xff\x00")]) == [("abc", "ff00")]
    assert norm([(dt.date(2020, 2, 1),)]) == [("2020-02-01",)]


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


def test_float_tolerance_and_types():
    assert results_match([(0.1 + 0.2,)], [(0.3,)])
    assert not results_match([(0.3,)], [(0.31,)])
    assert not results_match([("1",)], [(1,)])  # text is not a number
    assert not results_match([(None,)], [(0,)])


def test_column_order_option():
    gold, pred = [(1, "a"), (2, "b")], [("a", 1), ("b", 2)]
    assert not results_match(gold, pred)
    assert results_match(gold, pred, opts=CompareOptions(column_order=False))
    assert not results_match([(1, 2)], [(1, 2, 3)])
    assert results_match([], [])

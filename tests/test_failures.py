"""The failure analysis of bench/errors.py (exesql_ray/failures.py): classes, the logical cause
of a wrong result, and unknown columns that belong to another table."""

import pytest

from exesql_ray.failures import RUNS_WRONG, failure_class, logical_cause, unknown_column_elsewhere
from exesql_ray.schema import Schema

GOLD = "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE T1.year = 2014"


def test_failure_class():
    assert failure_class({"outcome": "pass", "status": "ok", "error_class": None}) is None
    assert failure_class({"outcome": "wrong", "status": "ok", "error_class": None}) == RUNS_WRONG
    assert failure_class({"outcome": "error", "status": "error", "error_class": "unknown_column"}) == "unknown_column"
    assert failure_class({"outcome": "error", "status": "timeout", "error_class": None}) == "timeout"


@pytest.mark.parametrize("sql, cause", [
    ("SELECT name FROM stadium WHERE capacity > 2014", "wrong join"),
    ("SELECT count(T2.name) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "WHERE T1.year = 2014", "wrong aggregation"),
    ("SELECT s.name FROM concert AS c JOIN stadium AS s ON c.stadium_id = s.stadium_id", "missing condition"),
    ("SELECT s.name FROM concert AS c JOIN stadium AS s ON c.stadium_id = s.stadium_id WHERE c.year = 2015",
     "wrong condition"),
    ("SELECT s.location FROM concert AS c JOIN stadium AS s ON c.stadium_id = s.stadium_id WHERE c.year = 2014",
     "wrong column"),
    ("SELECT DISTINCT s.name FROM concert AS c JOIN stadium AS s ON c.stadium_id = s.stadium_id "
     "WHERE c.year = 2014", "other"),
    ("SELECT FROM WHERE (", "other"),
])
def test_logical_cause(sql, cause):
    assert logical_cause(sql, GOLD, "postgres") == cause


def test_unknown_column_of_another_table_is_a_join_left_out():
    schema = Schema({"concert": {"concert_id": "int", "stadium_id": "int", "year": "int"},
                     "stadium": {"stadium_id": "int", "name": "text", "capacity": "int"}})
    assert unknown_column_elsewhere("SELECT name FROM concert WHERE year = 2014", "duckdb", schema) is True
    assert unknown_column_elsewhere("SELECT title FROM concert", "duckdb", schema) is False
    assert unknown_column_elsewhere("SELECT count(*) AS n FROM concert ORDER BY n", "duckdb", schema) is False
    assert unknown_column_elsewhere("SELECT FROM (", "duckdb", schema) is None

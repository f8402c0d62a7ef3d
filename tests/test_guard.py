"""The guard's fast path never accepts what the tokenizer refuses."""

import pytest

from conftest import shared
from exesql_ray.data import load_dataset
from exesql_ray.engines import sqltext
from exesql_ray.engines.duckdb import DuckDBEngine
from exesql_ray.engines.mysql import MySQLEngine
from exesql_ray.engines.oracle import OracleEngine
from exesql_ray.engines.postgres import PostgresEngine
from exesql_ray.engines.sqlite import SQLiteEngine
from test_hostile import COMMON, PER_ENGINE

TRICKY = [
    "SELECT 'DROP TABLE x' AS s", "SELECT 'a;b'", "-- c\nDELETE FROM t", "/* x */ SELECT 1", "SELECT 1 -- ; DROP",
    "SELECT last_update, deleted_at FROM t", 'SELECT "delete" FROM t', "SELECT * FROM t WHERE x = 'insert into'",
    "WITH a AS (SELECT 1) SELECT * FROM a", "(SELECT 1) UNION (SELECT 2)", "VALUES (1)", "SELECT 1;;  ",
    "select\tset_config('a','b',false)", "SELECT pg_sleep(1)", "SELECT get_lock('x', 1)", "SELECT 1 INTO @x",
    "SELEC 1", "  select * from use_cases", "SELECT use FROM t", "EXPLAIN SELECT 1",
]


@pytest.mark.parametrize("cls", [SQLiteEngine, DuckDBEngine, PostgresEngine, MySQLEngine, OracleEngine])
def test_fast_path_agrees_with_tokenizer(cls):
    ds = load_dataset("spider", shared("spider"))
    sqls = [e.sqlite_sql for s in ds.splits.values() for e in s]
    sqls += COMMON + [q for qs in PER_ENGINE.values() for q in qs] + TRICKY
    fast = 0
    for sql in sqls:
        token_verdict = sqltext.inspect_sql(sql, cls.dialect, cls.denied_functions)[0]
        if sqltext._fast_accept(sql, cls.denied_functions):
            fast += 1
            assert token_verdict is None, (cls.name, sql, token_verdict)
        assert sqltext.guard(sql, cls.dialect, cls.denied_functions) == token_verdict, (cls.name, sql)
    assert fast / len(sqls) > 0.9  # the fast path is the common path


def test_cache_key_equal_only_for_same_query():
    k = lambda s: sqltext.cache_key(s, "sqlite")  # noqa: E731
    assert k("SELECT a FROM t;") == k("select  a\nfrom T")
    assert k("SELECT a , b FROM t WHERE b = 'X'") == k("select a,b  from t where b =  'X';")
    assert k("SELECT a FROM t WHERE b <= 'X'") != k("SELECT a FROM t WHERE b < = 'X'")
    assert len({k("SELECT 'a'\n'b'"), k("SELECT 'a' 'b'"), k("SELECT 'a''b'")}) == 3
    assert k("SELECT a -- c\nFROM t") != k("SELECT a -- c FROM t")  # comments: tokenised
    assert k("SELECT 'it''s' , X FROM t") == k("select 'it''s',x from t")
    assert k("SELECT 'a") != k("SELECT 'A")  # an unbalanced quote: tokenised
    assert k("SELECT a FROM t WHERE b = 'X'") != k("SELECT a FROM t WHERE b = 'x'")
    assert k("SELECT a FROM t WHERE b = 'x  y'") != k("SELECT a FROM t WHERE b = 'x y'")
    # SQLite's bracketed names are quoted text: their spaces count
    assert k("SELECT [Meal Count (K-12)] FROM t") != k("SELECT [Meal Count(K-12)] FROM t")
    assert k("SELECT [Meal Count (K-12)] FROM t") == k("select  [Meal Count (K-12)]  from T")


def test_mysql_key_keeps_a_space_before_a_parenthesis():
    """MySQL reads `count (*)` as a syntax error: its keys keep `count (` apart from `count(`,
    in plain text, beside quotes and when tokenised (a comment); elsewhere they are one query."""
    for tail in ("", " WHERE b = 'x'", " WHERE b = 'x\\\\y'"):  # plain, quotes, tokenised (a backslash)
        plain, spaced = "SELECT count(*) FROM t" + tail, "SELECT count (*) FROM t" + tail
        assert sqltext.cache_key(plain, "mysql") != sqltext.cache_key(spaced, "mysql"), tail
        assert sqltext.cache_key(spaced, "mysql") == sqltext.cache_key("select COUNT  (*)  from t" + tail, "mysql"), tail
        assert sqltext.cache_key(plain, "mysql") == sqltext.cache_key("select COUNT( * ) from t" + tail, "mysql"), tail
        for dialect in ("sqlite", "postgres", "duckdb"):
            assert sqltext.cache_key(plain, dialect) == sqltext.cache_key(spaced, dialect), (tail, dialect)


def test_text_with_comments_keys_as_written():
    """MySQL runs `/*! … */` and reads `--` + U+00A0 as code; a key that drops comments gave a
    refused query's verdict to a benign one (and back) on a cache hit, which skips the guard."""
    for dialect in ("sqlite", "postgres", "duckdb", "mysql"):
        k = lambda s: sqltext.cache_key(s, dialect)  # noqa: E731
        assert k("SELECT 1 /*! INTO @x */") != k("SELECT 1")
        assert k("SELECT 1 --\u00a0x FROM (SELECT 1) t INTO @h") != k("SELECT 1")
        assert k("SELECT 1 -- c") != k("SELECT 1") and k("SELECT 1 -- c") == k("SELECT 1 -- c;")


@pytest.mark.parametrize("sql,why", [
    ("SELECT 1 --\u00a0x FROM (SELECT 1) t INTO @hx", "`--` followed by"),
    ("SELECT 1 --\u2003x, GET_LOCK('a', 0)", "`--` followed by"),
    ("SELECT `GET_LOCK`('a', 0)", "get_lock()"),
    ("SELECT `get_lock` ('a', 0)", "get_lock()"),
    ("SELECT LAST_INSERT_ID(42)", "last_insert_id()"),
    ("SELECT (SELECT @hy := 7)", ":="),
])
def test_mysql_guard_reads_the_text_as_mysql_does(sql, why):
    refusal = sqltext.guard(sql, "mysql", MySQLEngine.denied_functions)
    assert refusal is not None and why in refusal, (sql, refusal)
    assert sqltext.guard("SELECT 1 -- fine\nFROM t", "mysql", MySQLEngine.denied_functions) is None


def test_quoted_names_are_the_functions_they_name():
    assert "set_config()" in sqltext.guard('SELECT "set_config"(\'a\', \'b\', false)', "postgres",
                                        PostgresEngine.denied_functions)
    for sql in ("SELECT lo_from_bytea(0, 'x'::bytea)", "SELECT lo_create(0)", "SELECT setseed(0.5)"):
        assert sqltext.guard(sql, "postgres", PostgresEngine.denied_functions) is not None, sql
    assert sqltext.guard("SELECT setseed(0.5)", "duckdb", DuckDBEngine.denied_functions) is not None


def test_trailing_semicolons_go_but_not_inside_a_literal():
    for dialect in ("postgres", "mysql", "sqlite", "duckdb"):
        strip = lambda s: sqltext.strip_trailing_semicolons(s, dialect)  # noqa: E731
        assert strip("SELECT 'a; --b' AS s") == "SELECT 'a; --b' AS s"
        assert strip("SELECT 'a; --b' AS s ; -- it's done") == "SELECT 'a; --b' AS s"
        assert strip("SELECT 1; -- x") == "SELECT 1" and strip("SELECT 'x';;") == "SELECT 'x'"
        assert "'a; --b'" in sqltext.capped("SELECT 'a; --b' AS s", 5, dialect)


def test_plain_key_is_the_regex_definition():
    """`_plain` is written with str methods for speed; it must stay what its two regexes say:
    whitespace runs (Unicode's too) as one space, none beside `,` `(` `)`, lower case."""
    import random

    def by_regex(text: str) -> str:
        return sqltext._AROUND_PUNCT.sub(r"\1", sqltext._WS.sub(" ", text)).lower()

    def by_regex_spaced_calls(text: str) -> str:  # MySQL: a space before `(` stays
        return sqltext._AROUND_PUNCT_SPACED_CALLS.sub(r"\1\2", sqltext._WS.sub(" ", text)).lower()

    rng = random.Random(7)
    alphabet = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x1c", "\u00a0", "\u2003", "\u3000",
                ",", "(", ")", "a", "B", "=", "<", ";", "É"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert sqltext._plain(text) == by_regex(text), repr(text)
        assert sqltext._plain(text, True) == by_regex_spaced_calls(text), repr(text)
    ds = load_dataset("spider", shared("spider"))
    for sql in (e.sqlite_sql for s in ds.splits.values() for e in s):
        for part in sqltext._QUOTED.split(sql)[0::2]:
            assert sqltext._plain(part) == by_regex(part), part
            assert sqltext._plain(part, True) == by_regex_spaced_calls(part), part


@pytest.mark.parametrize("cls", [SQLiteEngine, DuckDBEngine, PostgresEngine, MySQLEngine, OracleEngine])
@pytest.mark.parametrize("sql", ["```sql\nSELECT 1\n```", "`SELECT 1`", "-> SELECT 1", "(1)"])
def test_text_that_is_not_sql_is_a_syntax_error_on_every_engine(cls, sql):
    """A model's answer in a markdown fence is the same verdict everywhere (was rejected/permission
    on PostgreSQL, where ``` is not a quote)."""
    why = sqltext.inspect_sql(sql, cls.dialect, cls.denied_functions)[0]
    if why is not None:
        assert why.startswith(sqltext.SYNTAX_PREFIX), (cls.name, why)
    assert sqltext.inspect_sql("INSERT INTO t VALUES (1)", cls.dialect, cls.denied_functions)[0] is not None
    assert not sqltext.inspect_sql("INSERT INTO t VALUES (1)", cls.dialect,
                                   cls.denied_functions)[0].startswith(sqltext.SYNTAX_PREFIX)

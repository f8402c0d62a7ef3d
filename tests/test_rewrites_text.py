"""Every translation rewrite's SQL text, per engine, checked as text (sqlglot's
tests/dialects style): no server, no Ray, no model. `tests/test_translate.py` runs the same
queries on the real engines and is the proof that these texts return the SQLite result; this
file pins what `translate` writes, so that a change to a rewrite or an engine's declarations
shows up here first. Also: every engine's declarations agree with the registry."""

import pytest

from conftest import shared
from exesql_ray.config import load_config
from exesql_ray.engines import ENGINES, SOURCE, TARGETS, engine_class
from exesql_ray.schema import schema_of
from exesql_ray.translate import REWRITES, rule_translations

# (rewrite, db_id, SQLite query, {engine: (the rewrites' text without qualification, whether
# that rewrite applied)}); None: the rewrites fail on that engine (an error record).
CASES = [
    ('double_quoted_strings', 'concert_singer', 'SELECT count(*) FROM singer WHERE country = "France"', {
        'duckdb': ("SELECT COUNT(*) FROM singer WHERE country = 'France'", True),
        'postgres': ("SELECT COUNT(*) FROM singer WHERE country = 'France'", True),
        'mysql': ("SELECT COUNT(*) FROM singer WHERE CAST(country AS BINARY) = 'France'", True),
        'oracle': ("SELECT COUNT(*) FROM singer WHERE country = 'France'", True),
    }),
    ('text_number_comparison', 'concert_singer', 'SELECT count(*) FROM concert WHERE year = 2014', {
        'duckdb': ("SELECT COUNT(*) FROM concert WHERE year = '2014'", True),
        'postgres': ("SELECT COUNT(*) FROM concert WHERE year = '2014'", True),
        'mysql': ("SELECT COUNT(*) FROM concert WHERE CAST(year AS BINARY) = '2014'", True),
        'oracle': ("SELECT COUNT(*) FROM concert WHERE year = '2014'", True),
    }),
    ('text_integer_columns', 'concert_singer', 'SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)', {
        'duckdb': ('SELECT stadium.name FROM stadium WHERE NOT CAST(stadium.stadium_id AS TEXT) IN (SELECT concert.stadium_id FROM concert)', True),
        'postgres': ('SELECT stadium.name FROM stadium WHERE NOT CAST(stadium.stadium_id AS TEXT) IN (SELECT concert.stadium_id FROM concert)', True),
        'mysql': ('SELECT stadium.name FROM stadium WHERE NOT stadium.stadium_id IN (SELECT concert.stadium_id FROM concert)', False),
        'oracle': ('SELECT stadium.name FROM stadium WHERE NOT CAST(stadium.stadium_id AS CLOB) IN (SELECT concert.stadium_id FROM concert)', True),
    }),
    ('like_case_insensitive', 'concert_singer', "SELECT name FROM singer WHERE name LIKE '%JOE%'", {
        'duckdb': ("SELECT name FROM singer WHERE name ILIKE '%JOE%'", True),
        'postgres': ("SELECT name FROM singer WHERE name ILIKE '%JOE%'", True),
        'mysql': ("SELECT name FROM singer WHERE name LIKE '%JOE%'", False),
        'oracle': ("SELECT name FROM singer WHERE name LIKE '%JOE%'", False),
    }),
    ('bare_columns_in_groups', 'concert_singer', 'SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id', {
        'duckdb': ('SELECT MIN(t2.name) AS name, COUNT(*) FROM concert AS t1 JOIN stadium AS t2 ON t1.stadium_id = CAST(t2.stadium_id AS TEXT) GROUP BY t1.stadium_id', True),
        'postgres': ('SELECT MIN(t2.name) AS name, COUNT(*) FROM concert AS t1 JOIN stadium AS t2 ON t1.stadium_id = CAST(t2.stadium_id AS TEXT) GROUP BY t1.stadium_id', True),
        'mysql': ('SELECT MIN(CAST(t2.name AS BINARY)) AS name, COUNT(*) FROM concert AS t1 JOIN stadium AS t2 ON t1.stadium_id = t2.stadium_id GROUP BY CAST(t1.stadium_id AS BINARY)', True),
        'oracle': ('SELECT MIN(t2.name) AS name, COUNT(*) FROM concert t1 JOIN stadium t2 ON t1.stadium_id = CAST(t2.stadium_id AS CLOB) GROUP BY t1.stadium_id', True),
    }),
    ('extreme_row_without_group', 'concert_singer', 'SELECT max(capacity), average FROM stadium', {
        'duckdb': ('SELECT capacity, average FROM stadium WHERE NOT capacity IS NULL ORDER BY capacity DESC LIMIT 1', True),
        'postgres': ('SELECT capacity, average FROM stadium WHERE NOT capacity IS NULL ORDER BY capacity DESC NULLS LAST LIMIT 1', True),
        'mysql': ('SELECT capacity, average FROM stadium WHERE NOT capacity IS NULL ORDER BY capacity DESC LIMIT 1', True),
        'oracle': ('SELECT capacity, average FROM stadium WHERE NOT capacity IS NULL ORDER BY capacity DESC NULLS LAST FETCH FIRST 1 ROWS ONLY', True),
    }),
    ('numeric_aggregates_over_text', 'concert_singer', 'SELECT avg(song_release_year) FROM singer', {
        'duckdb': ("SELECT AVG(CASE WHEN song_release_year IS NULL THEN NULL ELSE COALESCE(TRY_CAST(NULLIF(REGEXP_EXTRACT(song_release_year, '^[[:space:]]*([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?)', 1), '') AS DOUBLE), 0) END) FROM singer", True),
        'postgres': ("SELECT AVG(CASE WHEN song_release_year IS NULL THEN NULL ELSE COALESCE(CAST(NULLIF(SUBSTRING(song_release_year FROM '^[[:space:]]*([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?)'), '') AS DOUBLE PRECISION), 0) END) FROM singer", True),
        'mysql': ('SELECT AVG(CAST(song_release_year AS DOUBLE)) FROM singer', False),
        'oracle': (None, False),
    }),
    ('mysql_binary_strings', 'flight_2', "SELECT AirportCode, AirportName FROM AIRPORTS WHERE city = 'Anthony'", {
        'duckdb': ("SELECT airportcode, airportname FROM airports WHERE city = 'Anthony'", False),
        'postgres': ("SELECT airportcode, airportname FROM airports WHERE city = 'Anthony'", False),
        'mysql': ("SELECT airportcode, airportname FROM airports WHERE CAST(city AS BINARY) = 'Anthony'", True),
        'oracle': ("SELECT airportcode, airportname FROM airports WHERE city = 'Anthony'", False),
    }),
    ('mysql_double_arithmetic', 'museum_visit', 'SELECT avg(num_of_staff) FROM museum WHERE open_year < 2009', {
        'duckdb': ("SELECT AVG(num_of_staff) FROM museum WHERE open_year < '2009'", False),
        'postgres': ("SELECT AVG(num_of_staff) FROM museum WHERE open_year < '2009'", False),
        'mysql': ("SELECT AVG(CAST(num_of_staff AS DOUBLE)) FROM museum WHERE CAST(open_year AS BINARY) < '2009'", True),
        'oracle': ("SELECT AVG(num_of_staff) FROM museum WHERE open_year < '2009'", False),
    }),
    ('number_column_vs_word', 'concert_singer', 'SELECT count(*) FROM singer WHERE age != "null"', {
        'duckdb': ('SELECT COUNT(*) FROM singer WHERE (CASE WHEN age IS NULL THEN NULL ELSE 1 = 1 END)', True),
        'postgres': ('SELECT COUNT(*) FROM singer WHERE (CASE WHEN age IS NULL THEN NULL ELSE 1 = 1 END)', True),
        'mysql': ('SELECT COUNT(*) FROM singer WHERE (CASE WHEN age IS NULL THEN NULL ELSE 1 = 1 END)', True),
        'oracle': ("SELECT COUNT(*) FROM singer WHERE CAST(age AS CLOB) <> 'null'", False),
    }),
    ('text_arithmetic', 'museum_visit', 'SELECT name FROM museum WHERE open_year - 2000 > 9', {
        'duckdb': ("SELECT name FROM museum WHERE CASE WHEN open_year IS NULL THEN NULL ELSE COALESCE(TRY_CAST(NULLIF(REGEXP_EXTRACT(open_year, '^[[:space:]]*([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?)', 1), '') AS DOUBLE), 0) END - 2000 > 9", True),
        'postgres': ("SELECT name FROM museum WHERE CASE WHEN open_year IS NULL THEN NULL ELSE COALESCE(CAST(NULLIF(SUBSTRING(open_year FROM '^[[:space:]]*([-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?)'), '') AS DOUBLE PRECISION), 0) END - 2000 > 9", True),
        'mysql': ('SELECT name FROM museum WHERE open_year - 2000 > 9', False),
        'oracle': ('SELECT name FROM museum WHERE open_year - 2000 > 9', False),
    }),
    ('single_group_order', 'museum_visit', 'SELECT sum(num_of_staff) FROM museum ORDER BY open_year DESC LIMIT 2', {
        'duckdb': ('SELECT SUM(num_of_staff) FROM museum LIMIT 2', True),
        'postgres': ('SELECT SUM(num_of_staff) FROM museum LIMIT 2', True),
        'mysql': ('SELECT SUM(num_of_staff) FROM museum LIMIT 2', True),
        'oracle': ('SELECT SUM(num_of_staff) FROM museum FETCH FIRST 2 ROWS ONLY', True),
    }),
    ('sum_of_conditions', 'concert_singer', "SELECT sum(is_male = 'T') FROM singer", {
        'duckdb': ("SELECT SUM(is_male = 'T') FROM singer", False),
        'postgres': ("SELECT SUM(CAST(is_male = 'T' AS INT)) FROM singer", True),
        'mysql': ("SELECT SUM(CAST(is_male AS BINARY) = 'T') FROM singer", False),
        'oracle': ("SELECT SUM(is_male = 'T') FROM singer", False),
    }),
    ('text_integer_columns', 'museum_visit', 'SELECT v.museum_id FROM visit AS v JOIN visit AS w ON v.total_spent = w.visitor_id', {
        'duckdb': ('SELECT v.museum_id FROM visit AS v JOIN visit AS w ON v.total_spent = TRY_CAST(w.visitor_id AS DOUBLE)', True),
        'postgres': ("SELECT v.museum_id FROM visit AS v JOIN visit AS w ON v.total_spent = CASE WHEN w.visitor_id ~ '^[[:space:]]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$' THEN CAST(w.visitor_id AS DOUBLE PRECISION) END", True),
        'mysql': ('SELECT v.museum_id FROM visit AS v JOIN visit AS w ON v.total_spent = w.visitor_id', False),
        'oracle': ('SELECT v.museum_id FROM visit v JOIN visit w ON v.total_spent = w.visitor_id', False),
    }),
    ('mysql_binary_collation', 'concert_singer', 'SELECT n, count(*) FROM (SELECT lower(name) AS n FROM singer UNION ALL SELECT name FROM singer) AS t GROUP BY n', {
        'duckdb': ('SELECT t.n, COUNT(*) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t GROUP BY t.n', False),
        'postgres': ('SELECT t.n, COUNT(*) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t GROUP BY t.n', False),
        'mysql': ('SELECT CAST(t.n AS BINARY) AS n, COUNT(*) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t GROUP BY CAST(t.n AS BINARY)', True),
        'oracle': ('SELECT t.n, COUNT(*) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) t GROUP BY t.n', False),
    }),
    ('mysql_binary_collation', 'concert_singer', 'SELECT n FROM (SELECT lower(name) AS n FROM singer UNION ALL SELECT name FROM singer) AS t ORDER BY n', {
        'duckdb': ('SELECT t.n FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t ORDER BY n NULLS FIRST', False),
        'postgres': ('SELECT t.n FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t ORDER BY n NULLS FIRST', False),
        'mysql': ('SELECT t.n FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t ORDER BY CAST(t.n AS BINARY)', True),
        'oracle': ('SELECT t.n FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) t ORDER BY n NULLS FIRST', False),
    }),
    ('mysql_binary_collation', 'concert_singer', 'SELECT count(DISTINCT n) FROM (SELECT lower(name) AS n FROM singer UNION ALL SELECT name FROM singer) AS t', {
        'duckdb': ('SELECT COUNT(DISTINCT t.n) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t', False),
        'postgres': ('SELECT COUNT(DISTINCT t.n) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t', False),
        'mysql': ('SELECT COUNT(DISTINCT CAST(t.n AS BINARY)) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) AS t', True),
        'oracle': ('SELECT COUNT(DISTINCT t.n) FROM (SELECT LOWER(singer.name) AS n FROM singer UNION ALL SELECT singer.name FROM singer) t', False),
    }),
    ('julianday', 'concert_singer', "SELECT julianday('2020-01-02') - julianday('2020-01-01')", {
        'duckdb': ("SELECT (EPOCH(CAST('2020-01-02' AS TIMESTAMP)) / 86400.0 + 2440587.5) - (EPOCH(CAST('2020-01-01' AS TIMESTAMP)) / 86400.0 + 2440587.5)", True),
        'postgres': ("SELECT (EXTRACT(EPOCH FROM CAST('2020-01-02' AS TIMESTAMP)) / 86400.0 + 2440587.5) - (EXTRACT(EPOCH FROM CAST('2020-01-01' AS TIMESTAMP)) / 86400.0 + 2440587.5)", True),
        'mysql': ("SELECT ((DATEDIFF('2020-01-02', '0000-01-01') + 1) + 1721059.5 + CAST(TIME_TO_SEC(CAST('2020-01-02' AS DATETIME)) AS DOUBLE) / 86400.0) - ((DATEDIFF('2020-01-01', '0000-01-01') + 1) + 1721059.5 + CAST(TIME_TO_SEC(CAST('2020-01-01' AS DATETIME)) AS DOUBLE) / 86400.0)", True),
        'oracle': ("SELECT (CAST('2020-01-02' AS DATE) - TO_DATE('-4712-01-01', 'YYYY-MM-DD') + 0.5) - (CAST('2020-01-01' AS DATE) - TO_DATE('-4712-01-01', 'YYYY-MM-DD') + 0.5)", True),
    }),
    ('integer_division', 'concert_singer', 'SELECT sum(capacity) / count(*) FROM stadium', {
        'duckdb': ('SELECT CAST(TRUNC(SUM(capacity) / COUNT(*)) AS BIGINT) FROM stadium', False),
        'postgres': ('SELECT CAST(SUM(capacity) AS BIGINT) / NULLIF(CAST(COUNT(*) AS BIGINT), 0) FROM stadium', True),
        'mysql': ('SELECT CAST(TRUNCATE(SUM(capacity) / COUNT(*), 0) AS SIGNED) FROM stadium', False),
        'oracle': ('SELECT CAST(TRUNC(SUM(capacity) / COUNT(*)) AS INT) FROM stadium', False),
    }),
    ('cast_to_integer_truncates', 'concert_singer', 'SELECT CAST(avg(capacity) AS INTEGER) FROM stadium', {
        'duckdb': ('SELECT CAST(TRUNC(AVG(capacity)) AS INT) FROM stadium', True),
        'postgres': ('SELECT CAST(TRUNC(AVG(capacity)) AS INT) FROM stadium', True),
        'mysql': ('SELECT CAST(TRUNCATE(AVG(CAST(capacity AS DOUBLE)), 0) AS SIGNED) FROM stadium', True),
        'oracle': ('SELECT CAST(TRUNC(AVG(capacity)) AS INT) FROM stadium', True),
    }),
    ('distinct_order_by_unselected', 'concert_singer', 'SELECT DISTINCT country FROM singer ORDER BY age DESC', {
        'duckdb': ('SELECT country FROM singer GROUP BY country ORDER BY MAX(age) DESC', True),
        'postgres': ('SELECT country FROM singer GROUP BY country ORDER BY MAX(age) DESC NULLS LAST', True),
        'mysql': ('SELECT DISTINCT CAST(country AS BINARY) AS country FROM singer ORDER BY age DESC', False),
        'oracle': ('SELECT country FROM singer GROUP BY country ORDER BY MAX(age) DESC NULLS LAST', True),
    }),
    ('minus_for_except', 'concert_singer', 'SELECT name FROM singer EXCEPT SELECT name FROM singer WHERE age > 30', {
        'duckdb': ('SELECT singer.name FROM singer EXCEPT SELECT singer.name FROM singer WHERE singer.age > 30', False),
        'postgres': ('SELECT singer.name FROM singer EXCEPT SELECT singer.name FROM singer WHERE singer.age > 30', False),
        'mysql': ('SELECT singer.name FROM singer EXCEPT SELECT singer.name FROM singer WHERE singer.age > 30', False),
        'oracle': ('SELECT singer.name FROM singer MINUS SELECT singer.name FROM singer WHERE singer.age > 30', True),
    }),
]


@pytest.mark.parametrize("name,db,sql,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rewrite_text(name, db, sql, expected):
    schema = schema_of(str(shared(f"spider/database/{db}/{db}.sqlite")))
    for engine, (text, applied) in expected.items():
        got = rule_translations(sql, engine, schema)[0]
        assert got.sql == text, engine
        assert (name in got.applied) == applied, engine
        if applied:
            assert name in engine_class(engine).rewrites, engine


def test_every_rewrite_has_a_text_case():
    assert {c[0] for c in CASES} == {r.name for r in REWRITES}


def test_engine_declarations_agree_with_the_registry():
    names = {r.name for r in REWRITES}
    uses = {"julianday": ("julianday",), "cast_to_integer_truncates": ("trunc",),
            "numeric_aggregates_over_text": ("text_as_number",), "text_arithmetic": ("text_as_number",)}
    cfg = load_config(None, [])
    for name, entry in ENGINES.items():
        cls = engine_class(name)
        assert cls.name == name and cls.display_name and set(cls.types) == {"int", "float", "text", "blob"}
        assert set(cls.rewrites) <= names, name
        for rewrite, templates in uses.items():
            if rewrite in cls.rewrites:
                assert set(templates) <= set(cls.templates), (name, rewrite)
        assert hasattr(cfg.engines, name) == entry.server
        assert cfg.execution.actors[name] == entry.actors
    assert SOURCE not in TARGETS and set(TARGETS) | {SOURCE} == set(ENGINES)


def test_a_migration_target_creates_its_engines_types():
    import importlib

    for name in TARGETS:
        module = importlib.import_module(f"exesql_ray.engines.{ENGINES[name].module}")
        assert module.TARGET.types is module.ENGINE.types and module.TARGET.name == name

"""Oracle: what needs no server runs here; the live tests run only when EXESQL_ORACLE_DSN
(and EXESQL_ORACLE_ADMIN_DSN) point at a server. No Oracle server can run on our machines."""

import os

import pytest

from exesql_ray.engines.base import Limits
from exesql_ray.engines.sqltext import guard
from exesql_ray.engines.oracle import OracleEngine, oracle_ident, parse_oracle_dsn
from exesql_ray.errors import UserError


def test_dsn_and_identifiers():
    assert parse_oracle_dsn("scott/tiger@db.example:1521/FREEPDB1") == {
        "user": "scott", "password": "tiger", "dsn": "db.example:1521/FREEPDB1"}
    with pytest.raises(UserError, match="user/password@host"):
        parse_oracle_dsn("oracle://nope")
    assert oracle_ident("concert_singer") == "CONCERT_SINGER"
    assert oracle_ident("Home Town") == '"HOME TOWN"'
    assert oracle_ident("1st") == '"1ST"'


def test_error_table_classifies_oracle_messages():
    eng = OracleEngine.__new__(OracleEngine)  # the tables only: no pool, no server
    import re

    eng._compiled = [(re.compile(p, re.I), c) for p, c in OracleEngine.error_classes]
    cases = {
        "ORA-00942: table or view does not exist": "unknown_table",
        "ORA-00904: \"NOPE\": invalid identifier": "unknown_column",
        "ORA-00933: SQL command not properly ended": "syntax",
        "ORA-00918: column ambiguously defined": "ambiguous",
        "ORA-00979: not a GROUP BY expression": "group_by",
        "ORA-01476: divisor is equal to zero": "division",
        "ORA-01722: invalid number": "type_mismatch",
        "ORA-01031: insufficient privileges": "permission",
    }
    for msg, cls in cases.items():
        assert eng.classify(msg) == cls, msg


def test_guard_in_oracle_dialect():
    d, denied = OracleEngine.dialect, OracleEngine.denied_functions
    assert guard("SELECT name FROM singer FETCH FIRST 3 ROWS ONLY", d, denied) is None
    assert guard("SELECT 1 FROM dual", d, denied) is None
    assert guard("SELECT a FROM t MINUS SELECT a FROM u", d, denied) is None
    assert guard("DELETE FROM singer", d, denied) is not None
    assert guard("BEGIN EXECUTE IMMEDIATE 'DROP TABLE x'; END;", d, denied) is not None
    assert guard("SELECT 1 FROM dual; DROP TABLE singer", d, denied) is not None


def test_unreachable_oracle_fails_fast_with_password_hidden():
    with pytest.raises(UserError) as e:
        OracleEngine("scott/s3cret@127.0.0.1:1/FREEPDB1", limits=Limits(timeout_s=2))
    assert "127.0.0.1:1" in str(e.value) and "s3cret" not in str(e.value)


LIVE = os.environ.get("EXESQL_ORACLE_DSN")


@pytest.mark.skipif(not LIVE, reason="no Oracle server here: set EXESQL_ORACLE_DSN (and _ADMIN_DSN) to run")
def test_live_oracle_migrate_and_execute(synth_data):
    from exesql_ray.config import load_config
    from exesql_ray.engines import open_engine
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    cfg = load_config(None, ["execution.timeout_s=5"])
    target = open_target("oracle", cfg)
    try:
        res = migrate_dbs(target, {"retail_shop": str(synth_data / "database/retail_shop/retail_shop.sqlite")})
    finally:
        target.close()
    assert res[0].verified, res[0]
    eng = open_engine("oracle", cfg)
    ex = eng.execute("retail_shop", "SELECT count(*) FROM customers")
    assert ex.status == "ok" and ex.rows == [(40,)]
    assert eng.execute("retail_shop", "DELETE FROM customers").status == "rejected"
    eng.close()

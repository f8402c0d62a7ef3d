"""scripts/dbs.sh: servers up, the SELECT-only login cannot write, a second instance goes up and down."""

import os
import shutil
import subprocess

import MySQLdb
import psycopg
import pytest

from conftest import ROOT, read_env_file


def mysql_connect(dsn: str, **kw):
    from exesql_ray.engines.mysql import parse_mysql_dsn

    return MySQLdb.connect(**parse_mysql_dsn(dsn), **kw)


def test_status_reports_both_running(db_servers):
    r = subprocess.run(["bash", "scripts/dbs.sh", "status"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "postgres: running" in r.stdout and "mariadb: running" in r.stdout


def test_postgres_reader_reads_but_cannot_write(db_servers):
    with psycopg.connect(db_servers["EXESQL_PG_DSN"], autocommit=True) as con:
        assert con.execute("SELECT note FROM exesql_check.canary WHERE id = 1").fetchone()[0]
        assert con.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 15")
        for sql in ("INSERT INTO exesql_check.canary VALUES (2, 'x')", "DELETE FROM exesql_check.canary",
                    "DROP TABLE exesql_check.canary", "CREATE TABLE public.t (a int)", "CREATE TEMP TABLE t (a int)"):
            with pytest.raises(psycopg.Error):
                con.execute(sql)
        # Even with the session's read-only default switched off, privileges still refuse writes.
        con.execute("SET default_transaction_read_only = off")
        for sql in ("INSERT INTO exesql_check.canary VALUES (2, 'x')", "CREATE TABLE public.t (a int)",
                    "CREATE TEMP TABLE t (a int)", "CREATE SCHEMA s"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(sql)
    with psycopg.connect(db_servers["EXESQL_PG_TCP_DSN"], autocommit=True) as tcp:  # TCP login too
        with pytest.raises(psycopg.Error):
            tcp.execute("DELETE FROM exesql_check.canary")
    with psycopg.connect(db_servers["EXESQL_PG_ADMIN_DSN"]) as admin:
        assert admin.execute("SELECT count(*) FROM exesql_check.canary").fetchone()[0] == 1


def test_mariadb_reader_reads_but_cannot_write(db_servers):
    tcp = mysql_connect(db_servers["EXESQL_MYSQL_TCP_DSN"])  # the TCP login works too
    tcp.cursor().execute("SELECT 1")
    tcp.close()
    con = mysql_connect(db_servers["EXESQL_MYSQL_DSN"])
    cur = con.cursor()
    cur.execute("SELECT VERSION()")
    assert "MariaDB" in cur.fetchone()[0]
    cur.execute("SELECT note FROM exesql_check.canary WHERE id = 1")
    assert cur.fetchone()[0]
    for sql in ("INSERT INTO exesql_check.canary VALUES (2, 'x')", "DELETE FROM exesql_check.canary",
                "DROP TABLE exesql_check.canary", "CREATE DATABASE evil", "CREATE TABLE exesql_check.t (a int)",
                "SELECT * FROM mysql.user"):
        with pytest.raises(MySQLdb.OperationalError):
            cur.execute(sql)
    con.close()
    # root exists only on the unix socket: no passwordless root over TCP.
    with pytest.raises(MySQLdb.OperationalError):
        MySQLdb.connect(host="127.0.0.1", port=int(db_servers["EXESQL_MYSQL_TCP_DSN"].rsplit(":", 1)[1].strip("/")),
                        user="root")


def test_private_run_folder_is_refused_clearly(tmp_path):
    env = dict(os.environ, EXESQL_DB_DIR=str(tmp_path / "dbs"), EXESQL_PG_PORT="55498", EXESQL_MYSQL_PORT="53398")
    r = subprocess.run(["bash", "scripts/dbs.sh", "up"], cwd=ROOT, env=env, capture_output=True, text=True)
    if os.getuid() == 0:  # pytest's tmp folders are private to root; postgres runs as its own user
        assert r.returncode == 2 and "cannot reach" in r.stderr and str(tmp_path) in r.stderr


def test_second_instance_up_idempotent_and_down(db_servers):
    # Under the repo's .run/: pytest's own tmp folders are private to root, out of postgres' reach.
    tmp_path = ROOT / ".run" / f"test-dbs-{os.getpid()}"
    shutil.rmtree(tmp_path, ignore_errors=True)
    env = dict(os.environ, EXESQL_DB_DIR=str(tmp_path / "dbs"), EXESQL_PG_PORT="55499", EXESQL_MYSQL_PORT="53399")
    run = lambda *a: subprocess.run(["bash", "scripts/dbs.sh", *a], cwd=ROOT, env=env, capture_output=True, text=True)
    try:
        assert run("up").returncode == 0
        second = run("up")  # idempotent
        assert second.returncode == 0
        conn = read_env_file(tmp_path / "dbs" / "env")
        with psycopg.connect(conn["EXESQL_PG_DSN"]) as con:
            assert con.execute("SELECT 1").fetchone() == (1,)
        assert run("status").returncode == 0
    finally:
        down = run("down")
    assert down.returncode == 0
    st = run("status")
    assert st.returncode != 0 and "postgres: stopped" in st.stdout and "mariadb: stopped" in st.stdout
    assert run("down").returncode == 0  # idempotent
    shutil.rmtree(tmp_path, ignore_errors=True)

"""Bad input to `execute` gets one line on stderr naming the flag, file, row or key, and exit 2,
before any query runs; a malformed row gets its `rejected` record and the rest go on; an
output is written whole, with the mode the umask gives."""

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import ROOT

DB_ROOT = ".run/test-synth/data/database"


def _execute(tmp_path, rows, *extra, raw: bytes | None = None, name="in.jsonl", output="out.jsonl", umask=None):
    inp = tmp_path / name
    if raw is not None:
        inp.write_bytes(raw)
    else:
        inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / output if not os.path.isabs(output) else output
    r = subprocess.run([sys.executable, "-m", "controller", "execute", "--engine", "sqlite", "--db-root", DB_ROOT,
                        "--input", str(inp), "--output", str(out), *extra], cwd=ROOT, capture_output=True,
                       text=True, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    return r, out


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def db_id(synth_data):
    return sorted(p.name for p in (synth_data / "database").iterdir())[0]


@pytest.mark.parametrize("flag,value", [("--timeout-s", "0"), ("--timeout-s", "-1"), ("--max-rows", "0"),
                                        ("--max-rows", "-1"), ("--workers", "0")])
def test_a_flag_out_of_range_is_one_line(tmp_path, db_id, flag, value):
    r, out = _execute(tmp_path, [{"id": "a", "db_id": db_id, "sql": "SELECT 1"}], flag, value)
    _one_line_error(r, flag, value)
    assert not out.exists()


def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, db_id):
    rows = [{"id": "a", "db_id": db_id, "sql": "SELECT 1"}]
    r, _ = _execute(tmp_path, rows, output="out.csv")
    _one_line_error(r, "out.csv", ".jsonl or .parquet")
    (tmp_path / "folder.jsonl").mkdir()
    r, _ = _execute(tmp_path, rows, output="folder.jsonl")
    _one_line_error(r, "folder.jsonl", "is a folder")
    (tmp_path / "afile").write_text("x")
    r, _ = _execute(tmp_path, rows, output=str(tmp_path / "afile" / "out.jsonl"))
    _one_line_error(r, "afile", "is a file")


def test_a_lone_surrogate_is_a_rejected_row_and_the_rest_go_on(tmp_path, db_id):
    raw = (json.dumps({"id": "a", "db_id": db_id, "sql": "SELECT 1"}) + "\n"
           + '{"id": "b", "db_id": "%s", "sql": "SELECT \'\\udcff\'"}\n' % db_id
           + json.dumps({"id": "c", "db_id": db_id, "sql": "SELECT 2"}) + "\n").encode()
    r, out = _execute(tmp_path, None, raw=raw)
    assert r.returncode == 0, r.stderr
    recs = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert recs["a"]["status"] == recs["c"]["status"] == "ok"
    assert recs["b"]["status"] == "rejected" and "surrogate" in recs["b"]["error"]


def test_input_without_a_sql_column_says_what_it_found(tmp_path, db_id):
    r, _ = _execute(tmp_path, [{"id": "a", "db_id": db_id, "query": "SELECT 1"}])
    _one_line_error(r, "no column sql", "found: db_id, id, query", "--sql-column")
    rows = [{"id": "a", "db_id": db_id, "sqlite_sql": "SELECT 1", "question": "q"}]
    r, _ = _execute(tmp_path, rows)
    _one_line_error(r, "--sql-column sqlite_sql")
    r, out = _execute(tmp_path, rows, "--sql-column", "sqlite_sql")
    assert r.returncode == 0 and json.loads(out.read_text())["status"] == "ok", r.stderr
    # a --sql-column the input lacks is named as it was asked for
    r, _ = _execute(tmp_path, rows, "--sql-column", "query")
    _one_line_error(r, "no column query", "found: db_id, id, question, sqlite_sql")


def test_data_export_output_feeds_execute(tmp_path, synth_data):
    exported = tmp_path / "synth.parquet"
    r = subprocess.run([sys.executable, "-m", "controller", "data", "export", "--dataset", "synth", "--path",
                        str(synth_data), "--split", "dev", "--out", str(exported)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "controller", "execute", "--engine", "sqlite", "--db-root",
                        str(synth_data / "database"), "--input", str(exported), "--output", str(out),
                        "--sql-column", "sqlite_sql"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {json.loads(x)["status"] for x in out.read_text().splitlines()} == {"ok"}


def test_json_array_and_a_bom_are_read_as_meant(tmp_path, db_id):
    rows = [{"id": "a", "db_id": db_id, "sql": "SELECT 1"}, {"id": "b", "db_id": db_id, "sql": "SELECT 2"}]
    r, out = _execute(tmp_path, None, raw=json.dumps(rows).encode(), name="in.json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["status"] for x in out.read_text().splitlines()] == ["ok", "ok"]
    r, out = _execute(tmp_path, None, raw=b"\xef\xbb\xbf" + "".join(json.dumps(x) + "\n" for x in rows).encode())
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["status"] for x in out.read_text().splitlines()] == ["ok", "ok"]
    r, _ = _execute(tmp_path, None, raw=b'{"id": "a"}', name="obj.json")
    _one_line_error(r, "obj.json", "array of objects")


def test_sql_that_is_not_text_is_malformed_input(tmp_path, db_id):
    rows = [{"id": "a", "db_id": db_id, "sql": 7}, {"id": "b", "db_id": db_id, "sql": ["SELECT 1"]},
            {"id": 3, "db_id": db_id, "sql": "SELECT 1"}]
    r, out = _execute(tmp_path, rows)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["status"] for x in recs] == ["rejected", "rejected", "ok"]
    assert "`sql` is a int" in recs[0]["error"] and "`sql` is a list" in recs[1]["error"]
    assert recs[2]["id"] == "3"


def test_duplicate_ids_are_refused(tmp_path, db_id):
    rows = [{"id": "a", "db_id": db_id, "sql": "SELECT 1"}, {"id": "b", "db_id": db_id, "sql": "SELECT 1"},
            {"id": "a", "db_id": db_id, "sql": "SELECT 2"}]
    r, out = _execute(tmp_path, rows)
    _one_line_error(r, "'a'", "rows 1 and 3")
    assert not out.exists()


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_take_the_umask(tmp_path, db_id, umask, mode):
    r, out = _execute(tmp_path, [{"id": "a", "db_id": db_id, "sql": "SELECT 1"}], umask=umask)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_broken_sqlite_file_gives_infra_error_not_a_verdict(tmp_path, synth_data, db_id):
    import shutil

    src = synth_data / "database" / db_id / f"{db_id}.sqlite"
    root = tmp_path / "database"
    for name, mangle in (("garbage", lambda b: b"this is not a database" * 300),
                         ("truncated", lambda b: b[:len(b) // 3])):
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.sqlite").write_bytes(mangle(src.read_bytes()))
    shutil.copytree(src.parent, root / db_id)
    table = "sqlite_master"
    rows = [{"id": f"{d}", "db_id": d, "sql": f"SELECT count(*) FROM {table}"} for d in ("garbage", "truncated", db_id)]
    rows.append({"id": "wide", "db_id": "truncated",
                 "sql": "SELECT * FROM (SELECT name FROM sqlite_master) a, (SELECT name FROM sqlite_master) b"})
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = subprocess.run([sys.executable, "-m", "controller", "execute", "--engine", "sqlite", "--db-root", str(root),
                        "--input", str(inp), "--output", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    recs = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert recs[db_id]["status"] == "ok"
    assert recs["garbage"]["status"] == "infra_error" and "not an SQLite database" in recs["garbage"]["error"]
    assert recs["truncated"]["status"] == recs["wide"]["status"] == "infra_error", recs
    assert all(x["status"] not in ("error", "timeout") for x in recs.values()), recs


@pytest.mark.parametrize("engine,admin", [("postgres", "EXESQL_PG_ADMIN_DSN"), ("mysql", "EXESQL_MYSQL_ADMIN_DSN")])
def test_a_login_that_could_write_is_refused_unless_accepted(tmp_path, db_servers, migrated_synth, engine, admin):
    db = sorted(migrated_synth)[0]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"id": "a", "db_id": db, "sql": "SELECT 1"}) + "\n")
    args = [sys.executable, "-m", "controller", "execute", "--engine", engine, "--dsn", db_servers[admin],
            "--input", str(inp), "--output", str(out)]
    env = {**os.environ, **db_servers}
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    _one_line_error(r, "SELECT-only login", "--allow-writable-login")
    assert "superuser" in r.stderr or "ALL PRIVILEGES" in r.stderr
    assert not out.exists()
    r = subprocess.run(args + ["--allow-writable-login"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "WARNING: writable login accepted" in r.stdout, r.stderr
    r = subprocess.run(args[:6] + ["--dsn", db_servers[admin.replace("_ADMIN", "")]] + args[8:], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "WARNING" not in r.stdout, r.stderr


def test_a_write_that_fails_at_the_end_keeps_what_was_computed(tmp_path, monkeypatch):
    """The records are written beside the target first; if putting them in place fails, the
    error names the temporary file, which stays."""
    from exesql_ray import io
    from exesql_ray.errors import UserError

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", refuse)
    with pytest.raises(UserError) as e:
        io.write_records([{"id": "a", "status": "ok"}], tmp_path / "out.jsonl")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl.")]
    assert len(kept) == 1 and str(kept[0]) in str(e.value) and "No space left" in str(e.value)
    assert json.loads(kept[0].read_text()) == {"id": "a", "status": "ok"}


@pytest.mark.parametrize("root", ["dataset", "empty"])
def test_a_db_root_without_databases_is_one_line(tmp_path, synth_data, db_id, root):
    """The dataset folder instead of its database/, or an empty folder: no row is run."""
    folder = synth_data if root == "dataset" else tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "db_id": db_id, "sql": "SELECT 1"}) + "\n")
    r = subprocess.run([sys.executable, "-m", "controller", "execute", "--engine", "sqlite", "--db-root", str(folder),
                        "--input", str(inp), "--output", str(tmp_path / "out.jsonl")], cwd=ROOT, capture_output=True,
                       text=True)
    _one_line_error(r, f"--db-root {folder}: no database found")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("engine,env", [("postgres", "EXESQL_PG_DSN"), ("mysql", "EXESQL_MYSQL_DSN")])
def test_a_relative_socket_in_a_dsn_is_taken_from_the_current_folder(tmp_path, db_servers, engine, env):
    """The quickstart's fallback DSNs name `.run/dbs/sock`: from the project folder they reach the
    server; from anywhere else the path is named in one line (libpq took it for a host name)."""
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "db_id": "no_such_db", "sql": "SELECT 1"}) + "\n")
    environ = {k: v for k, v in os.environ.items() if k != env}
    cmd = [sys.executable, "-m", "controller", "execute", "--engine", engine, "--config",
           str(ROOT / "configs" / "quickstart.yaml"), "--input", str(inp), "--output", str(tmp_path / "out.jsonl")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=environ)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out.jsonl").read_text())["status"] == "rejected"  # an unknown db_id
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                       env={**environ, "PYTHONPATH": str(ROOT)})
    _one_line_error(r, str(tmp_path / ".run" / "dbs" / "sock"), "does not exist")


def test_rows_whose_gold_fails_are_counted_and_keep_the_gold_error(tmp_path, db_id):
    rows = [{"id": "ok", "db_id": db_id, "sql": "SELECT 1", "gold_sql": "SELECT 1"},
            {"id": "bad-gold", "db_id": db_id, "sql": "SELECT 1", "gold_sql": "SELECT nope FROM nowhere"}]
    r, out = _execute(tmp_path, rows)
    assert r.returncode == 0, r.stderr
    assert "match 1/1" in r.stdout and "gold failed on 1 rows" in r.stdout, r.stdout
    recs = {json.loads(line)["id"]: json.loads(line) for line in out.read_text().splitlines()}
    assert recs["bad-gold"]["gold_status"] == "error" and "nowhere" in recs["bad-gold"]["gold_error"], recs
    assert recs["bad-gold"]["match"] is None and recs["ok"]["gold_error"] is None

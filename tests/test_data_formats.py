"""WikiSQL layout, the synth dataset, export, and bad input through the CLI."""

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from exesql_ray.data import load_dataset, table_to_examples
from exesql_ray.data.stats import run_gold_on_sqlite
from exesql_ray.data.synth import synthesize
from exesql_ray.errors import UserError


def write_wikisql(root: Path) -> None:
    """Two questions in WikiSQL's release layout (jsonl + tables.jsonl + .db with col0..colN tables)."""
    root.mkdir(parents=True, exist_ok=True)
    tables = [{"id": "1-1000181-1", "header": ["State/territory", "Text/background colour", "Format"],
               "types": ["text", "text", "text"], "rows": [["australian capital territory", "blue/white", "yyy·nnn"]]},
              {"id": "2-1234-5", "header": ["Player", "Points", "Year"], "types": ["text", "real", "real"],
               "rows": [["ann lee", 31.0, 2001.0], ["bo chan", 12.0, 2001.0], ["cy dorn", 25.0, 2002.0]]}]
    (root / "dev.tables.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tables))
    qs = [{"phase": 1, "table_id": "1-1000181-1", "question": "What format is used in Australian Capital Territory?",
           "sql": {"sel": 2, "agg": 0, "conds": [[0, 0, "Australian Capital Territory"]]}},
          {"phase": 1, "table_id": "2-1234-5", "question": "Total points in 2001?",
           "sql": {"sel": 1, "agg": 4, "conds": [[2, 0, "2001"]]}}]
    (root / "dev.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    con = sqlite3.connect(root / "dev.db")
    for t in tables:
        name = "table_" + t["id"].replace("-", "_")
        cols = ", ".join(f"col{i} {ty}" for i, ty in enumerate(t["types"]))
        con.execute(f"CREATE TABLE {name} ({cols})")
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(t['types']))})", t["rows"])
    con.commit()
    con.close()


def test_wikisql_logical_forms_execute(tmp_path: Path):
    write_wikisql(tmp_path / "wikisql")
    exs = load_dataset("wikisql", tmp_path / "wikisql").splits["dev"]
    assert [e.sqlite_sql for e in exs] == [
        "SELECT col2 AS result FROM table_1_1000181_1 WHERE col0 = 'australian capital territory'",
        "SELECT SUM(col1) AS result FROM table_2_1234_5 WHERE col2 = 2001.0",
    ]
    assert exs[1].tables == ["table_2_1234_5"] and exs[1].db_id == "wikisql_dev"
    assert run_gold_on_sqlite(exs) == []
    con = sqlite3.connect(exs[1].db_path)
    assert con.execute(exs[1].sqlite_sql).fetchone()[0] == 43.0


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, seed=7)
    return out


def test_synth_is_deterministic_per_seed(synth_dir: Path, tmp_path: Path):
    again = tmp_path / "again"
    synthesize(again, seed=7)
    for name in ("train_spider.json", "dev.json", "tables.json", "database/retail_shop/retail_shop.sqlite"):
        assert (synth_dir / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    synthesize(other, seed=8)
    assert (other / "dev.json").read_bytes() != (synth_dir / "dev.json").read_bytes()


def test_synth_covers_dialect_features_and_runs(synth_dir: Path):
    summary = json.loads((synth_dir / "synth.json").read_text())
    for feature in ("string concatenation", "LIKE case", "integer division", "dates", "NULL ordering",
                    "GROUP BY", "LIMIT/OFFSET", "set operations", "CASE", "IIF", "CAST"):
        assert summary["features"].get(feature, 0) > 0, feature
    ds = load_dataset("synth", synth_dir)
    assert len(ds.splits["train"]) == summary["train"] and len(ds.splits["dev"]) == summary["dev"]
    every = ds.splits["train"] + ds.splits["dev"]
    assert all(e.has_db and e.difficulty for e in every)
    assert run_gold_on_sqlite(every) == []
    sqls = [e.sqlite_sql for e in every]
    assert any("||" in s for s in sqls) and any(" OFFSET " in s for s in sqls) and any("INTERSECT" in s for s in sqls)
    tables = json.loads((synth_dir / "tables.json").read_text())
    assert {t["db_id"] for t in tables} == {"retail_shop", "school_records", "flight_network"}
    assert all(t["foreign_keys"] and t["primary_keys"] for t in tables)


def test_synth_rerun_is_noop_and_refuses_foreign_dirs(synth_dir: Path, tmp_path: Path):
    before = (synth_dir / "dev.json").stat().st_mtime_ns
    synthesize(synth_dir, seed=7)
    assert (synth_dir / "dev.json").stat().st_mtime_ns == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="use --force"):
        synthesize(foreign, seed=1)
    assert (foreign / "keep.txt").exists()
    # --force replaces synth's own files and databases, nothing else
    (foreign / "database" / "mine_db").mkdir(parents=True)
    summary = synthesize(foreign, seed=1, force=True)
    assert (foreign / "keep.txt").read_text() == "x" and (foreign / "database" / "mine_db").is_dir()
    assert summary["params"]["seed"] == 1 and (foreign / "dev.json").is_file()
    synthesize(foreign, seed=2, force=True)
    assert (foreign / "keep.txt").exists() and json.loads((foreign / "synth.json").read_text())["params"]["seed"] == 2
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run_cli("data", "synth", "--out", str(afile))
    _one_line_error(r, "is a file")


def test_export_roundtrip(synth_dir: Path, tmp_path: Path):
    out = tmp_path / "x.parquet"
    r = run_cli("data", "export", "--dataset", "synth", "--path", str(synth_dir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    back = sorted(table_to_examples(pq.read_table(out)), key=lambda e: e.id)
    ds = load_dataset("synth", synth_dir)
    assert back == sorted(ds.splits["train"] + ds.splits["dev"], key=lambda e: e.id)


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_bad_input_is_one_clear_line(tmp_path: Path, synth_dir: Path):
    _one_line_error(run_cli("data", "stats", "--dataset", "spider", "--path", str(tmp_path / "nope")),
                    "dataset path not found", "nope")
    _one_line_error(run_cli("data", "stats", "--dataset", "imdb", "--path", str(tmp_path)), "unknown dataset 'imdb'")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dev.json").write_text('[{"db_id": "a", "query": "SELECT 1",\n "question": }]')
    _one_line_error(run_cli("data", "stats", "--dataset", "spider", "--path", str(bad)),
                    "malformed JSON", str(bad / "dev.json"), "line 2, column")
    (bad / "dev.json").write_text('[{"db_id": "a", "question": "q"}]')
    _one_line_error(run_cli("data", "stats", "--dataset", "spider", "--path", str(bad)), "row 0", "'query'")
    for row, needle in (('{"db_id": "a", "query": 7, "question": "q"}', "'query' must be text, got a int (7)"),
                        ('{"db_id": null, "query": "SELECT 1", "question": "q"}', "'db_id' must be text, got null"),
                        ('{"db_id": "a", "query": "SELECT 1", "question": 3}', "'question' must be text")):
        (bad / "dev.json").write_text(f"[{row}]")
        for cmd in (["stats"], ["export", "--out", str(tmp_path / "e.parquet")]):
            _one_line_error(run_cli("data", *cmd, "--dataset", "spider", "--path", str(bad)), "row 0", needle)
    (bad / "dev.json").write_text('[{"db_id": "a", "query": "SELECT 1", "question": "q"}]')
    (bad / "database" / "a").mkdir(parents=True)
    (bad / "database" / "a" / "a.sqlite").write_text("not a database")
    _one_line_error(run_cli("data", "stats", "--dataset", "spider", "--path", str(bad)),
                    "is not a SQLite database", "a.sqlite")
    # A failed export leaves nothing behind.
    out = tmp_path / "out" / "x.parquet"
    _one_line_error(run_cli("data", "export", "--dataset", "spider", "--path", str(bad), "--out", str(out)),
                    "not a SQLite database")
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
    _one_line_error(run_cli("data", "export", "--dataset", "synth", "--path", str(synth_dir), "--out", "x.csv"),
                    "expected a .parquet file")

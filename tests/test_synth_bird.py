"""`data synth --scale bird` at a small size: the same seed gives the same data, the workload
has what best-of-8 samples have, and every gold runs unchanged on all four engines with
SQLite's result (after `db migrate`, verified like Spider)."""

import hashlib
import json

import pytest

from conftest import run_cli

ROWS = 2000  # the orders table; 3× in order_lines, 4× in readings


def _digest(folder) -> dict:
    from exesql_ray.engines.migrate import read_sqlite

    out = {}
    for db in sorted((folder / "database").iterdir()):
        src = read_sqlite(db.name, db / f"{db.name}.sqlite")
        out[db.name] = {t.name: (t.rows, t.checksum) for t in src.tables}
    out["workload"] = hashlib.sha256((folder / "workload.jsonl").read_bytes()).hexdigest()
    out["dev"] = hashlib.sha256((folder / "dev.json").read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def bird_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("bird") / "data"
    r = run_cli("data", "synth", "--scale", "bird", "--rows", str(ROWS), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "workload.jsonl: 20,480 candidates" in r.stdout, r.stdout
    return out


def test_same_seed_same_files_and_a_workload_shaped_like_samples(bird_small, tmp_path):
    from exesql_ray.data.synth_bird import SAMPLES_PER_QUESTION, synthesize_bird

    summary = json.loads((bird_small / "synth.json").read_text())
    again = synthesize_bird(tmp_path / "again", rows=ROWS)
    assert _digest(tmp_path / "again") == _digest(bird_small)
    other = synthesize_bird(tmp_path / "other", rows=ROWS, seed=1)
    assert _digest(tmp_path / "other")["workload"] != _digest(bird_small)["workload"]
    assert again["rows"] == summary["rows"] == other["rows"]
    assert summary["rows"]["bird_sales"]["order_lines"] == 3 * ROWS
    assert summary["rows"]["bird_sensors"]["readings"] == 4 * ROWS

    cands = [json.loads(line) for line in (bird_small / "workload.jsonl").read_text().splitlines()]
    assert len(cands) >= 20_000 and len(cands) == SAMPLES_PER_QUESTION * summary["train"]
    assert len({c["id"] for c in cands}) == len(cands)
    kinds = {c["kind"] for c in cands}
    assert {"gold", "repeat", "wrong_constant", "unknown_column", "unknown_table", "syntax", "dropped_filter",
            "dropped_join_condition"} <= kinds
    assert summary["distinct_sql"] < 0.7 * len(cands)  # best-of-8 repeats itself
    assert all(summary["cost_classes"][c] > 0 for c in ("lookup", "range", "join", "over_timeout"))
    # a cost with a long tail even at this size: the quadratic self-joins cost far more than a lookup
    ms = summary["sqlite_gold_ms"]
    slowest = max(x for x in ms["rising_pairs"] if x is not None)
    assert slowest > 20 * max(ms["customer_by_id"]), ms

    r = run_cli("data", "synth", "--rows", "5", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--rows goes with --scale bird" in r.stderr


def test_golds_run_unchanged_on_every_engine_after_migrate(bird_small, test_config, tmp_path):
    from exesql_ray.compare import CompareOptions, results_match
    from exesql_ray.engines import open_engine
    from exesql_ray.engines.migrate import migrate_dbs, open_target
    from exesql_ray.executor import Executor

    # under names of their own: the servers hold the full-size bird_* databases of bench/scale.py
    import shutil

    root = tmp_path / "database"
    for p in sorted((bird_small / "database").iterdir()):
        (root / f"{p.name}_t").mkdir(parents=True)
        shutil.copy(p / f"{p.name}.sqlite", root / f"{p.name}_t" / f"{p.name}_t.sqlite")
    dbs = {p.name: str(p / f"{p.name}.sqlite") for p in sorted(root.iterdir())}
    cfg = test_config.model_copy(deep=True)
    cfg.run_dir = str(tmp_path)
    cfg.execution.timeout_s = 20
    dev = [dict(q, db_id=q["db_id"] + "_t") for q in json.loads((bird_small / "dev.json").read_text())
           if q["cost"] != "over_timeout"]
    sqlite = Executor(open_engine("sqlite", cfg, db_root=root))
    want = {i: sqlite.execute_sql(q["db_id"], q["query"]) for i, q in enumerate(dev)}
    assert all(w.status == "ok" for w in want.values())
    for engine in ("postgres", "mysql", "duckdb"):
        target = open_target(engine, cfg)
        try:
            results = migrate_dbs(target, dbs, force=True)
        finally:
            target.close()
        assert all(r.verified for r in results), results
        ex = Executor(open_engine(engine, cfg))
        try:
            got = {i: ex.execute_sql(q["db_id"], q["query"]) for i, q in enumerate(dev)}
        finally:
            ex.engine.close()
        bad = [(dev[i]["query"], g.status, g.error) for i, g in got.items() if g.status != "ok"]
        assert not bad, (engine, bad[:3])
        # SQLite's result, compared as the executor compares a candidate with its gold
        differ = [dev[i]["query"] for i, g in got.items()
                  if not results_match(want[i].rows, g.rows, gold_sql=dev[i]["query"], opts=CompareOptions())]
        assert not differ, (engine, differ[:3])

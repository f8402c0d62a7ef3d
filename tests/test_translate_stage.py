"""The translation stage on the synth data: one record per example × engine, D_Trans only
verified, a re-run skips finished shards, and the Ray runner writes what the library's shard
translator gives in this process."""

from pathlib import Path

import pyarrow.parquet as pq

from conftest import ROOT
from exesql_ray.config import load_config
from controller.translate import run_translate_stage
from exesql_ray.translate_stage import ShardTranslator, plan


def _cfg(tmp: Path, synth_data):
    return load_config(ROOT / "configs" / "quickstart.yaml",
                       [f"run_dir={tmp}", f"data.path={synth_data}", "translate.shard_size=60",
                        "translate.engines=[postgres, duckdb, mysql]"])


def test_stage_records_d_trans_and_resume(ray_local, test_config, migrated_synth, synth_data, tmp_path):
    import shutil

    cfg = _cfg(tmp_path, synth_data)
    # DuckDB files live under <run_dir>/duckdb: the synth ones migrated for the test session
    shutil.copytree(ROOT / ".run" / "test-synth" / "duckdb", tmp_path / "duckdb")
    summary = run_translate_stage(cfg, progress=lambda m: None)
    n = summary.examples
    assert n == 204
    for engine in ("postgres", "duckdb", "mysql"):
        shards = sorted((tmp_path / "translate" / engine).glob("part-*.parquet"))
        assert len(shards) == 4  # 204 examples in shards of 60
        rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
        assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows}) and len(rows) == n
        d_trans = pq.read_table(tmp_path / "d_trans" / f"{engine}.parquet").to_pylist()
        assert d_trans and all(r["verdict"] == "verified" for r in d_trans)
        assert summary.engines[engine].verified_share > 0.95
    # lose one shard: the re-run redoes exactly that one
    victim = tmp_path / "translate" / "mysql" / "part-00002.parquet"
    victim.unlink()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "translate").rglob("part-*.parquet")}
    p = plan(cfg)
    assert [Path(t.path) for t in p.tasks] == [victim]
    again = run_translate_stage(cfg, progress=lambda m: None)
    assert victim.exists() and all(q.stat().st_mtime_ns == t for q, t in before.items())
    assert again.engines == summary.engines
    # the same folder for other questions (a benchmark evaluated again at another size): each
    # shard that holds other questions is redone; the counts and D_Trans are the new set's only
    fewer = _cfg(tmp_path, synth_data)
    fewer.data.questions = {"train": 40}
    p = plan(fewer)
    assert p.tasks and p.examples < n
    small = run_translate_stage(fewer, progress=lambda m: None)
    assert not plan(fewer).tasks
    for engine in ("postgres", "duckdb", "mysql"):
        ids = {i for f in p.shards[engine] for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()}
        assert len(ids) == p.examples == sum(small.engines[engine].verdicts.values())
        d_trans = pq.read_table(tmp_path / "d_trans" / f"{engine}.parquet").column("id").to_pylist()
        assert d_trans and set(d_trans) <= ids


def test_runner_writes_what_a_shard_translator_gives(ray_local, test_config, migrated_synth, synth_data, tmp_path):
    import shutil

    cfg = _cfg(tmp_path, synth_data)
    cfg.translate.engines = ["postgres"]
    shutil.copytree(ROOT / ".run" / "test-synth" / "duckdb", tmp_path / "duckdb")
    task = plan(cfg).tasks[0]
    run_translate_stage(cfg, progress=lambda m: None)
    on_ray = pq.read_table(task.path).to_pylist()
    task.path = str(tmp_path / "here.parquet")
    worker = ShardTranslator(cfg, plan(cfg).db_roots)
    try:
        worker(task)
    finally:
        worker.close()
    here = pq.read_table(task.path).to_pylist()
    assert [(r["id"], r["sql"], r["verdict"]) for r in here] == [(r["id"], r["sql"], r["verdict"]) for r in on_ray]


def test_an_engine_that_fails_records_nothing_and_stops_in_one_line(test_config, migrated_synth, synth_data, tmp_path):
    """A database file broken after the run began is the machine's fault, not the translation's: the shard
    is not written (a re-run translates it) and the error names the engine and the shard."""
    import shutil

    import pytest

    from exesql_ray.errors import EngineDown

    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    for f in (data / "database").rglob("*.sqlite"):  # SQLite's header stays, its pages are gone
        f.write_bytes(f.read_bytes()[:100] + b"\xff" * (f.stat().st_size - 100))
    cfg = _cfg(tmp_path, data)
    cfg.translate.engines = ["postgres"]
    task = plan(cfg).tasks[0]
    worker = ShardTranslator(cfg, plan(cfg).db_roots)
    try:
        with pytest.raises(EngineDown) as caught:
            worker(task)
    finally:
        worker.close()
    line = str(caught.value)
    assert "\n" not in line and "sqlite" in line and "part-00000.parquet was not written" in line, line
    assert not Path(task.path).exists()

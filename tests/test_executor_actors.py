"""Executor actors under Ray Data: streaming, one record per input, surviving a killed actor."""

import os
import signal
import threading
import time


from controller.sample import execute_dataset


def _rows(n: int, sql: str = "SELECT count(*) FROM orders WHERE order_id < {i}"):
    return [{"id": f"q{i}", "db_id": "retail_shop", "sql": sql.format(i=i % 97), "sample_idx": i % 8}
            for i in range(n)]


def test_records_stream_through_actors(ray_local, test_config, migrated_synth):
    cfg = test_config.model_copy(deep=True)
    cfg.execution.batch_size = 16
    cfg.execution.actors["postgres"] = 2
    rows = _rows(200) + [{"id": "bad", "db_id": "nope", "sql": "SELECT 1", "sample_idx": 0}]
    ds = ray_local.data.from_items(rows)
    out = execute_dataset(ds, "postgres", cfg).take_all()
    assert sorted(r["id"] for r in out) == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in out}
    assert by_id["bad"]["status"] == "rejected"
    assert by_id["q5"]["status"] == "ok" and by_id["q5"]["sample_idx"] == 5  # input columns pass through
    assert sum(r["cached"] for r in out) > 0  # 97 distinct queries over 200 rows


def _executor_actor_pids():
    """Ray titles actor processes `ray::MapWorker(MapBatches(ExecuteBatch))…`."""
    import psutil

    pids = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if cmd.startswith("ray::") and "ExecuteBatch" in cmd:
            pids.append(p.pid)
    return pids


def test_killed_actor_loses_and_duplicates_nothing(ray_local, test_config, migrated_synth):
    cfg = test_config.model_copy(deep=True)
    cfg.execution.batch_size = 8
    cfg.execution.actors["postgres"] = 2
    cfg.execution.threads_per_actor = 1
    cfg.execution.cache = False
    # ~20 ms per query, 240 rows over two actors: several seconds, time to kill one mid-run
    rows = _rows(240, "SELECT {i} AS n, pg_sleep(0.02) IS NULL AS slept")
    ds = execute_dataset(ray_local.data.from_items(rows), "postgres", cfg)
    killed = []

    def killer():
        deadline = time.time() + 30
        while time.time() < deadline and not killed:
            pids = _executor_actor_pids()
            if len(pids) >= 1 and seen[0] >= 40:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    seen = [0]
    t = threading.Thread(target=killer, daemon=True)
    t.start()
    out = []
    for r in ds.iter_rows():
        out.append(r)
        seen[0] += 1
    t.join(timeout=1)
    assert killed, "no executor actor was killed (the run ended too soon)"
    ids = [r["id"] for r in out]
    assert len(ids) == len(set(ids)) == len(rows), (len(ids), len(set(ids)))
    assert all(r["status"] == "ok" for r in out)

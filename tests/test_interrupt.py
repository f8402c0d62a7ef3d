"""Ctrl-C is about the run, never about the SQL: on every engine an interrupted `execute` stops
promptly with exit 130, the query in flight gets no record (no timeout, no error), the rows
finished before it keep theirs (beside --output, which stays complete or absent).
`exesql-ray run` interrupted mid-sampling: tests/test_pipeline.py."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, sigint_default

# ~0.7 s each here (measured), far below the 30 s limit: only an interrupt can cut one short
SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 4000000) SELECT count(*) + {i} FROM c",
    "duckdb": "SELECT count(*) + {i} FROM range(15000) a, range(15000) b WHERE a.range + b.range > 1",
    "postgres": "SELECT count(*) + {i} FROM generate_series(1, 2000000)",
    "mysql": "SELECT SLEEP(0.7) + {i}",
}
ROWS = 40


@pytest.mark.parametrize("engine", list(SLOW))
def test_sigint_stops_execute_without_a_false_verdict(engine, migrated_synth, db_servers, tmp_path):
    db_id = sorted(migrated_synth)[0]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"q{i}", "db_id": db_id, "sql": SLOW[engine].format(i=i)}) + "\n"
                           for i in range(ROWS)))
    out = tmp_path / "out.jsonl"
    root = {"sqlite": [".run/test-synth/data/database"], "duckdb": [".run/test-synth/duckdb"]}.get(engine)
    args = [sys.executable, "-m", "controller", "execute", "--engine", engine, "--input", str(inp), "--output",
            str(out), "--timeout-s", "30", "--no-cache", *(["--db-root", root[0]] if root else [])]
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **db_servers}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    time.sleep(8)  # start-up (~3 s) and a few queries
    assert proc.poll() is None, proc.communicate()
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.time() - sent < 5, "the query in flight was not cancelled"
    assert "interrupted" in err and "Traceback" not in err, err
    assert not out.exists()
    kept = [json.loads(x) for x in (tmp_path / "out.partial.jsonl").read_text().splitlines()]
    assert 0 < len(kept) < ROWS
    assert [r["id"] for r in kept] == [f"q{i}" for i in range(len(kept))]
    assert {r["status"] for r in kept} == {"ok"}, kept

"""One line everywhere: a stage's missing input before Ray starts, a UserError raised inside a
Ray actor or a Ray Data UDF, a full disk, and a second live command on one run folder."""

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, TARGETS_HERE, run_cli


def _one_line(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("exesql-ray:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_a_stage_run_before_its_input_says_what_to_run_first(tmp_path, synth_data):
    """translate on a run folder that was never migrated: one line, before Ray starts."""
    r = run_cli("translate", "--config", "configs/quickstart.yaml", f"run_dir={tmp_path / 'run'}",
                f"data.path={synth_data}")
    _one_line(r, "duckdb", "exesql-ray db migrate")
    assert "Ray's logs" not in r.stderr  # refused before Ray started


def test_sampling_without_a_model_says_which(tmp_path, synth_data):
    r = run_cli("sample", "--config", "configs/quickstart.yaml", "--iteration", "1", f"run_dir={tmp_path / 'run'}",
                f"data.path={synth_data}")
    _one_line(r, "holds no model", "train iteration 0 first")
    assert "Ray's logs" not in r.stderr
    r = run_cli("evaluate", "--config", "configs/quickstart.yaml", "--iteration", "0", f"run_dir={tmp_path / 'run'}",
                f"data.path={synth_data}")
    _one_line(r, "evaluating iter-0", "holds no model", "train iteration 0 first")


def test_a_user_error_inside_an_actor_or_a_udf_comes_back_as_its_line(ray_local):
    import ray

    from exesql_ray.errors import UserError, user_error_in

    class Refuses:
        def check(self):
            raise UserError("DuckDB folder /x/duckdb: not a directory (run exesql-ray db migrate --engine duckdb)")

        def __call__(self, batch):
            self.check()

    actor = ray.remote(Refuses).remote()
    with pytest.raises(Exception) as caught:
        ray.get(actor.check.remote())
    inner = user_error_in(caught.value)
    assert type(inner) is UserError and str(inner).startswith("DuckDB folder /x/duckdb: not a directory")

    ds = ray.data.from_items([{"a": 1}]).map_batches(Refuses, concurrency=1, batch_size=1)
    with pytest.raises(Exception) as caught:
        ds.take_all()
    inner = user_error_in(caught.value)
    assert type(inner) is UserError and "\n" not in str(inner) and "exesql-ray db migrate" in str(inner)
    ray.kill(actor)

    assert user_error_in(RuntimeError("a bug")) is None  # a bug keeps its traceback


def test_a_worker_killed_for_memory_is_the_machine_not_a_bug():
    """Ray's memory monitor ends a training run with a ControllerError and a task with an
    OutOfMemoryError; both are one line that says what to do, not "an unexpected error (a bug)"."""
    from ray.exceptions import OutOfMemoryError
    from ray.train import ControllerError

    from exesql_ray.errors import OutOfMemory, user_error_in

    train = ControllerError(RuntimeError(
        "Training failed due to controller error:\n5 worker(s) were killed due to the node running low on memory. "
        "Memory on the node (IP: 192.0.2.2, ID: 41b9) was 22.33GB used / 23.54GB limit (0.948649)"))
    task = OutOfMemoryError("Task was killed due to the node running low on memory.\nMemory on the node (IP: 1, "
                            "ID: 2) where the task was running was 22.33GB / 23.54GB (0.948649)")
    for e in (train, task):
        inner = user_error_in(e)
        assert type(inner) is OutOfMemory and "\n" not in str(inner), e
        assert "22.33GB of 23.54GB" in str(inner) and "batch_size" in str(inner)


@contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs (the tests run as root); skipped with the reason where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): the full-disk test needs one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_is_one_line_and_the_same_command_finishes_after(tmp_path, synth_data):
    db_id = sorted(p.name for p in (synth_data / "database").iterdir())[0]
    rows = [{"id": f"q{i}", "db_id": db_id, "sql": f"SELECT {i} AS n, 'padding padding padding' AS t"}
            for i in range(3000)]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmd = [sys.executable, "-m", "controller", "execute", "--engine", "sqlite", "--db-root",
           str(synth_data / "database"), "--input", str(inp)]
    with tmpfs(tmp_path / "small", "64k") as small:
        r = subprocess.run([*cmd, "--output", str(small / "out.jsonl")], cwd=ROOT, capture_output=True, text=True)
        line = _one_line(r, "no space left", str(small / "out.jsonl"), "3000 records computed", "nothing half-written")
        assert not list(small.iterdir()), (line, list(small.iterdir()))  # no temporary file left
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)
        again = subprocess.run([*cmd, "--output", str(small / "out.jsonl")], cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-2000:]
        got = [json.loads(x) for x in (small / "out.jsonl").read_text().splitlines()]
    ref = subprocess.run([*cmd, "--output", str(tmp_path / "ref.jsonl")], cwd=ROOT, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    want = [json.loads(x) for x in (tmp_path / "ref.jsonl").read_text().splitlines()]
    strip = lambda recs: [{k: v for k, v in r.items() if k != "elapsed_ms"} for r in recs]  # noqa: E731
    assert len(got) == 3000 and strip(got) == strip(want)


def test_a_stage_on_a_full_disk_resumes_to_the_records_of_an_uninterrupted_run(tmp_path, db_servers,
                                                                               migrated_synth, synth_data):
    """translate with its run folder on a disk that fills: one line, exit 2; after space is freed
    the same command finishes with exactly the D_Trans of a run that never stopped."""
    import pyarrow.parquet as pq

    duckdb = ROOT / ".run" / "test-synth" / "duckdb"
    args = ["translate", "--config", "configs/quickstart.yaml", f"data.path={synth_data}", "translate.shard_size=16",
            "data.limit=64", "translate.splits=[train]"]
    env_args = {**os.environ, **db_servers}

    def translate(run: Path):
        return subprocess.run([sys.executable, "-m", "controller", *args, f"run_dir={run}"], cwd=ROOT, env=env_args,
                              capture_output=True, text=True)

    ref = tmp_path / "ref"
    shutil.copytree(duckdb, ref / "duckdb")
    assert translate(ref).returncode == 0
    size = sum(f.stat().st_size for f in duckdb.rglob("*") if f.is_file())
    with tmpfs(tmp_path / "small", f"{size // 1024 + 1024}k") as run:
        shutil.copytree(duckdb, run / "duckdb")
        free = shutil.disk_usage(run).free
        filler = run / "filler"
        filler.write_bytes(b"\0" * max(0, free - 24 * 1024))  # room for a few shards, not for all
        r = translate(run)
        _one_line(r, "no space left")
        filler.unlink()
        again = translate(run)
        assert again.returncode == 0, again.stderr[-3000:]
        for engine in TARGETS_HERE:
            got = pq.read_table(run / "d_trans" / f"{engine}.parquet").to_pylist()
            want = pq.read_table(ref / "d_trans" / f"{engine}.parquet").to_pylist()
            if got != want:  # which rows differ, with their records in every shard of both runs
                ids = {r["id"] for r in got} ^ {r["id"] for r in want}
                ids |= {a["id"] for a, b in zip(got, want) if a != b}

                def records(root):
                    return [(p.name, {k: r[k] for k in ("id", "method", "verdict", "error_class", "error")})
                            for p in sorted((root / "translate" / engine).glob("part-*.parquet"))
                            for r in pq.read_table(p).to_pylist() if r["id"] in ids]
                pytest.fail(f"{engine}: D_Trans differs in {sorted(ids)}; after the full disk: {records(run)}; "
                            f"uninterrupted: {records(ref)}")
            assert got, engine


def test_a_second_live_command_on_one_run_folder_is_refused(tmp_path, synth_data):
    from exesql_ray.runlock import RunLock

    run = tmp_path / "run"
    with RunLock(run, "exesql-ray run (this test)"):
        r = run_cli("translate", "--config", "configs/quickstart.yaml", f"run_dir={run}", f"data.path={synth_data}")
        _one_line(r, f"run folder {run} is in use by process {os.getpid()}", "exesql-ray run (this test)")
    assert not (run / ".lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path):
    from exesql_ray.runlock import RunLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "started": "1", "command": "exesql-ray run"}))
    with RunLock(tmp_path, "exesql-ray sample") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    # a live PID whose start time differs is another process that reused the number: stale too
    (tmp_path / ".lock").write_text(json.dumps({"pid": os.getpid(), "started": "-1", "command": "exesql-ray run"}))
    with RunLock(tmp_path, "exesql-ray sample"):
        pass


def test_training_on_a_full_disk_is_one_line_and_finishes_after(tmp_path, translated_run, synth_data, tiny):
    """A checkpoint that does not fit (torch's writer says only "file write failed", from inside
    a Ray Train worker): one line naming the stage's folder; after space is freed the same
    command trains the stage to its model."""
    from conftest import SAMPLE_OVERRIDES

    run = tmp_path / "run"
    shutil.copytree(translated_run / "d_trans", run / "d_trans")
    args = ["train", "sft", "--config", "configs/quickstart.yaml", "--iteration", "0", f"run_dir={run}",
            f"data.path={synth_data}", f"model.path={tiny}", "data.synth_per_template=4", *SAMPLE_OVERRIDES,
            "train.num_workers=1", "train.max_failures=0", "train.sft.save_steps=1", "train.sft.epochs=0.1"]
    stage = run / "train" / "iter-0" / "sft"
    with tmpfs(stage / "checkpoints", "256k"):
        r = run_cli(*args)
        _one_line(r, "no space left", str(stage))
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (stage / "model" / "config.json").is_file()


def test_the_report_on_a_full_disk_is_one_line_and_written_whole_after(tmp_path, sampled_run):
    """The report's Markdown and plots, written where a few KB are free: one line, no file
    half-written (none at all of this attempt); with room, the same command writes them."""
    cfg, _ = sampled_run
    run = tmp_path / "run"
    for part in ("translate", "sample/iter-0"):  # what the report reads: summaries and shards
        shutil.copytree(Path(cfg.run_dir) / part, run / part,
                        ignore=shutil.ignore_patterns("d_valid", "d_neg", "dpo_pairs"))
    cmd = [sys.executable, "-m", "controller", "report", str(run)]
    with tmpfs(run / "report", "24k") as report:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        _one_line(r, "no space left", str(report), "nothing half-written")
        assert not [p for p in report.iterdir() if p.name.startswith(".")], list(report.iterdir())  # no temp file
        written = {p.name: p.stat().st_size for p in report.iterdir()}
        subprocess.run(["mount", "-o", "remount,size=16m", str(report)], check=True)
        again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-3000:]
        md = (report / "report.md").read_text()
        assert "## Sampling" in md and "report.md" not in written  # the Markdown is the last file written
        for png in (report).glob("*.png"):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png

"""The loop end to end on a small slice (16 questions per split, n=2, one iteration after
iteration 0): every stage lands in pipeline.json, evaluation follows the models, the report
is written, a re-run redoes nothing, and a run interrupted (Ctrl-C) in the middle of sampling
and killed in the middle of training ends with the same manifest and record counts as an
uninterrupted one."""

import json
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from conftest import ROOT, SAMPLE_OVERRIDES, run_config, sigint_default, stop_cli

# 2 workers × 1 CPU do not fit beside the replica (0.5 of 2 CPUs): the pipeline must release
# it for training (else Ray Train waits forever) and start it again on the new weights
# Small generation and execution batches: shards finish one after another (with the split in
# one execution batch every shard lands within milliseconds, and a kill "mid-sampling" misses)
PIPELINE = ["data.limit=16", "generation.n=2", "generation.max_tokens=16", "sample.shard_size=8",
            "sample.generate_batch_size=2", "execution.batch_size=8",
            "pipeline.iterations=1", "train.num_workers=2", "train.threads_per_worker=1",
            "train.resources_per_worker.CPU=1", "train.sft.first_epochs=2",
            "train.sft.epochs=2", "train.sft.save_steps=2", "train.dpo.epochs=1", "train.dpo.learning_rate=5e-5"]
STAGES = ["dataset", "migrate", "translate", "evaluate/base", "sft/iter-0", "evaluate/iter-0", "sample/iter-1",
          "sft/iter-1", "dpo/iter-1", "evaluate/iter-1", "report"]


def _counts(run) -> dict:
    """What must not depend on interruptions: stages, their record counts, rows per shard."""
    m = json.loads((run / "pipeline.json").read_text())["stages"]
    out = {"stages": list(m)}
    for name, st in m.items():
        if name.startswith("sample/"):
            out[name] = {e: {k: s[k] for k in ("candidates", "d_valid", "d_neg", "dpo_pairs")} for e, s in st.items()
                         if isinstance(s, dict) and "candidates" in s}
        elif name.startswith(("sft/", "dpo/")):
            out[name] = {k: st[k] for k in ("rows", "sources", "global_step")}
    out["shard_rows"] = {str(p.relative_to(run)): pq.read_metadata(p).num_rows
                         for p in sorted(run.glob("*/*/**/part-*.parquet"))}
    for name in ("base", "iter-0", "iter-1"):
        ev = json.loads((run / "eval" / name / "metrics.json").read_text())
        out[f"eval/{name}"] = {e: (a["questions"], a["judged"]) for e, a in ev["splits"]["dev"].items()}
    return out


@pytest.fixture(scope="module")
def uninterrupted(ray_local, migrated_synth, synth_data, tiny, tmp_path_factory):
    from controller.pipeline import run_pipeline

    run = tmp_path_factory.mktemp("pipeline") / "run"
    cfg = run_config(run, synth_data, tiny, *PIPELINE)
    return cfg, run, run_pipeline(cfg, progress=lambda msg: None)


def test_one_iteration_end_to_end_then_rerun_is_a_noop(uninterrupted):
    from controller.pipeline import run_pipeline

    cfg, run, m = uninterrupted
    assert list(m["stages"]) == STAGES
    assert all(m["stages"][s]["seconds"] >= 0 for s in STAGES)
    models = {name: json.loads((run / "eval" / name / "metrics.json").read_text())["model"]
              for name in ("base", "iter-0", "iter-1")}
    assert models == {"base": cfg.model.path, "iter-0": str(run / "train" / "iter-0" / "sft" / "model"),
                      "iter-1": str(run / "train" / "iter-1" / "dpo" / "model")}
    sample = json.loads((run / "sample" / "iter-1" / "summary.json").read_text())
    assert sample["model"] == models["iter-0"]  # iteration 1 samples from the model after iteration 0
    sft1 = json.loads((run / "train" / "iter-1" / "sft" / "summary.json").read_text())
    assert sft1["from"] == models["iter-0"] and set(sft1["sources"]) <= {"d_trans", "d_valid", "d_trans_duplicate"}
    assert (run / "config.yaml").is_file()
    report = run / "report" / "report.md"
    text = report.read_text()
    assert m["stages"]["report"]["path"] == str(report)
    for png in ("ex.png", "pass_at.png", "datasets.png", "translation.png", "stage_times.png", "training_loss.png"):
        assert (run / "report" / png).stat().st_size > 1000 and f"({png})" in text
    for name in ("base", "iter-0", "iter-1"):
        assert f"| {name} " in text or f" {name} |" in text
    # every EX with its interval, every gain with its paired interval, counts as counts
    import re

    ex_table = text.split("## Execution accuracy")[1].split("Gains over")[0]
    assert re.search(r"\| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \|", ex_table), ex_table
    assert "| iter-1 vs iter-0 |" in text and re.search(r"\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", text)
    by_difficulty = text.split("By difficulty")[1].split("##")[0]
    assert not re.search(r"\| \d+\.000 \|\s*$", by_difficulty, re.M), by_difficulty  # question counts are ints
    assert "first loss (mean of 3 steps)" in text
    model = run / "train" / "iter-1" / "dpo" / "model" / "model.safetensors"
    shards = {p: p.stat().st_mtime_ns for p in run.glob("*/*/**/part-*.parquet")}
    before = model.stat().st_mtime_ns
    again = run_pipeline(cfg, progress=lambda msg: None)
    assert list(again["stages"]) == STAGES
    assert model.stat().st_mtime_ns == before
    assert shards and all(p.stat().st_mtime_ns == t for p, t in shards.items())


def test_report_of_several_runs_has_the_engines_by_datasets_table(uninterrupted, tmp_path):
    from conftest import run_cli

    _, run, m = uninterrupted
    r = run_cli("report", str(run), str(run), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "compare.md").read_text()
    ex = m["stages"]["evaluate/iter-1"]["ex"]["dev"]
    for engine, value in ex.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {engine} |"))
        assert row.count(f"{value:.3f}") == 2, row
    assert "synth dev" in text and f"synth dev ({run})" in text
    r = run_cli("report", str(run), str(run))
    assert r.returncode == 2 and "--out" in r.stderr


def test_a_changed_result_setting_is_refused_on_resume(uninterrupted):
    from controller.pipeline import run_pipeline
    from exesql_ray.errors import UserError

    cfg, run, _ = uninterrupted
    changed = cfg.model_copy(deep=True)
    changed.generation.n = 3
    with pytest.raises(UserError, match="generation.n"):
        run_pipeline(changed, progress=lambda msg: None)


def _wait(proc, what, ready, timeout=600, interrupt=False):
    """Stop the run once `ready()`: with Ctrl-C (SIGINT to the CLI alone, as `kill -INT` sends
    it; the terminal's Ctrl-C reaches the whole group) or killed outright (SIGKILL to all)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read()[-3000:]}"
    assert ready(), f"no {what} within {timeout} s"
    stop_cli(proc, interrupt)
    time.sleep(3)  # orphaned training workers stop at their next step (train/loops.py)


def _stopped_after(ref_run, run, last: str) -> None:
    """`run`: the uninterrupted run as a run that stopped right after stage `last` (its manifest
    up to there, the folders of the later stages gone). The stages before the first
    interruption are the uninterrupted run's; computing them again would only repeat it."""
    import shutil

    shutil.copytree(ref_run, run)
    m = json.loads((run / "pipeline.json").read_text())
    names = list(m["stages"])
    m["stages"] = {k: m["stages"][k] for k in names[:names.index(last) + 1]}
    (run / "pipeline.json").write_text(json.dumps(m, indent=1))
    for later in ("sample/iter-1", "train/iter-1", "eval/iter-1", "report"):
        shutil.rmtree(run / later)
    (run / "config.yaml").unlink()  # pinned again by the CLI below (the same settings, another run_dir)


def test_interrupted_mid_sampling_and_killed_mid_training_resumes_to_the_same_counts(uninterrupted, synth_data, tiny,
                                                                        tmp_path):
    _, ref_run, _ = uninterrupted
    run = tmp_path / "run"
    _stopped_after(ref_run, run, "evaluate/iter-0")
    args = [sys.executable, "-m", "controller", "run", "--config", "configs/quickstart.yaml", f"run_dir={run}",
            f"data.path={synth_data}", f"model.path={tiny}", "data.synth_per_template=4", "execution.timeout_s=2",
            *SAMPLE_OVERRIDES, *PIPELINE]

    def start():
        return subprocess.Popen(args, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)

    def stages():
        p = run / "pipeline.json"
        return json.loads(p.read_text())["stages"] if p.is_file() else {}

    # Ctrl-C mid-sampling: exit 130; the shards written are whole, and the counts below equal
    # the uninterrupted run's: no record of a cancelled query (timeout or error) was kept
    _wait(start(), "a sample shard of iteration 1",
          lambda: any((run / "sample" / "iter-1").glob("*/part-*.parquet")), interrupt=True)
    assert "sample/iter-1" not in stages()
    ck = run / "train" / "iter-1" / "sft" / "checkpoints"
    _wait(start(), "an SFT checkpoint of iteration 1", lambda: any(ck.glob("checkpoint-*/trainer_state.json")))
    assert "sample/iter-1" in stages() and "sft/iter-1" not in stages()
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((run / "train" / "iter-1" / "sft" / "summary.json").read_text())
    assert summary["resumed_from"]
    assert _counts(run) == _counts(ref_run)
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(last["ex"]) == {"base", "iter-0", "iter-1"} and last["report"] == str(run / "report" / "report.md")

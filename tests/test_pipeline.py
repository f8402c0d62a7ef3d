"""The loop end to end on a small slice (16 questions per split, n=2, one iteration): every
stage lands in pipeline.json, evaluation follows the policy across iterations, and a re-run
redoes nothing."""

import json

from conftest import run_config


def test_one_iteration_end_to_end_then_rerun_is_a_noop(ray_local, migrated_synth, synth_data, tiny, tmp_path):
    from actors.pipeline import run_pipeline

    cfg = run_config(tmp_path, synth_data, tiny, "data.limit=16", "generation.n=2", "generation.max_tokens=16",
                     # 2 workers × 1 CPU do not fit beside the replica (0.5 of 2 CPUs): the pipeline
                     # must release it for training (else Ray Train waits forever) and start it again
                     "pipeline.iterations=1", "train.sft.epochs=1",
                     "train.dpo.epochs=0.5", "train.dpo.learning_rate=5e-5")
    m = run_pipeline(cfg, progress=lambda msg: None)
    stages = list(m["stages"])
    assert stages == ["migrate", "translate", "evaluate/iter-0", "sample/iter-0", "sft/iter-0", "dpo/iter-0",
                      "evaluate/iter-1"]
    ev1 = json.loads((tmp_path / "eval" / "iter-1" / "metrics.json").read_text())
    assert ev1["model"] == str(tmp_path / "train" / "iter-0" / "dpo" / "model")
    assert all(0 <= a["ex"] <= 1 for a in ev1["splits"]["dev"].values())
    model = tmp_path / "train" / "iter-0" / "dpo" / "model" / "model.safetensors"
    shards = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/iter-*/**/part-*.parquet")}
    before = model.stat().st_mtime_ns
    again = run_pipeline(cfg, progress=lambda msg: None)
    assert list(again["stages"]) == stages
    assert model.stat().st_mtime_ns == before
    assert shards and all(p.stat().st_mtime_ns == t for p, t in shards.items())

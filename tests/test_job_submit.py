"""`ray job submit` of the quickstart pipeline against a local `ray start --head`
(scripts/job_submit_check.sh), on a small slice; the job's metrics reach Prometheus."""

import json
import subprocess

from conftest import ROOT, SAMPLE_OVERRIDES
from test_pipeline import PIPELINE


def test_ray_job_submit_runs_the_pipeline_and_exports_metrics(db_servers, migrated_synth, synth_data, tiny, tmp_path):
    out = tmp_path / "job"
    r = subprocess.run(["bash", "scripts/job_submit_check.sh", str(out), f"data.path={synth_data}",
                        f"model.path={tiny}", "data.synth_per_template=4", "execution.timeout_s=2",
                        *SAMPLE_OVERRIDES, *PIPELINE, "pipeline.evaluate_base=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "succeeded" in (out / "job.log").read_text()
    lines = [ln for ln in (out / "job.log").read_text().splitlines() if ln.startswith('{"ex"')]
    assert lines, r.stdout[-3000:]
    last = json.loads(lines[-1])
    assert set(last["ex"]) == {"iter-0", "iter-1"} and last["report"] == str(out / "run" / "report" / "report.md")
    assert (out / "run" / "report" / "ex.png").is_file()
    metrics = (out / "metrics.txt").read_text()
    for name in ("ray_exesql_candidates_total", "ray_exesql_executions_total", "ray_exesql_pass_rate",
                 "ray_exesql_execution_latency_ms_bucket"):
        assert name in metrics, name
    assert 'stage="sample"' in metrics and 'iteration="iter-1"' in metrics

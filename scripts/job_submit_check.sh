#!/usr/bin/env bash
# `ray job submit` of the quickstart pipeline against a local `ray start --head`, the way a
# cluster user runs it; then the job's metrics are read from the node's Prometheus endpoint.
#   bash scripts/job_submit_check.sh [OUT_DIR] [key.sub=value ...]
# OUT_DIR (default .run/job-check) gets run/ (the run folder), job.log and metrics.txt.
# Ports: EXESQL_JOB_PORTS="gcs dashboard metrics agent" (default "56379 58265 58080 58266"):
# the agent's own port too, since the default (52365) is taken by any other local Ray.
# Token auth (Ray 2.60's default) stays on: the head writes the token, the client reads it
# with RAY_AUTH_MODE=token (docs/platform.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-.run/job-check}")
shift || true
read -r GCS DASH METRICS AGENT <<<"${EXESQL_JOB_PORTS:-56379 58265 58080 58266}"
RAY=$ROOT/.venv/bin/ray
set -a; . .run/dbs/env; set +a
mkdir -p "$OUT"
export RAY_TMPDIR=${RAY_TMPDIR:-/tmp/exesql-job-check}
mkdir -p "$RAY_TMPDIR"

# `ray stop` would stop every Ray on the machine (a test session's too): stop only the
# processes of this head, which all name its temp dir
stop() { pkill -9 -f -- "$RAY_TMPDIR/session" 2>/dev/null || true; }
trap stop EXIT
stop
# 2 CPUs as on the laptop the quickstart is sized for; the DSNs reach the job through the
# environment the head was started with
"$RAY" start --head --port="$GCS" --dashboard-port="$DASH" --dashboard-host=127.0.0.1 --metrics-export-port="$METRICS" \
  --dashboard-agent-listen-port="$AGENT" --num-cpus=2 --include-dashboard=true --temp-dir="$RAY_TMPDIR" --disable-usage-stats >"$OUT/ray_start.log" 2>&1
echo "job-check: head up; dashboard http://127.0.0.1:$DASH"

export RAY_AUTH_MODE=token
# the job's metrics, scraped while it runs (a finished job's workers stop reporting)
: >"$OUT/metrics.txt"
( while sleep 3; do curl -sf "http://127.0.0.1:$METRICS/metrics" | grep '^ray_exesql_' >>"$OUT/metrics.txt" || true; done ) &
SCRAPER=$!
stop() { kill "$SCRAPER" 2>/dev/null || true; pkill -9 -f -- "$RAY_TMPDIR/session" 2>/dev/null || true; }
# --working-dir uploads the repository (what .gitignore leaves: no venv, no runs); paths in
# the entrypoint are absolute because the job runs in the uploaded copy
# a fresh head's job agent takes a few seconds to come up ("No available agent"): retry then
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  set +e
  "$RAY" job submit --address "http://127.0.0.1:$DASH" --working-dir . -- \
    "$ROOT/.venv/bin/python" jobs/pipeline.py --config configs/quickstart.yaml run_dir="$OUT/run" "$@" \
    2>&1 | tee "$OUT/job.log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" = 0 ] || ! grep -q "No available agent" "$OUT/job.log"; then break; fi
  echo "job-check: the job agent is not up yet (attempt $attempt); retrying in 5 s"
  sleep 5
done
curl -sf "http://127.0.0.1:$METRICS/metrics" | grep '^ray_exesql_' >>"$OUT/metrics.txt" || true
echo "job-check: job exit $status; exesql metric samples scraped: $(wc -l <"$OUT/metrics.txt")"
exit "$status"

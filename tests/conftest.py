"""Shared fixtures: the real benchmark data and one set of database servers per test session."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("EXESQL_DATA", ROOT.parent / "shared" / "data"))


def shared(rel: str) -> Path:
    """A path under the shared benchmark data; missing data fails the test with what is missing."""
    p = DATA / rel
    if not p.exists():
        pytest.fail(f"benchmark data missing: {p} (set EXESQL_DATA to the folder holding spider/, "
                    f"spider_variants/, bird_minidev/)")
    return p


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, val = line[len("export "):].partition("=")
            env[key] = shlex.split(val)[0]
    return env


@pytest.fixture(scope="session")
def db_servers():
    """PostgreSQL + MariaDB from scripts/dbs.sh; stopped at the end only if this session started them."""
    script = ROOT / "scripts" / "dbs.sh"
    was_up = subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"scripts/dbs.sh up failed:\n{up.stderr}")
    env = read_env_file(ROOT / ".run" / "dbs" / "env")
    yield env
    if not was_up:
        subprocess.run(["bash", str(script), "down"], capture_output=True)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exesql_ray", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT)

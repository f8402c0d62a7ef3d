from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from exesql_ray.config import Config, load_config
from exesql_ray.errors import UserError


def test_quickstart_validates():
    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    assert isinstance(cfg, Config)
    assert cfg.data.dataset == "synth"
    assert set(cfg.engines.targets) == {"duckdb", "postgres", "mysql"}


def test_overrides_apply_in_order_and_are_typed():
    cfg = load_config(ROOT / "configs" / "quickstart.yaml",
                      ["execution.timeout_s=2.5", "data.eval_splits=[dev, train]", "execution.timeout_s=3"])
    assert cfg.execution.timeout_s == 3.0
    assert cfg.data.eval_splits == ["dev", "train"]


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  datset: spider\n")
    with pytest.raises(UserError) as e:
        load_config(f)
    assert "data.datset" in str(e.value) and str(f) in str(e.value) and "unknown key" in str(e.value)


def test_unknown_override_key_and_bad_value():
    with pytest.raises(UserError, match=r"'engines\.postgres\.dns': unknown key"):
        load_config(None, ["engines.postgres.dns=x"])
    with pytest.raises(UserError, match=r"'execution\.max_rows'"):
        load_config(None, ["execution.max_rows=-1"])
    with pytest.raises(UserError, match=r"'engines\.targets\.0'"):
        load_config(None, ["engines.targets=[sqlserver]"])
    with pytest.raises(UserError, match="expected key.sub=value"):
        load_config(None, ["execution.timeout_s"])


def test_env_references(monkeypatch):
    monkeypatch.setenv("EXESQL_PG_DSN", "host=/tmp port=1 user=r dbname=x")
    cfg = load_config(None)
    assert cfg.engines.postgres.dsn == "host=/tmp port=1 user=r dbname=x"
    monkeypatch.delenv("EXESQL_PG_DSN")
    assert load_config(None).engines.postgres.dsn is None
    with pytest.raises(UserError, match="NO_SUCH_VAR_X is not set"):
        load_config(None, ["run_dir=${NO_SUCH_VAR_X}"])


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("data:\n  dataset: [spider\n")
    with pytest.raises(UserError, match=rf"{f}: not valid YAML at line \d+"):
        load_config(f)


def test_cli_config_errors_are_one_line_exit_2(tmp_path: Path):
    r = run_cli("config", "show", "--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "config file not found" in r.stderr
    r = run_cli("config", "show", "--config", "configs/quickstart.yaml", "compare.rows=sets")
    assert r.returncode == 2 and "compare.rows" in r.stderr and "quickstart.yaml" in r.stderr


def test_no_password_is_shown_or_stored(monkeypatch, tmp_path: Path):
    """`config show` and a run's config.yaml keep `${VAR}` references (or hide the password of
    a DSN written out); the secret stays in the environment."""
    import os
    import subprocess
    import sys

    from controller.pipeline import pin_config

    env = {**os.environ, "EXESQL_PG_DSN": "postgresql://reader:s3cret-pg@127.0.0.1:5/exesql"}
    r = subprocess.run([sys.executable, "-m", "controller", "config", "show",
                        "engines.mysql.dsn=mysql://reader:s3cret-my@127.0.0.1:3/"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "s3cret" not in r.stdout, r.stdout
    assert "${EXESQL_PG_DSN:-}" in r.stdout and "mysql://reader:***@127.0.0.1:3/" in r.stdout
    monkeypatch.setenv("EXESQL_PG_DSN", "host=x user=reader password=s3cret-kv dbname=exesql")
    cfg = load_config(None, [f"run_dir={tmp_path}"])
    assert cfg.engines.postgres.dsn.endswith("password=s3cret-kv dbname=exesql")  # the engines get it
    pin_config(cfg, progress=lambda m: None)
    stored = (tmp_path / "config.yaml").read_text()
    assert "s3cret" not in stored and "${EXESQL_PG_DSN:-}" in stored
    pin_config(load_config(None, [f"run_dir={tmp_path}"]), progress=lambda m: pytest.fail(m))  # no change seen


def test_a_fallback_dsn_in_a_reference_is_shown_without_its_password():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("EXESQL_PG_DSN", "EXESQL_MYSQL_DSN")}
    r = subprocess.run([sys.executable, "-m", "controller", "config", "show", "--config", "configs/quickstart.yaml"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "password=exesql_reader" not in r.stdout and "exesql_reader:exesql_reader" not in r.stdout, r.stdout
    assert "password=***" in r.stdout and "mysql://exesql_reader:***@localhost" in r.stdout


def test_an_executor_pool_is_a_number_or_a_range():
    from exesql_ray.config import executor_pool

    cfg = load_config(None, ["execution.actors.postgres={min: 1, max: 4}", "execution.actors.duckdb=3",
                             "execution.actor_resources.postgres={executor: 1}"])
    assert executor_pool(cfg.execution, "postgres") == (1, 4) and executor_pool(cfg.execution, "duckdb") == (3, 3)
    assert cfg.execution.actor_resources["postgres"] == {"executor": 1.0}
    with pytest.raises(UserError, match="min 5 is above max 4"):
        load_config(None, ["execution.actors.postgres={min: 5, max: 4}"])

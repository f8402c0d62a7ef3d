"""Engines: one module per database, over a base that owns the machinery.

`ENGINES` is the one list of engines: the config's and the CLI's choices, opening an engine,
migration targets and prompts all read it. A line holds only what the config needs before
any driver is imported; everything else (types, guards, error classes, translation rewrites
and templates, migration) is declared by the engine class its module exports as `ENGINE`.
Adding an engine is one module and one line here (docs/engines.md).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exesql_ray.errors import UserError

if TYPE_CHECKING:
    from exesql_ray.config import Config
    from exesql_ray.engines.base import Engine


@dataclass(frozen=True)
class EngineEntry:
    module: str  # exesql_ray.engines.<module>, which exports the engine class as ENGINE
    # reached by a DSN: the config gets an `engines.<name>` section whose DSNs default to the
    # environment's EXESQL_<env>_DSN and EXESQL_<env>_ADMIN_DSN
    server: bool = False
    env: str = ""
    actors: int = 1  # default executor actors (execution.actors)
    actor_cpus: float = 1.0  # CPUs one executor actor reserves: in-process engines compute, servers wait


ENGINES: dict[str, EngineEntry] = {
    "sqlite": EngineEntry("sqlite"),
    "duckdb": EngineEntry("duckdb"),
    "postgres": EngineEntry("postgres", server=True, env="PG", actors=2, actor_cpus=0.25),
    "mysql": EngineEntry("mysql", server=True, env="MYSQL", actors=2, actor_cpus=0.25),
    "oracle": EngineEntry("oracle", server=True, env="ORACLE", actors=2, actor_cpus=0.25),
}
SOURCE = "sqlite"  # the dialect of the datasets' gold; the others are translation targets
TARGETS = tuple(name for name in ENGINES if name != SOURCE)


@functools.cache  # prompts and rewrites ask per identifier and per node
def engine_class(name: str) -> type[Engine]:
    """The engine class `name` names (its module is imported on first use)."""
    if name not in ENGINES:
        raise UserError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")
    return importlib.import_module(f"exesql_ray.engines.{ENGINES[name].module}").ENGINE


def open_engine(name: str, cfg: Config, *, db_root: str | Path | list | None = None, dsn: str | None = None) -> Engine:
    """The engine for `name`, with the config's limits and connection. SQLite reads `db_root`
    (Spider's database/ layout); DuckDB reads the migrated files under `<run_dir>/duckdb`
    unless `db_root` says otherwise; servers use the config's DSN unless `dsn` is given."""
    return engine_class(name).from_config(cfg, db_root=db_root, dsn=dsn)


__all__ = ["ENGINES", "SOURCE", "TARGETS", "EngineEntry", "engine_class", "open_engine"]

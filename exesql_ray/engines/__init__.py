"""Engines: one module per database, a base class that owns the machinery.

`open_engine(name, cfg)` builds the engine a config names, with its limits and connection.
"""

from __future__ import annotations

from pathlib import Path

from exesql_ray.config import Config
from exesql_ray.engines.base import Engine, Limits
from exesql_ray.engines.results import Execution, normalize_rows, result_hash
from exesql_ray.engines.sqltext import guard
from exesql_ray.errors import UserError


def limits_from(cfg: Config) -> Limits:
    return Limits(timeout_s=cfg.execution.timeout_s, max_rows=cfg.execution.max_rows)


def open_engine(name: str, cfg: Config, *, db_root: str | Path | None = None, dsn: str | None = None) -> Engine:
    """The engine for `name`. SQLite reads `db_root` (Spider's database/ layout); DuckDB reads
    the migrated files under `<run_dir>/duckdb` unless `db_root` says otherwise; servers use
    the config's DSN unless `dsn` is given."""
    limits = limits_from(cfg)
    if name == "sqlite":
        from exesql_ray.engines.sqlite import SQLiteEngine

        if db_root is None:
            raise UserError("sqlite needs a database folder (--db-root)")
        return SQLiteEngine(db_root=db_root, limits=limits)
    if name == "duckdb":
        from exesql_ray.engines.duckdb import DuckDBEngine

        return DuckDBEngine(db_root or duckdb_root(cfg), limits=limits)
    server = getattr(cfg.engines, name, None) if name in ("postgres", "mysql", "oracle") else None
    if server is None:
        raise UserError(f"unknown engine {name!r} (engines: sqlite, duckdb, postgres, mysql, oracle)")
    dsn = dsn or server.dsn
    if name == "postgres":
        from exesql_ray.engines.postgres import PostgresEngine

        return PostgresEngine(dsn, limits=limits, max_connections=server.max_connections,
                              allow_writable=cfg.engines.allow_writable_login)
    if name == "mysql":
        from exesql_ray.engines.mysql import MySQLEngine

        return MySQLEngine(dsn, limits=limits, max_connections=server.max_connections,
                           allow_writable=cfg.engines.allow_writable_login)
    from exesql_ray.engines.oracle import OracleEngine

    if not dsn:
        raise UserError("oracle: no DSN configured (engines.oracle.dsn or EXESQL_ORACLE_DSN)")
    return OracleEngine(dsn, limits=limits, max_connections=server.max_connections)


def duckdb_root(cfg: Config) -> Path:
    return Path(cfg.run_dir) / "duckdb"


__all__ = ["Engine", "Execution", "Limits", "guard", "normalize_rows", "result_hash", "open_engine", "duckdb_root"]

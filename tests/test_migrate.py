"""Migration: every Spider database into PostgreSQL, MariaDB and DuckDB, verified by row
counts and checksums against SQLite, idempotently."""

import json
from conftest import ROOT, TARGETS_HERE, run_cli, shared


def test_all_spider_dbs_migrate_and_verify(db_servers):
    """All 163 Spider DBs into PostgreSQL, MariaDB and DuckDB with row counts and checksums
    matching SQLite. Idempotent: a second run finds them there and verifies them again."""
    run_dir = ROOT / ".run" / "spider"
    for engine in TARGETS_HERE:
        r = run_cli("db", "migrate", "--dataset", "spider", "--path", str(shared("spider")), "--engine", engine,
                    f"run_dir={run_dir}")
        assert r.returncode == 0, (engine, r.stdout, r.stderr)
        report = json.loads((run_dir / "migrate" / f"{engine}.json").read_text())
        assert report["dbs"] == 163 and report["verified"] == 163 and report["failed"] == 0, r.stdout
        assert report["rows"] == 322442
        print(r.stdout.strip())

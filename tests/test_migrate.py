"""Migration: every Spider database into PostgreSQL, MariaDB and DuckDB, verified by row
counts and checksums against SQLite, idempotently."""

from conftest import TARGETS_HERE


def test_all_spider_dbs_migrate_and_verify(spider_migrated):
    """All 163 Spider DBs into PostgreSQL, MariaDB and DuckDB with row counts and checksums
    matching SQLite. Idempotent: a second run finds them there and verifies them again."""
    for engine in TARGETS_HERE:
        r, report = spider_migrated[engine]
        assert report["dbs"] == 163 and report["verified"] == 163 and report["failed"] == 0, r.stdout
        assert report["rows"] == 322442
        print(r.stdout.strip())

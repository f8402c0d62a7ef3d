"""Readers on the real shared benchmarks (../shared/data, or EXESQL_DATA)."""

from collections import Counter

import pytest

from conftest import run_cli, shared
from exesql_ray.data import load_dataset
from exesql_ray.data.hardness import hardness_from_spider_sql, hardness_from_sql
from exesql_ray.data.stats import dataset_stats
from exesql_ray.data.common import read_json

# Spider train gold that fails on SQLite (annotation errors in the release).
KNOWN_FAILING_TRAIN = {"spider/train/3153", "spider/train/4513", "spider/train/4514"}


@pytest.fixture(scope="module")
def spider_stats():
    ds = load_dataset("spider", shared("spider"))
    return ds, dataset_stats(ds)


def test_spider_counts_and_missing_dbs(spider_stats):
    ds, stats = spider_stats
    assert stats["db_folders"] == 163
    dev, train = {s.split: s for s in stats["splits"]}["dev"], {s.split: s for s in stats["splits"]}["train"]
    assert dev.questions == 1034 and dev.missing_db_questions == 62 and dev.missing_dbs == {"wta_1": 62}
    assert train.questions == 7000
    assert train.missing_dbs == {"baseball_1": 82, "soccer_1": 14}
    assert dev.checked == 972 and dev.gold_failures == []
    assert {f.id for f in train.gold_failures} == KNOWN_FAILING_TRAIN
    assert all(f.error for f in train.gold_failures)
    e = ds.splits["dev"][0]
    assert (e.id, e.db_id, e.question) == ("spider/dev/0", "concert_singer", "How many singers do we have?")
    assert e.db_path.endswith("concert_singer/concert_singer.sqlite")


def test_spider_hardness_matches_official_counts(spider_stats):
    ds, _ = spider_stats
    # Spider's published dev split by hardness.
    assert Counter(e.difficulty for e in ds.splits["dev"]) == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}


def test_sqlglot_hardness_agrees_with_spiders_rule():
    """Files without the parsed `sql` dict get hardness from sqlglot; it must agree with Spider's rule."""
    rows = read_json(shared("spider/dev.json"))
    agree = sum(hardness_from_spider_sql(r["sql"]) == hardness_from_sql(r["query"]) for r in rows)
    assert agree / len(rows) >= 0.98, f"agreement {agree}/{len(rows)}"


def test_cli_stats_reports_known_failures_by_name():
    r = run_cli("data", "stats", "--dataset", "spider", "--path", str(shared("spider")), "--split", "train")
    assert r.returncode == 0, r.stderr
    assert "questions 7000" in r.stdout and "databases present: 163" in r.stdout
    for qid in KNOWN_FAILING_TRAIN:
        assert qid in r.stdout
    assert "no such table: Ref_Company_Types" in r.stdout


def test_spider_variants():
    syn = load_dataset("spider_syn", shared("spider_variants/spider_syn")).splits["dev"]
    assert len(syn) == 1034 and sum(not e.has_db for e in syn) == 62
    assert syn[0].question == "How many vocalists do we have?"
    real = load_dataset("spider_realistic", shared("spider_variants/spider_realistic")).splits["dev"]
    assert len(real) == 508 and len({e.db_id for e in real}) == 19
    dk = load_dataset("spider_dk", shared("spider_variants/spider_dk")).splits["dev"]
    assert len(dk) == 535 and len({e.db_id for e in dk}) == 10
    assert all(e.has_db for e in dk if e.db_id.startswith("new_"))  # DK's own DBs are found


def test_dr_spider_sets():
    ds = load_dataset("dr_spider", shared("spider_variants/dr_spider"))
    nlq_sql = {k: v for k, v in ds.splits.items() if not k.startswith("DB_")}
    assert len(nlq_sql) == 12
    assert 5000 <= sum(len(v) for v in nlq_sql.values()) <= 5400
    # DB perturbation sets ship without their perturbed databases: all reported as missing.
    assert all(not e.has_db for e in ds.splits["DB_DBcontent_equivalence"])
    gold_only = [n for n in ds.notes if "gold SQL only" in n]
    assert len(gold_only) == 4
    e = ds.splits["SQL_comparison"][0]
    assert e.has_db and e.difficulty in {"easy", "medium", "hard", "extra"}


def test_bird_minidev():
    ds = load_dataset("bird", shared("bird_minidev"))
    exs = ds.splits["minidev"]
    assert len(exs) == 500
    assert Counter(e.difficulty for e in exs) == {"simple": 148, "moderate": 250, "challenging": 102}
    assert all(not e.has_db for e in exs)  # Mini-Dev ships without its databases
    assert all(set(e.dialect_gold) == {"mysql", "postgres"} for e in exs)
    first = exs[0]
    assert first.id == "bird/minidev/1471" and first.evidence.startswith("ratio of customers")
    assert "NULLIF" in first.dialect_gold["postgres"]

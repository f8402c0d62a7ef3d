"""Dataset readers: every benchmark becomes a list of Example records per split."""

from __future__ import annotations

from pathlib import Path

from exesql_ray.data.bird import load_bird
from exesql_ray.data.common import Dataset
from exesql_ray.data.records import Example, db_roots, examples_to_table, table_to_examples, write_parquet_atomic
from exesql_ray.data.spider import VARIANTS, load_dr_spider, load_spider, load_variant
from exesql_ray.data.wikisql import load_wikisql
from exesql_ray.errors import UserError

DATASETS = ("spider", "synth", "spider_syn", "spider_realistic", "spider_dk", "dr_spider", "bird", "wikisql")


def load_dataset(name: str, path: str | Path, splits: list[str] | None = None, db_root=None) -> Dataset:
    """Read a benchmark from its authors' layout. `synth` is Spider layout written by `data synth`."""
    path = Path(path)
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if not path.exists():
        raise UserError(f"dataset path not found: {path}")
    if name in ("spider", "synth"):
        return load_spider(path, splits, db_root, name=name)
    if name in VARIANTS:
        return load_variant(name, path, splits, db_root)
    if name == "dr_spider":
        return load_dr_spider(path, splits, db_root)
    if name == "bird":
        return load_bird(path, splits, db_root)
    return load_wikisql(path, splits, db_root)


def subset(examples: list[Example], limit: int | None, size: int | None, seed: str) -> list[Example]:
    """The questions a run uses of one split: the first `limit`, then `size` of those that
    have a database, drawn with `seed` (the same draw on every machine and in every stage)."""
    import random

    examples = examples[:limit]
    if size is None:
        return examples
    with_db = [i for i, e in enumerate(examples) if e.has_db]
    if size >= len(with_db):
        return [examples[i] for i in with_db]
    pick = set(random.Random(seed).sample(with_db, size))
    return [e for i, e in enumerate(examples) if i in pick]


__all__ = [
    "subset",
    "db_roots",
    "DATASETS", "Dataset", "Example", "load_dataset", "examples_to_table", "table_to_examples",
    "write_parquet_atomic",
]

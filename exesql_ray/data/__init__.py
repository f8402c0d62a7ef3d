"""Dataset readers: every benchmark becomes a list of Example records per split."""

from __future__ import annotations

from pathlib import Path

from exesql_ray.data.bird import load_bird
from exesql_ray.data.common import Dataset
from exesql_ray.data.records import Example, db_root, examples_to_table, table_to_examples, write_parquet_atomic
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


__all__ = [
    "db_root",
    "DATASETS", "Dataset", "Example", "load_dataset", "examples_to_table", "table_to_examples",
    "write_parquet_atomic",
]

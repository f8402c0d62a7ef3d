"""Spider 1.0, its variants (Syn, Realistic, DK) and Dr.Spider, into Example records."""

from __future__ import annotations

from pathlib import Path

from exesql_ray.data.common import Dataset, DbLocator, read_json, require, spider_database_root
from exesql_ray.data.hardness import hardness_from_spider_sql, hardness_from_sql
from exesql_ray.data.records import Example
from exesql_ray.errors import UserError


def _difficulty(row: dict) -> str | None:
    sql = row.get("sql")
    if isinstance(sql, dict):
        try:
            return hardness_from_spider_sql(sql)
        except (KeyError, IndexError, TypeError):
            pass
    return hardness_from_sql(row["query"])


def _examples(rows, path: Path, dataset: str, split: str, locate: DbLocator, question_key: str = "question"):
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON list of questions")
    out = []
    for i, row in enumerate(rows):
        require(row, ("db_id", "query", question_key), path, i, text=("db_id", "query", question_key))
        out.append(
            Example(
                id=f"{dataset}/{split}/{i}",
                dataset=dataset,
                split=split,
                db_id=row["db_id"],
                question=row[question_key],
                sqlite_sql=row["query"].strip(),
                difficulty=_difficulty(row),
                db_path=locate(row["db_id"]),
            )
        )
    return out


# split -> the files that hold it, in Spider's own layout
SPIDER_SPLITS = {"dev": ("dev.json",), "train": ("train_spider.json", "train_others.json")}


def load_spider(path: Path, splits: list[str] | None, db_root=None, name: str = "spider") -> Dataset:
    """Spider's layout; `name` is "synth" for the same layout written by `data synth`."""
    roots = spider_database_root(path, db_root)
    locate = DbLocator(roots)
    available = [s for s, files in SPIDER_SPLITS.items() if (path / files[0]).is_file()]
    if not available:
        raise UserError(f"{path}: no Spider split found (expected dev.json or train_spider.json)")
    ds = Dataset(name, path, {}, db_roots=roots)
    for split in splits or available:
        if split not in SPIDER_SPLITS:
            raise UserError(f"{name} has no split {split!r} (splits: {', '.join(SPIDER_SPLITS)})")
        rows = []
        for fname in SPIDER_SPLITS[split]:
            f = path / fname
            if f.is_file():
                part = read_json(f)
                rows.extend(part if isinstance(part, list) else [part])
            elif fname == SPIDER_SPLITS[split][0]:
                raise UserError(f"file not found: {f}")
            elif name == "spider":
                ds.notes.append(f"{split}: {fname} not present, read {SPIDER_SPLITS[split][0]} only")
        ds.splits[split] = _examples(rows, path / SPIDER_SPLITS[split][0], name, split, locate)
    return ds


# Variants: (file, the key holding the question), all with Spider's dev databases.
VARIANTS = {
    "spider_syn": ("dev.json", "SpiderSynQuestion"),
    "spider_realistic": ("spider-realistic.json", "question"),
    "spider_dk": ("Spider-DK.json", "question"),
}


def load_variant(name: str, path: Path, splits: list[str] | None, db_root=None) -> Dataset:
    fname, qkey = VARIANTS[name]
    if splits and splits != ["dev"]:
        raise UserError(f"{name} has only the split 'dev'")
    roots = spider_database_root(path, db_root)
    ds = Dataset(name, path, {}, db_roots=roots)
    f = path / fname
    ds.splits["dev"] = _examples(read_json(f), f, name, "dev", DbLocator(roots), qkey)
    return ds


def load_dr_spider(path: Path, splits: list[str] | None, db_root=None) -> Dataset:
    """One split per perturbation set; sets that ship only gold SQL are noted, not loaded."""
    if not path.is_dir():
        raise UserError(f"dataset path not found: {path}")
    roots = spider_database_root(path, db_root)
    locate = DbLocator(roots)
    ds = Dataset("dr_spider", path, {}, db_roots=roots)
    sets = sorted(p.name for p in path.iterdir() if (p / "gold_post_perturbation.sql").is_file())
    if not sets:
        raise UserError(f"{path}: no Dr.Spider sets found (folders with gold_post_perturbation.sql)")
    for s in splits or sets:
        if s not in sets:
            raise UserError(f"dr_spider has no set {s!r} (sets: {', '.join(sets)})")
        q = path / s / "questions_post_perturbation.json"
        if not q.is_file():
            n = sum(1 for line in (path / s / "gold_post_perturbation.sql").open(encoding="utf-8") if line.strip())
            ds.notes.append(f"{s}: gold SQL only ({n} queries), no questions file: not loaded")
            continue
        ds.splits[s] = _examples(read_json(q), q, "dr_spider", s, locate)
    return ds

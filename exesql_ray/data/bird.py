"""BIRD: the release layout (dev.json + dev_databases/) and Mini-Dev's JSON files.

Mini-Dev ships gold SQL written by its authors for MySQL and PostgreSQL too; it lands in
Example.dialect_gold so evaluation can use the dataset's own dialect gold.
"""

from __future__ import annotations

from pathlib import Path

from exesql_ray.data.common import Dataset, DbLocator, read_json, require
from exesql_ray.data.records import Example
from exesql_ray.errors import UserError

# split -> (questions file, databases folder candidates)
BIRD_SPLITS = {
    "dev": ("dev.json", ("dev_databases",)),
    "train": ("train.json", ("train_databases",)),
    "minidev": ("mini_dev_sqlite.json", ("dev_databases", "MINIDEV/dev_databases", "minidev/dev_databases")),
}
MINIDEV_DIALECT_FILES = {"mysql": "mini_dev_mysql.json", "postgres": "mini_dev_postgresql.json"}


def _dialect_gold(path: Path) -> dict[int, dict[str, str]]:
    gold: dict[int, dict[str, str]] = {}
    for dialect, fname in MINIDEV_DIALECT_FILES.items():
        f = path / fname
        if not f.is_file():
            continue
        for i, row in enumerate(read_json(f)):
            require(row, ("question_id", "SQL"), f, i, text=("SQL",))
            gold.setdefault(row["question_id"], {})[dialect] = row["SQL"].strip()
    return gold


def load_bird(path: Path, splits: list[str] | None, db_root=None) -> Dataset:
    if not path.is_dir():
        raise UserError(f"dataset path not found: {path}")
    available = [s for s, (f, _) in BIRD_SPLITS.items() if (path / f).is_file()]
    if not available:
        raise UserError(f"{path}: no BIRD split found (expected dev.json, train.json or mini_dev_sqlite.json)")
    ds = Dataset("bird", path, {})
    for split in splits or available:
        if split not in BIRD_SPLITS:
            raise UserError(f"bird has no split {split!r} (splits: {', '.join(BIRD_SPLITS)})")
        fname, db_dirs = BIRD_SPLITS[split]
        roots = [Path(db_root)] if db_root else [path / d for d in db_dirs]
        ds.db_roots += [r for r in roots if r.is_dir()]
        locate = DbLocator(roots)
        f = path / fname
        rows = read_json(f)
        if not isinstance(rows, list):
            raise UserError(f"{f}: expected a JSON list of questions")
        dialect_gold = _dialect_gold(path) if split == "minidev" else {}
        out = []
        for i, row in enumerate(rows):
            require(row, ("db_id", "question", "SQL"), f, i, text=("db_id", "question", "SQL"))
            qid = row.get("question_id", i)
            out.append(
                Example(
                    id=f"bird/{split}/{qid}",
                    dataset="bird",
                    split=split,
                    db_id=row["db_id"],
                    question=row["question"],
                    evidence=row.get("evidence") or "",
                    sqlite_sql=row["SQL"].strip(),
                    difficulty=row.get("difficulty"),
                    db_path=locate(row["db_id"]),
                    dialect_gold=dialect_gold.get(qid, {}),
                )
            )
        ds.splits[split] = out
    return ds

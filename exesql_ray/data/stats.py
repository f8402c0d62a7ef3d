"""`exesql-ray data stats`: what a dataset holds, what is missing, which gold fails on SQLite."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from exesql_ray.data.common import Dataset

DIFFICULTY_ORDER = ("easy", "medium", "hard", "extra", "simple", "moderate", "challenging", None)


@dataclass
class GoldFailure:
    id: str
    db_id: str
    sql: str
    error: str


@dataclass
class SplitStats:
    split: str
    questions: int
    dbs: int
    dbs_present: int
    missing_db_questions: int
    missing_dbs: dict[str, int]
    by_difficulty: dict[str, int]
    checked: int = 0
    gold_failures: list[GoldFailure] = field(default_factory=list)


def run_gold_on_sqlite(examples, timeout_s: float = 30.0, max_rows: int = 100_000) -> list[GoldFailure]:
    """Run each gold query once on its read-only SQLite DB (the SQLite engine, guards and all);
    return the ones that fail."""
    from exesql_ray.engines.base import Limits
    from exesql_ray.engines.sqlite import SQLiteEngine

    with_db = [e for e in examples if e.db_path]
    engine = SQLiteEngine(db_paths={e.db_id: e.db_path for e in with_db},
                          limits=Limits(timeout_s=timeout_s, max_rows=max_rows, retries=0))
    failures = []
    try:
        for e in with_db:
            ex = engine.execute(e.db_id, e.sqlite_sql)
            if ex.status != "ok":
                failures.append(GoldFailure(e.id, e.db_id, e.sqlite_sql,
                                            "timed out" if ex.status == "timeout" else ex.error or ex.status))
    finally:
        engine.close()
    return failures


def split_stats(split: str, examples, check_gold: bool = True) -> SplitStats:
    dbs = {e.db_id for e in examples}
    present = {e.db_id for e in examples if e.has_db}
    missing = Counter(e.db_id for e in examples if not e.has_db)
    diff = Counter(e.difficulty for e in examples)
    ordered = {str(k): diff[k] for k in DIFFICULTY_ORDER if k in diff}
    st = SplitStats(
        split=split,
        questions=len(examples),
        dbs=len(dbs),
        dbs_present=len(present),
        missing_db_questions=sum(missing.values()),
        missing_dbs=dict(sorted(missing.items())),
        by_difficulty=ordered,
    )
    if check_gold:
        st.checked = sum(1 for e in examples if e.has_db)
        st.gold_failures = run_gold_on_sqlite(examples)
    return st


def dataset_stats(ds: Dataset, check_gold: bool = True) -> dict:
    db_files = set()
    for root in ds.db_roots:
        for p in root.iterdir():
            if p.is_dir() and any((p / f"{p.name}{s}").is_file() for s in (".sqlite", ".db")):
                db_files.add(p.name)
    splits = [split_stats(s, exs, check_gold) for s, exs in ds.splits.items()]
    return {"dataset": ds.name, "path": str(ds.path), "db_folders": len(db_files), "splits": splits, "notes": ds.notes}


def format_stats(stats: dict) -> str:
    lines = [f"dataset {stats['dataset']} at {stats['path']}"]
    if stats["db_folders"]:
        lines.append(f"databases present: {stats['db_folders']}")
    for st in stats["splits"]:
        diff = ", ".join(f"{k} {v}" for k, v in st.by_difficulty.items())
        lines.append(
            f"[{st.split}] questions {st.questions}, DBs {st.dbs} ({st.dbs_present} present), "
            f"questions with a missing DB {st.missing_db_questions}"
        )
        if st.missing_dbs:
            shown = list(st.missing_dbs.items())[:10]
            more = f" and {len(st.missing_dbs) - 10} more" if len(st.missing_dbs) > 10 else ""
            lines.append("  missing DBs: " + ", ".join(f"{k} ({v} q)" for k, v in shown) + more)
        lines.append(f"  by difficulty: {diff}")
        if st.checked:
            lines.append(f"  gold SQL run on SQLite: {st.checked}, failing {len(st.gold_failures)}")
            for f in st.gold_failures:
                lines.append(f"    {f.id} [{f.db_id}] {f.error}: {f.sql}")
    for n in stats["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)

"""WikiSQL: `<split>.jsonl` + `<split>.tables.jsonl` + `<split>.db`, logical forms rendered to SQLite SQL.

The SQL is written the way WikiSQL's own executor (lib/dbengine.py) runs a logical form:
`SELECT agg(colN) AS result FROM table_<id> WHERE colK op value`, text values lower-cased,
values of real columns parsed as numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

from exesql_ray.data.common import Dataset, check_sqlite_file, read_jsonl, require
from exesql_ray.data.records import Example
from exesql_ray.errors import UserError

AGG_OPS = ["", "MAX", "MIN", "COUNT", "SUM", "AVG"]
COND_OPS = ["=", ">", "<", "OP"]
_NUMBER = re.compile(r"[-+]?\d*\.\d+|[-+]?\d+")


def table_name(table_id: str) -> str:
    return "table_" + table_id.replace("-", "_")


def _literal(value, col_type: str) -> str:
    if col_type == "real":
        if isinstance(value, (int, float)):
            return repr(float(value))
        text = str(value).replace(",", "")
        try:
            return repr(float(text))
        except ValueError:
            m = _NUMBER.search(text)
            if m is None:
                raise ValueError(f"no number in {value!r} for a real column") from None
            return repr(float(m.group(0)))
    text = str(value).lower() if isinstance(value, str) else str(value)
    return "'" + text.replace("'", "''") + "'"


def logical_form_to_sql(sql: dict, table_id: str, types: list[str]) -> str:
    col = f"col{sql['sel']}"
    agg = AGG_OPS[sql["agg"]]
    select = f"{agg}({col})" if agg else col
    where = [f"col{c} {COND_OPS[op]} {_literal(v, types[c])}" for c, op, v in sql["conds"]]
    out = f"SELECT {select} AS result FROM {table_name(table_id)}"
    if where:
        out += " WHERE " + " AND ".join(where)
    return out


def load_wikisql(path: Path, splits: list[str] | None, db_root=None) -> Dataset:
    if not path.is_dir():
        raise UserError(f"dataset path not found: {path}")
    available = [s for s in ("train", "dev", "test") if (path / f"{s}.jsonl").is_file()]
    if not available:
        raise UserError(f"{path}: no WikiSQL split found (expected dev.jsonl, train.jsonl or test.jsonl)")
    ds = Dataset("wikisql", path, {})
    root = Path(db_root) if db_root else path
    for split in splits or available:
        if split not in ("train", "dev", "test"):
            raise UserError(f"wikisql has no split {split!r} (splits: train, dev, test)")
        qfile, tfile, db = path / f"{split}.jsonl", path / f"{split}.tables.jsonl", root / f"{split}.db"
        types = {}
        for i, t in enumerate(read_jsonl(tfile)):
            require(t, ("id", "types"), tfile, i)
            types[t["id"]] = t["types"]
        db_path = None
        if db.is_file():
            check_sqlite_file(db)
            db_path = str(db.resolve())
        out = []
        for i, row in enumerate(read_jsonl(qfile)):
            require(row, ("table_id", "question", "sql"), qfile, i, text=("table_id", "question"))
            tid = row["table_id"]
            if tid not in types:
                raise UserError(f"{qfile} line {i + 1}: table_id {tid!r} is not in {tfile}")
            try:
                sql = logical_form_to_sql(row["sql"], tid, types[tid])
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise UserError(f"{qfile} line {i + 1}: bad logical form ({e})") from None
            out.append(
                Example(
                    id=f"wikisql/{split}/{i}",
                    dataset="wikisql",
                    split=split,
                    db_id=f"wikisql_{split}",
                    question=row["question"],
                    sqlite_sql=sql,
                    db_path=db_path,
                    tables=[table_name(tid)],
                )
            )
        ds.splits[split] = out
    return ds

"""Reading input rows and writing records: JSONL or Parquet, chosen by the file name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exesql_ray.errors import UserError


def read_rows(path: str | Path) -> list[dict]:
    """Rows as dicts. A JSONL line that is not valid JSON or not UTF-8 becomes a row with only
    `_error` (and `id` = its line), so the executor can reject it and go on."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file not found: {p}")
    if p.suffix == ".parquet":
        try:
            return pq.read_table(p).to_pylist()
        except pa.ArrowInvalid as e:
            raise UserError(f"{p}: not a readable Parquet file ({e})") from None
    if p.suffix not in (".jsonl", ".json"):
        raise UserError(f"{p}: expected .jsonl or .parquet")
    rows = []
    with p.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
                rows.append(obj if isinstance(obj, dict) else {"id": f"line {n}", "_error": "line is not a JSON object"})
            except UnicodeDecodeError as e:
                rows.append({"id": f"line {n}", "_error": f"line {n} is not UTF-8 (byte {e.start})"})
            except json.JSONDecodeError as e:
                rows.append({"id": f"line {n}", "_error": f"line {n}: malformed JSON at column {e.colno}: {e.msg}"})
    return rows


def write_records(records: list[dict], path: str | Path) -> Path:
    """Atomically (temporary name, then rename): a crash leaves no half-written output."""
    p = Path(path)
    if p.suffix not in (".jsonl", ".parquet"):
        raise UserError(f"{p}: expected .jsonl or .parquet")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        if p.suffix == ".parquet":
            pq.write_table(pa.Table.from_pylist(records), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p

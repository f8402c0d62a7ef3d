"""What every reader shares: strict JSON reading, DB lookup, the Dataset result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from exesql_ray.data.records import Example
from exesql_ray.errors import UserError

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class Dataset:
    name: str
    path: Path
    splits: dict[str, list[Example]]
    # Facts a user should see that are not examples (a gold-only set, a skipped file).
    notes: list[str] = field(default_factory=list)
    db_roots: list[Path] = field(default_factory=list)


def read_json(path: Path):
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"malformed JSON in {path} at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte {e.start})") from None


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    rows = []
    with path.open("r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"malformed JSON in {path} at line {n}, column {e.colno}: {e.msg}") from None
    return rows


def require(row: dict, keys: tuple[str, ...], path: Path, index: int, text: tuple[str, ...] = ()) -> None:
    """The row is an object with `keys`; those in `text` hold non-empty strings (a number or a
    null there would fail later, far from the row at fault)."""
    if not isinstance(row, dict):
        raise UserError(f"{path} row {index}: expected an object, got {type(row).__name__}")
    missing = [k for k in keys if k not in row]
    if missing:
        raise UserError(f"{path} row {index}: missing key {missing[0]!r}")
    for k in text:
        v = row[k]
        if not isinstance(v, str) or not v.strip():
            got = "null" if v is None else "empty" if isinstance(v, str) else f"a {type(v).__name__} ({v!r:.40})"
            raise UserError(f"{path} row {index}: {k!r} must be text, got {got}")


def check_sqlite_file(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(16)
    if head != SQLITE_MAGIC:
        raise UserError(f"{path} is not a SQLite database (bad header)")


class DbLocator:
    """Finds <root>/<db_id>/<db_id>.sqlite across roots; checks each file once."""

    def __init__(self, roots: list[Path], suffixes: tuple[str, ...] = (".sqlite", ".db")):
        self.roots = [r for r in roots if r.is_dir()]
        self.suffixes = suffixes
        self._cache: dict[str, str | None] = {}

    def __call__(self, db_id: str) -> str | None:
        if db_id not in self._cache:
            found = None
            for root in self.roots:
                for suf in self.suffixes:
                    p = root / db_id / f"{db_id}{suf}"
                    if p.is_file():
                        check_sqlite_file(p)
                        found = str(p.resolve())
                        break
                if found:
                    break
            self._cache[db_id] = found
        return self._cache[db_id]


def spider_database_root(path: Path, explicit: str | Path | None = None) -> list[Path]:
    """Where Spider-family DBs live: --db-root if given, else `database/` here or in a Spider folder nearby."""
    if explicit:
        p = Path(explicit)
        if not p.is_dir():
            raise UserError(f"--db-root {p}: not a directory")
        return [p]
    roots = [path / "database"]
    for up in (path.parent, path.parent.parent, path.parent.parent.parent):
        cand = up / "spider" / "database"
        if cand.is_dir():
            roots.append(cand)
            break
    return [r for r in roots if r.is_dir()]

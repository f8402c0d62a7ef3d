"""The one Example record every reader produces, and its Arrow schema."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass
class Example:
    id: str  # "<dataset>/<split>/<index or question_id>", unique within a run
    dataset: str
    split: str
    db_id: str
    question: str
    sqlite_sql: str
    evidence: str = ""  # BIRD's external knowledge; empty elsewhere
    difficulty: str | None = None  # Spider hardness or BIRD's own label; None where a dataset has none
    db_path: str | None = None  # the SQLite file; None when the dataset ships without it
    # Gold written by the dataset's authors for other dialects (BIRD Mini-Dev: mysql, postgres).
    dialect_gold: dict[str, str] = field(default_factory=dict)
    # Tables the question is about when the DB holds many unrelated ones (WikiSQL: one table
    # per question in a DB per split); empty means the whole DB.
    tables: list[str] = field(default_factory=list)

    @property
    def has_db(self) -> bool:
        return self.db_path is not None


EXAMPLE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("db_id", pa.string()),
        ("question", pa.string()),
        ("sqlite_sql", pa.string()),
        ("evidence", pa.string()),
        ("difficulty", pa.string()),
        ("db_path", pa.string()),
        ("dialect_gold", pa.map_(pa.string(), pa.string())),
        ("tables", pa.list_(pa.string())),
    ]
)


def db_roots(examples: list[Example]) -> list[str] | None:
    """Every folder of `<db_id>/<db_id>.sqlite` the examples' databases live in, in the order
    first met (the SQLite engine's roots), or None when none has a database. A benchmark can
    use several: Spider-DK's questions run on its own three databases and on Spider's."""
    roots = dict.fromkeys(str(Path(e.db_path).parent.parent) for e in examples if e.has_db)
    return list(roots) or None


def examples_to_table(examples: list[Example]) -> pa.Table:
    rows = [dataclasses.asdict(e) for e in examples]
    for r in rows:
        r["dialect_gold"] = list(r["dialect_gold"].items())
    return pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA)


def table_to_examples(table: pa.Table) -> list[Example]:
    out = []
    for r in table.to_pylist():
        r["dialect_gold"] = dict(r["dialect_gold"] or [])
        out.append(Example(**r))
    return out


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike):
    """Build a folder under a temporary name beside `out`, then put it in place: a crash
    leaves the old `out` (or nothing), never a half-written one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; Ray workers may run as another user
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_parquet_atomic(table: pa.Table, out: str | os.PathLike) -> Path:
    """Write to a temporary file beside `out` and rename: a crash leaves nothing half-written."""
    from exesql_ray.io import atomic_write

    return atomic_write(out, lambda tmp: pq.write_table(table, tmp))

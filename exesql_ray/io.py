"""Reading input rows and writing records: JSONL or Parquet, chosen by the file name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exesql_ray.errors import NO_SPACE, UserError, disk_full


def read_rows(path: str | Path) -> list[dict]:
    """Rows as dicts from .jsonl (one object a line; a leading BOM is skipped), .json (an array
    of objects) or .parquet. A JSONL line that is not valid JSON, not UTF-8, not an object, or
    holds text that is not valid Unicode (a lone surrogate, which JSON allows) becomes a row
    with only `_error` (and `id`), so the executor can reject it and go on."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file not found: {p}")
    if p.suffix == ".parquet":
        try:
            return pq.read_table(p).to_pylist()
        except pa.ArrowInvalid as e:
            raise UserError(f"{p}: not a readable Parquet file ({e})") from None
    if p.suffix == ".json":
        return _read_json_array(p)
    if p.suffix != ".jsonl":
        raise UserError(f"{p}: expected .jsonl, .json or .parquet")
    rows = []
    with p.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            rows.append(_jsonl_row(raw, n))
    return rows


def _jsonl_row(raw: bytes, n: int) -> dict:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return {"id": f"line {n}", "_error": f"line {n} is not UTF-8 (byte {e.start})"}
    except json.JSONDecodeError as e:
        return {"id": f"line {n}", "_error": f"line {n}: malformed JSON at column {e.colno}: {e.msg}"}
    if not isinstance(obj, dict):
        return {"id": f"line {n}", "_error": "line is not a JSON object"}
    if b"\\u" in raw:  # only an escape can make a lone surrogate
        bad = _not_unicode(obj)
        if bad is not None:
            rid = obj.get("id")
            rid = rid if isinstance(rid, (str, int)) and _not_unicode({"id": rid}) is None else f"line {n}"
            return {"id": str(rid), "_error": f"line {n}: `{bad}` holds a lone surrogate (not valid Unicode)"}
    return obj


def _not_unicode(obj: dict) -> str | None:
    """The first key whose text cannot be written as UTF-8 (a lone surrogate), or None."""
    for k, v in obj.items():
        for text in (k, v) if isinstance(v, str) else (k,):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return k.encode("utf-8", "backslashreplace").decode()
    return None


def _read_json_array(p: Path) -> list[dict]:
    try:
        data = json.loads(p.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{p}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg} (a .json input is "
                        "one array of objects; one object a line is .jsonl)") from None
    if not isinstance(data, list):
        raise UserError(f"{p}: a .json input must be an array of objects (got a {type(data).__name__}); one "
                        "object a line is .jsonl")
    rows = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            rows.append({"id": f"item {i}", "_error": f"item {i} is not a JSON object"})
        elif _not_unicode(obj) is not None:
            rows.append({"id": f"item {i}", "_error": f"item {i}: `{_not_unicode(obj)}` holds a lone surrogate"})
        else:
            rows.append(obj)
    return rows


EXECUTE_COLUMNS = ("id", "db_id", "sql")


def check_execute_rows(rows: list[dict], path, sql_column: str = "sql") -> None:
    """What `execute` needs of its input, checked before any query: the columns id, db_id and
    sql (or `sql_column`, renamed to sql here), and ids unique (records join back by id)."""
    if sql_column != "sql":
        for r in rows:
            if sql_column in r:
                r["sql"] = r.pop(sql_column)
    found = sorted({k for r in rows if "_error" not in r for k in r})
    missing = [c for c in EXECUTE_COLUMNS if found and c not in found]
    missing = [sql_column if c == "sql" else c for c in missing]  # named as the user asked for it
    if missing:
        hint = "; for `data export`'s output pass --sql-column sqlite_sql" if "sqlite_sql" in found else (
            "; pass --sql-column NAME for the column holding the SQL" if sql_column in missing else "")
        raise UserError(f"{path}: no column {', '.join(missing)} (found: {', '.join(found)}); execute needs "
                        f"id, db_id, sql[, gold_sql]{hint}")
    seen: dict = {}
    for i, r in enumerate(rows, 1):
        rid = r.get("id")
        if "_error" in r or not isinstance(rid, (str, int)) or isinstance(rid, bool):
            continue
        j = seen.setdefault(str(rid), i)
        if j != i:
            raise UserError(f"{path}: id {rid!r} is in rows {j} and {i}; ids must be unique (records are "
                            "joined back to the input by id)")


RECORD_SUFFIXES = (".jsonl", ".parquet")


def check_output(path: str | Path, what: str = "--output", suffixes=RECORD_SUFFIXES) -> Path:
    """Refuse an output the command could not write, before any work: the wrong kind of file,
    a folder in its place, or a parent folder `_writable` refuses."""
    p = Path(path)
    if p.suffix not in suffixes:
        raise UserError(f"{what} {p}: expected a {' or '.join(suffixes)} file")
    if p.is_dir():
        raise UserError(f"{what} {p}: is a folder")
    _writable(p.parent, f"{what} {p}")
    return p


def check_folder(path: str | Path, what: str = "run_dir") -> Path:
    """A folder the command will write in, refused before any work if it cannot be."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p}: is a file, not a folder")
    _writable(p, f"{what} {p}")
    return p


def _writable(folder: Path, label: str) -> None:
    """No file where a folder of the path should be; creatable; writable, tried by creating a
    file there (which holds for every user, root included)."""
    for d in (folder, *folder.parents):
        if d.exists():
            if not d.is_dir():
                raise UserError(f"{label}: {d} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".exesql-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{label}: cannot write in {folder} ({e.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(out: str | Path, write, what: str = "") -> Path:
    """`write(temporary path)` beside `out`, then rename: a crash leaves nothing half-written.
    The file gets the mode the umask gives a new file (mkstemp's is 0600). If the rename fails
    after the write, the temporary file stays and the error names it: the work is not lost.
    A full disk is one line (`DiskFull`, naming `out` and `what` was being written)."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        if e.errno in NO_SPACE:
            raise disk_full(out, e, what) from None
        raise
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in NO_SPACE:
            raise disk_full(out, e, what) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, out)
    except OSError as e:
        raise UserError(f"cannot write {out} ({e.strerror}); what was computed is in {tmp}") from None
    return out


def shard_done(path: str | Path, ids: set[str], column: str) -> bool:
    """Whether a stage's shard is on disk and holds exactly `ids` in `column`. A shard of a
    folder reused with other questions (another subset or split of a benchmark under the same
    name) holds others: it is redone, not read as this one."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return set(pq.read_table(path, columns=[column]).column(column).to_pylist()) == ids
    except Exception:  # unreadable or without the column: not this shard
        return False


def write_text(path: str | Path, text: str, what: str = "") -> Path:
    """`text` written whole or not at all (atomic_write)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), what)


def write_json(path: str | Path, obj, what: str = "") -> Path:
    """`obj` as indented JSON, written whole or not at all."""
    return write_text(path, json.dumps(obj, indent=1), what)


def write_records(records: list[dict], path: str | Path) -> Path:
    """Atomically (temporary name, then rename): a crash leaves no half-written output."""
    p = Path(path)
    if p.suffix not in RECORD_SUFFIXES:
        raise UserError(f"{p}: expected .jsonl or .parquet")

    def write(tmp):
        if p.suffix == ".parquet":
            pq.write_table(pa.Table.from_pylist(records), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")

    return atomic_write(p, write, f"{len(records)} records computed, none written")

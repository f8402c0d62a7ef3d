"""Prompt text: the schema in a target dialect, the text-to-SQL prompt, the translation-repair
prompt, and SQL extraction from completions.

Prompts are plain user messages; the model family's own chat template (its tokenizer's) wraps
them, in the generator and in the trainers alike, so one template serves every family.
"""

from __future__ import annotations

import functools
import re
import sqlite3

from exesql_ray.engines import engine_class
from exesql_ray.schema import Schema

def _ident(name: str, engine: str) -> str:
    return name.upper() if engine_class(engine).prompt_case == "upper" else name


@functools.lru_cache(maxsize=512)
def db_keys(db_path: str) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str, str]]]]:
    """(primary key columns, foreign keys as (column, table, column)) per table, lower-cased,
    as the SQLite file declares them (migration keeps them where the target accepts them)."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        pks, fks = {}, {}
        for t in tables:
            info = sorted((r for r in con.execute(f'PRAGMA table_info("{t}")') if r[5]), key=lambda r: r[5])
            pks[t.lower()] = [r[1].lower() for r in info]
            fks[t.lower()] = [(r[3].lower(), r[2].lower(), (r[4] or "").lower())
                              for r in con.execute(f'PRAGMA foreign_key_list("{t}")')]
        return pks, fks
    finally:
        con.close()


def sample_values(db_path: str, table: str, column: str, k: int) -> list[str]:
    """Up to k distinct non-null values of a column, shortened, for the prompt."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL LIMIT {int(k)}')
        return [repr(v if not isinstance(v, str) or len(v) <= 40 else v[:40] + "…") for (v,) in rows]
    except sqlite3.Error:
        return []
    finally:
        con.close()


def schema_text(schema: Schema, engine: str, db_path: str | None = None, values: int = 0,
                tables: list[str] | tuple[str, ...] = (), form: str = "create") -> str:
    """CREATE TABLE statements with the types the migrated database has; with `db_path`, its
    primary and foreign keys, and `values` sample values per column as comments. `tables`
    limits it to those tables (WikiSQL: one table of a shared DB). `form="compact"`: one
    `table(col, ...)` line per table and the foreign keys, no types (prompt.schema_format)."""
    types = engine_class(engine).types
    pks, fks = db_keys(db_path) if db_path else ({}, {})
    keep = {t.lower() for t in tables}
    if form == "compact":
        return _compact(schema, engine, fks, keep)
    out = []
    for table, cols in schema.tables.items():
        if keep and table not in keep:
            continue
        lines = []  # (code, comment): the comma goes before a comment, not inside it
        for c, k in cols.items():
            shown = sample_values(db_path, table, c, values) if values and db_path else []
            lines.append((f"{_ident(c, engine)} {types[k]}", f"e.g. {', '.join(shown)}" if shown else ""))
        if pks.get(table):
            lines.append((f"PRIMARY KEY ({', '.join(_ident(c, engine) for c in pks[table])})", ""))
        for col, ref_t, ref_c in fks.get(table, []):
            ref = f"{_ident(ref_t, engine)}({_ident(ref_c, engine)})" if ref_c else _ident(ref_t, engine)
            lines.append((f"FOREIGN KEY ({_ident(col, engine)}) REFERENCES {ref}", ""))
        body = "\n  ".join(code + ("," if i < len(lines) - 1 else "") + (f" -- {note}" if note else "")
                            for i, (code, note) in enumerate(lines))
        out.append(f"CREATE TABLE {_ident(table, engine)} (\n  {body}\n);")
    return "\n".join(out)


def _compact(schema: Schema, engine: str, fks: dict, keep: set[str]) -> str:
    lines, joins = [], []
    for table, cols in schema.tables.items():
        if keep and table not in keep:
            continue
        lines.append(f"{_ident(table, engine)}({', '.join(_ident(c, engine) for c in cols)})")
        joins += [f"{_ident(table, engine)}.{_ident(c, engine)} = {_ident(t, engine)}.{_ident(rc, engine)}"
                  for c, t, rc in fks.get(table, []) if rc and (not keep or t in keep)]
    return "\n".join(lines + ([f"Foreign keys: {'; '.join(joins)}"] if joins else []))


def sql_prompt(*, engine: str, schema: str, question: str, evidence: str = "") -> str:
    """The text-to-SQL user message: schema in the target dialect, evidence, question."""
    dialect = engine_class(engine).display_name
    knowledge = f"External knowledge: {evidence}\n\n" if evidence else ""
    return (f"Database schema ({dialect}):\n{schema}\n\n{knowledge}Question: {question}\n\n"
            f"Write one {dialect} query that answers the question, in a ```sql code block.")


def sql_answer(sql: str) -> str:
    """The assistant turn a training example teaches: the query in a code block."""
    return f"```sql\n{sql.strip()}\n```"


def repair_prompt(*, engine: str, schema: Schema, question: str, sqlite_sql: str, failing_sql: str,
                  feedback: str) -> str:
    dialect = engine_class(engine).display_name
    return (
        f"Translate a SQLite query into {dialect}. The {dialect} query must return exactly what the SQLite "
        f"query returns on the same data.\n\nSchema ({dialect}):\n{schema_text(schema, engine)}\n\n"
        f"Question: {question}\n\nSQLite query:\n{sqlite_sql}\n\nCurrent {dialect} translation:\n{failing_sql}\n\n"
        f"What went wrong when it ran:\n{feedback}\n\n"
        f"Write the corrected {dialect} query in one ```sql code block and nothing else."
    )


_FENCE = re.compile(r"```[ \t]*(?:sql|SQL|[A-Za-z]+)?[ \t]*\n?(.*?)(?:```|$)", re.S)
_QUERY_START = re.compile(r"\b(SELECT|WITH)\b", re.I)


def extract_sql(text: str) -> str:
    """The SQL of a completion: the first fenced block (closed or cut off by max_tokens), else
    the text from its first SELECT/WITH; in either case its first statement that is a query
    (else its first statement)."""
    m = _FENCE.search(text)
    if m:
        body = m.group(1)
    else:
        q = _QUERY_START.search(text)
        body = text[q.start():] if q else text
    if ";" in body:
        # the first query of the block: a small instruction model often writes the CREATE
        # TABLE it imagines before its SELECT
        statements = [t.strip() for t in body.split(";")]
        body = next((t for t in statements if _QUERY_START.match(t)), statements[0])
    return body.strip()

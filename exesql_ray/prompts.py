"""Prompt text: the schema in a target dialect, and the translation-repair prompt."""

from __future__ import annotations

import re

from exesql_ray.translate import Schema

ENGINE_NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL", "duckdb": "DuckDB", "oracle": "Oracle", "sqlite": "SQLite"}
_TYPES = {
    "postgres": {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA"},
    "mysql": {"int": "BIGINT", "float": "DOUBLE", "text": "TEXT", "blob": "LONGBLOB"},
    "duckdb": {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR", "blob": "BLOB"},
    "oracle": {"int": "NUMBER(19)", "float": "BINARY_DOUBLE", "text": "VARCHAR2(4000)", "blob": "BLOB"},
    "sqlite": {"int": "INTEGER", "float": "REAL", "text": "TEXT", "blob": "BLOB"},
}


def schema_text(schema: Schema, engine: str) -> str:
    """CREATE TABLE statements with the types the migrated database has."""
    types = _TYPES[engine]
    out = []
    for table, cols in schema.tables.items():
        name = table.upper() if engine == "oracle" else table
        body = ",\n  ".join(f"{c.upper() if engine == 'oracle' else c} {types[k]}" for c, k in cols.items())
        out.append(f"CREATE TABLE {name} (\n  {body}\n);")
    return "\n".join(out)


def repair_prompt(*, engine: str, schema: Schema, question: str, sqlite_sql: str, failing_sql: str,
                  feedback: str) -> str:
    dialect = ENGINE_NAMES[engine]
    return (
        f"Translate a SQLite query into {dialect}. The {dialect} query must return exactly what the SQLite "
        f"query returns on the same data.\n\nSchema ({dialect}):\n{schema_text(schema, engine)}\n\n"
        f"Question: {question}\n\nSQLite query:\n{sqlite_sql}\n\nCurrent {dialect} translation:\n{failing_sql}\n\n"
        f"What went wrong when it ran:\n{feedback}\n\n"
        f"Write the corrected {dialect} query in one ```sql code block and nothing else."
    )


_FENCE = re.compile(r"```(?:sql|SQL|\w+)?\s*\n?(.*?)```", re.S)


def extract_sql(text: str) -> str:
    """The SQL of a completion: the first fenced block, else the text up to its first `;`."""
    m = _FENCE.search(text)
    body = m.group(1) if m else text
    body = body.strip()
    if ";" in body:
        body = body.split(";", 1)[0]
    return body.strip()

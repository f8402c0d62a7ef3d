"""sqlglot dialects by name, built once."""

from __future__ import annotations

import functools

import sqlglot


@functools.lru_cache(maxsize=None)
def dialect_of(name: str) -> sqlglot.Dialect:
    """`Dialect.get_or_raise(name)` builds a new Dialect on each call, which costs more than
    tokenising a query; the guard, the cache key and the comparator ask per query."""
    return sqlglot.Dialect.get_or_raise(name)


# SQLite reads text as a number by its numeric prefix ('12abc' → 12, '2018-03-01' → 2018,
# 'null' → 0); the translation templates spell that per engine (engine classes' `templates`).
# POSIX classes rather than \s: MySQL strings eat backslashes.
NUMBER = r"[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"
NUMBER_RX = r"^[[:space:]]*" + NUMBER + r"[[:space:]]*$"  # the whole text is a number
PREFIX_RX = r"^[[:space:]]*(" + NUMBER + ")"  # its numeric prefix, as group 1

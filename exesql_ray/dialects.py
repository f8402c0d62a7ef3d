"""sqlglot dialects by name, built once."""

from __future__ import annotations

import functools

import sqlglot


@functools.lru_cache(maxsize=None)
def dialect_of(name: str) -> sqlglot.Dialect:
    """`Dialect.get_or_raise(name)` builds a new Dialect on each call, which costs more than
    tokenising a query; the guard, the cache key and the comparator ask per query."""
    return sqlglot.Dialect.get_or_raise(name)

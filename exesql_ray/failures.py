"""What a model's failing answers get wrong: the executor's error class, or "runs, wrong result";
for an unknown column, whether the name belongs to another table of the database (a join the
answer left out); for a wrong result, its logical cause found by comparing the answer's
syntax tree with the gold's (sqlglot).

The causes are checked in a fixed order and the first difference names it: a different set of
tables is a wrong join; different aggregates or grouping, a wrong aggregation; fewer
predicates, a missing condition; other predicates or literals, a wrong condition; other
selected columns, a wrong column; else another difference (ordering, limit, distinct).
"""

from __future__ import annotations

from collections import Counter

import sqlglot
from sqlglot import exp

from exesql_ray.dialects import dialect_of
from exesql_ray.schema import Schema

RUNS_WRONG = "runs, wrong result"
CAUSES = ("wrong join", "wrong aggregation", "missing condition", "wrong condition", "wrong column", "other")
PREDICATES = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In, exp.Between,
              exp.Is, exp.Exists)
AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)


def failure_class(record: dict) -> str | None:
    """None for a passing answer; the error class of one that fails to run (timeouts too); the
    wrong-result class for one that runs."""
    if record["outcome"] == "pass":
        return None
    if record["status"] == "ok":
        return RUNS_WRONG
    return record["error_class"] or record["status"]


def _parse(sql: str, dialect: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(sql, read=dialect_of(dialect))
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None


def _tables(tree: exp.Expression) -> set[str]:
    return {t.name.lower() for t in tree.find_all(exp.Table)}


def _aggregation(tree: exp.Expression) -> tuple:
    aggs = Counter(type(a).__name__ for a in tree.find_all(*AGGREGATES))
    groups = sorted(c.name.lower() for g in tree.find_all(exp.Group) for c in g.find_all(exp.Column))
    return tuple(sorted(aggs.items())), tuple(groups), any(True for _ in tree.find_all(exp.Having))


def _predicates(tree: exp.Expression) -> list[str]:
    """Each predicate's text with table qualifiers and aliases dropped, lower-cased."""
    out = []
    for p in tree.find_all(*PREDICATES):
        q = p.copy()
        for c in q.find_all(exp.Column):
            c.set("table", None)
        out.append(q.sql().lower())
    return sorted(out)


def _selected(tree: exp.Expression) -> list[str]:
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return []
    return sorted(c.name.lower() for e in select.expressions for c in e.find_all(exp.Column))


def logical_cause(sql: str, gold_sql: str, dialect: str, gold_dialect: str = "sqlite") -> str:
    """The first of CAUSES in which `sql` (in `dialect`) differs from `gold_sql`."""
    pred, gold = _parse(sql, dialect), _parse(gold_sql, gold_dialect)
    if pred is None or gold is None:
        return "other"
    if _tables(pred) != _tables(gold):
        return "wrong join"
    if _aggregation(pred) != _aggregation(gold):
        return "wrong aggregation"
    p, g = _predicates(pred), _predicates(gold)
    if len(p) < len(g):
        return "missing condition"
    if p != g:
        return "wrong condition"
    if _selected(pred) != _selected(gold):
        return "wrong column"
    return "other"


def unknown_column_elsewhere(sql: str, dialect: str, schema: Schema) -> bool | None:
    """For an answer that names a column its tables lack: True when some column it names is
    missing from every table it reads but present in another table of the database (a join
    left out); False when the name is in no table (invented); None when it does not parse."""
    tree = _parse(sql, dialect)
    if tree is None:
        return None
    read = _tables(tree) & set(schema.tables)
    in_read = {c for t in read for c in schema.tables[t]}
    names = {c.name.lower() for c in tree.find_all(exp.Column) if c.name}
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias}
    missing = names - in_read - aliases
    return bool(missing & schema.columns)

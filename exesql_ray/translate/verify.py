"""Tie-aware verification: a translation counts when it returns the SQLite result under the
one comparator; ties under ORDER BY … LIMIT are recognised, not loosened away."""

from __future__ import annotations


import sqlglot
from sqlglot import exp

from exesql_ray.compare import CompareOptions, results_match
from exesql_ray.engines import engine_class
from exesql_ray.engines.results import Execution


def _limited_select(sql: str, dialect: str):
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:
        return None, None
    node = tree
    while isinstance(node, exp.Subquery):
        node = node.this
    if not isinstance(node, exp.Select) or not node.args.get("order"):
        return None, None
    return tree, node


def tie_probes(sql: str, dialect: str) -> tuple[str, str] | None:
    """(the query without LIMIT/OFFSET, the query selecting only its sort keys, LIMIT kept)."""
    tree, node = _limited_select(sql, dialect)
    if tree is None:
        return None
    aliases = {e.alias.lower(): e.this for e in node.expressions if isinstance(e, exp.Alias)}
    keys = []
    for o in node.args["order"].expressions:
        k = o.this
        if isinstance(k, exp.Column) and not k.table and k.name.lower() in aliases:
            k = aliases[k.name.lower()]
        if isinstance(k, exp.Literal):  # ORDER BY 2: the second output column
            try:
                k = node.expressions[int(k.this) - 1]
                k = k.this if isinstance(k, exp.Alias) else k
            except (ValueError, IndexError):
                return None
        keys.append(k.copy())
    keyed = node.copy()
    keyed.set("expressions", keys)
    # order by the resolved keys too: an ORDER BY that named an output alias would no longer resolve
    keyed.set("order", exp.Order(expressions=[
        exp.Ordered(this=k.copy(), desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first"))
        for k, o in zip(keys, node.args["order"].expressions)]))
    keyed.set("distinct", node.args.get("distinct"))
    full = tree.copy()
    fnode = full
    while isinstance(fnode, exp.Subquery):
        fnode = fnode.this
    fnode.set("limit", None)
    fnode.set("offset", None)
    return full.sql(dialect=dialect), keyed.sql(dialect=dialect)


def verify(gold: Execution, pred: Execution, gold_sql: str, pred_sql: str, *, run_gold, run_pred, engine: str,
           opts: CompareOptions = CompareOptions()) -> tuple[str, str | None]:
    """(verdict, note): verified | executes_mismatch | error.

    Results that differ only in how ties under ORDER BY (… LIMIT) were broken are verified
    with note 'tie': without the LIMIT both return the same rows, and both return the same
    sequence of sort-key values. A wrong sort direction or key fails the second check; the
    comparator itself is not loosened."""
    if pred.status != "ok":
        return "error", pred.error_class
    if gold.status != "ok":
        return "error", "gold failed"
    if results_match(gold.rows, pred.rows, gold_sql=gold_sql, opts=opts):
        return "verified", None
    g, p = tie_probes(gold_sql, "sqlite"), tie_probes(pred_sql, engine_class(engine).dialect)
    if g and p and len(gold.rows) == len(pred.rows):
        g_full, p_full = run_gold(g[0]), run_pred(p[0])
        g_keys, p_keys = run_gold(g[1]), run_pred(p[1])
        bag = CompareOptions(rows=opts.rows, order="ignore", column_order=opts.column_order, float_tol=opts.float_tol)
        in_order = CompareOptions(rows=opts.rows, order="strict", column_order=True, float_tol=opts.float_tol)
        if (all(x.status == "ok" and not x.truncated for x in (g_full, p_full, g_keys, p_keys))
                and results_match(g_full.rows, p_full.rows, opts=bag)
                and results_match(g_keys.rows, p_keys.rows, opts=in_order)):
            return "verified", "tie"
    return "executes_mismatch", None

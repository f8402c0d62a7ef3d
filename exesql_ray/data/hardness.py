"""Spider's hardness levels (easy / medium / hard / extra).

`hardness_from_spider_sql` is Spider's own rule (evaluation.py, eval_hardness) on the parsed
`sql` dict that Spider-format files carry. Files without that dict (this machine's
train_spider.json, `data synth` output) go through `hardness_from_sql`, which counts the same
components on a sqlglot parse; tests measure how often the two agree on Spider dev.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

# Spider: WHERE_OPS index of 'like'; AGG_OPS index 0 is 'none'.
_LIKE_OP = 9


@dataclass(frozen=True)
class Components:
    comp1: int
    comp2: int
    others: int


def level(c: Components) -> str:
    c1, c2, o = c.comp1, c.comp2, c.others
    if c1 <= 1 and o == 0 and c2 == 0:
        return "easy"
    if (o <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and o < 2 and c2 == 0):
        return "medium"
    if (o > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and o <= 2 and c2 == 0) or (c1 <= 1 and o == 0 and c2 <= 1):
        return "hard"
    return "extra"


# ---- Spider's rule on its parsed dict (kept faithful, quirks included) ----

def _has_agg(unit) -> bool:
    return unit[0] != 0


def _count_agg(units) -> int:
    return sum(1 for u in units if _has_agg(u))


def components_from_spider_sql(sql: dict) -> Components:
    c1 = 0
    c1 += bool(sql["where"]) + bool(sql["groupBy"]) + bool(sql["orderBy"]) + (sql["limit"] is not None)
    if sql["from"]["table_units"]:
        c1 += len(sql["from"]["table_units"]) - 1
    conj = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    c1 += sum(1 for t in conj if t == "or")
    conds = sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]
    c1 += sum(1 for cu in conds if cu[1] == _LIKE_OP)

    nested = 0
    for cu in conds:
        nested += isinstance(cu[3], dict) + isinstance(cu[4], dict)
    nested += sum(sql[k] is not None for k in ("intersect", "except", "union"))

    agg = _count_agg(sql["select"][1]) + _count_agg(sql["where"][::2]) + _count_agg(sql["groupBy"])
    if sql["orderBy"]:
        units = sql["orderBy"][1]
        agg += _count_agg([u[1] for u in units if u[1]] + [u[2] for u in units if u[2]])
    agg += _count_agg(sql["having"])  # Spider counts the and/or tokens here too
    others = (agg > 1) + (len(sql["select"][1]) > 1) + (len(sql["where"]) > 1) + (len(sql["groupBy"]) > 1)
    return Components(c1, nested, others)


def hardness_from_spider_sql(sql: dict) -> str:
    return level(components_from_spider_sql(sql))


# ---- the same counts on a sqlglot parse ----

def _flatten(cond: exp.Expression | None) -> tuple[list[exp.Expression], list[str]]:
    """Split a condition into its leaves and the and/or tokens between them, as Spider does."""
    if cond is None:
        return [], []
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, (exp.And, exp.Or)):
        ll, lc = _flatten(cond.left)
        rl, rc = _flatten(cond.right)
        return ll + rl, lc + ["and" if isinstance(cond, exp.And) else "or"] + rc
    return [cond], []


def _is_agg(e: exp.Expression) -> bool:
    while isinstance(e, (exp.Alias, exp.Paren)):
        e = e.this
    return isinstance(e, exp.AggFunc)


def _leaf_subqueries(leaf: exp.Expression) -> int:
    inner = leaf.this if isinstance(leaf, exp.Not) else leaf
    n = 0
    for arg in inner.args.values():
        vals = arg if isinstance(arg, list) else [arg]
        for v in vals:
            if isinstance(v, exp.Subquery) or isinstance(v, (exp.Select, exp.SetOperation)):
                n += 1
            elif isinstance(v, exp.Expression) and v.find(exp.Select) is not None and not isinstance(inner, exp.Exists):
                n += 1
    if isinstance(inner, exp.Exists):
        n = 1
    return n


def components_from_sql(sql: str) -> Components:
    tree = sqlglot.parse_one(sql, read="sqlite")
    nested = 0
    while isinstance(tree, exp.SetOperation):  # Spider nests the right side; only the first select counts
        nested = 1
        tree = tree.this
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        raise ValueError(f"not a SELECT: {sql[:80]}")
    s = tree
    where = s.args.get("where")
    group = s.args.get("group")
    order = s.args.get("order")
    having = s.args.get("having")
    joins = s.args.get("joins") or []

    c1 = bool(where) + bool(group) + bool(order) + bool(s.args.get("limit"))
    c1 += len(joins)
    w_leaves, w_conj = _flatten(where.this if where else None)
    h_leaves, h_conj = _flatten(having.this if having else None)
    on_leaves, on_conj = [], []
    for j in joins:
        lv, cj = _flatten(j.args.get("on"))
        on_leaves += lv
        on_conj += cj
    leaves = on_leaves + w_leaves + h_leaves
    c1 += (on_conj + w_conj + h_conj).count("or")
    c1 += sum(1 for lf in leaves if isinstance(lf.this if isinstance(lf, exp.Not) else lf, exp.Like))

    nested += sum(_leaf_subqueries(lf) for lf in leaves)

    selects = s.expressions
    agg = sum(1 for e in selects if _is_agg(e))
    agg += sum(1 for lf in w_leaves if isinstance(lf, exp.Not))
    group_items = group.expressions if group else []
    agg += sum(1 for g in group_items if _is_agg(g))
    for o in (order.expressions if order else []):
        e = o.this  # Spider's val_unit: one column unit, or two joined by + - * /
        parts = [e.left, e.right] if isinstance(e, (exp.Add, exp.Sub, exp.Mul, exp.Div)) else [e]
        agg += sum(1 for p in parts if _is_agg(p))
    agg += len(h_conj) + sum(1 for lf in h_leaves if isinstance(lf, exp.Not))
    others = (agg > 1) + (len(selects) > 1) + (len(w_leaves) > 1) + (len(group_items) > 1)
    return Components(c1, nested, others)


def hardness_from_sql(sql: str) -> str | None:
    """Spider hardness of a SQLite query; None when sqlglot cannot parse it."""
    try:
        return level(components_from_sql(sql))
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None

"""The named rewrites: what sqlglot leaves for SQLite's meaning to hold on another engine.

Each is a pure function over the sqlglot tree. `REWRITES` fixes the order they run in; each
engine class declares which it needs (`rewrites`) and the SQL text they write for it
(`templates`), so an engine's translation reads in its own file."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

import sqlglot
from sqlglot import exp


from exesql_ray.dialects import NUMBER_RX
from exesql_ray.engines import engine_class
from exesql_ray.schema import Schema


@dataclass
class Context:
    """One translation: the target engine, the source schema, the rewrites that changed the tree."""

    engine: str
    schema: Schema
    applied: list[str] = field(default_factory=list)

    @functools.cached_property
    def declared(self):
        return engine_class(self.engine)

    @property
    def dialect(self) -> str:
        return self.declared.dialect

    @property
    def templates(self) -> dict[str, str]:
        """The engine's SQL text for what sqlglot has no node for (its class's `templates`)."""
        return self.declared.templates


@dataclass(frozen=True)
class Rewrite:
    name: str
    fn: Callable[[exp.Expression, Context], exp.Expression]
    stage: str = "typed"  # "raw": before sqlglot qualifies the tree; "typed": after


# ---------------------------------------------------------------- rewrites

def _engine_expr(ctx: Context, template: str, **parts: exp.Expression) -> exp.Expression:
    """An engine-specific expression, written as text around sqlglot nodes (the shapes sqlglot
    has no node for: ordered aggregates, regex tests, date arithmetic)."""
    d = ctx.dialect
    return sqlglot.parse_one(template.format(**{k: v.sql(dialect=d) for k, v in parts.items()}), read=d)


def _rewrite_nodes(tree: exp.Expression, ctx: Context, name: str, types: tuple, replace) -> exp.Expression:
    """The shape most rewrites share: `replace(node)` gives a new node (or None to keep it)
    for every node of `types`; the rewrite is recorded once if anything changed."""
    changed = False
    for node in list(tree.find_all(*types)):
        new = replace(node)
        if new is not None:
            node.replace(new)
            changed = True
    if changed:
        ctx.applied.append(name)
    return tree


def _aliases(tree: exp.Expression) -> set[str]:
    return {a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias}


def double_quoted_strings(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite reads "France" as a string when no column is called France; elsewhere it is an
    identifier. Quoted names that are no column or alias become string literals."""
    known = ctx.schema.columns | _aliases(tree)
    changed = False
    for col in list(tree.find_all(exp.Column)):
        ident = col.this
        if isinstance(ident, exp.Identifier) and ident.quoted and not col.table and ident.name.lower() not in known:
            col.replace(exp.Literal.string(ident.name))
            changed = True
    if changed:
        ctx.applied.append("double_quoted_strings")
    return tree


def _is_text(e: exp.Expression) -> bool:
    return e.type is not None and e.type.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR)


def _is_numeric(e: exp.Expression) -> bool:
    t = e.type
    if isinstance(e, exp.Subquery):
        inner = _query_type(e)
        t = (inner.this if isinstance(inner, exp.Alias) else inner).type if inner is not None else None
    return t is not None and (t.this in exp.DataType.INTEGER_TYPES or t.this in exp.DataType.REAL_TYPES)


def _is_number_literal(e: exp.Expression) -> bool:
    return isinstance(e, exp.Literal) and not e.is_string or (
        isinstance(e, exp.Neg) and isinstance(e.this, exp.Literal) and not e.this.is_string)




_OPS = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_MIRRORED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _op_from(cmp: exp.Expression, side: exp.Expression) -> str:
    """The comparison's operator read with `side` on the left (`5 < x` is `x > 5`)."""
    op = _OPS[type(cmp)]
    return _MIRRORED.get(op, op) if side is cmp.right else op


def _numeric_text_compare(ctx: Context, cmp: exp.Expression, col: exp.Expression, other: exp.Expression):
    """`col <op> other` as SQLite runs it on a numeric-declared column holding some text."""
    op = _op_from(cmp, col)
    text_wins = "TRUE" if op in (">", ">=", "<>") else "FALSE"
    template = ctx.templates["numeric_text_compare"].replace("{op}", op).replace("{text}", text_wins)
    return _engine_expr(ctx, template, x=col, n=other)


def text_number_comparison(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite compares a text column with a number as text (affinity rules); PostgreSQL
    refuses text = integer and MySQL compares numerically. The number becomes a string."""
    changed = False
    for cmp in list(tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        for col, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
            if not (isinstance(col, exp.Column) and _is_text(col)):
                continue
            literal = _is_number_literal(other)
            computed = not isinstance(other, (exp.Literal, exp.Column)) and _is_numeric(other)
            if not (literal or computed):
                continue
            affinity = ctx.schema.column_affinity(col.name.lower())
            if affinity in ("integer", "real", "numeric") and "numeric_text_compare" in ctx.templates:
                # declared numeric, some values stored as text: numbers compare as numbers,
                # and SQLite ranks any text above every number
                cmp.replace(_numeric_text_compare(ctx, cmp, col, other))
            elif computed and affinity == "text":
                # SQLite gives a computed number the column's text affinity and compares text
                other.replace(exp.Cast(this=other.copy(), to=exp.DataType.build("TEXT")))
            elif literal:
                other.replace(exp.Literal.string(other.sql()))
            else:
                continue
            changed = True
            break
    for isin in list(tree.find_all(exp.In)):
        if isinstance(isin.this, exp.Column) and _is_text(isin.this):
            for v in list(isin.expressions):
                if _is_number_literal(v):
                    v.replace(exp.Literal.string(v.sql()))
                    changed = True
    if changed:
        ctx.applied.append("text_number_comparison")
    return tree


def like_case_insensitive(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite's LIKE ignores ASCII case; PostgreSQL's and DuckDB's do not (MySQL's collation does)."""
    return _rewrite_nodes(tree, ctx, "like_case_insensitive", (exp.Like,),
                          lambda like: exp.ILike(this=like.this, expression=like.expression))




def julianday(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """julianday(x): days since noon, 24 November 4714 BC, in each engine's date arithmetic."""
    return _rewrite_nodes(tree, ctx, "julianday", (exp.Anonymous,), lambda fn: (
        _engine_expr(ctx, ctx.templates["julianday"], x=fn.expressions[0])
        if fn.name.lower() == "julianday" and len(fn.expressions) == 1 else None))


def _inside_aggregate(node: exp.Expression) -> bool:
    p = node.parent
    while p is not None and not isinstance(p, exp.Select):
        if isinstance(p, exp.AggFunc) or isinstance(p, exp.Window):
            return True
        p = p.parent
    return False


def bare_columns_in_groups(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite lets a grouped query select a column that is neither grouped nor aggregated
    (Spider does this with columns that the group key determines); MySQL 8 (ONLY_FULL_GROUP_BY)
    and DuckDB refuse, PostgreSQL refuses unless a primary key determines it. Beside a single
    MAX/MIN, SQLite returns the column of the row holding that extreme: PostgreSQL and DuckDB
    say so directly; otherwise MIN(col), which is the column's value when the key determines it."""
    changed = False
    for select in list(tree.find_all(exp.Select)):
        group = select.args.get("group")
        if not group:
            continue
        keys = {g.sql().lower() for g in group.expressions}
        scope_nodes = list(select.expressions)
        order = select.args.get("order")
        if order:
            scope_nodes += [o.this for o in order.expressions]
        having = select.args.get("having")
        if having:
            scope_nodes.append(having.this)
        extremes = [a for e in select.expressions for a in e.find_all(exp.Max, exp.Min)
                    if a.find_ancestor(exp.Select) is select]
        template = ((ctx.templates["row_of_min"], ctx.templates["row_of_max"])
                    if len(extremes) == 1 and "row_of_min" in ctx.templates else None)
        for node in scope_nodes:
            for col in list(node.find_all(exp.Column)):
                if col.sql().lower() in keys or _inside_aggregate(col):
                    continue
                if col.find_ancestor(exp.Select) is not select:
                    continue  # belongs to a subquery
                alias_target = isinstance(node, exp.Column) and node is col and order and node in [o.this for o in order.expressions]
                if alias_target and col.name.lower() in {e.alias_or_name.lower() for e in select.expressions}:
                    continue  # ORDER BY an output alias
                if template:
                    # the column of the row that holds the group's MAX/MIN, as SQLite returns it
                    ext = extremes[0]
                    chosen = template[type(ext) is exp.Max]
                    if ctx.engine == "mysql" and not _is_text(col):  # GROUP_CONCAT gives text
                        chosen = f"CAST({chosen} AS {'SIGNED' if _is_integer(col) else 'DOUBLE'})"
                    col.replace(_engine_expr(ctx, chosen, b=col, e=ext.this))
                else:
                    col.replace(exp.Min(this=col.copy()))
                changed = True
    if changed:
        ctx.applied.append("bare_columns_in_groups")
    return tree


def integer_division(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite divides integers as integers. PostgreSQL does too, but its SUM of integers is
    NUMERIC, which makes `SUM(x) / COUNT(*)` fractional: both sides become BIGINT. (sqlglot
    already writes DuckDB's and MySQL's integer division when it knows the types.)"""
    changed = False
    for div in list(tree.find_all(exp.Div)):
        if _is_integer(div.this) and _is_integer(div.expression):
            for side in (div.this, div.expression):
                if not isinstance(side, exp.Literal):
                    side.replace(exp.Cast(this=side.copy(), to=exp.DataType.build("BIGINT")))
            changed = True
    if changed:
        ctx.applied.append("integer_division")
    return tree




def cast_to_integer_truncates(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite's CAST(20.9 AS INTEGER) is 20; PostgreSQL, MySQL and DuckDB round to 21."""
    def truncated(cast):
        if (cast.to.this in exp.DataType.INTEGER_TYPES and not _is_integer(cast.this) and not _is_text(cast.this)
                and not isinstance(cast.this, (exp.Predicate, exp.Not))):  # a condition is 0/1 already
            return exp.Cast(this=_engine_expr(ctx, ctx.templates["trunc"], x=cast.this), to=cast.to.copy())
        return None

    return _rewrite_nodes(tree, ctx, "cast_to_integer_truncates", (exp.Cast,), truncated)


def distinct_order_by_unselected(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`SELECT DISTINCT a FROM t ORDER BY b DESC`: SQLite orders each distinct row by the b of
    one of its rows; PostgreSQL refuses. Grouped instead, ordered by MAX(b) when descending and
    MIN(b) when ascending."""
    changed = False
    for sel in list(tree.find_all(exp.Select)):
        order = sel.args.get("order")
        if not sel.args.get("distinct") or not order or sel.args.get("group"):
            continue
        shown = {e.sql().lower() for e in sel.expressions} | {e.alias_or_name.lower() for e in sel.expressions}
        hidden = [o for o in order.expressions if o.this.sql().lower() not in shown
                  and not isinstance(o.this, exp.Literal)]
        if not hidden or any(e.find(exp.AggFunc) for e in sel.expressions):
            continue
        sel.set("distinct", None)
        sel.set("group", exp.Group(expressions=[e.this.copy() if isinstance(e, exp.Alias) else e.copy()
                                                for e in sel.expressions]))
        for o in hidden:
            agg = exp.Max if o.args.get("desc") else exp.Min
            o.set("this", agg(this=o.this.copy()))
        changed = True
    if changed:
        ctx.applied.append("distinct_order_by_unselected")
    return tree


def minus_for_except(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Oracle before 21c knows EXCEPT only as MINUS (sqlglot writes EXCEPT)."""
    if tree.find(exp.Except):
        ctx.applied.append("minus_for_except")
    return tree


def _is_integer(e: exp.Expression) -> bool:
    return e.type is not None and e.type.this in exp.DataType.INTEGER_TYPES


def _query_type(q: exp.Expression):
    q = q.this if isinstance(q, exp.Subquery) else q
    if isinstance(q, exp.Select) and len(q.expressions) == 1:
        return q.expressions[0]
    return None


def text_integer_columns(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Spider joins text keys to integer keys (`concert.stadium_id` is text); SQLite compares
    them after numeric affinity, PostgreSQL and DuckDB refuse. Equality is taken on text."""
    changed = False

    def as_text(e):
        return exp.Cast(this=e.copy(), to=exp.DataType.build("TEXT"))

    for cmp in list(tree.find_all(exp.EQ, exp.NEQ)):
        l, r = cmp.left, cmp.right
        if _is_integer(l) and _is_text(r) and not isinstance(l, exp.Literal):
            l.replace(as_text(l))
            changed = True
        elif _is_text(l) and _is_integer(r) and not isinstance(r, exp.Literal):
            r.replace(as_text(r))
            changed = True
        elif "text_if_number" in ctx.templates and isinstance(l, exp.Column) and isinstance(r, exp.Column):
            # a REAL column against a text one: SQLite reads the text as a number if it is one
            for num, txt in ((l, r), (r, l)):
                if _is_numeric(num) and _is_text(txt):
                    txt.replace(_engine_expr(ctx, ctx.templates["text_if_number"], x=txt))
                    changed = True
                    break
    for isin in list(tree.find_all(exp.In)):
        q = isin.args.get("query")
        inner = _query_type(q) if q is not None else None
        if inner is None:
            continue
        inner_expr = inner.this if isinstance(inner, exp.Alias) else inner
        if _is_integer(isin.this) and _is_text(inner_expr):
            isin.this.replace(as_text(isin.this))
            changed = True
        elif _is_text(isin.this) and _is_integer(inner_expr):
            inner_expr.replace(as_text(inner_expr))
            changed = True
    if changed:
        ctx.applied.append("text_integer_columns")
    return tree


def numeric_aggregates_over_text(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """avg/sum of a text column: SQLite reads the text as numbers (text that is none counts
    as 0); PostgreSQL/DuckDB refuse text."""
    def as_number(agg):
        if not _is_text(agg.this) or not isinstance(agg.this, exp.Column):
            return None
        new = agg.copy()
        new.set("this", _engine_expr(ctx, ctx.templates["text_as_number"], x=agg.this))
        return new

    return _rewrite_nodes(tree, ctx, "numeric_aggregates_over_text", (exp.Avg, exp.Sum), as_number)


def extreme_row_without_group(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`SELECT max(capacity), average FROM stadium`: with one MIN/MAX and bare columns and
    no GROUP BY, SQLite returns the row that holds the extreme. Written out: that row,
    ordered by the aggregated expression, first one."""
    sel = tree
    if not isinstance(sel, exp.Select) or sel.args.get("group") or sel.args.get("order") or sel.args.get("limit"):
        return tree
    aggs = [a for e in sel.expressions for a in e.find_all(exp.AggFunc)]
    bare = [c for e in sel.expressions for c in e.find_all(exp.Column) if not _inside_aggregate(c)]
    if not aggs or not bare:
        return tree
    if len(aggs) != 1 or not isinstance(aggs[0], (exp.Max, exp.Min)):
        # COUNT/SUM/… beside a bare column: SQLite takes the column from some row of the
        # (single) group; MIN() is a value from that group, NULL when it is empty, as SQLite's.
        for c in bare:
            c.replace(exp.Min(this=c.copy()))
        ctx.applied.append("extreme_row_without_group")
        return tree
    agg = aggs[0]
    key = agg.this.copy()
    agg.replace(agg.this.copy())
    sel.set("where", exp.Where(this=exp.and_(sel.args["where"].this, exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
                              if sel.args.get("where") else exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null()))))
    sel.set("order", exp.Order(expressions=[exp.Ordered(this=key, desc=isinstance(agg, exp.Max))]))
    sel.set("limit", exp.Limit(expression=exp.Literal.number(1)))
    ctx.applied.append("extreme_row_without_group")
    return tree


def _binary(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e.copy(), to=exp.DataType.build("BINARY"))


def mysql_binary_strings(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """SQLite compares strings byte by byte; MySQL's default collations ignore case (and, PAD
    SPACE, trailing spaces). Comparisons of text with string literals become binary."""
    changed = False
    for cmp in list(tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        for col, lit in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
            if _is_text(col) and isinstance(lit, exp.Literal) and lit.is_string:
                col.replace(_binary(col))
                changed = True
                break
    for isin in list(tree.find_all(exp.In)):
        if _is_text(isin.this) and isin.expressions and all(isinstance(v, exp.Literal) and v.is_string for v in isin.expressions):
            isin.this.replace(_binary(isin.this))
            changed = True
    if changed:
        ctx.applied.append("mysql_binary_strings")
    return tree


def mysql_double_arithmetic(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """MySQL's AVG of integers and `/` return DECIMAL with 4 more digits (1/3 = 0.3333);
    SQLite returns a double. Both in DOUBLE."""
    changed = False
    for agg in list(tree.find_all(exp.Avg)):
        agg.this.replace(exp.Cast(this=agg.this.copy(), to=exp.DataType.build("DOUBLE")))
        changed = True
    for div in list(tree.find_all(exp.Div)):
        if not (_is_integer(div.this) and _is_integer(div.expression)):
            div.this.replace(exp.Cast(this=div.this.copy(), to=exp.DataType.build("DOUBLE")))
            changed = True
    if changed:
        ctx.applied.append("mysql_double_arithmetic")
    return tree


_NUMBER_TEXT = re.compile(NUMBER_RX.replace("[[:space:]]", r"\s"))  # the same test, in Python


def number_column_vs_word(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`commission_pct = "null"`: SQLite ranks every number below every text that is no
    number, so such a comparison is a constant (NULL on NULL); PostgreSQL refuses to read
    'null' as a number and MySQL reads it as 0."""
    changed = False
    for cmp in list(tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        for col, lit in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
            if not (isinstance(col, exp.Column) and _is_numeric(col) and isinstance(lit, exp.Literal)
                    and lit.is_string and not _NUMBER_TEXT.match(lit.this)):
                continue
            truth = "1 = 1" if _op_from(cmp, col) in ("<>", "<", "<=") else "1 = 0"
            cmp.replace(_engine_expr(ctx, "(CASE WHEN {x} IS NULL THEN NULL ELSE " + truth + " END)", x=col))
            changed = True
            break
    if changed:
        ctx.applied.append("number_column_vs_word")
    return tree


def text_arithmetic(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`end_date - start_date` over text: SQLite computes with each text's numeric prefix
    ('2018-03-01' → 2018); PostgreSQL and DuckDB refuse text operands."""
    changed = False
    for node in list(tree.find_all(exp.Sub, exp.Add, exp.Mul, exp.Div)):
        for side in (node.this, node.expression):
            # a text column, or strftime's text (BIRD: STRFTIME('%Y', a) - STRFTIME('%Y', b))
            if (isinstance(side, exp.Column) and _is_text(side)) or isinstance(side, exp.TimeToStr):
                side.replace(_engine_expr(ctx, ctx.templates["text_as_number"], x=side))
                changed = True
    if changed:
        ctx.applied.append("text_arithmetic")
    return tree


def sum_of_conditions(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`SUM(gender = 'M')` counts rows (SQLite's comparisons are 0/1); PostgreSQL has no SUM
    of booleans. The condition is cast to an integer."""
    return _rewrite_nodes(tree, ctx, "sum_of_conditions", (exp.Sum, exp.Avg), lambda agg: (
        agg.__class__(this=exp.Cast(this=agg.this.copy(), to=exp.DataType.build("INT")))
        if isinstance(agg.this, (exp.Predicate, exp.Not)) else None))


def single_group_order(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """`SELECT sum(x) FROM t ORDER BY y DESC LIMIT 3`: aggregates without GROUP BY make one
    row, which SQLite lets be ordered by any column; the others refuse. The ORDER BY goes."""
    changed = False
    for sel in list(tree.find_all(exp.Select)):
        if sel.args.get("group") or not sel.args.get("order") or not sel.expressions:
            continue
        own_aggs = [a for e in sel.expressions for a in e.find_all(exp.AggFunc) if a.find_ancestor(exp.Select) is sel]
        bare = [c for e in sel.expressions for c in e.find_all(exp.Column)
                if c.find_ancestor(exp.Select) is sel and not _inside_aggregate(c)]
        if own_aggs and not bare and not any(e.find(exp.Window) for e in sel.expressions):
            sel.set("order", None)
            changed = True
    if changed:
        ctx.applied.append("single_group_order")
    return tree


def mysql_binary_collation(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """MySQL's default collations sort, group and deduplicate text without case (MariaDB's
    also without accents and trailing spaces: 'Köhler' = 'kohler '); SQLite compares bytes.
    Text keys of ORDER BY, GROUP BY, DISTINCT, COUNT(DISTINCT) and MIN/MAX become binary
    strings (CAST AS BINARY: the same on MariaDB and MySQL 8). A grouped or distinct output
    column is cast in the select list too, so ONLY_FULL_GROUP_BY sees the same expression."""
    changed = False
    for sel in list(tree.find_all(exp.Select)):
        items = {e.alias.lower(): e for e in sel.expressions if isinstance(e, exp.Alias)}
        group = sel.args.get("group")
        keys: set[str] = set()
        if group:
            for g in list(group.expressions):
                if isinstance(g, exp.Column) and _is_text(g):
                    keys.add(g.sql().lower())
                    g.replace(_binary(g))
        distinct = bool(sel.args.get("distinct"))
        for e in list(sel.expressions):
            inner = e.this if isinstance(e, exp.Alias) else e
            if not isinstance(inner, exp.Column) or not _is_text(inner):
                continue
            if inner.sql().lower() in keys or (distinct and not group):
                name = e.alias if isinstance(e, exp.Alias) else inner.name
                e.replace(exp.Alias(this=_binary(inner), alias=exp.to_identifier(name)))
                keys.add(inner.sql().lower())
        order = sel.args.get("order")
        for o in (order.expressions if order else []):
            key = o.this
            if isinstance(key, exp.Column) and not key.table and key.name.lower() in items:
                item = items[key.name.lower()]
                if isinstance(item.this, exp.Column) and item.this.sql().lower() in keys:
                    continue  # the output column, already binary
                if _is_text(item.this):
                    o.set("this", _binary(item.this))
                    changed = True
            elif _is_text(key):
                o.set("this", _binary(key))
                changed = True
        changed = changed or bool(keys)
    for agg in list(tree.find_all(exp.Count, exp.Min, exp.Max)):
        arg = agg.this
        if isinstance(arg, exp.Distinct):
            for x in list(arg.expressions):
                if _is_text(x):
                    x.replace(_binary(x))
                    changed = True
        elif isinstance(agg, (exp.Min, exp.Max)) and isinstance(arg, exp.Column) and _is_text(arg):
            arg.replace(_binary(arg))
            changed = True
    if changed:
        ctx.applied.append("mysql_binary_collation")
    return tree


# In the order they run; each engine class names those it needs (`rewrites`).
REWRITES: tuple[Rewrite, ...] = (
    Rewrite("double_quoted_strings", double_quoted_strings, stage="raw"),
    Rewrite("extreme_row_without_group", extreme_row_without_group, stage="raw"),
    Rewrite("text_number_comparison", text_number_comparison),
    Rewrite("number_column_vs_word", number_column_vs_word),
    Rewrite("text_arithmetic", text_arithmetic),
    Rewrite("single_group_order", single_group_order),
    Rewrite("sum_of_conditions", sum_of_conditions),
    Rewrite("text_integer_columns", text_integer_columns),
    Rewrite("numeric_aggregates_over_text", numeric_aggregates_over_text),
    Rewrite("like_case_insensitive", like_case_insensitive),
    Rewrite("julianday", julianday),
    Rewrite("integer_division", integer_division),
    Rewrite("cast_to_integer_truncates", cast_to_integer_truncates),
    Rewrite("bare_columns_in_groups", bare_columns_in_groups),
    Rewrite("distinct_order_by_unselected", distinct_order_by_unselected),
    Rewrite("mysql_binary_strings", mysql_binary_strings),
    Rewrite("mysql_double_arithmetic", mysql_double_arithmetic),
    Rewrite("mysql_binary_collation", mysql_binary_collation),
    Rewrite("minus_for_except", minus_for_except),
)

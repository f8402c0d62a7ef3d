"""The translation candidates of one SQLite query for one engine, in the order stage 1 tries
them: the gold as written, sqlglot alone, then sqlglot with the schema and the rewrites."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify


from exesql_ray.engines import engine_class
from exesql_ray.schema import Schema
from exesql_ray.translate.rewrites import REWRITES, Context


@dataclass
class Translation:
    sql: str | None
    method: str  # gold (as written) | sqlglot | rules
    applied: list[str] = field(default_factory=list)
    error: str | None = None


def transpile_plain(sqlite_sql: str, engine: str) -> Translation:
    """The baseline: sqlglot alone, no schema."""
    try:
        return Translation(sqlglot.transpile(sqlite_sql, read="sqlite", write=engine_class(engine).dialect)[0], "sqlglot")
    except Exception as e:  # sqlglot's ParseError, TokenError, UnsupportedError …
        return Translation(None, "sqlglot", error=f"sqlglot: {str(e).splitlines()[0][:300]}")


def _unqualified(tree: exp.Expression) -> exp.Expression:
    """The qualified tree written the way the gold was: without the names qualify adds
    (`students AS students`, `name AS name`, `COUNT(*) AS _col_0`) and, where the query
    reads one table, without table prefixes on its columns."""
    tables = list(tree.find_all(exp.Table))
    for t in tables:
        if t.alias and t.alias.lower() == t.name.lower():
            t.set("alias", None)
    for a in list(tree.find_all(exp.Alias)):
        inner = a.this
        if a.alias.startswith("_col_") or (isinstance(inner, exp.Column) and inner.name.lower() == a.alias.lower()):
            a.replace(inner)
    if len(tables) == 1:
        for c in tree.find_all(exp.Column):
            c.set("table", None)
    return tree


def translate_rules(sqlite_sql: str, engine: str, schema: Schema) -> Translation:
    """sqlglot with the schema plus the named rewrites for `engine` (qualified)."""
    return rule_translations(sqlite_sql, engine, schema)[-1]


def rule_translations(sqlite_sql: str, engine: str, schema: Schema) -> list[Translation]:
    """The rewrites' output in two forms from one parse: without the qualification they need
    (`_unqualified`), then qualified. One error record when the rewrites fail."""
    ctx = Context(engine, schema)
    dialect = ctx.dialect
    wanted = frozenset(ctx.declared.rewrites)
    try:
        tree = sqlglot.parse_one(sqlite_sql, read="sqlite")
        for rw in REWRITES:
            if rw.stage == "raw" and rw.name in wanted:
                tree = rw.fn(tree, ctx)
        try:
            tree = qualify(tree, schema=schema.sqlglot_schema(), dialect="sqlite", validate_qualify_columns=False,
                           quote_identifiers=False, identify=False)
        except Exception:  # an unknown table or column: translate unqualified, let the engine say
            ctx.applied.append("unqualified")
        tree = annotate_types(tree, schema=schema.sqlglot_schema(), dialect="sqlite")
        for rw in REWRITES:
            if rw.stage == "typed" and rw.name in wanted:
                tree = rw.fn(tree, ctx)
        method = "rules" if [a for a in ctx.applied if a != "unqualified"] else "sqlglot"
        out = []
        for form in (_unqualified(tree.copy()), tree):
            sql = form.sql(dialect=dialect)
            if engine == "oracle" and "minus_for_except" in ctx.applied:
                sql = _oracle_minus(form)
            out.append(Translation(sql, method, list(ctx.applied)))
        return out
    except Exception as e:
        return [Translation(None, "rules", ctx.applied, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")]


def translation_candidates(sqlite_sql: str, engine: str, schema: Schema) -> list[Translation]:
    """What stage 1 tries, in order, keeping the first that verifies: the gold as written
    (`gold`), sqlglot's transpilation of it (`sqlglot`: the dialect's spelling, the gold's own
    shape), then sqlglot with the schema and the rewrites (`rules`), written without the
    qualification they need and then, last, qualified: every column named with its table,
    which the model would otherwise learn to write. Identical texts are tried once."""
    as_written = sqlite_sql.strip().rstrip(";").rstrip()
    out, seen = [], set()
    for tr in (Translation(as_written, "gold"), transpile_plain(sqlite_sql, engine),
               *rule_translations(sqlite_sql, engine, schema)):
        if tr.sql is None or tr.sql not in seen:
            out.append(tr)
            seen.add(tr.sql)
    return out


def _oracle_minus(tree: exp.Expression) -> str:
    """Oracle's own word for EXCEPT. sqlglot's generator cannot be subclassed when compiled
    (sqlglotc), so the EXCEPT keyword tokens of its output are replaced — tokens, never text
    inside strings or quoted names."""
    sql = tree.sql(dialect="oracle")
    from sqlglot.tokens import TokenType

    for tok in reversed(sqlglot.Dialect.get_or_raise("oracle").tokenize(sql)):
        if tok.token_type == TokenType.EXCEPT:
            sql = sql[:tok.start] + "MINUS" + sql[tok.end + 1:]
    return sql

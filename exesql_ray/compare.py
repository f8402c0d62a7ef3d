"""The one result comparator: rewards, translation checks and evaluation all call `results_match`.

Default semantics are Spider test-suite's:
- rows form a multiset (`rows="bag"`); `rows="set"` drops duplicates first (BIRD's choice);
- order matters only when the gold query orders (`order="auto"`: a top-level ORDER BY);
  `order="strict"` always compares in sequence, `order="ignore"` never does;
- numbers compare within `float_tol` (relative and absolute) where either is a float; two
  ints compare exactly (a count of 1000000 is not one of 1000001);
- values are already normalised across engines by the engines (`normalize_value`: Decimal,
  dates, booleans, bytes, NULL), so 3, 3.0 and Decimal('3.000') are one value;
- columns compare by position (`column_order=True`); `column_order=False` accepts any
  permutation of the predicted columns (test-suite's own rule).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

from sqlglot.tokens import TokenType

from exesql_ray.dialects import dialect_of


@dataclass(frozen=True)
class CompareOptions:
    rows: Literal["bag", "set"] = "bag"
    order: Literal["auto", "ignore", "strict"] = "auto"
    column_order: bool = True
    float_tol: float = 1e-6

    @classmethod
    def from_config(cls, c) -> "CompareOptions":
        return cls(rows=c.rows, order=c.order, column_order=c.column_order, float_tol=c.float_tol)

    def describe(self) -> str:
        return (f"rows as a {'multiset' if self.rows == 'bag' else 'set'}; order: {self.order}"
                f"{' (only when the gold query orders)' if self.order == 'auto' else ''}; "
                f"columns {'by position' if self.column_order else 'in any order'}; float tolerance {self.float_tol:g}")


@functools.lru_cache(maxsize=100_000)
def query_orders(sql: str, dialect: str = "sqlite") -> bool:
    """True when the query's result order is defined: an ORDER BY at the top level (of the
    query, or of a compound query, or of a query wrapped whole in parentheses).

    Read from the tokens, not a parse: a parse costs ~5x more, and every gold that orders is
    checked once per run (tests/test_compare.py checks both agree on all Spider and BIRD gold).
    """
    if "order" not in sql.lower():
        return False
    try:
        tokens = dialect_of(dialect).tokenize(sql)
    except Exception:
        return "order by" in sql.lower()
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    while len(tokens) > 2 and tokens[0].token_type == TokenType.L_PAREN and _closes_at_end(tokens):
        tokens = tokens[1:-1]
    depth = 0
    for tok in tokens:
        tt = tok.token_type
        if tt == TokenType.L_PAREN:
            depth += 1
        elif tt == TokenType.R_PAREN:
            depth -= 1
        elif tt == TokenType.ORDER_BY and depth == 0:
            return True
    return False


def _closes_at_end(tokens) -> bool:
    """Does the opening parenthesis at tokens[0] close at the last token?"""
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i == len(tokens) - 1
    return False


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def values_equal(a: Any, b: Any, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if _num(a) and _num(b):
        if a == b:
            return True
        if type(a) is int and type(b) is int:
            return False  # exact: the tolerance is for floats, computed differently per engine
        if isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    return a == b


def _sort_key(v: Any):
    # Type rank first so mixed columns sort deterministically; floats rounded so that values
    # within tolerance land next to each other.
    if v is None:
        return (0, 0)
    if type(v) is int:
        return (1, v)  # exact: ints past 2**53 that one float would merge keep their order
    if _num(v):
        return (1, round(float(v), 6) if math.isfinite(v) else float("inf"))
    if isinstance(v, str):
        return (2, v)
    return (3, repr(v))


def _row_key(r: tuple):
    return tuple(_sort_key(v) for v in r)


def _rows_equal(g: tuple, p: tuple, tol: float) -> bool:
    return len(g) == len(p) and all(values_equal(x, y, tol) for x, y in zip(g, p))


def _dedupe(rows: list[tuple]) -> list[tuple]:
    seen, out = set(), []
    for r in rows:
        k = _row_key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _match_same_columns(gold: list[tuple], pred: list[tuple], ordered: bool, opts: CompareOptions) -> bool:
    if gold == pred:
        return True  # identical, in the same order: a match under every option
    if opts.rows == "bag" and len(gold) != len(pred):
        return False
    if opts.rows == "set":
        gold, pred = _dedupe(gold), _dedupe(pred)
        if not ordered:
            gold, pred = sorted(gold, key=_row_key), sorted(pred, key=_row_key)
    elif not ordered:
        gold, pred = sorted(gold, key=_row_key), sorted(pred, key=_row_key)
    if len(gold) != len(pred):
        return False
    return all(_rows_equal(g, p, opts.float_tol) for g, p in zip(gold, pred))


def results_match(gold: list[tuple], pred: list[tuple], *, gold_sql: str | None = None,
                  opts: CompareOptions = CompareOptions(), gold_dialect: str = "sqlite") -> bool:
    """Does `pred` return what `gold` returns? Both are normalised rows."""
    width_g = len(gold[0]) if gold else None
    width_p = len(pred[0]) if pred else None
    if width_g is not None and width_p is not None and width_g != width_p:
        return False
    if gold == pred:
        return True  # identical, in the same order: a match under every option
    if opts.rows == "bag" and len(gold) != len(pred):
        return False  # multisets of different sizes (decided before reading the gold's order)
    if opts.order == "strict":
        ordered = True
    elif opts.order == "ignore" or len(gold) < 2:  # one row has no order to keep
        ordered = False
    else:
        ordered = bool(gold_sql) and query_orders(gold_sql, gold_dialect)
    if opts.column_order or not gold or not pred:
        return _match_same_columns(gold, pred, ordered, opts)
    # Any permutation of the predicted columns; prune by each column's multiset of values.
    n = width_g
    gcols = [sorted((_sort_key(r[i]) for r in gold)) for i in range(n)]
    pcols = [sorted((_sort_key(r[i]) for r in pred)) for i in range(n)]
    candidates = [[j for j in range(n) if pcols[j] == gcols[i]] or list(range(n)) for i in range(n)]
    for perm in itertools.islice(itertools.product(*candidates), 5000):
        if len(set(perm)) != n:
            continue
        permuted = [tuple(r[j] for j in perm) for r in pred]
        if _match_same_columns(gold, permuted, ordered, opts):
            return True
    return False

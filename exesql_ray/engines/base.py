"""The machinery every engine shares; engine modules declare only what differs.

An engine runs untrusted SQL and returns exactly one `Execution` per call, whatever happens.
Layers of defence, all of them on every engine:

1. `guard`: sqlglot's tokenizer for the engine's dialect (it knows the dialect's strings,
   quoted identifiers and comments) checks that the text is one statement, that it starts as a
   query, and that it holds no data-changing keyword or session-changing function. We tokenise
   rather than parse because a full parse costs more than most executions (docs/LOG.md has
   the figures); the parse would add
   nothing the token check and layers 2–3 do not already enforce.
2. The driver's own one-statement guard (named per engine).
3. The server: a login that can only SELECT (or a read-only file), a server-side timeout
   where the engine has one (an interrupt otherwise), a row cap fetched incrementally.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import heapq
import marshal
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, ClassVar, Iterable, Iterator

from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from exesql_ray.errors import UserError
from exesql_ray.dialects import dialect_of

STATUSES = ("ok", "error", "timeout", "rejected", "infra_error")
ERROR_CLASSES = (
    "input", "syntax", "unknown_table", "unknown_column", "unknown_function", "type_mismatch", "ambiguous",
    "group_by", "division", "permission", "resource", "other",
)

# A statement may start with these and nothing else.
_QUERY_START = {TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN, TokenType.VALUES}
# Keywords that have no place in a read-only query (data-changing CTEs, SELECT … INTO, DDL).
_FORBIDDEN = {
    TokenType.INSERT, TokenType.UPDATE, TokenType.DELETE, TokenType.MERGE, TokenType.INTO,
    TokenType.CREATE, TokenType.DROP, TokenType.ALTER, TokenType.REPLACE, TokenType.GRANT,
    TokenType.ATTACH, TokenType.DETACH, TokenType.PRAGMA, TokenType.COPY, TokenType.COMMIT,
    TokenType.ROLLBACK, TokenType.USE, TokenType.SET, TokenType.LOAD, TokenType.INSTALL,
}
_FORBIDDEN = {t for t in _FORBIDDEN if t is not None}
# SET is fine inside a query in a few dialects (CAST(x AS CHAR CHARACTER SET utf8)); only its
# use as a statement is refused, and that is already caught by _QUERY_START.
_FORBIDDEN.discard(TokenType.SET)
_FORBIDDEN.discard(TokenType.REPLACE)  # REPLACE(s, a, b) is a string function everywhere


# A refusal with this prefix is no statement at all (a typo such as `SELEC …`): it is reported
# as a syntax error, like every engine would, rather than as a rejected statement.
SYNTAX_PREFIX = "syntax: "


_INSPECT_CACHE: OrderedDict[tuple[str, str], tuple[str | None, str]] = OrderedDict()
_INSPECT_CACHE_SIZE = 50_000
_INSPECT_LOCK = threading.Lock()


def inspect_sql(sql: str, dialect: str, denied_functions: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """(refusal, key): refusal is None if `sql` may run, else why not; key is the SQL with
    whitespace, keyword case, unquoted-identifier case and trailing `;` normalised (string
    literals and quoted identifiers kept exact), for the execution cache. Memoised: best-of-N
    repeats itself."""
    ck = (dialect, sql)
    with _INSPECT_LOCK:
        hit = _INSPECT_CACHE.get(ck)
    if hit is not None:
        return hit
    out = _inspect(sql, dialect, denied_functions)
    with _INSPECT_LOCK:
        _INSPECT_CACHE[ck] = out
        if len(_INSPECT_CACHE) > _INSPECT_CACHE_SIZE:
            _INSPECT_CACHE.popitem(last=False)
    return out


def guard(sql: str, dialect: str, denied_functions: frozenset[str] = frozenset()) -> str | None:
    """None if `sql` may run; else why not.

    Fast path, no tokenising: text that starts as a query, holds no `;` but trailing ones,
    and contains none of the forbidden words anywhere (strings and comments included) is one
    read-only query whatever the dialect. Anything else — a forbidden word even inside a
    string, a leading comment, a `;` in a literal — goes to the tokenizer, which decides.
    tests/test_guard.py checks the two agree on all Spider gold and the hostile suite.
    """
    if _fast_accept(sql, denied_functions):
        return None
    return inspect_sql(sql, dialect, denied_functions)[0]


_FORBIDDEN_WORDS = ("insert", "update", "delete", "merge", "into", "create", "drop", "alter", "grant",
                    "attach", "detach", "pragma", "copy", "commit", "rollback", "use", "load", "install")
_START = re.compile(r"\s*(?:select|with|values)\b|\s*\(", re.I)
# (words as bytes, the same words as a regex) per set of denied functions
_WORD_SETS: dict[frozenset[str], tuple[frozenset[bytes], re.Pattern]] = {}
# ASCII text → its words: A-Z folded to a-z, [a-z0-9_] kept, every other byte a space. The
# words of the text are then `split()`, all in C (regex \b semantics, for ASCII).
_WORD_BYTES = bytes(c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 or c == 95 else 32
                    for c in range(256))


def _fast_accept(sql: str, denied: frozenset[str]) -> bool:
    sets = _WORD_SETS.get(denied)
    if sets is None:
        words = sorted(set(_FORBIDDEN_WORDS) | {d.lower() for d in denied})
        assert all(re.fullmatch(r"[a-z0-9_]+", w) for w in words), words
        sets = _WORD_SETS[denied] = (frozenset(w.encode() for w in words),
                                     re.compile(r"\b(?:" + "|".join(words) + r")\b"))
    s = sql.rstrip()
    while s.endswith(";"):
        s = s[:-1].rstrip()
    if not s or ";" in s or "\x00" in s or _START.match(s) is None:
        return False
    if "/*" in s or ":=" in s:  # code in comments, or an assignment, in some dialects (_mysql_refusal)
        return False
    if s.isascii():  # translate + split + a set test: cheaper than a substring test per word
        return sets[0].isdisjoint(s.encode().translate(_WORD_BYTES).split())
    return sets[1].search(s.lower()) is None


_TRAILING = re.compile(r"(?:;(?:\s|--[^\n]*|/\*.*?\*/)*)+$", re.S)


def strip_trailing_semicolons(sql: str, dialect: str = "") -> str:
    """`SELECT 1; -- done` → `SELECT 1`: the guard allows trailing `;` (and comments after
    them); an engine that wraps the query needs them gone. Text with quotes is tokenised in
    `dialect` so that a `;` inside a literal stays: `SELECT 'a; --b'` is whole as written."""
    if ";" not in sql:
        return sql.strip()
    body = sql.strip()
    if not any(q in body for q in ("'", '"', "`", "$", "[")):
        return _TRAILING.sub("", body).rstrip()
    try:
        tokens = dialect_of(dialect).tokenize(body)
    except TokenError:
        return body  # it fails as written, with its own error
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    return body[:tokens[-1].end + 1] if tokens else ""


_TRAILING_LIMIT = re.compile(r"\blimit\s+(\d+)\s*$", re.I)
_ROW_CLAUSE = re.compile(r"\b(?:limit|offset|fetch)\b", re.I)


def capped(sql: str, limit: int, dialect: str) -> str:
    """The row cap as part of the query, in the cheapest form that is sure to hold, so that
    the engine itself stops at `limit` rows (a sort keeps only its top rows, PostgreSQL's
    server buffers no more):
    - SQL without comments that ends in `LIMIT n` (n ≤ limit) is capped already: as is;
    - SQL without comments and without LIMIT/OFFSET/FETCH anywhere: `LIMIT` appended (it
      applies to the whole statement, set operations included);
    - anything else: wrapped, `SELECT * FROM (…) AS exesql_capped LIMIT`, which keeps the
      candidate's own ORDER BY/LIMIT (PostgreSQL, SQLite and DuckDB do not reorder a
      subquery scan). The newline ends a trailing `--` comment. SQL whose parentheses do
      not nest is not wrapped (`_nests`): it cannot compile as written, and wrapped it might.
    The wrapper costs PostgreSQL planning time, so the cheaper forms come first;
    tests/test_engines.py checks rows and order of all three forms against the bare query."""
    body = strip_trailing_semicolons(sql, dialect)
    if "--" not in body and "/*" not in body:
        low = body.lower()  # substring tests first: they are cheaper than the regexes
        if "limit" not in low and "offset" not in low and "fetch" not in low:
            return f"{body}\nLIMIT {int(limit)}"
        m = _TRAILING_LIMIT.search(low, max(0, low.rfind("limit")))
        if m is not None:
            if int(m.group(1)) <= limit:
                return body
        elif _ROW_CLAUSE.search(low) is None:
            return f"{body}\nLIMIT {int(limit)}"
    if not _nests(body, dialect):
        return body  # it fails to compile as written, with its own error
    return f"SELECT * FROM ({body}\n) AS exesql_capped LIMIT {int(limit)}"


_NOT_PAREN = re.compile(r"[^()]+")


def _nests(body: str, dialect: str) -> bool:
    """Whether each `(` of `body` closes after it and before its end, outside quoted text and
    comments: only then does our wrapper's `(` close at our own `)`. Otherwise the SQL cannot
    compile as written, in any dialect, but wrapped it can: `SELECT a FROM t) AS x, (SELECT 2
    -- c` becomes a join that returns rows. Plain text and text with quotes only (the common
    case) are read with the regexes of `cache_key` (`_regex_parts`); the rest is
    tokenised for its dialect. Text the tokenizer refuses counts as nesting (it is wrapped, as before)."""
    parts = _regex_parts(body)
    if parts is not None:
        parens = _NOT_PAREN.sub("", "\x00".join(parts[0::2]))
        while "()" in parens:
            parens = parens.replace("()", "")
        return not parens
    try:
        tokens = dialect_of(dialect).tokenize(body)
    except TokenError:
        return True
    depth = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def sorts(sql: str) -> bool:
    """Whether the query may sort its result: where a LIMIT lets an engine keep only the top
    rows of a sort (SQLite, DuckDB). Two substring tests in C, far cheaper than a regex for
    `ORDER BY`: mixed-case `Order by` is missed, which costs
    only that optimisation."""
    return "ORDER" in sql or "order" in sql


_KEYS: dict[tuple[str, str], str] = {}


# Quoted runs with standard doubling ('it''s'); the text between them is plain SQL.
_QUOTED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`)""")
_WS = re.compile(r"\s+")
_AROUND_PUNCT = re.compile(r" ?([,()]) ?")  # tokens that combine with no neighbour
# MySQL (and MariaDB) read `count (*)` as a syntax error and `count(*)` as the function (unless
# sql_mode has IGNORE_SPACE): there a space before `(` is part of the query, and the key keeps it.
_SPACED_CALL_DIALECTS = frozenset({"mysql"})
_AROUND_PUNCT_SPACED_CALLS = re.compile(r" ?([,)]) ?|(\() ?")
# Where a regex cannot tell literals from the rest: comments, backslash escapes (MySQL,
# PostgreSQL's E''), dollar quoting, SQLite's [bracketed names] (`[Meal Count (K-12)]` is not
# `[Meal Count(K-12)]`; elsewhere `[` opens an array or a list). Such SQL is tokenised.
_TOKENISE_IF = ("--", "/*", "#", "\\", "$", "[")
_TOKENISE_IF_RX = re.compile("|".join(map(re.escape, _TOKENISE_IF)))


def _regex_parts(body: str) -> list[str] | None:
    """`body` split at its quoted runs (at odd positions), where regexes can read it: no
    `_TOKENISE_IF` text and no unbalanced quote. None: only the tokenizer can tell."""
    if _TOKENISE_IF_RX.search(body) is not None:
        return None
    if "'" not in body and '"' not in body and "`" not in body:
        return [body]
    parts = _QUOTED.split(body)
    outside = "\x00".join(parts[0::2])
    if "'" in outside or '"' in outside or "`" in outside:  # an unbalanced quote
        return None
    return parts


def cache_key(sql: str, dialect: str) -> str:
    """Equal keys ⇒ the same query. Outside quotes, case and runs of whitespace do not
    matter (identifiers too: the engines fold or, MySQL here, are set to ignore table-name
    case), nor spaces around `,` `(` `)`, so they are folded; spaces elsewhere are kept as one
    (`< =` is not `<=`), quoted text is kept exact, and whitespace alone between two quoted
    runs too ('a'\\n'b' is one string in PostgreSQL, 'a' 'b' an error). SQL with comments,
    backslashes, `$` or `[` is tokenised instead: a regex cannot tell their literals apart;
    SQL with comments keeps its text as written (a key of its own, never a comment-free one's).
    In MySQL a space before `(` is kept (`_SPACED_CALL_DIALECTS`).
    Regex rather than the tokenizer otherwise: it is ~20x cheaper, and best-of-N keys every
    candidate. Memoised (the gold is looked up once per candidate)."""
    k = _KEYS.get((dialect, sql))
    if k is None:
        body = sql.strip().rstrip(";").strip()
        parts = _regex_parts(body)
        spaced = dialect in _SPACED_CALL_DIALECTS
        if parts is None and ("--" in body or "/*" in body or "#" in body):
            # Comments: the text as written. Engines disagree with the tokenizer about them
            # (MySQL runs `/*! … */`, reads `--` + U+00A0 as code, PostgreSQL nests `/* */`),
            # and a key shared with a comment-free text would skip the guard on a cache hit.
            k = "\x00" + body
        elif parts is None:
            k = inspect_sql(sql, dialect)[1]
        elif len(parts) == 1:
            k = _plain(body, spaced)
        else:
            last = len(parts) - 1
            k = "".join([p if i % 2 or (0 < i < last and p.isspace()) else _plain(p, spaced)
                         for i, p in enumerate(parts)])
        if len(_KEYS) > 200_000:
            _KEYS.clear()
        _KEYS[(dialect, sql)] = k
    return k


def _plain(text: str, spaced_calls: bool = False) -> str:
    """SQL outside quotes: whitespace runs as one space, none around `,` `(` `)`, lower case;
    with `spaced_calls` (MySQL), a space before `(` stays. Written with str methods, not `_WS`
    and `_AROUND_PUNCT` (`_AROUND_PUNCT_SPACED_CALLS`), which define it: several times cheaper,
    and every candidate of best-of-N is keyed. tests/test_guard.py checks the
    two agree."""
    s = " ".join(text.split())
    if text[:1].isspace():
        s = " " + s
    if text[-1:].isspace() and s != " ":
        s += " "
    if " " in s:  # over single spaces, " ?([,()]) ?" drops every space beside , ( )
        s = s.replace(" ,", ",").replace(", ", ",")
        if not spaced_calls:
            s = s.replace(" (", "(")
        s = s.replace("( ", "(").replace(" )", ")").replace(") ", ")")
    return s.lower()


def _token_key(tok) -> str:
    tt = tok.token_type
    if tt in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.BIT_STRING, TokenType.HEX_STRING):
        return "'" + tok.text.replace("'", "''") + "'"
    if tt == TokenType.IDENTIFIER:
        return '"' + tok.text + '"'
    return tok.text.lower()


def _inspect(sql: str, dialect: str, denied: frozenset[str]) -> tuple[str | None, str]:
    if not sql or not sql.strip():
        return "empty SQL", ""
    if "\x00" in sql:
        return "NUL byte in SQL", sql
    try:
        tokens = dialect_of(dialect).tokenize(sql)
    except TokenError as e:
        return f"cannot tokenise: {str(e)[:200]}", sql
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    parts = [_token_key(t) for t in tokens]
    if dialect in _SPACED_CALL_DIALECTS:  # `count (*)` is not `count(*)` there
        for i in range(1, len(tokens)):
            if tokens[i].token_type == TokenType.L_PAREN and tokens[i].start > tokens[i - 1].end + 1:
                parts[i] = " ("
    key = " ".join(parts)
    if not tokens:
        return "empty SQL", key
    if tokens[0].token_type not in _QUERY_START:
        if tokens[0].token_type in (TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER):
            return f"{SYNTAX_PREFIX}not a query: starts with {tokens[0].text!r}", key
        return f"not a query: starts with {tokens[0].text.upper()!r}", key
    if dialect == "mysql":
        why = _mysql_refusal(sql, tokens)
        if why is not None:
            return why, key
    for i, tok in enumerate(tokens):
        tt = tok.token_type
        if tt == TokenType.SEMICOLON:
            return "more than one statement", key
        if tt in _FORBIDDEN:
            return f"not read-only: {tok.text.upper()}", key
        # a quoted name calls the same function (MySQL: `GET_LOCK`('a', 0) takes the lock)
        if denied and tt in (TokenType.VAR, TokenType.IDENTIFIER) and tok.text.lower() in denied:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.token_type == TokenType.L_PAREN:
                return f"function {tok.text.lower()}() is not allowed", key
    return None, key


_MYSQL_CODE_IN_COMMENTS = re.compile(r"/\*(?:!|\+|m!)", re.I)
# `--` opens a comment in MySQL only before ASCII whitespace or a control character; every
# other reader here (sqlglot's tokenizer included: Python's isspace) also takes U+00A0 and
# the like, so the guard would skip code that MySQL runs
_MYSQL_NOT_A_COMMENT = re.compile(r"--([^\x00-\x20])")


def _mysql_refusal(sql: str, tokens) -> str | None:
    """What MySQL (and MariaDB) run that every other reader of the text skips, or that
    outlives the query on a pooled connection:
    - `/*! … */` and MariaDB's `/*M! … */` are executed, not comments: `SELECT 1 /*! INTO @x */`
      or `/*!, GET_LOCK('a', 0) */` got past the token check and ran;
    - an optimizer hint `/*+ … */` can lift the statement's timeout and row cap (MySQL 8:
      `SET_VAR(sql_select_limit=…)`, `MAX_EXECUTION_TIME`);
    - `@x := …` sets a user variable that the next query on the same connection reads;
    - `--` before anything but ASCII whitespace is code to MySQL and a comment to the guard.
    The comment forms are refused wherever they appear, string literals included (no real
    query needs them); `:=` only as a token."""
    m = _MYSQL_CODE_IN_COMMENTS.search(sql)
    if m is not None:
        return f"not read-only: MySQL runs what is inside {m.group(0)} … */ (executable comments and optimizer hints are refused)"
    if "--" in sql:  # between the tokens: where the tokenizer saw comments (not in literals)
        gap = 0
        for start, end in [(t.start, t.end + 1) for t in tokens] + [(len(sql), len(sql))]:
            m = _MYSQL_NOT_A_COMMENT.search(sql, gap, start) if start > gap else None
            if m is not None:
                return (f"not read-only: MySQL reads `--` followed by {m.group(1)!r} as code, not as a comment "
                        "(a `--` comment needs a space, tab or newline after it)")
            gap = max(gap, end)
    for tok in tokens:
        if tok.token_type == TokenType.COLON_EQ:
            return "not read-only: := assigns a user variable, which outlives the query"
    return None


# ---------------------------------------------------------------- values and results

def normalize_value(v: Any) -> Any:
    """One representation per value across engines: what SQLite would have returned.

    Decimal becomes int when integral, else float (PostgreSQL's AVG, MySQL's SUM); ints and
    floats stay as they are (the comparator equates 3 and 3.0); dates and times their SQLite text form; bytes UTF-8 text if they
    decode, else hex; booleans 0/1.
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v  # 3.0 stays a float: the comparator treats 3 and 3.0 as equal
    if isinstance(v, decimal.Decimal):
        if v.is_finite() and v == v.to_integral_value() and abs(v) < 2**53:
            return int(v)
        return float(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return str(v)  # '2023-01-01 06:00:00' like SQLite's text, not isoformat's 'T'
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b.hex()
    return str(v)


_PLAIN = frozenset({int, str, float, type(None)})


def normalize_rows(rows) -> list[tuple]:
    if _PLAIN.issuperset(map(type, chain.from_iterable(rows))):  # the common case: one pass in C
        if set(map(type, rows)) <= {tuple}:
            return rows if type(rows) is list else list(rows)  # MySQLdb returns a tuple of tuples
        return [r if type(r) is tuple else tuple(r) for r in rows]
    return [tuple(normalize_value(x) for x in r) for r in rows]


_dumps = marshal.dumps
_blake2b = hashlib.blake2b


def result_hash(rows: list[tuple]) -> str:
    """Order-insensitive hash of a normalised result (the multiset of rows, exact values).
    Equal hashes mean equal results; the comparator, with its float tolerance, decides a
    match between results that hash differently. Each row is serialised by marshal in C,
    format version 2, which is canonical (no back-references by object identity, no
    interning flags; those came with version 3) and self-delimiting, so the sorted
    serialisations, joined, are the multiset. Sorting bytes rather than the row tuples is
    faster on large results (memcmp, not Python comparisons) and never meets None beside
    a value. A value marshal cannot write falls back to repr."""
    n = len(rows)
    try:
        if n == 1:  # half of Spider's results: no list, sort or join (the same digest)
            return _blake2b(_dumps(rows[0], 2) + b"1", digest_size=12).hexdigest()
        parts = [_dumps(r, 2) for r in rows]
    except ValueError:
        parts = [repr(r).encode("utf-8", "surrogatepass") + b"\x1e" for r in rows]
    parts.sort()
    h = _blake2b(b"".join(parts), digest_size=12)
    h.update(str(n).encode())
    return h.hexdigest()


@dataclass(slots=True)
class Execution:
    """The execution record of one (db_id, sql); `rows` stays in memory, never in the record."""

    status: str
    error_class: str | None = None
    error: str | None = None
    elapsed_ms: float = 0.0
    row_count: int = 0
    truncated: bool = False
    result_hash: str | None = None
    rows: list[tuple] | None = field(default=None, repr=False)
    cached: bool = False

    def record(self) -> dict:
        return {
            "status": self.status,
            "error_class": self.error_class,
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "row_count": self.row_count,
            "truncated": self.truncated,
            "result_hash": self.result_hash,
        }


class InfraError(Exception):
    """The engine, not the SQL, failed (connection lost, server gone, a broken database file):
    never a verdict; retried unless `retry` is False (what a retry cannot mend)."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


class QueryTimeout(Exception):
    pass


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C): the query in flight gets no verdict. `records`: the
    records of the rows that had finished, in input order (filled in by the executor)."""

    def __init__(self, records=()):
        super().__init__("interrupted")
        self.records = list(records)


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    max_rows: int = 10_000
    retries: int = 3
    backoff_s: float = 0.2


class Engine(ABC):
    """Owns the execution path; subclasses declare their tables and implement `_run`.

    Thread-safe: the executor may call `execute` from several threads; each engine keeps a
    pool (or one connection per thread where its driver wants that).
    """

    name: ClassVar[str]
    dialect: ClassVar[str]  # sqlglot dialect of the guard
    # (regex over "<code>: <message>", error class), first match wins; unmatched → "other".
    error_classes: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Functions that change session or server state and survive the query (locks, settings).
    denied_functions: ClassVar[frozenset[str]] = frozenset()
    # How the engine names a db_id's schema/database: None (as is), "lower" or "upper".
    db_case: ClassVar[str | None] = None
    # Whether a per-query row cap below max_rows makes the engine stop early (the executor
    # then fetches a candidate only up to one row more than its gold has).
    early_cap: ClassVar[bool] = True

    def db_name(self, db_id: str) -> str:
        return db_id.lower() if self.db_case == "lower" else db_id.upper() if self.db_case == "upper" else db_id

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self._compiled = [(re.compile(p, re.I), c) for p, c in self.error_classes]
        self.stopping = False
        # what the login could change, where the user accepted a writable one (else refused)
        self.writable_login: str | None = None

    def _accept_login(self, what_it_can: str | None, dsn: str, allow_writable: bool) -> None:
        """Refuse a login that could change something, unless the user said they accept it."""
        if what_it_can is None:
            return
        if not allow_writable:
            from exesql_ray.config import hide_password

            raise UserError(f"{self.name}: the login of {hide_password(dsn)} {what_it_can}: untrusted SQL must run as a "
                            "SELECT-only login (scripts/dbs.sh makes one); to accept this one pass "
                            "--allow-writable-login (engines.allow_writable_login: true)")
        self.writable_login = what_it_can

    def interrupt(self) -> None:
        """Stop (from another thread or a signal handler): the queries in flight end now where
        the engine can cancel them (else at their deadline), and every call from here on raises
        Interrupted instead of giving a verdict: a cancelled query is not the SQL's fault."""
        self.stopping = True
        try:
            self._cancel_running()
        except Exception:  # best effort: the deadline still ends the query
            pass

    def _cancel_running(self) -> None:
        """Cancel the queries in flight, if the engine can (called by `interrupt`)."""

    # -- what each engine implements
    @abstractmethod
    def _run(self, db_id: str, sql: str, cap: int) -> list[tuple]:
        """Run one guarded query; return its raw rows, fetched only to cap + 1 (more is
        allowed): `execute` cuts them to `cap` and marks the result truncated. No column
        names: nothing compares by name, and PostgreSQL's driver would build them per query.

        Raise QueryTimeout on the deadline, InfraError when the engine is unreachable, and
        let the driver's own errors through for classification.
        """

    @abstractmethod
    def db_ids(self) -> list[str]:
        """The databases this engine can run against."""

    def _error_text(self, exc: BaseException) -> str:
        return str(exc).strip()

    def _is_rejection(self, exc: BaseException) -> bool:
        """The driver's or server's own guard refused the statement (a read-only violation)."""
        return False

    def _about_the_environment(self, exc: BaseException) -> bool:
        """The server's error is about the machine, not the SQL (out of memory, disk full, too
        many connections, an I/O error): retried, then `infra_error`, never a verdict."""
        return False

    def reset(self) -> None:
        """Drop connections after an infrastructure error; the next call reconnects."""

    def close(self) -> None:
        pass

    # -- the machinery
    def classify(self, text: str) -> str:
        for rx, cls in self._compiled:
            if rx.search(text):
                return cls
        return "other"

    def execute(self, db_id: str, sql: str, cap: int | None = None) -> Execution:
        """One record, whatever happens; at most `cap` rows (default and ceiling: max_rows)."""
        cap = self._cap(cap)
        refusal = self._refusal(sql)
        if refusal is not None:
            return refusal
        attempt = 0
        while True:
            if self.stopping:
                raise Interrupted()
            t0 = time.perf_counter()
            try:
                raw = self._run(db_id, sql, cap)
            except Exception as e:
                if self.stopping:  # cancelled by `interrupt`, or ended while we stop: no verdict
                    raise Interrupted() from None
                if not (isinstance(e, InfraError) or self._about_the_environment(e)):
                    return self._verdict(e, t0)
                attempt += 1
                if attempt > self.limits.retries or not getattr(e, "retry", True):
                    return Execution("infra_error", error=self._error_text(e)[:500],
                                     elapsed_ms=(time.perf_counter() - t0) * 1e3)
                self.reset()
                time.sleep(self.limits.backoff_s * 2 ** (attempt - 1))
                continue
            if self.stopping:
                raise Interrupted()
            return self._finish(raw, cap, t0)

    def execute_many(self, jobs: Iterable[tuple[str, str, int | None]]) -> Iterator[Execution]:
        """One Execution per (db_id, sql, cap) job, in order. Engines with a server override
        this to send the next query before they (and the caller) are done with the last one."""
        for db_id, sql, cap in jobs:
            yield self.execute(db_id, sql, cap)

    # -- pipelined streams, for engines with a server (they set `execute_many = Engine._pipelined`)
    # Errors that a failed checkout or send may raise: the job then goes to `execute` alone.
    stream_errors: ClassVar[tuple[type[BaseException], ...]] = (InfraError,)

    def _checkout(self):
        """A connection of the engine's pool, held for one stream."""
        raise NotImplementedError

    def _checkin(self, conn, broken: bool) -> None:
        """Give a stream's connection back; `broken`: it must not be reused."""
        raise NotImplementedError

    def _statement(self, sql: str, cap: int):
        """What the engine runs (or `_send` sends) for a guarded query and its cap: the query
        with the engine's row cap applied, where the engine applies it in the SQL."""
        return sql

    def _send(self, conn, db_id: str, statement) -> None:
        """Send one `_statement` (switching DB first if need be) without waiting for it."""
        raise NotImplementedError

    def _receive(self, conn) -> tuple[Any, BaseException | None, bool]:
        """(raw rows, None, False) for the query in flight, or (None, the exception: a
        QueryTimeout, an InfraError or the server's error, whether the connection is broken)."""
        raise NotImplementedError

    def _pipelined(self, jobs: Iterable[tuple[str, str, int | None]]) -> Iterator[Execution]:
        """`execute_many` on one connection: the next query is sent as soon as the last one's
        rows are read, and the last one is normalised, hashed and handed to the caller while
        the server runs the next. One query is in flight at a time, so the server's timeout
        still bounds each verdict; what overlaps is our Python with the server's work.
        Anything unusual (a lost connection, a failed send) goes to `execute` for that job,
        which retries and classifies. elapsed_ms runs from sending to having the rows, so it
        may include some of our own work on the previous query."""
        conn = None
        inflight = None  # (db_id, sql, cap, t0) sent on conn and not read yet
        try:
            for job in chain(jobs, (None,)):  # None: the end, where the last one is read
                if self.stopping and inflight is None:
                    raise Interrupted()
                # The next job is guarded and its statement built before the last one is read,
                # while the server still runs it: between reading and sending, only the send.
                mine = None  # this job's Execution if it is not sent; False: run it alone
                if job is not None:
                    db_id, sql, cap = job
                    cap = self._cap(cap)
                    mine = self._refusal(sql)
                    if mine is None:
                        statement = self._statement(sql, cap)
                done = None
                if inflight is not None:
                    raw, exc, broken = self._receive(conn)
                    if broken:
                        self._checkin(conn, broken=True)
                        conn = None
                    done, inflight = (inflight, raw, exc), None
                    if self.stopping:  # perhaps the reply of a query `interrupt` cancelled: no verdict
                        raise Interrupted()
                if job is not None and mine is None:
                    try:
                        if conn is None:
                            conn = self._checkout()
                        t0 = time.perf_counter()
                        self._send(conn, db_id, statement)
                        inflight = (db_id, sql, cap, t0)
                    except self.stream_errors:
                        if conn is not None:
                            self._checkin(conn, broken=True)
                            conn = None
                        mine = False
                if done is not None:
                    yield self._outcome(*done)
                if mine is False:
                    yield self.execute(db_id, sql, cap)
                elif mine is not None:
                    yield mine
        finally:
            if conn is not None:
                # a query still in flight (the caller stopped early) leaves an unread reply
                self._checkin(conn, broken=inflight is not None)

    def _outcome(self, job, raw, exc) -> Execution:
        db_id, sql, cap, t0 = job
        if exc is None:
            return self._finish(raw, cap, t0)
        if isinstance(exc, InfraError) or self._about_the_environment(exc) or self._error_is_ours(exc, sql, cap):
            # not a verdict (retried with backoff), or not the query's own error
            return self.execute(db_id, sql, cap)
        return self._verdict(exc, t0)

    def _error_is_ours(self, exc: BaseException, sql: str, cap: int) -> bool:
        """The stream's error is about what the engine added to the query (its row cap), not the
        query: `execute` then finds the query's own error."""
        return False

    # -- the parts of `execute`, shared with pipelined `execute_many`
    def _cap(self, cap: int | None) -> int:
        return self.limits.max_rows if cap is None else min(cap, self.limits.max_rows)

    def _refusal(self, sql: str) -> Execution | None:
        """The guard's verdict as an Execution, or None if `sql` may run."""
        t0 = time.perf_counter()
        refusal = guard(sql, self.dialect, self.denied_functions)
        if refusal is None:
            return None
        elapsed = (time.perf_counter() - t0) * 1e3
        if refusal.startswith(SYNTAX_PREFIX):
            return Execution("error", error_class="syntax", error=refusal[len(SYNTAX_PREFIX):], elapsed_ms=elapsed)
        return Execution("rejected", error_class="permission", error=refusal, elapsed_ms=elapsed)

    def _finish(self, raw, cap: int, t0: float) -> Execution:
        """Raw rows (fetched to cap + 1 at most) → the `ok` Execution; a `timeout` when they came
        after the deadline: some functions swallow the server's cut and return a value anyway
        (MariaDB's BENCHMARK and SLEEP), and a result past the limit is a timeout everywhere."""
        if time.perf_counter() - t0 >= self.limits.timeout_s:
            return self._verdict(QueryTimeout(), t0)
        truncated = len(raw) > cap
        rows = normalize_rows(raw[:cap] if truncated else raw)
        return Execution("ok", elapsed_ms=(time.perf_counter() - t0) * 1e3, row_count=len(rows),
                         truncated=truncated, result_hash=result_hash(rows), rows=rows)

    def _verdict(self, exc: BaseException, t0: float) -> Execution:
        """A failed query's Execution: timeout, the engine's refusal, or a classified error."""
        elapsed = (time.perf_counter() - t0) * 1e3
        if isinstance(exc, QueryTimeout):
            return Execution("timeout", error_class="resource", error=f"exceeded {self.limits.timeout_s:g}s",
                             elapsed_ms=elapsed)
        text = self._error_text(exc)
        if self._is_rejection(exc):
            return Execution("rejected", error_class="permission", error=text[:500], elapsed_ms=elapsed)
        return Execution("error", error_class=self.classify(text), error=text[:500], elapsed_ms=elapsed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Watchdog:
    """One thread that calls `on_expire` for deadlines that pass: a Timer thread per query
    would cost more to start than a typical Spider query takes. The heap holds only
    (deadline, token); callbacks are dropped on disarm so no cursor outlives its query here."""

    def __init__(self):
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Any] = {}
        self._next = 0
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="exesql-watchdog", daemon=True)
        self._thread.start()

    def arm(self, timeout_s: float, on_expire) -> int:
        with self._cv:
            self._next += 1
            token = self._next
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, token))
            self._live[token] = on_expire
            if self._heap[0][1] == token:
                self._cv.notify()
            return token

    def disarm(self, token: int) -> bool:
        """True if the deadline had not fired."""
        with self._cv:
            return self._live.pop(token, None) is not None

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                wait = None if not self._heap else self._heap[0][0] - time.monotonic()
                if wait is None or wait > 0:
                    self._cv.wait(timeout=wait if wait is None else min(wait, 1.0))
                    continue
                _, token = heapq.heappop(self._heap)
                fn = self._live.pop(token, None)
            if fn is not None:
                try:
                    fn()
                except Exception:
                    pass
                fn = None  # do not hold the cursor while waiting for the next deadline

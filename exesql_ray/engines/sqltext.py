"""SQL text policy, the same for every engine: what may run (`guard`), the row cap written
into a query (`capped`), whether it sorts, and the key under which its result is cached.

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

import re
import threading
from collections import OrderedDict

from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from exesql_ray.dialects import dialect_of

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
        # a name, a literal or punctuation (a markdown fence: ``` tokenises differently per
        # dialect) is text that is not SQL, on every engine: a syntax error. Only a statement
        # keyword that is not a query (INSERT, SET, …) is refused.
        if tokens[0].token_type in (TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER) \
                or not tokens[0].text[:1].isalpha():
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

"""Oracle, on python-oracledb in thin mode (no Instant Client). NOT RUN against a live server
on our machines (none can run here): tests cover what needs no server and run the rest only
when EXESQL_ORACLE_DSN is set.

One schema (user) per db_id, upper-case names as Oracle folds unquoted identifiers. Pool from
`oracledb.create_pool`; per connection `call_timeout` bounds every round trip; per query
`ALTER SESSION SET CURRENT_SCHEMA` only when the DB changes; rows fetched with `fetchmany`
up to the cap (the row cap needs no `FETCH FIRST` rewrite, which would change the query).
"""

from __future__ import annotations

import re

from exesql_ray.engines.base import InfraError, Limits, QueryTimeout
from exesql_ray.engines.server import ServerEngine, first_line
from exesql_ray.dsn import hide_password
from exesql_ray.errors import UserError
from exesql_ray.engines.migrate import Target

_INFRA = re.compile(r"DPY-(4011|6005|4024|1001)|DPI-1080|ORA-(03113|03114|03135|12514|12541|12170|01033|01034|01089)")
_TIMEOUT = re.compile(r"DPY-4024|DPI-1067|ORA-01013")


def parse_oracle_dsn(dsn: str) -> dict:
    """user/password@host:port/service (EZConnect) → create_pool keyword arguments."""
    m = re.match(r"^(?P<user>[^/@]+)/(?P<password>[^@]*)@(?P<dsn>.+)$", dsn or "")
    if not m:
        raise UserError(f"oracle DSN must look like user/password@host:port/service (got {hide_password(dsn or '')})")
    return m.groupdict()


def oracle_ident(name: str) -> str:
    """Oracle's name for a db_id/table/column: upper case, quoted when it is not a plain word."""
    up = name.upper()
    if re.fullmatch(r"[A-Z][A-Z0-9_$#]{0,127}", up):
        return up
    return '"' + up.replace('"', '""') + '"'


class OracleEngine(ServerEngine):
    name = "oracle"
    dialect = "oracle"
    display_name = "Oracle"
    types = {"int": "NUMBER(19)", "float": "BINARY_DOUBLE", "text": "CLOB", "blob": "BLOB"}
    prompt_case = "upper"
    rewrites = ("double_quoted_strings", "extreme_row_without_group", "text_number_comparison", "single_group_order",
                "text_integer_columns", "numeric_aggregates_over_text", "julianday", "cast_to_integer_truncates",
                "bare_columns_in_groups", "distinct_order_by_unselected", "minus_for_except")
    templates = {
        "julianday": "(CAST({x} AS DATE) - DATE '-4712-01-01' + 0.5)",
        "trunc": "TRUNC({x})",
        "text_as_number": "CASE WHEN {x} IS NULL THEN NULL ELSE COALESCE(TO_BINARY_DOUBLE({x} DEFAULT 0 ON CONVERSION "
                          "ERROR), 0) END",
    }
    db_case = "upper"
    pipelined = False  # python-oracledb pipelines only against Oracle 23, which is untested here
    error_classes = (
        (r"ORA-(00900|00933|00923|00936|00907|00905|00920|00921|00928|01756|00911)\b", "syntax"),
        (r"ORA-00942\b", "unknown_table"),
        (r"ORA-00904\b", "unknown_column"),
        (r"ORA-(00918|00960)\b", "ambiguous"),
        (r"ORA-(00979|00937|00934|00935)\b", "group_by"),
        (r"ORA-01476\b", "division"),
        (r"ORA-(01722|00932|01858|01861|01843|01830|01841|00902)\b", "type_mismatch"),
        (r"ORA-(01031|01950|01552|16000)\b", "permission"),
        (r"ORA-(01652|04030|04031|30036)\b", "resource"),
    )
    denied_functions = frozenset({"dbms_lock", "dbms_session", "utl_file", "utl_http", "dbms_pipe", "dbms_alert"})

    @classmethod
    def reader_user(cls, dsn: str) -> str | None:
        return parse_oracle_dsn(dsn)["user"]

    def __init__(self, dsn: str, limits: Limits = Limits(), max_connections: int = 8, allow_writable: bool = False):
        # allow_writable: the login check is not written for Oracle (no server here to test it)
        super().__init__(limits)
        if not dsn:
            raise UserError("oracle: no DSN configured (engines.oracle.dsn or EXESQL_ORACLE_DSN)")
        import oracledb

        self._oracledb = oracledb
        kw = parse_oracle_dsn(dsn)
        self.dsn = dsn
        try:
            self.pool = oracledb.create_pool(user=kw["user"], password=kw["password"], dsn=kw["dsn"],
                                             min=1, max=max_connections, increment=1, getmode=oracledb.POOL_GETMODE_WAIT,
                                             wait_timeout=30_000)
            with self.pool.acquire() as conn:
                conn.ping()
        except oracledb.Error as e:
            raise UserError(f"oracle: cannot connect to {hide_password(dsn)}: {first_line(e)}") from None
        self._dbs = None

    def db_ids(self) -> list[str]:
        if self._dbs is None:
            with self.pool.acquire() as conn:
                cur = conn.cursor()
                cur.execute("SELECT DISTINCT owner FROM all_tables WHERE owner NOT IN "
                            "('SYS','SYSTEM','XDB','MDSYS','CTXSYS','ORDSYS','OUTLN','DBSNMP','APPQOSSYS','WMSYS','OJVMSYS',"
                            "'LBACSYS','OLAPSYS','DVSYS','AUDSYS','GSMADMIN_INTERNAL','DBSFWUSER','ORDDATA') ORDER BY 1")
                self._dbs = [r[0].lower() for r in cur.fetchall()]
        return list(self._dbs)

    def _run(self, db_id: str, sql: str, cap: int):
        oracledb = self._oracledb
        try:
            with self.pool.acquire() as conn:
                conn.call_timeout = int(self.limits.timeout_s * 1000)
                schema = oracle_ident(db_id)
                if getattr(conn, "_exesql_schema", None) != schema:
                    conn.cursor().execute(f"ALTER SESSION SET CURRENT_SCHEMA = {schema}")
                    conn._exesql_schema = schema
                cur = conn.cursor()
                cur.arraysize = min(cap + 1, 1000)
                cur.execute(sql.rstrip().rstrip(";"))
                rows = []
                while len(rows) <= cap:
                    chunk = cur.fetchmany(min(1000, cap + 1 - len(rows)))
                    if not chunk:
                        break
                    rows.extend(chunk)
                rows = [tuple(_read_lob(v) for v in r) for r in rows]
                conn.rollback()
        except oracledb.Error as e:
            text = str(e)
            if _TIMEOUT.search(text):
                raise QueryTimeout() from e
            if _INFRA.search(text):
                raise InfraError(f"oracle: {first_line(e)}") from e
            raise
        return rows

    def _error_text(self, exc) -> str:
        return first_line(exc)

    def _is_rejection(self, exc) -> bool:
        return bool(re.search(r"ORA-(01031|01950|16000)\b", str(exc)))

    def close(self) -> None:
        self.pool.close(force=True)


def _read_lob(v):
    return v.read() if hasattr(v, "read") else v


# ---------------------------------------------------------------- migration into Oracle (not run here: no server)

class OracleTarget(Target):
    name = OracleEngine.name
    types = OracleEngine.types

    def __init__(self, admin_dsn: str, reader: str):
        import oracledb

        from exesql_ray.engines.oracle import parse_oracle_dsn

        kw = parse_oracle_dsn(admin_dsn)
        self.conn = oracledb.connect(user=kw["user"], password=kw["password"], dsn=kw["dsn"])
        self.reader = reader
        cur = self.conn.cursor()
        try:
            cur.execute("CREATE TABLE exesql_migrations (db_id VARCHAR2(128) PRIMARY KEY, checksum VARCHAR2(64))")
        except oracledb.DatabaseError:
            pass  # ORA-00955: exists

    def ident(self, name):
        from exesql_ray.engines.oracle import oracle_ident

        return oracle_ident(name)

    def column_type(self, col, in_key):
        if col.kind == "text" and col.max_len <= 4000:
            return f"VARCHAR2({max(col.max_len, 1)} CHAR)"
        return self.types[col.kind]

    def stored_checksum(self, db_id):
        cur = self.conn.cursor()
        cur.execute("SELECT checksum FROM exesql_migrations WHERE db_id = :1", [db_id.lower()])
        row = cur.fetchone()
        return row[0] if row else None

    def load(self, src):
        import secrets

        import oracledb

        user = self.ident(src.db_id)
        cur = self.conn.cursor()
        try:
            cur.execute(f"DROP USER {user} CASCADE")
        except oracledb.DatabaseError:
            pass  # ORA-01918: no such user
        cur.execute(f'CREATE USER {user} IDENTIFIED BY "{secrets.token_hex(12)}" ACCOUNT LOCK QUOTA UNLIMITED ON USERS')
        for t in src.tables:
            cols = ", ".join(f"{self.ident(c.name)} {self.column_type(c, False)}" for c in t.columns)
            cur.execute(f"CREATE TABLE {user}.{self.ident(t.name)} ({cols})")
            if t.rows:
                marks = ", ".join(f":{i + 1}" for i in range(len(t.columns)))
                rows = list(zip(*[a.to_pylist() for a in t.data.columns]))
                cur.executemany(f"INSERT INTO {user}.{self.ident(t.name)} VALUES ({marks})", rows, batcherrors=False)
            cur.execute(f"GRANT SELECT ON {user}.{self.ident(t.name)} TO {self.ident(self.reader)}")
        dropped = self.add_keys(src, f"{user}.")
        cur.execute("MERGE INTO exesql_migrations m USING (SELECT :1 d, :2 c FROM dual) s ON (m.db_id = s.d) "
                    "WHEN MATCHED THEN UPDATE SET m.checksum = s.c WHEN NOT MATCHED THEN INSERT VALUES (s.d, s.c)",
                    [src.db_id.lower(), src.checksum])
        self.conn.commit()
        return dropped

    def try_ddl(self, sql):
        import oracledb

        try:
            self.conn.cursor().execute(sql)
        except oracledb.DatabaseError as e:
            return first_line(e)
        return None

    def read_table(self, db_id, table):
        cur = self.conn.cursor()
        cur.execute(f"SELECT * FROM {self.ident(db_id)}.{self.ident(table)}")
        return [tuple(v.read() if hasattr(v, "read") else v for v in r) for r in cur.fetchall()]

    def close(self):
        self.conn.close()


ENGINE = OracleEngine
TARGET = OracleTarget

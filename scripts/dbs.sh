#!/usr/bin/env bash
# PostgreSQL 15 and MariaDB 10.11 for tests and the quickstart, from Debian packages, in a run
# folder, on unix sockets and 127.0.0.1 only.  Usage: scripts/dbs.sh up|down|status|env
#
#   up      start both (idempotent), create the SELECT-only login on each, print how to connect
#   down    stop both cleanly (idempotent)
#   status  say what runs; exit 0 only if both answer
#   env     print the EXESQL_* variables (also written to $EXESQL_DB_DIR/env)
#
# Settings (environment): EXESQL_DB_DIR (default .run/dbs), EXESQL_PG_PORT (55432),
# EXESQL_MYSQL_PORT (53306), EXESQL_READER_PASSWORD (exesql_reader).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=$(realpath -m "${EXESQL_DB_DIR:-.run/dbs}")
PG_PORT=${EXESQL_PG_PORT:-55432}
MY_PORT=${EXESQL_MYSQL_PORT:-53306}
READER=exesql_reader
READER_PW=${EXESQL_READER_PASSWORD:-exesql_reader}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DATA=$DIR/pg
SOCK=$DIR/sock
MY_DATA=$DIR/mariadb
MY_SOCK=$SOCK/mariadb.sock
MY_PID=$DIR/mariadb.pid
# PostgreSQL's initdb refuses root: as root, run it as the postgres OS user.
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); MY_USER=(--user=root); else AS_PG=(); MY_USER=(); fi

log() { echo "dbs: $*" >&2; }
die() { echo "dbs: error: $*" >&2; exit 2; }

pg_up() { "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
my_up() { mariadb --no-defaults -S "$MY_SOCK" -uroot -e 'select 1' >/dev/null 2>&1; }
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PG_PORT" -U postgres "$@"; }
my_admin() { mariadb --no-defaults -S "$MY_SOCK" -uroot "$@"; }

start_pg() {
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/setup.sh)"
  mkdir -p "$DIR" "$SOCK"
  chmod 755 "$DIR"; chmod 777 "$SOCK"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$DIR"; then
    die "the postgres OS user cannot reach $DIR (a parent folder is private): choose EXESQL_DB_DIR elsewhere"
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    rm -rf "$PG_DATA"; mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    local pwfile; pwfile=$(mktemp); echo postgres > "$pwfile"; chmod 644 "$pwfile"
    # The admin logs in over the socket without a password; everyone else needs one.
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --no-sync -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$DIR/pg_initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed, see $DIR/pg_initdb.log"; }
    rm -f "$pwfile"
    cat > "$PG_DATA/pg_hba.conf" <<HBA
local all postgres trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
  fi
  if ! pg_up; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 start \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$SOCK \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || die "PostgreSQL did not start, see $PG_DATA/server.log"
  fi
  # The reader: can log in and read what migration grants it, nothing more. Its session
  # starts read-only with a statement timeout; TEMP is revoked so it cannot create tables.
  psql_admin -d postgres <<SQL
SELECT 'CREATE DATABASE exesql' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname='exesql')\gexec
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$READER') THEN
    CREATE ROLE $READER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
END \$\$;
ALTER ROLE $READER PASSWORD '$READER_PW';
ALTER ROLE $READER SET default_transaction_read_only = on;
ALTER ROLE $READER SET statement_timeout = '30s';
ALTER ROLE $READER SET work_mem = '64MB';
ALTER ROLE $READER SET temp_file_limit = '2GB';
REVOKE ALL ON DATABASE exesql FROM PUBLIC;
GRANT CONNECT ON DATABASE exesql TO $READER;
SQL
  psql_admin -d exesql <<SQL
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Functions whose effects outlive a query or reach other sessions: not for the reader.
REVOKE EXECUTE ON FUNCTION set_config(text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_advisory_lock(bigint), pg_advisory_lock(integer, integer),
  pg_advisory_lock_shared(bigint), pg_advisory_lock_shared(integer, integer),
  pg_try_advisory_lock(bigint), pg_try_advisory_lock(integer, integer),
  pg_try_advisory_lock_shared(bigint), pg_try_advisory_lock_shared(integer, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_cancel_backend(integer), pg_terminate_backend(integer, bigint) FROM PUBLIC;
-- Large objects live outside tables, so a read-only session may still create them (and fill
-- the disk): every function that creates, writes or removes one.
REVOKE EXECUTE ON FUNCTION lo_from_bytea(oid, bytea), lo_create(oid), lo_creat(integer),
  lo_import(text), lo_import(text, oid), lo_export(oid, text), lo_put(oid, bigint, bytea),
  lowrite(integer, bytea), lo_unlink(oid), lo_truncate(integer, integer),
  lo_truncate64(integer, bigint), lo_open(oid, integer) FROM PUBLIC;
-- Notifications reach other sessions; the random seed outlives the query.
REVOKE EXECUTE ON FUNCTION pg_notify(text, text), setseed(double precision) FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS exesql_check;
CREATE TABLE IF NOT EXISTS exesql_check.canary (id int PRIMARY KEY, note text);
INSERT INTO exesql_check.canary VALUES (1, 'the reader may read this') ON CONFLICT DO NOTHING;
GRANT USAGE ON SCHEMA exesql_check TO $READER;
GRANT SELECT ON ALL TABLES IN SCHEMA exesql_check TO $READER;
SQL
}

start_mariadb() {
  command -v mariadbd >/dev/null || die "mariadbd not found (run scripts/setup.sh)"
  mkdir -p "$DIR" "$SOCK"
  if [ ! -d "$MY_DATA/mysql" ]; then
    rm -rf "$MY_DATA"
    mariadb-install-db --no-defaults --datadir="$MY_DATA" "${MY_USER[@]}" \
      --auth-root-authentication-method=normal --skip-test-db --lower-case-table-names=1 \
      >"$DIR/mariadb_install.log" 2>&1 || die "mariadb-install-db failed, see $DIR/mariadb_install.log"
  fi
  if ! my_up; then
    # setsid: the server outlives this script (and the make target that ran it).
    # sql_mode is MySQL 8's default (ONLY_FULL_GROUP_BY on), since MariaDB stands in for it.
    setsid mariadbd --no-defaults --datadir="$MY_DATA" --socket="$MY_SOCK" --port="$MY_PORT" \
      --bind-address=127.0.0.1 --pid-file="$MY_PID" --log-error="$DIR/mariadb.log" "${MY_USER[@]}" \
      --lower-case-table-names=1 --max-recursive-iterations=4294967295 --max-connections=200 \
      --innodb-flush-log-at-trx-commit=0 --skip-name-resolve --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_general_ci \
      --sql-mode=ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION \
      </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 100); do my_up && break; sleep 0.2; done
    my_up || die "MariaDB did not start, see $DIR/mariadb.log"
  fi
  # With --skip-name-resolve, 'localhost' is the socket and '127.0.0.1' is TCP: one user each.
  # Only the socket root stays: no passwordless root over TCP.
  my_admin <<SQL
DELETE FROM mysql.global_priv WHERE User='root' AND Host<>'localhost';
DELETE FROM mysql.global_priv WHERE User='';
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS '$READER'@'localhost' IDENTIFIED BY '$READER_PW';
CREATE USER IF NOT EXISTS '$READER'@'127.0.0.1' IDENTIFIED BY '$READER_PW';
ALTER USER '$READER'@'localhost' IDENTIFIED BY '$READER_PW';
ALTER USER '$READER'@'127.0.0.1' IDENTIFIED BY '$READER_PW';
CREATE DATABASE IF NOT EXISTS exesql_check;
CREATE TABLE IF NOT EXISTS exesql_check.canary (id int PRIMARY KEY, note text);
INSERT IGNORE INTO exesql_check.canary VALUES (1, 'the reader may read this');
GRANT SELECT ON exesql_check.* TO '$READER'@'localhost';
GRANT SELECT ON exesql_check.* TO '$READER'@'127.0.0.1';
SQL
}

stop_pg() {
  if [ -f "$PG_DATA/PG_VERSION" ] && pg_up; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null
    log "PostgreSQL stopped"
  fi
}

stop_mariadb() {
  if my_up; then
    my_admin -e 'SHUTDOWN' >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do [ -f "$MY_PID" ] || break; sleep 0.1; done
    [ -f "$MY_PID" ] && kill "$(cat "$MY_PID")" 2>/dev/null || true
    log "MariaDB stopped"
  fi
}

write_env() {
  cat > "$DIR/env" <<ENV
export EXESQL_PG_ADMIN_DSN='host=$SOCK port=$PG_PORT user=postgres dbname=exesql'
export EXESQL_PG_DSN='host=$SOCK port=$PG_PORT user=$READER password=$READER_PW dbname=exesql'
export EXESQL_PG_TCP_DSN='host=127.0.0.1 port=$PG_PORT user=$READER password=$READER_PW dbname=exesql sslmode=disable'
export EXESQL_MYSQL_ADMIN_DSN='mysql://root@localhost/?unix_socket=$MY_SOCK'
export EXESQL_MYSQL_DSN='mysql://$READER:$READER_PW@localhost/?unix_socket=$MY_SOCK'
export EXESQL_MYSQL_TCP_DSN='mysql://$READER:$READER_PW@127.0.0.1:$MY_PORT/'
ENV
  cat "$DIR/env"
}

case "${1:-}" in
  up)
    start_pg; start_mariadb
    log "PostgreSQL 15 on $SOCK (port $PG_PORT) and 127.0.0.1:$PG_PORT; psql -h $SOCK -p $PG_PORT -U postgres exesql"
    log "MariaDB $(mariadbd --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+-MariaDB' || true) on $MY_SOCK and 127.0.0.1:$MY_PORT; mariadb -S $MY_SOCK -uroot"
    log "SELECT-only login on both: $READER (password in $DIR/env)"
    write_env ;;
  down) stop_mariadb; stop_pg ;;
  status)
    rc=0
    if [ -f "$PG_DATA/PG_VERSION" ] && pg_up; then echo "postgres: running on $SOCK:$PG_PORT"; else echo "postgres: stopped"; rc=3; fi
    if my_up; then echo "mariadb: running on $MY_SOCK:$MY_PORT"; else echo "mariadb: stopped"; rc=3; fi
    exit $rc ;;
  env) [ -f "$DIR/env" ] && cat "$DIR/env" || die "not up: run scripts/dbs.sh up" ;;
  *) echo "usage: scripts/dbs.sh up|down|status|env" >&2; exit 2 ;;
esac

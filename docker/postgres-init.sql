-- The SELECT-only login, as scripts/dbs.sh makes it (UNVERIFIED under Docker).
CREATE ROLE exesql_reader LOGIN PASSWORD 'exesql_reader' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER ROLE exesql_reader SET default_transaction_read_only = on;
ALTER ROLE exesql_reader SET statement_timeout = '30s';
REVOKE ALL ON DATABASE exesql FROM PUBLIC;
GRANT CONNECT ON DATABASE exesql TO exesql_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION set_config(text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_advisory_lock(bigint), pg_advisory_lock_shared(bigint),
  pg_try_advisory_lock(bigint), pg_try_advisory_lock_shared(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_cancel_backend(integer), pg_terminate_backend(integer, bigint) FROM PUBLIC;

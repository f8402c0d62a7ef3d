-- The SELECT-only login; migration grants it SELECT per database (UNVERIFIED under Docker).
CREATE USER IF NOT EXISTS 'exesql_reader'@'%' IDENTIFIED BY 'exesql_reader';

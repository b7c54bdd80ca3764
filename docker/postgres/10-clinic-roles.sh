#!/bin/sh
# First start of the PostgreSQL container only: the database `clinic`, owned by `clinic_owner` (migrations run as
# it), and `clinic_app`, the role the web, worker and beat processes connect as. `manage.py db_grant_app_role
# clinic_app` (the compose file's `migrate` service, after each migration) gives it every table but lets it only
# append to and read the audit trail; owning nothing, it cannot disable the audit triggers either.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$CLINIC_OWNER_PASSWORD" -v app_password="$CLINIC_APP_PASSWORD" <<'SQL'
CREATE ROLE clinic_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE clinic_app LOGIN PASSWORD :'app_password';
CREATE DATABASE clinic OWNER clinic_owner;
REVOKE ALL ON DATABASE clinic FROM PUBLIC;
GRANT CONNECT ON DATABASE clinic TO clinic_app;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname clinic <<'SQL'
ALTER SCHEMA public OWNER TO clinic_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL

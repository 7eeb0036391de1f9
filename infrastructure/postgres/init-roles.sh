#!/bin/sh
# Runs once, on an empty data directory (/docker-entrypoint-initdb.d). Creates the owner role
# (runs the service's migrations) and the application login role (DML only) for this
# instance's database, which the image already created as POSTGRES_DB. Idempotent.
#   AEGIS_DB_NAME, AEGIS_OWNER_PASSWORD, AEGIS_APP_PASSWORD (environment)
set -eu

: "${AEGIS_DB_NAME:?}" "${AEGIS_OWNER_PASSWORD:?}" "${AEGIS_APP_PASSWORD:?}"
short=${AEGIS_DB_NAME#aegis_}
owner="aegis_${short}_owner"
app="aegis_${short}_user"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$AEGIS_DB_NAME" \
    -v owner="$owner" -v app="$app" -v db="$AEGIS_DB_NAME" \
    -v owner_pw="$AEGIS_OWNER_PASSWORD" -v app_pw="$AEGIS_APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'owner', :'owner_pw') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'app_pw') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'owner') \gexec
SELECT format('ALTER SCHEMA public OWNER TO %I', :'owner') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'app') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', :'owner', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I', :'owner', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO %I', :'owner', :'app') \gexec
SQL
echo "init-roles: $owner (migrations) and $app (application) ready on $AEGIS_DB_NAME"

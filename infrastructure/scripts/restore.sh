#!/usr/bin/env bash
# Restores one Aegis database from a backup made by backup.sh (or by the original scripts).
#
#   restore.sh <backend|ai|executor> [FILE|latest|list] [--yes]
#
# Formats: new  <db>_<ts>.dump[.age|.enc]  (pg_dump -Fc; .enc = aes-256-cbc, pbkdf2, 600000 it.)
#          legacy <db>_<ts>.sql.gz[.enc]   (plain SQL; .enc = aes-256-cbc, pbkdf2, 10000 it.)
# Environment: BACKUP_DIR, BACKUP_ENCRYPTION_KEY or BACKUP_AGE_IDENTITY (file),
#   <DB>_DB_{HOST,PORT,NAME} and the superuser PGADMIN_USER (postgres) / PGADMIN_PASSWORD.
# The database is dropped (after terminating its connections) and re-created owned by
# aegis_<db>_owner when that role exists; grants for aegis_<db>_user are re-applied.
# Decrypted material lives in a mktemp -d directory removed on exit.
#
# Redis restore (manual): stop redis, replace /data/dump.rdb with the gunzipped snapshot
# (and move appendonly files aside), start redis.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
backup_dir=${BACKUP_DIR:-$script_dir/../backups}
usage() { sed -n '2,17p' "$0"; exit 2; }

[[ $# -ge 1 ]] || usage
key=$1
shift
case $key in backend | ai | executor) ;; *) usage ;; esac
what=latest
yes=false
for arg in "$@"; do
    case $arg in
        --yes | -y) yes=true ;;
        -h | --help) usage ;;
        *) what=$arg ;;
    esac
done

dir="$backup_dir/postgres-$key"
upper=$(printf '%s' "$key" | tr '[:lower:]' '[:upper:]')
host=$(printenv "${upper}_DB_HOST" || echo "postgres-$key")
port=$(printenv "${upper}_DB_PORT" || echo 5432)
name=$(printenv "${upper}_DB_NAME" || echo "aegis_$key")
owner="aegis_${key}_owner"
app="aegis_${key}_user"
export PGHOST=$host PGPORT=$port PGUSER=${PGADMIN_USER:-postgres}
if [[ -n ${PGADMIN_PASSWORD:-} ]]; then export PGPASSWORD=$PGADMIN_PASSWORD; fi

list_backups() {
    find "$dir" -maxdepth 1 -type f \( -name "${key}_*.dump*" -o -name "${key}_*.sql.gz*" \) \
        ! -name '*.sha256' -printf '%T@ %p\n' 2> /dev/null | sort -rn | cut -d' ' -f2-
}

case $what in
    list)
        list_backups
        exit 0
        ;;
    latest)
        file=$(list_backups | head -1)
        [[ -n $file ]] || { echo "restore: no backups for $key in $dir" >&2; exit 1; }
        ;;
    *) file=$what ;;
esac
[[ -r $file ]] || { echo "restore: cannot read $file" >&2; exit 1; }

if [[ -f $file.sha256 ]]; then
    (cd "$(dirname "$file")" && sha256sum --quiet -c "$(basename "$file").sha256") ||
        { echo "restore: checksum mismatch for $file" >&2; exit 1; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

need_key() {
    [[ -n ${BACKUP_ENCRYPTION_KEY:-} ]] || { echo "restore: BACKUP_ENCRYPTION_KEY is required for $file" >&2; exit 1; }
}
base=$(basename "$file")
case $base in
    *.dump.age)
        age -d -i "${BACKUP_AGE_IDENTITY:?BACKUP_AGE_IDENTITY is required}" -o "$work/db.dump" "$file"
        format=custom ;;
    *.dump.enc)
        need_key
        openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -pass env:BACKUP_ENCRYPTION_KEY -in "$file" -out "$work/db.dump"
        format=custom ;;
    *.dump)
        cp "$file" "$work/db.dump"
        format=custom ;;
    *.sql.gz.enc)
        need_key
        # Legacy: openssl enc -aes-256-cbc -salt -pbkdf2 -k KEY (default 10000 iterations).
        openssl enc -d -aes-256-cbc -pbkdf2 -iter 10000 -pass env:BACKUP_ENCRYPTION_KEY -in "$file" | gunzip > "$work/db.sql"
        format=sql ;;
    *.sql.gz)
        gunzip -c "$file" > "$work/db.sql"
        format=sql ;;
    *) echo "restore: unknown backup format: $base" >&2; exit 1 ;;
esac

if [[ $yes != true ]]; then
    if [[ ! -t 0 ]]; then
        echo "restore: refusing to drop $name without --yes (no terminal to confirm)" >&2
        exit 1
    fi
    read -r -p "This DROPS database $name on $host:$port and restores $base. Type the database name to continue: " answer
    [[ $answer == "$name" ]] || { echo "restore: aborted" >&2; exit 1; }
fi

role_exists() { [[ $(psql -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$1'") == 1 ]]; }
db_owner=$PGUSER
if role_exists "$owner"; then db_owner=$owner; fi

echo "restore: terminating connections to $name"
psql -d postgres -v ON_ERROR_STOP=1 -q -v db="$name" -v owner="$db_owner" << 'SQL'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid();
SELECT format('DROP DATABASE IF EXISTS %I', :'db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner') \gexec
SQL

echo "restore: loading $base into $name"
if [[ $format == custom ]]; then
    pg_restore --no-owner --role="$db_owner" --exit-on-error -d "$name" "$work/db.dump"
else
    psql -v ON_ERROR_STOP=1 -q -d "$name" -c "SET ROLE \"$db_owner\"" -f "$work/db.sql" > /dev/null
fi

if role_exists "$app"; then
    echo "restore: re-applying grants for $app"
    psql -d "$name" -v ON_ERROR_STOP=1 -q -v app="$app" -v db="$name" << 'SQL'
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'app') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app') \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', :'app') \gexec
SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', :'app') \gexec
SQL
fi
echo "restore: done. Run 'aegis-<service> migrate' if the backup predates the current schema."

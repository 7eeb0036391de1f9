#!/usr/bin/env bash
# Backs up the three Aegis databases (pg_dump custom format) and, optionally, Redis.
#
# Environment:
#   BACKUP_DIR                 target directory (default: infrastructure/backups)
#   BACKUP_DATABASES           subset of "backend ai executor" (default: all three)
#   {BACKEND,AI,EXECUTOR}_DB_{HOST,PORT,USER,PASSWORD,NAME}   connection per database
#   BACKUP_AGE_RECIPIENT       encrypt with age to this recipient (preferred)  -> .dump.age
#   BACKUP_ENCRYPTION_KEY      else encrypt with openssl aes-256-cbc, pbkdf2, 600000 iterations,
#                              the key read from the environment, never the command line -> .dump.enc
#   BACKUP_REDIS=true          also fetch an RDB snapshot with redis-cli --rdb over TLS
#   REDIS_HOST, REDIS_PORT (6380), REDIS_PASSWORD, REDIS_CA_CERT
#   BACKUP_RETENTION_DAYS      delete backups older than N days (default 30)
# Every artefact gets a .sha256 file. pg_dump's stderr goes to the log, never into the dump.
# Exit status is non-zero when any backup failed.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
backup_dir=${BACKUP_DIR:-$script_dir/../backups}
databases=${BACKUP_DATABASES:-backend ai executor}
retention=${BACKUP_RETENTION_DAYS:-30}
stamp=$(date -u +%Y%m%d_%H%M%S)
umask 077
mkdir -p "$backup_dir"
log="$backup_dir/backup_$stamp.log"
failures=0

say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$log"; }

encrypt() { # FILE -> prints the final path
    local in=$1
    if [[ -n ${BACKUP_AGE_RECIPIENT:-} ]]; then
        age -r "$BACKUP_AGE_RECIPIENT" -o "$in.age" "$in"
        rm -f "$in"
        printf '%s\n' "$in.age"
    elif [[ -n ${BACKUP_ENCRYPTION_KEY:-} ]]; then
        openssl enc -aes-256-cbc -salt -pbkdf2 -iter 600000 \
            -pass env:BACKUP_ENCRYPTION_KEY -in "$in" -out "$in.enc"
        rm -f "$in"
        printf '%s\n' "$in.enc"
    else
        printf '%s\n' "$in"
    fi
}

checksum() {
    (cd "$(dirname "$1")" && sha256sum "$(basename "$1")" > "$(basename "$1").sha256")
}

backup_db() {
    local key=$1 upper host port user name dir file final
    upper=$(printf '%s' "$key" | tr '[:lower:]' '[:upper:]')
    host=$(printenv "${upper}_DB_HOST" || echo "postgres-$key")
    port=$(printenv "${upper}_DB_PORT" || echo 5432)
    user=$(printenv "${upper}_DB_USER" || echo "aegis_${key}_owner")
    name=$(printenv "${upper}_DB_NAME" || echo "aegis_$key")
    dir="$backup_dir/postgres-$key"
    mkdir -p "$dir"
    file="$dir/${key}_$stamp.dump"
    say "pg_dump $name@$host:$port -> $file"
    if ! PGPASSWORD=$(printenv "${upper}_DB_PASSWORD" || true) pg_dump -h "$host" -p "$port" \
        -U "$user" -d "$name" -Fc --no-owner -f "$file" 2>> "$log"; then
        say "FAILED: pg_dump of $name (see $log)"
        rm -f "$file"
        return 1
    fi
    final=$(encrypt "$file")
    checksum "$final"
    say "ok: $final"
}

backup_redis() {
    local dir="$backup_dir/redis" file
    mkdir -p "$dir"
    file="$dir/redis_$stamp.rdb"
    say "redis-cli --rdb ${REDIS_HOST:-redis}:${REDIS_PORT:-6380} -> $file"
    if ! REDISCLI_AUTH=${REDIS_PASSWORD:-} redis-cli --tls --cacert "${REDIS_CA_CERT:-$script_dir/../ssl/redis/ca.crt}" \
        -h "${REDIS_HOST:-redis}" -p "${REDIS_PORT:-6380}" --rdb "$file" >> "$log" 2>&1; then
        say "FAILED: redis snapshot (see $log)"
        rm -f "$file"
        return 1
    fi
    gzip -f "$file"
    local final
    final=$(encrypt "$file.gz")
    checksum "$final"
    say "ok: $final"
}

for key in $databases; do
    case $key in
        backend | ai | executor) backup_db "$key" || failures=$((failures + 1)) ;;
        *) say "unknown database key '$key'"; failures=$((failures + 1)) ;;
    esac
done
if [[ ${BACKUP_REDIS:-false} == true ]]; then
    backup_redis || failures=$((failures + 1))
fi

deleted=$(find "$backup_dir" -mindepth 2 -type f -mtime "+$retention" -print -delete | wc -l)
say "retention: deleted $deleted file(s) older than $retention days"

report="$backup_dir/backup_report_$stamp.txt"
{
    echo "Aegis backup report $stamp (failures: $failures)"
    for dir in "$backup_dir"/*/; do
        [[ -d $dir ]] || continue
        echo "== $(basename "$dir") ($(du -sh "$dir" | cut -f1))"
        find "$dir" -maxdepth 1 -type f ! -name '*.sha256' -printf '%T@ %f\n' | sort -rn | head -5 | cut -d' ' -f2-
    done
} > "$report"
say "report: $report"
if ((failures > 0)); then
    say "$failures backup(s) failed"
    exit 1
fi

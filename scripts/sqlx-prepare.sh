#!/usr/bin/env bash
# Regenerates what `sqlx::query!` checks statements against when a crate compiles: the
# descriptions in crates/<crate>/.sqlx/ of every checked statement, taken from a scratch
# database migrated with the crate's own migrations. Run it after changing a checked statement
# or a migration, and commit the result; builds read only these files (SQLX_OFFLINE=true), so
# they need no database.
#
#   scripts/sqlx-prepare.sh           regenerate crates/backend/.sqlx and crates/executor/.sqlx
#   scripts/sqlx-prepare.sh --check   fail if the committed descriptions are not what the
#                                     current statements and migrations give
#
# Needs PostgreSQL as the tests use it (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres)
# and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/aegis/target}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

status=0
for crate in backend executor; do
  db="aegis_sqlx_prepare_$crate"
  psql_q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  for migration in "crates/$crate/migrations/"*.sql; do
    psql_q -d "$db" --single-transaction -f "$migration" > /dev/null
  done

  out="$root/crates/$crate/.sqlx"
  if $check; then out=$(mktemp -d); fi
  rm -rf "$out" && mkdir -p "$out"
  # The macros describe a statement only when they expand, so make cargo compile the crate
  # again: its sources are newer than its last build.
  find "crates/$crate/src" -name '*.rs' -exec touch {} +
  SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
    DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$db" \
    cargo check --quiet --locked -p "aegis-$crate" --lib
  psql_q -d postgres -c "DROP DATABASE $db"

  if $check; then
    if ! diff -r "$root/crates/$crate/.sqlx" "$out" > /dev/null 2>&1; then
      echo "crates/$crate/.sqlx is stale: run scripts/sqlx-prepare.sh and commit the result" >&2
      diff -r "$root/crates/$crate/.sqlx" "$out" >&2 || true
      status=1
    fi
    rm -rf "$out"
  else
    echo "crates/$crate/.sqlx: $(find "$out" -name 'query-*.json' | wc -l) statements"
  fi
done
exit $status

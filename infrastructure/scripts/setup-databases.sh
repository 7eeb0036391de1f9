#!/usr/bin/env bash
# Prepares the data tier of infrastructure/docker-compose.yml, non-interactively:
#   1. TLS certificates (generate-ssl-certs.sh, skipped when they exist)
#   2. docker compose up -d --wait, or with docker-compose 1.29 (no --wait) up -d and then
#      scripts/compose-wait.sh (roles are created by postgres/init-roles.sh on first start)
#   3. optional: migrations via the service binaries (--migrate), test users via the backend
#      signup API (--with-test-data, needs the backend running at BACKEND_URL)
# Re-running is safe: certificates are reused, migrations are idempotent.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
infra_dir=$(cd "$script_dir/.." && pwd)
migrate=false
test_data=false
for arg in "$@"; do
    case $arg in
        --migrate) migrate=true ;;
        --with-test-data) test_data=true ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup-databases: unknown argument $arg" >&2; exit 2 ;;
    esac
done

[[ -f $infra_dir/.env ]] || { echo "setup-databases: create $infra_dir/.env from .env.example first" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$infra_dir/.env"
set +a

"$script_dir/generate-ssl-certs.sh"
mkdir -p "$infra_dir/backups"
compose_args=(-f "$infra_dir/docker-compose.yml" --env-file "$infra_dir/.env")
if docker compose version > /dev/null 2>&1; then
    docker compose "${compose_args[@]}" up -d --wait
else
    docker-compose "${compose_args[@]}" up -d
    "$infra_dir/../scripts/compose-wait.sh" "${compose_args[@]}"
fi

if [[ $migrate == true ]]; then
    for svc in backend ai executor; do
        upper=$(printf '%s' "$svc" | tr '[:lower:]' '[:upper:]')
        port_var="${upper}_DB_HOST_PORT"
        owner_pw_var="${upper}_DB_OWNER_PASSWORD"
        bin="aegis-$svc"
        [[ $svc == ai ]] && bin=aegis-ai-engine
        url="postgres://aegis_${svc}_owner:${!owner_pw_var}@127.0.0.1:${!port_var}/aegis_$svc?sslmode=require"
        echo "migrating aegis_$svc"
        if command -v "$bin" > /dev/null; then
            DATABASE_URL=$url "$bin" migrate
        else
            DATABASE_URL=$url cargo run -q -p "$bin" -- migrate
        fi
    done
fi

if [[ $test_data == true ]]; then
    backend=${BACKEND_URL:-http://localhost:3000}
    for user in admin.test@aegis.local user.test@aegis.local; do
        echo "signing up $user at $backend"
        curl -fsS -X POST "$backend/api/v1/auth/signup" -H 'Content-Type: application/json' \
            -d "{\"email\":\"$user\",\"password\":\"${TEST_USER_PASSWORD:?set TEST_USER_PASSWORD}\",\"firstName\":\"Test\",\"lastName\":\"User\"}" ||
            echo "  (already exists or backend not running)"
    done
fi
echo "data tier ready; check it with infrastructure/scripts/test-connections.sh"

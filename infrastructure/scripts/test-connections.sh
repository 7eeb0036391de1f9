#!/usr/bin/env bash
# Checks the data tier of infrastructure/docker-compose.yml from the host, exactly:
# PostgreSQL (pg_isready, SELECT 1, TLS with sslmode=verify-full against the generated CA),
# Redis over TLS on 6380 (PING/SET/GET/DEL with the password), Loki (/ready and a test push),
# certificate validity. Exit status 1 when any check fails.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
infra_dir=$(cd "$script_dir/.." && pwd)
if [[ -f $infra_dir/.env ]]; then
    set -a
    # shellcheck disable=SC1091
    . "$infra_dir/.env"
    set +a
fi
ssl=${SSL_DIR:-$infra_dir/ssl}
pass=0
fail=0
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" > /dev/null 2>&1; then
        echo "  ok    $what"
        pass=$((pass + 1))
    else
        echo "  FAIL  $what"
        fail=$((fail + 1))
    fi
}
equals() { # EXPECTED COMMAND...
    local expected=$1 got
    shift
    got=$("$@" 2> /dev/null) || return 1
    [[ $got == "$expected" ]]
}

echo "PostgreSQL"
for svc in backend ai executor; do
    upper=$(printf '%s' "$svc" | tr '[:lower:]' '[:upper:]')
    port_var="${upper}_DB_HOST_PORT"
    pw_var="${upper}_DB_OWNER_PASSWORD"
    port=${!port_var:-}
    case $svc in backend) port=${port:-5432} ;; ai) port=${port:-5433} ;; executor) port=${port:-5434} ;; esac
    export PGPASSWORD=${!pw_var:-}
    conn="host=localhost port=$port dbname=aegis_$svc user=aegis_${svc}_owner"
    check "postgres-$svc accepts connections" pg_isready -h localhost -p "$port" -d "aegis_$svc"
    check "postgres-$svc SELECT 1" equals 1 psql "$conn sslmode=require" -tAc 'SELECT 1'
    check "postgres-$svc TLS verify-full" equals t psql "$conn sslmode=verify-full sslrootcert=$ssl/ca/ca.crt" -tAc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'
done
unset PGPASSWORD

echo "Redis"
export REDISCLI_AUTH=${REDIS_PASSWORD:-}
rcli() { redis-cli --tls --cacert "$ssl/ca/ca.crt" -h localhost -p "${REDIS_HOST_PORT:-6380}" "$@"; }
key="aegis:test-connections:$$"
check "redis PING over TLS" equals PONG rcli PING
check "redis SET" equals OK rcli SET "$key" v EX 60
check "redis GET" equals v rcli GET "$key"
check "redis DEL" equals 1 rcli DEL "$key"

echo "Loki"
loki=${LOKI_HOST_URL:-http://localhost:3100}
check "loki /ready" curl -fsS "$loki/ready"
now=$(date +%s%N)
check "loki push" curl -fsS -X POST "$loki/loki/api/v1/push" -H 'Content-Type: application/json' \
    -d "{\"streams\":[{\"stream\":{\"job\":\"test-connections\"},\"values\":[[\"$now\",\"test-connections probe\"]]}]}"

echo "Certificates"
for crt in "$ssl"/ca/ca.crt "$ssl"/postgres-*/server.crt "$ssl"/redis/redis.crt; do
    check "$(basename "$(dirname "$crt")") valid for 24h" openssl x509 -checkend 86400 -noout -in "$crt"
done

echo "passed: $pass, failed: $fail"
((fail == 0))

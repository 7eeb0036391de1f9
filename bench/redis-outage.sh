#!/usr/bin/env bash
# What a Redis outage costs the backend (see bench/README.md, "Redis outage").
#
#   bench/redis-outage.sh
#
# Starts the release backend twice against the local PostgreSQL: once with the local Redis,
# once with a "hung" Redis (a loopback listener that accepts connections and never answers,
# the worst kind of outage: every command would wait for the full timeout). Each time, wrk
# sends POST /api/v1/policy/evaluate with a service key (rate limit and decision-cache version
# both live in Redis) and prints requests per second and latency percentiles.
#
# Environment: BENCH_DURATION (10 s), BENCH_CONCURRENCY (32), CARGO_TARGET_DIR (<repo>/target),
# BENCH_SKIP_BUILD=1 to use the binary already built, PGHOST/PGPORT (127.0.0.1:5432).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
duration=${BENCH_DURATION:-10}
conc=${BENCH_CONCURRENCY:-32}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
backend_bin="$target_dir/release/aegis-backend"
pg="${PGHOST:-127.0.0.1}:${PGPORT:-5432}"
key=outage-bench-key

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --locked -p aegis-backend --bin aegis-backend
fi
psql "postgres://postgres@$pg/postgres" -qc "SET client_min_messages = warning" -qc "DROP DATABASE IF EXISTS aegis_bench_outage" -qc "CREATE DATABASE aegis_bench_outage" >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A Redis that accepts and never answers.
hung_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$hung_port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
pids+=($!)

run() { # run <label> <redis url>
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    APP_ENV=test HOST=127.0.0.1 PORT=$port LOG_LEVEL=error \
        DATABASE_URL="postgres://postgres@$pg/aegis_bench_outage" REDIS_URL="$2" \
        REDIS_KEY_PREFIX="outage:$$:" SERVICE_API_KEYS=$key HEALTH_CHECK_AI_ENGINE=false \
        RATE_LIMIT_MAX=100000000 \
        JWT_SECRET=outage-access-secret-0123456789abcdef \
        JWT_REFRESH_SECRET=outage-refresh-secret-0123456789abcdef \
        "$backend_bin" >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    # One request first, so a hung Redis has been found out before the measurement.
    curl -s -o /dev/null -X POST -H "X-API-Key: $key" -H 'Content-Type: application/json' \
        -d '{"type":"self_healing","action":"scale_up","resource":"service:x","context":{}}' \
        "http://127.0.0.1:$port/api/v1/policy/evaluate"
    local out
    out=$(mktemp)
    BENCH_LUA_DIR="$here/lua" BENCH_API_KEY=$key BENCH_WRK_OUT="$out" \
        wrk -t2 -c"$conc" -d"${duration}s" --timeout 10s --latency \
        -s "$here/lua/evaluate_hit.lua" "http://127.0.0.1:$port/api/v1/policy/evaluate" >/dev/null
    python3 - "$1" "$out" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
secs = r["duration_us"] / 1e6
print(f'{label:<12} {r["requests"] / secs:>9.0f} req/s   p50 {r["p50_us"] / 1000:>7.2f} ms   '
      f'p99 {r["p99_us"] / 1000:>7.2f} ms   errors {r["other"] + r["socket_errors"]}')
PY
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

echo "evaluate, c=$conc, ${duration}s each"
run "redis up" "redis://127.0.0.1:6379"
run "redis hung" "redis://127.0.0.1:$hung_port"

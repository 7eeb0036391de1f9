#!/usr/bin/env bash
# The HTTP load harness of issue #11 (see bench/README.md).
#
#   bench/run.sh [scenario...]     default: every scenario
#
# Scenarios: evaluate-hit evaluate-miss login detect-anomaly detect-failure execute-dry-run
# loop loop-paced. The ping ceiling (GET /api/v1/health/ping on the backend) always runs first.
#
# It builds the release binaries, installs wrk (and jq) when missing, recreates the databases
# aegis_bench_backend, aegis_bench_ai and aegis_bench_executor on the local PostgreSQL
# (127.0.0.1:5432, user postgres, trust auth), starts kube-sim and the three services with
# `aegis-loadgen stack` (Redis keys under a per-run prefix), runs every scenario at each
# concurrency, stops the stack and prints the summary table. Results: bench/results/<UTC stamp>/.
#
# Environment:
#   BENCH_DURATION=20          seconds per scenario run
#   BENCH_CONCURRENCY="16 64"  connections (wrk) or workers (aegis-loadgen) per run
#   BENCH_WRK_THREADS=2        wrk threads
#   BENCH_LOOP_RATE=10         signals per second of the paced loop run
#   BENCH_DEPLOYMENTS=64       bench deployments seeded into kube-sim (its every write copies its whole
#                              store: more objects make every scale slower; keep it >= the highest c)
#   BENCH_SKIP_BUILD=1         use the binaries already in $CARGO_TARGET_DIR/release
#   CARGO_TARGET_DIR           default: <repo>/target
#   PGHOST/PGPORT              default 127.0.0.1:5432

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
duration=${BENCH_DURATION:-20}
read -r -a concurrencies <<< "${BENCH_CONCURRENCY:-16 64}"
threads=${BENCH_WRK_THREADS:-2}
loop_rate=${BENCH_LOOP_RATE:-10}
deployments=${BENCH_DEPLOYMENTS:-64}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin="$target_dir/release"
loadgen="$bin/aegis-loadgen"
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}

all=(evaluate-hit evaluate-miss login detect-anomaly detect-failure execute-dry-run loop loop-paced)
if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=("${all[@]}")
fi
for s in "${scenarios[@]}"; do
    case " ${all[*]} " in
        *" $s "*) ;;
        *) echo "run.sh: unknown scenario $s (known: ${all[*]})" >&2; exit 2 ;;
    esac
done

# --- tools and binaries ----------------------------------------------------------------------
missing=()
command -v wrk > /dev/null || missing+=(wrk)
command -v jq > /dev/null || missing+=(jq)
command -v psql > /dev/null || missing+=(postgresql-client)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get install -y "${missing[@]}" \
        || { "${sudo_cmd[@]}" apt-get update && "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"; }
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    echo "==> building release binaries into $target_dir"
    (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release --locked \
        -p aegis-backend -p aegis-ai-engine -p aegis-executor -p kube-sim -p aegis-loadgen)
fi
for b in aegis-backend aegis-ai-engine aegis-executor kube-sim aegis-loadgen; do
    [ -x "$bin/$b" ] || { echo "run.sh: $bin/$b is missing (unset BENCH_SKIP_BUILD)" >&2; exit 1; }
done

# --- fresh databases, the stack --------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results="$here/results/$stamp"
mkdir -p "$results"
echo "==> results in $results"
for db in aegis_bench_backend aegis_bench_ai aegis_bench_executor; do
    psql -h "$pg_host" -p "$pg_port" -U postgres -d postgres -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done

state="$results/stack.json"
stack_pid=
cleanup() {
    if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2> /dev/null; then
        echo "==> stopping the stack"
        kill -TERM "$stack_pid" 2> /dev/null || true
        wait "$stack_pid" 2> /dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> starting kube-sim and the services ($deployments bench deployments; logs in $results/run)"
"$loadgen" stack --state "$state" --run-dir "$results/run" --bin-dir "$bin" \
    --deployments "$deployments" &
stack_pid=$!
for _ in $(seq 1 600); do
    [ -s "$state" ] && break
    kill -0 "$stack_pid" 2> /dev/null || { echo "run.sh: the stack did not start" >&2; exit 1; }
    sleep 0.5
done
[ -s "$state" ] || { echo "run.sh: the stack was not up within 300 s" >&2; exit 1; }

backend=$(jq -r .urls.backend "$state")
ai=$(jq -r '.urls["ai-engine"]' "$state")
service_key=$(jq -r .secrets.service_key "$state")
ai_key=$(jq -r .secrets.ai_key "$state")
export BENCH_LUA_DIR="$here/lua"
export BENCH_LOGIN_EMAIL BENCH_LOGIN_PASSWORD
BENCH_LOGIN_EMAIL=$(jq -r .secrets.admin_email "$state")
BENCH_LOGIN_PASSWORD=$(jq -r .secrets.admin_password "$state")
echo "    backend $backend, ai-engine $ai, forest trained after $(jq -r .forest_trained_after "$state") requests"
echo "    idle RSS (MiB): $(jq -c .idle_rss_mib "$state")"

# --- scenarios -------------------------------------------------------------------------------
# run_wrk SCENARIO SERVICE API_KEY LUA URL CONCURRENCY
run_wrk() {
    BENCH_API_KEY=$3 "$loadgen" wrk --state "$state" --scenario "$1" --service "$2" \
        --conc "$6" --duration "$duration" --out "$results/$1-c$6.json" -- \
        wrk -t"$threads" -c"$6" -d"${duration}s" --timeout 10s --latency -s "$here/lua/$4" "$5"
    sleep 2
}

scenario() {
    local s=$1 c=$2
    case "$s" in
        ceiling-ping) run_wrk "$s" backend "" ping.lua "$backend/api/v1/health/ping" "$c" ;;
        evaluate-hit) run_wrk "$s" backend "$service_key" evaluate_hit.lua "$backend/api/v1/policy/evaluate" "$c" ;;
        evaluate-miss) run_wrk "$s" backend "$service_key" evaluate_miss.lua "$backend/api/v1/policy/evaluate" "$c" ;;
        login) run_wrk "$s" backend "" login.lua "$backend/api/v1/auth/login" "$c" ;;
        detect-anomaly) run_wrk "$s" ai-engine "$ai_key" anomaly.lua "$ai/api/v1/detect-anomaly" "$c" ;;
        detect-failure) run_wrk "$s" ai-engine "$ai_key" failure.lua "$ai/api/v1/detect-failure" "$c" ;;
        execute-dry-run)
            "$loadgen" execute --state "$state" --scenario "$s" --service executor --conc "$c" \
                --duration "$duration" --out "$results/$s-c$c.json"
            sleep 2
            ;;
        loop)
            "$loadgen" loop --state "$state" --scenario "$s" --service backend --conc "$c" \
                --duration "$duration" --out "$results/$s-c$c.json"
            ;;
        loop-paced)
            "$loadgen" loop --state "$state" --scenario "$s" --service backend --conc "$c" \
                --duration "$duration" --rate "$loop_rate" --out "$results/$s-c$c.json"
            ;;
    esac
}

echo "==> ${duration} s per run at c = ${concurrencies[*]}"
for c in "${concurrencies[@]}"; do
    scenario ceiling-ping "$c"
done
for s in "${scenarios[@]}"; do
    if [ "$s" = loop-paced ]; then
        # One paced run: the latency of the loop below saturation does not depend on c.
        scenario "$s" "${concurrencies[0]}"
        continue
    fi
    for c in "${concurrencies[@]}"; do
        scenario "$s" "$c"
    done
done

cleanup
stack_pid=
echo
echo "==> summary ($results/summary.md)"
"$loadgen" report --dir "$results"

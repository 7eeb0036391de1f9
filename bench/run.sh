#!/usr/bin/env bash
# The HTTP load harness of issue #11 (see bench/README.md).
#
#   bench/run.sh [scenario...]     default: every scenario
#
# Scenarios: evaluate-hit evaluate-miss login detect-anomaly detect-failure execute-dry-run
# loop-paced loop. The ping ceiling (GET /api/v1/health/ping on the backend) always runs first.
# `bench/run.sh watch-latency` runs only the Kubernetes watcher's latency instead: one pod per
# bench deployment is made to crash-loop, and the time until the backend has opened the
# watcher's incident is reported (p50/p99; BENCH_WATCH_SAMPLES, default 40).
# `bench/run.sh soak` runs the soak instead (issue #12): ten minutes of four paced streams at
# once (see BENCH_SOAK_* below and bench/README.md), RSS sampled every 10 s; it fails on any
# failed request or a service whose RSS keeps growing over the second half.
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
#   BENCH_DEPLOYMENTS=64       bench deployments seeded into kube-sim (one per worker, so workers never
#                              share a per-resource lock; keep it >= the highest c)
#   BENCH_SKIP_BUILD=1         use the binaries already in $CARGO_TARGET_DIR/release
#   BENCH_SOAK_DURATION=600    soak length in seconds
#   BENCH_SOAK_RATES="E A X S" soak rates per second: evaluate-miss, detect-anomaly,
#                              execute-dry-run, loop signals (default: half the measured peak of
#                              each scenario, divided by the four streams that share the cores)
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

# loop-paced runs before the loop flood: with the namespace cap lifted for the floods, every flood
# action stays in the guardrail's hourly count, which a real cap (6) stops reading at its limit.
all=(evaluate-hit evaluate-miss login detect-anomaly detect-failure execute-dry-run loop-paced loop)
if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=("${all[@]}")
fi
soak=0
watch=0
if [ "${scenarios[*]}" = soak ]; then
    soak=1
    scenarios=()
fi
if [ "${scenarios[*]}" = watch-latency ]; then
    watch=1
    scenarios=()
fi
for s in "${scenarios[@]}"; do
    case " ${all[*]} " in
        *" $s "*) ;;
        *) echo "run.sh: unknown scenario $s (known: ${all[*]}; or soak or watch-latency alone)" >&2; exit 2 ;;
    esac
done

# --- tools and binaries ----------------------------------------------------------------------
missing=()
[ "$watch" = 1 ] || command -v wrk > /dev/null || missing+=(wrk)
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
# The soak keeps the loop's verification (default delay) inside the run; the scenarios leave
# it outside (3600 s).
verify_delay=3600
[ "$soak" = 1 ] && verify_delay=120
"$loadgen" stack --state "$state" --run-dir "$results/run" --bin-dir "$bin" \
    --deployments "$deployments" --verify-delay "$verify_delay" --watcher "$watch" &
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

if [ "$watch" = 1 ]; then
    status=0
    "$loadgen" watch-latency --state "$state" --samples "${BENCH_WATCH_SAMPLES:-40}" \
        --out "$results/watch-latency.json" || status=$?
    cleanup
    stack_pid=
    exit "$status"
fi

if [ "$soak" = 1 ]; then
    read -r -a rates <<< "${BENCH_SOAK_RATES:-1000 300 4 6}"
    [ "${#rates[@]}" -eq 4 ] || { echo "run.sh: BENCH_SOAK_RATES needs four rates" >&2; exit 2; }
    echo "==> soak: ${BENCH_SOAK_DURATION:-600} s"
    status=0
    "$loadgen" soak --state "$state" --duration "${BENCH_SOAK_DURATION:-600}" \
        --out "$results/soak.json" --evaluate-rate "${rates[0]}" --anomaly-rate "${rates[1]}" \
        --execute-rate "${rates[2]}" --signal-rate "${rates[3]}" || status=$?
    cleanup
    stack_pid=
    exit "$status"
fi

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

# Memory once the load has stopped: does every service give back what the bursts took?
sleep 12
after_load="{"
for svc in backend ai-engine executor kube-sim; do
    pid=$(jq -r --arg s "$svc" '.pids[$s]' "$state")
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2> /dev/null || echo 0)
    after_load+="\"$svc\": $(( kib / 1024 )), "
done
after_load="${after_load%, }}"
echo "$after_load" > "$results/rss-after-load.json"
echo "==> RSS 12 s after the last scenario (MiB): $after_load"

cleanup
stack_pid=
echo
echo "==> summary ($results/summary.md)"
"$loadgen" report --dir "$results"

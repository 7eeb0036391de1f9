#!/usr/bin/env bash
# Runs the platform locally: checks what it needs, builds the binaries (cargo's progress shown),
# then starts kube-sim and the three services on loopback against the local PostgreSQL and
# Redis and plays four incidents (see README.md). Options go to aegis-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
usage: scripts/demo.sh [--keep] [-h|--help]

Builds Aegis, starts kube-sim and the three services on loopback against the local PostgreSQL
and Redis, and plays four incidents end to end: a CPU spike scaled up, a crash-looping pod
restarted, a bad deploy rolled back after an approval, and the kill switch.

  --keep      stay up until Ctrl-C, and print how to log in (aegisctl or curl), the
              /docs, /metrics and Prometheus URLs, and a kubeconfig for kubectl
  -h, --help  print this

Needs: cargo (Rust 1.95), PostgreSQL on PGHOST:PGPORT (127.0.0.1:5432, trust auth for user
postgres) and Redis on REDIS_HOST:REDIS_PORT (127.0.0.1:6379). Prometheus (PROMETHEUS_BIN, or
prometheus on the PATH) is optional: without it the CPU scene is skipped.
Build output goes to CARGO_TARGET_DIR (default: target/).
EOF
}

for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --keep) ;;
        *) printf 'demo.sh: unknown option %s\n\n' "$arg" >&2; usage >&2; exit 2 ;;
    esac
done

pg_host="${PGHOST:-127.0.0.1}"
pg_port="${PGPORT:-5432}"
redis_host="${REDIS_HOST:-127.0.0.1}"
redis_port="${REDIS_PORT:-6379}"

# Everything the run needs is checked before the build, so nobody waits minutes to learn that
# a server is missing. Each check gives up after 3 s.
# Host and port are passed as arguments, never pasted into the script bash runs (hence the
# single quotes).
# shellcheck disable=SC2016
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2> /dev/null; }
# Prints Redis's answer to PING (+PONG, or an error such as -NOAUTH), or nothing.
# shellcheck disable=SC2016
redis_ping() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && IFS= read -r line <&3 && printf "%s" "$line"' _ "$1" "$2" 2> /dev/null
}

problems=()
if ! command -v timeout > /dev/null 2>&1; then
    problems+=("the timeout command is missing (GNU coreutils): the checks below need it.")
fi
if ! command -v cargo > /dev/null 2>&1; then
    problems+=("cargo is not installed. Install Rust 1.95 with rustup: https://rustup.rs")
fi
if ! tcp_open "$pg_host" "$pg_port"; then
    problems+=("PostgreSQL is not reachable on $pg_host:$pg_port.
  Install and start it with trust authentication for user postgres on 127.0.0.1, e.g. on Debian:
    apt-get install postgresql && pg_ctlcluster 15 main start
  (or set PGHOST/PGPORT to a server that has them).")
fi
redis_answer=$(redis_ping "$redis_host" "$redis_port" || true)
if [[ $redis_answer == -NOAUTH* ]]; then
    problems+=("Redis on $redis_host:$redis_port asks for a password; the demo needs one without
  (e.g. redis-server --port 6380 --daemonize yes, then REDIS_PORT=6380).")
elif [[ $redis_answer != +PONG* ]]; then
    problems+=("Redis is not reachable on $redis_host:$redis_port.
  Install and start it, e.g. on Debian:
    apt-get install redis-server && redis-server --daemonize yes --save '' --appendonly no
  (or set REDIS_HOST/REDIS_PORT).")
fi
if [ ${#problems[@]} -gt 0 ]; then
    printf 'The demo cannot run yet:\n\n' >&2
    printf '%s\n\n' "${problems[@]}" >&2
    exit 1
fi
if [ -z "${PROMETHEUS_BIN:-}" ] && ! command -v prometheus > /dev/null 2>&1; then
    echo "Note: Prometheus is not installed, so the CPU scene will be skipped (apt-get install prometheus)."
fi

target="${CARGO_TARGET_DIR:-target}"
echo "Building Aegis (the first build takes 10 to 15 minutes on 2 cores; cargo's progress follows) ..."
cargo build --locked -p kube-sim -p aegis-backend -p aegis-ai-engine -p aegis-executor -p aegis-dev -p aegisctl
exec "$target/debug/aegis-dev" "$@"

#!/usr/bin/env bash
# Detection quality on the NAB series in bench/data/nab (see bench/README.md): starts the
# release ai-engine on a fresh database, feeds every series through POST /api/v1/detect-anomaly
# with bench/nab_quality.py, and writes bench/results/<UTC stamp>/nab-quality.json next to the
# table it prints. The ROC AUC per series is set against scikit-learn's IsolationForest on the
# same windows.
#
# Environment:
#   BENCH_SKIP_BUILD=1   use the ai-engine already in $CARGO_TARGET_DIR/release
#   CARGO_TARGET_DIR     default: <repo>/target
#   PGHOST/PGPORT        default 127.0.0.1:5432 (user postgres, trust auth)
#   NAB_AI_ENV           extra ai-engine variables, space-separated NAME=value pairs
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
database=aegis_bench_nab

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    echo "==> building the release ai-engine"
    (cd "$repo" && cargo build --release --locked -p aegis-ai-engine --bin aegis-ai-engine)
fi
binary="$target_dir/release/aegis-ai-engine"
[ -x "$binary" ] || { echo "no ai-engine at $binary (unset BENCH_SKIP_BUILD to build it)" >&2; exit 1; }

psql -h "$pg_host" -p "$pg_port" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $database" \
    -c "CREATE DATABASE $database" > /dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results="$here/results/$stamp"
mkdir -p "$results"

extra=()
read -r -a extra <<< "${NAB_AI_ENV:-}"
env APP_ENV=development HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn \
    DATABASE_URL="postgres://postgres@$pg_host:$pg_port/$database" "${extra[@]}" \
    "$binary" > "$results/ai-engine.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
    if curl -fsS "$url/health" 2> /dev/null | grep -q '"healthy"'; then
        break
    fi
    sleep 0.1
done
curl -fsS "$url/health" > /dev/null || { echo "the ai-engine did not come up; see $results/ai-engine.log" >&2; exit 1; }

echo "==> feeding the NAB series to $url (5-point windows, in time order)"
python3 "$here/nab_quality.py" "$url" > "$results/nab-quality.json"
echo "==> $results/nab-quality.json"

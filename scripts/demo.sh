#!/usr/bin/env bash
# Runs the platform locally: builds the binaries, then starts kube-sim and the three services on
# loopback against the local PostgreSQL and Redis (see README.md). Arguments go to aegis-dev
# (e.g. --keep to stay up until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
echo "Building Aegis (first build takes several minutes) ..."
cargo build --locked --quiet -p kube-sim -p aegis-backend -p aegis-ai-engine -p aegis-executor -p aegis-dev
exec "$target/debug/aegis-dev" "$@"

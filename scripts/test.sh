#!/usr/bin/env bash
# Runs every test of the workspace against the local PostgreSQL and Redis.
# This is the test command of README.md; extra arguments go to cargo nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare-test-env.sh
exec cargo nextest run --workspace --locked --profile ci "$@"

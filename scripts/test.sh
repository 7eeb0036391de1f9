#!/usr/bin/env bash
# Runs every test: the platform validation (compose, kustomize, Prometheus rules, linters) and
# the whole workspace against the local PostgreSQL and Redis.
# This is the test command of README.md; extra arguments go to cargo nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The checked SQL statements compile against their committed descriptions (.sqlx/).
export SQLX_OFFLINE=true
scripts/prepare-test-env.sh
# Deployment and observability assets, checked with real validators (issue 10).
scripts/validate-platform.sh
exec cargo nextest run --workspace --locked --profile ci "$@"

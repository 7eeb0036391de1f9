#!/usr/bin/env bash
# Makes this machine ready for the test suite, idempotently:
#   1. PostgreSQL and Redis answer on 127.0.0.1 (started if installed but stopped; never
#      reconfigured), or a clear message says how to get them;
#   2. the tools the tests drive are installed (kubectl, Prometheus with promtool, Alertmanager
#      with amtool, shellcheck, docker-compose for static validation, node for the Socket.IO
#      client test, Chromium and chromedriver for the console's browser tests, cargo-nextest);
#   3. the three service databases exist.
# Safe to run repeatedly; installs only what is missing.
set -euo pipefail

PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
export PGHOST PGPORT PGUSER

say() { printf '[prepare] %s\n' "$*"; }
die() { printf '[prepare] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}

tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

ensure_postgres() {
  if tcp_open "$PGHOST" "$PGPORT"; then return; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    say "PostgreSQL is installed but not answering; starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 20); do tcp_open "$PGHOST" "$PGPORT" && return; sleep 0.5; done
  fi
  die "PostgreSQL is not reachable on $PGHOST:$PGPORT. Install and start it (Debian: apt-get install postgresql && pg_ctlcluster 15 main start) with trust authentication for user postgres on 127.0.0.1, or point PGHOST/PGPORT/TEST_DATABASE_URL at one."
}

ensure_redis() {
  if tcp_open "$REDIS_HOST" "$REDIS_PORT"; then return; fi
  if command -v redis-server >/dev/null 2>&1; then
    say "Redis is installed but not answering; starting it on $REDIS_HOST:$REDIS_PORT"
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no >/dev/null || true
    for _ in $(seq 1 20); do tcp_open "$REDIS_HOST" "$REDIS_PORT" && return; sleep 0.5; done
  fi
  die "Redis is not reachable on $REDIS_HOST:$REDIS_PORT. Install and start it (Debian: apt-get install redis-server && redis-server --daemonize yes), or set TEST_REDIS_URL."
}

missing_pkgs=()
need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 || missing_pkgs+=("$2")
}

ensure_tools() {
  need kubectl kubernetes-client
  need prometheus prometheus
  need promtool prometheus
  need prometheus-alertmanager prometheus-alertmanager
  need amtool prometheus-alertmanager
  need shellcheck shellcheck
  need docker-compose docker-compose
  need openssl openssl
  need python3 python3
  need node nodejs
  need npm npm
  need chromium chromium
  need chromedriver chromium-driver
  if [ ${#missing_pkgs[@]} -gt 0 ]; then
    mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
    say "installing Debian packages: ${missing_pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      || die "cannot run apt-get (need root or passwordless sudo) to install: ${missing_pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null \
      || die "apt-get install failed for: ${missing_pkgs[*]}"
  fi
  # Debian's packages start their daemons through init scripts; tests start their own.
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
}

ensure_databases() {
  for db in aegis_backend aegis_ai aegis_executor; do
    if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      say "creating database $db"
      psql -d postgres -qc "CREATE DATABASE $db" >/dev/null
    fi
  done
}

# Schemathesis for crates/dev/tests/fuzz.rs, pinned, in its own virtualenv outside the clone
# (the test looks for it there, or at SCHEMATHESIS_BIN).
SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_VENV="${SCHEMATHESIS_VENV:-/var/cache/aegis/schemathesis-venv}"
ensure_schemathesis() {
  local st="$SCHEMATHESIS_VENV/bin/st"
  if [ -x "$st" ] && "$SCHEMATHESIS_VENV/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
    return
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
  mkdir -p "$(dirname "$SCHEMATHESIS_VENV")"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# The notification tests' receivers, pinned, in their own virtualenv outside the clone (the
# tests look for it there, or at NOTIFY_VENV): `standardwebhooks` verifies signed webhooks as
# receivers do, and `aiosmtpd` is the local SMTP receiver.
NOTIFY_VENV="${NOTIFY_VENV:-/var/cache/aegis/notify-venv}"
NOTIFY_PACKAGES=("standardwebhooks==1.3.0" "aiosmtpd==1.4.6")
ensure_notify_receivers() {
  if [ -x "$NOTIFY_VENV/bin/python" ] \
    && "$NOTIFY_VENV/bin/pip" freeze 2>/dev/null | grep -qx "standardwebhooks==1.3.0" \
    && "$NOTIFY_VENV/bin/pip" freeze 2>/dev/null | grep -qx "aiosmtpd==1.4.6"; then
    return
  fi
  say "installing ${NOTIFY_PACKAGES[*]} into $NOTIFY_VENV"
  mkdir -p "$(dirname "$NOTIFY_VENV")"
  python3 -m venv "$NOTIFY_VENV"
  "$NOTIFY_VENV/bin/pip" install --quiet --disable-pip-version-check "${NOTIFY_PACKAGES[@]}"
}

ensure_postgres
ensure_redis
ensure_tools
ensure_schemathesis
ensure_notify_receivers
ensure_databases
say "PostgreSQL $PGHOST:$PGPORT and Redis $REDIS_HOST:$REDIS_PORT are up; tools and databases are ready"

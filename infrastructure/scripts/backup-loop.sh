#!/usr/bin/env bash
# Runs backup.sh now and then every BACKUP_INTERVAL_SECONDS (default 86400) in the foreground,
# so the environment (DB passwords, encryption key) reaches every run — unlike cron.
# A heartbeat file is touched every minute; `backup-loop.sh --check` (the container health
# check) succeeds while the heartbeat is younger than 3 minutes.
# `backup-loop.sh --once` runs a single backup and exits with its status (k8s CronJob).
set -euo pipefail

heartbeat=${BACKUP_HEARTBEAT_FILE:-/tmp/backup-loop.alive}
interval=${BACKUP_INTERVAL_SECONDS:-86400}
backup=${BACKUP_SCRIPT:-$(dirname "${BASH_SOURCE[0]}")/backup.sh}

case ${1:-} in
    --check)
        [[ -n $(find "$heartbeat" -mmin -3 2> /dev/null) ]]
        exit
        ;;
    --once)
        exec "$backup"
        ;;
esac

next=0
while true; do
    touch "$heartbeat"
    now=$(date +%s)
    if ((now >= next)); then
        "$backup" || echo "backup-loop: backup failed (exit $?); next attempt in ${interval}s" >&2
        next=$((now + interval))
    fi
    sleep 60
done

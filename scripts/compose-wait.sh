#!/usr/bin/env bash
# compose-wait.sh [--timeout SECONDS] [COMPOSE_OPTION...] — what `up -d --wait` of Compose v2
# does, for docker-compose 1.29 too (it has no --wait): after `up -d`, waits until every
# container of the project runs and is healthy (a container without a health check only has to
# run). Exit 1 as soon as one is unhealthy or has exited, or when the timeout (default 300 s)
# passes. The options go to compose before `ps`; give the ones given to `up`:
#
#   docker-compose up -d && scripts/compose-wait.sh
#   docker-compose --profile observability up -d && scripts/compose-wait.sh --profile observability
#   docker-compose -f infrastructure/docker-compose.yml up -d &&
#       scripts/compose-wait.sh -f infrastructure/docker-compose.yml
set -euo pipefail

timeout=300
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --timeout) timeout=${2:?--timeout needs a number of seconds}; shift 2 ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

compose() {
    if docker compose version > /dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

deadline=$((SECONDS + timeout))
while true; do
    mapfile -t ids < <(compose "${args[@]}" ps -a -q)
    if ((${#ids[@]} == 0)); then
        echo "compose-wait: the project has no containers (run up -d first, with the same options)" >&2
        exit 1
    fi
    waiting=()
    while read -r name state health; do
        name=${name#/}
        [[ $health == none ]] && health=
        case $state/$health in
            running/healthy | running/) ;;
            running/starting | created/* | restarting/*) waiting+=("$name") ;;
            *)
                echo "compose-wait: $name is $state${health:+ ($health)}; see: docker logs $name" >&2
                exit 1
                ;;
        esac
    done < <(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "${ids[@]}")
    if ((${#waiting[@]} == 0)); then
        echo "compose-wait: all ${#ids[@]} containers are running and healthy"
        exit 0
    fi
    if ((SECONDS >= deadline)); then
        echo "compose-wait: still waiting after ${timeout}s for: ${waiting[*]}" >&2
        exit 1
    fi
    sleep 3
done

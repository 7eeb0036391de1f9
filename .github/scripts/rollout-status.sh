#!/usr/bin/env bash
# rollout-status.sh NAMESPACE TIMEOUT — waits for the three Deployments of an Aegis namespace.
set -euo pipefail
ns=$1 timeout=$2
for d in backend ai-engine executor; do
    kubectl -n "$ns" rollout status "deployment/$d" --timeout="$timeout"
done

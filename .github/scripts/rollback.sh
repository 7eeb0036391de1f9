#!/usr/bin/env bash
# rollback.sh NAMESPACE — kubectl rollout undo for the three Deployments, then waits.
set -euo pipefail
ns=$1
for d in backend ai-engine executor; do
    kubectl -n "$ns" rollout undo "deployment/$d"
done
for d in backend ai-engine executor; do
    kubectl -n "$ns" rollout status "deployment/$d" --timeout=300s
done

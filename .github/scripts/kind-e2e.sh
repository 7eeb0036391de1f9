#!/usr/bin/env bash
# End-to-end test of the production overlay in a kind cluster (called by e2e-kind.yaml; README
# "Deploy" walks through it step by step). It applies k8s/examples/kind: the production overlay
# with the images built here and one replica of each service, so that it fits on one node.
# Needs docker, kind, kubectl, curl, python3, openssl, and a kind cluster named $KIND_CLUSTER
# created with .github/kind/cluster.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-aegis-e2e}
ns=aegis
prefix=kind.local # prefix and tag: the images k8s/examples/kind pins
tag=e2e
host=api.aegis.example.com

echo "== images"
docker build -q -f crates/backend/Dockerfile -t "$prefix/aegis-backend:$tag" .
docker build -q -f crates/ai-engine/Dockerfile -t "$prefix/aegis-ai-engine:$tag" .
docker build -q -f crates/executor/Dockerfile -t "$prefix/aegis-executor:$tag" .
docker build -q -f docker/backup/Dockerfile -t "$prefix/aegis-backup:$tag" .
for img in backend ai-engine executor backup; do
    kind load docker-image --name "$cluster" "$prefix/aegis-$img:$tag"
done

echo "== ingress-nginx"
kubectl apply -f https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.12.0/deploy/static/provider/kind/deploy.yaml
kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s

echo "== target namespace with a test deployment"
kubectl create namespace production --dry-run=client -o yaml | kubectl apply -f -
kubectl -n production create deployment web --image=registry.k8s.io/pause:3.10 --replicas=1 --dry-run=client -o yaml | kubectl apply -f -
kubectl -n production rollout status deployment/web --timeout=120s

echo "== secrets (generated; k8s/secrets.example.yaml lists names and keys)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
rnd() { openssl rand -hex 32; }
hmac=$(rnd)
service_key=$(rnd)
ai_key=$(rnd)
for db in backend ai executor; do
    kubectl -n "$ns" create secret generic "aegis-postgres-$db" \
        --from-literal=POSTGRES_PASSWORD="$(rnd)" --from-literal=AEGIS_OWNER_PASSWORD="$(rnd)" \
        --from-literal=AEGIS_APP_PASSWORD="$(rnd)"
done
kubectl -n "$ns" create secret generic aegis-redis --from-literal=REDIS_PASSWORD="$(rnd)"
kubectl -n "$ns" create secret generic aegis-backend-secrets \
    --from-literal=JWT_SECRET="$(rnd)" --from-literal=JWT_REFRESH_SECRET="$(rnd)" \
    --from-literal=SERVICE_API_KEYS="$service_key" --from-literal=EXECUTOR_API_KEY="$service_key" \
    --from-literal=ALERTMANAGER_WEBHOOK_TOKEN="$(rnd)"
kubectl -n "$ns" create secret generic aegis-ai-engine-secrets \
    --from-literal=API_KEY="$ai_key" --from-literal=ADMIN_API_KEY="$(rnd)" \
    --from-literal=BACKEND_API_KEY="$service_key"
kubectl -n "$ns" create secret generic aegis-executor-secrets \
    --from-literal=EXECUTOR_HMAC_SECRET="$hmac" --from-literal=SERVICE_API_KEYS="$service_key" \
    --from-literal=AUDIT_API_TOKEN="$(rnd)"
kubectl -n "$ns" create secret generic aegis-backup --from-literal=BACKUP_ENCRYPTION_KEY="$(rnd)"

echo "== apply the production overlay, sized for one node (k8s/examples/kind)"
kubectl apply -k k8s/examples/kind
for s in postgres-backend postgres-ai postgres-executor redis; do
    kubectl -n "$ns" rollout status "statefulset/$s" --timeout=300s
done
.github/scripts/rollout-status.sh "$ns" 600s

echo "== /api/v1/health/ping through the ingress"
curl -fsSk --retry 20 --retry-delay 3 --retry-all-errors --resolve "$host:8443:127.0.0.1" \
    "https://$host:8443/api/v1/health/ping"
echo
code=$(curl -sk -o /dev/null -w '%{http_code}' --resolve "$host:8443:127.0.0.1" "https://$host:8443/api/v1/prometheus")
[[ $code == 403 ]] || { echo "expected 403 for /api/v1/prometheus through the ingress, got $code" >&2; exit 1; }

echo "== signed executor actions"
kubectl -n "$ns" port-forward svc/executor 14000:4000 > /dev/null 2>&1 &
pf=$!
trap 'kill "$pf" 2> /dev/null || true' EXIT
sleep 3
sign() { # NAMESPACE -> JSON body with a v2 signature (aegis_common::signing)
    HMAC="$hmac" NS="$1" python3 - << 'PY'
import hashlib, hmac, json, os, secrets, time
params = {"namespace": os.environ["NS"], "deploymentName": "web", "replicas": 2}
canon = json.dumps({"actionType": "scale_deployment", "actionParams": params,
                    "requestedBy": "kind-e2e"}, separators=(",", ":"), ensure_ascii=False)
ts, nonce = str(int(time.time() * 1000)), secrets.token_urlsafe(16)
sig = hmac.new(os.environ["HMAC"].encode(), f"v2:{ts}:{nonce}:{canon}".encode(), hashlib.sha256).hexdigest()
print(json.dumps({"actionType": "scale_deployment", "actionParams": params, "requestedBy": "kind-e2e",
                  "timestamp": ts, "nonce": nonce, "signature": sig}))
PY
}
body=$(sign production)
curl -fsS -X POST http://127.0.0.1:14000/executor/execute -H 'Content-Type: application/json' -d "$body"
echo
kubectl -n production wait --for=jsonpath='{.spec.replicas}'=2 deployment/web --timeout=60s
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:14000/executor/execute \
    -H 'Content-Type: application/json' -d "$(sign kube-system)")
[[ $code == 403 ]] || { echo "expected 403 for kube-system, got $code" >&2; exit 1; }
echo "e2e: all checks passed"

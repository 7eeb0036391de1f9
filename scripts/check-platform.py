#!/usr/bin/env python3
"""Structural checks of the platform assets that no off-the-shelf validator covers.

Called by scripts/validate-platform.sh (needs PyYAML from its virtualenv):
  check-platform.py compose | dashboards | configs | envfiles | k8s RENDERED_DIR
                    | examples RENDERED_DIR
Exit status 1 with one line per problem.
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def fail(msg):
    problems.append(msg)


def load(path):
    with open(path) as fh:
        return yaml.safe_load(fh)


# --------------------------------------------------------------------------- compose
COMPOSE = {
    "root": ROOT / "docker-compose.yml",
    "infrastructure": ROOT / "infrastructure/docker-compose.yml",
    "observability": ROOT / "observability/docker-compose.yml",
}
# Alternatives never run together: the root file alone, or infrastructure + observability.
RUN_SETS = [["root"], ["infrastructure", "observability"]]
GENERATED_MOUNTS = ("ssl/", "backups")  # created by generate-ssl-certs.sh / backup.sh


def host_ports(svc):
    out = []
    for p in svc.get("ports", []):
        if isinstance(p, dict):
            out.append(str(p.get("published")))
            continue
        parts = str(p).split(":")
        if len(parts) >= 2:
            out.append(parts[-2])
    return out


def check_compose():
    names = {}
    ports = {k: {} for k in COMPOSE}
    for key, path in COMPOSE.items():
        doc = load(path)
        base = path.parent
        for name, svc in doc.get("services", {}).items():
            where = f"{path.relative_to(ROOT)}:{name}"
            cname = svc.get("container_name")
            if not cname or not cname.startswith("aegis-"):
                fail(f"{where}: container_name must be set and start with aegis-")
            elif cname in names:
                fail(f"{where}: container_name {cname} also used by {names[cname]}")
            else:
                names[cname] = where
            hc = svc.get("healthcheck")
            if not hc or hc.get("disable") or not hc.get("test") or hc["test"] in (["NONE"], "NONE"):
                fail(f"{where}: no working healthcheck")
            for dep, cond in (svc.get("depends_on") or {}).items():
                if not isinstance(cond, dict) or cond.get("condition") != "service_healthy":
                    fail(f"{where}: depends_on {dep} must use condition: service_healthy")
            for p in host_ports(svc):
                ports[key].setdefault(p, []).append(where)
            for vol in svc.get("volumes", []):
                src = str(vol).split(":")[0]
                if src.startswith(".") and not any(g in src for g in GENERATED_MOUNTS):
                    if not (base / src).exists():
                        fail(f"{where}: mounted path {src} does not exist")
            build = svc.get("build")
            if build:
                ctx = base / (build["context"] if isinstance(build, dict) else build)
                dockerfile = ctx / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
                if not dockerfile.is_file():
                    fail(f"{where}: build file {dockerfile.relative_to(ROOT)} missing")
    for run_set in RUN_SETS:
        seen = {}
        for key in run_set:
            for p, users in ports[key].items():
                seen.setdefault(p, []).extend(users)
        for p, users in seen.items():
            if len(users) > 1:
                fail(f"host port {p} published twice in {'+'.join(run_set)}: {', '.join(users)}")
    # Every required ${VAR:?...} of a compose file has a placeholder in its .env.example.
    for key, path in COMPOSE.items():
        env_file = path.parent / ".env.example"
        text = path.read_text()
        env = dict(
            line.split("=", 1)
            for line in env_file.read_text().splitlines()
            if line and not line.startswith("#") and "=" in line
        )
        for var in sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))):
            if var not in env:
                fail(f"{env_file.relative_to(ROOT)}: missing {var} (required by {path.relative_to(ROOT)})")
        for var, value in env.items():
            if re.search(r"(PASSWORD|SECRET|TOKEN|_KEY)$", var) and value and "CHANGE_ME" not in value:
                fail(f"{env_file.relative_to(ROOT)}: {var} must be a CHANGE_ME placeholder")


# --------------------------------------------------------------------------- dashboards
def check_dashboards():
    prov = load(ROOT / "observability/grafana/provisioning/datasources/datasources.yml")
    uids = {d.get("uid") for d in prov["datasources"]}
    if uids != {"prometheus", "loki", "tempo"}:
        fail(f"datasource uids {sorted(map(str, uids))} != prometheus, loki, tempo")
    for d in prov["datasources"]:
        for ref in re.findall(r"[dD]atasourceUid': '([^']+)'", str(d)):
            if ref not in uids:
                fail(f"datasource {d['name']} links to unknown uid {ref}")
    providers = load(ROOT / "observability/grafana/provisioning/dashboards/dashboards.yml")
    if providers["providers"][0]["options"]["path"] != "/var/lib/grafana/dashboards":
        fail("dashboard provider path must be /var/lib/grafana/dashboards (the compose mount)")
    seen = set()
    files = sorted((ROOT / "observability/grafana/dashboards").glob("*.json"))
    if len(files) < 5:
        fail("fewer than 5 dashboards")
    for f in files:
        d = json.loads(f.read_text())
        rel = f.relative_to(ROOT)
        if "dashboard" in d:
            fail(f"{rel}: API envelope {{'dashboard': ...}} is not provisionable")
        if not d.get("uid") or not d.get("title"):
            fail(f"{rel}: top-level uid and title are required")
        if d.get("uid") in seen:
            fail(f"{rel}: duplicate uid {d.get('uid')}")
        seen.add(d.get("uid"))
        if d.get("schemaVersion", 0) < 38:
            fail(f"{rel}: schemaVersion < 38")
        for p in d.get("panels", []):
            refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", []) if t.get("datasource")]
            for ref in refs:
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if uid not in uids:
                    fail(f"{rel} panel {p.get('title')!r}: datasource uid {uid!r} not provisioned")
            if p.get("type") == "graph":
                fail(f"{rel} panel {p.get('title')!r}: legacy graph panel")


# --------------------------------------------------------------------------- configs
def check_configs():
    loki = load(ROOT / "infrastructure/loki/loki-config.yml")
    schema = loki["schema_config"]["configs"][-1]
    if schema.get("schema") != "v13" or schema.get("store") != "tsdb":
        fail("loki: schema must be v13 on tsdb")
    comp = loki.get("compactor", {})
    if not comp.get("retention_enabled") or comp.get("delete_request_store") != "filesystem":
        fail("loki: compactor retention must be enabled with delete_request_store: filesystem")
    limits = loki["limits_config"]
    if limits.get("retention_period") != "90d":
        fail("loki: default retention must be 90d")
    if not any(s.get("selector") == '{job="aegis-executor"}' and s.get("period") == "365d"
               for s in limits.get("retention_stream", [])):
        fail("loki: the executor audit stream must be kept 365d")
    if "fifocache" in json.dumps(loki):
        fail("loki: fifocache is removed; use embedded_cache")
    promtail = load(ROOT / "infrastructure/loki/promtail-config.yml")
    jobs = promtail["scrape_configs"]
    if [j["job_name"] for j in jobs] != ["docker"]:
        fail("promtail: only the docker job is expected")
    if promtail["clients"][0]["url"] != "http://loki:3100/loki/api/v1/push":
        fail("promtail: push URL")
    for key in ("root", "infrastructure"):
        text = COMPOSE[key].read_text()
        if "/var/run/docker.sock:/var/run/docker.sock:ro" not in text:
            fail(f"{key} compose: promtail needs the docker socket (read-only)")
    tempo = load(ROOT / "observability/tempo/tempo.yml")
    if tempo["compactor"]["compaction"]["block_retention"] != "168h":
        fail("tempo: block_retention must be 168h")
    if "--web.enable-remote-write-receiver" not in COMPOSE["root"].read_text():
        fail("prometheus must run with --web.enable-remote-write-receiver (Tempo metrics generator)")
    otel = load(ROOT / "observability/otel/otel-collector-config.yml")
    for name, pipe in otel["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for item in pipe.get(kind, []):
                if item not in (otel.get(kind) or {}):
                    fail(f"otel: pipeline {name} uses undefined {kind[:-1]} {item}")
        if pipe.get("processors", [None])[0] != "memory_limiter":
            fail(f"otel: memory_limiter must be first in {name}")
    if "logging" in (otel.get("exporters") or {}):
        fail("otel: the logging exporter is removed; use debug")
    for ext in otel["service"].get("extensions", []):
        if ext not in otel.get("extensions", {}):
            fail(f"otel: undefined extension {ext}")
    a = (ROOT / "infrastructure/postgres/init-roles.sh").read_bytes()
    b = (ROOT / "k8s/base/postgres/init-roles.sh").read_bytes()
    if a != b:
        fail("k8s/base/postgres/init-roles.sh differs from infrastructure/postgres/init-roles.sh")
    prom = load(ROOT / "observability/prometheus/prometheus.yml")
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                if "host.docker.internal" in t:
                    fail(f"prometheus.yml job {job['job_name']}: use compose service names")


# --------------------------------------------------------------------------- k8s
# Keys of the contracts between the services (docs/contracts.md, "Keys") that a service will read
# but whose reader may not be merged yet; everything else must appear in the service's sources.
CONTRACT_KEYS = {
    "backend": {"EXECUTOR_URL", "EXECUTOR_API_KEY", "EXECUTOR_HMAC_SECRET", "AI_ENGINE_API_KEY",
                "SERVICE_API_KEYS", "ALERTMANAGER_WEBHOOK_TOKEN"},
    "ai-engine": {"BACKEND_URL", "BACKEND_API_KEY", "PROMETHEUS_URL"},
    "executor": set(),
}
CONFIGMAP_SERVICE = {"aegis-backend-config": "backend", "aegis-ai-engine-config": "ai-engine",
                     "aegis-executor-config": "executor"}
LIVENESS = {"backend": "/api/v1/health/ping", "ai-engine": "/ping", "executor": "/health/ping"}
READINESS = {"backend": "/api/v1/health/ready", "ai-engine": "/health/ready", "executor": "/health/ready"}
EXECUTOR_RULES = [
    ("", "pods", ["delete", "get"]),
    ("apps", "deployments", ["get", "patch"]),
    ("apps", "deployments/scale", ["get", "patch"]),
    ("apps", "replicasets", ["list"]),
]

# The watcher only reads (crates/ai-engine/src/watcher/); its one write is its Lease.
WATCHER_RULES = [
    ("", "events", ["get", "list", "watch"]),
    ("", "pods", ["get", "list", "watch"]),
    ("", "pods/log", ["get"]),
    ("apps", "deployments", ["get", "list", "watch"]),
    ("apps", "replicasets", ["get", "list", "watch"]),
]
WATCHER_LEASE_RULES = [("coordination.k8s.io", "leases", ["create", "get", "update"])]


def keys_read_by(service):
    sources = list((ROOT / "crates" / service / "src").rglob("*.rs"))
    sources += list((ROOT / "crates/common/src").rglob("*.rs"))
    text = "\n".join(p.read_text() for p in sources)
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', text)) | CONTRACT_KEYS[service]


def check_k8s(rendered_dir):
    rendered = pathlib.Path(rendered_dir)
    read = {s: keys_read_by(s) for s in CONTRACT_KEYS}
    for name in ("base", "staging", "production"):
        docs = [d for d in yaml.safe_load_all((rendered / f"{name}.yaml").read_text()) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)
        where = f"k8s/{'base' if name == 'base' else 'overlays/' + name}"
        if by_kind.get("Secret"):
            fail(f"{where}: renders Secret objects (secrets are created out-of-band)")
        for cm in by_kind.get("ConfigMap", []):
            base_name = re.sub(r"-[a-z0-9]{10}$", "", cm["metadata"]["name"])
            svc = CONFIGMAP_SERVICE.get(base_name)
            if svc:
                for key in cm.get("data", {}):
                    if key not in read[svc]:
                        fail(f"{where}: ConfigMap {base_name} key {key} is not read by {svc}")
        for dep in by_kind.get("Deployment", []):
            svc = dep["metadata"]["name"]
            c = dep["spec"]["template"]["spec"]["containers"][0]
            live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            if live != LIVENESS.get(svc):
                fail(f"{where}: {svc} liveness {live} != {LIVENESS.get(svc)}")
            if ready != READINESS.get(svc):
                fail(f"{where}: {svc} readiness {ready} != {READINESS.get(svc)}")
            image = c["image"]
            if name == "base" and not image.startswith("aegis/"):
                fail(f"{where}: base image {image} must be the aegis/<svc> placeholder")
            if name != "base" and image.startswith("aegis/"):
                fail(f"{where}: image {image} not pinned by the overlay")
        for ing in by_kind.get("Ingress", []):
            annotations = ing["metadata"].get("annotations", {})
            if "kubernetes.io/ingress.class" in annotations:
                fail(f"{where}: deprecated ingress.class annotation")
            if any("snippet" in a for a in annotations):
                fail(f"{where}: snippet annotations are disabled in ingress-nginx")
            deny_all = annotations.get("nginx.ingress.kubernetes.io/denylist-source-range") == "0.0.0.0/0,::/0"
            for rule in ing["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    svc = path["backend"]["service"]["name"]
                    p = path["path"]
                    if svc != "backend":
                        fail(f"{where}: Ingress routes to {svc} (only the backend is public)")
                    if p.startswith("/metrics"):
                        fail(f"{where}: Ingress exposes {p}")
                    if p.startswith("/api/v1/prometheus") and not deny_all:
                        fail(f"{where}: {p} must only appear in the deny-all Ingress")
                    if deny_all and not p.startswith("/api/v1/prometheus"):
                        fail(f"{where}: deny-all Ingress must only hold /api/v1/prometheus")
        if not any(p["path"] == "/api/v1/prometheus" for i in by_kind.get("Ingress", [])
                   for r in i["spec"]["rules"] for p in r["http"]["paths"]):
            fail(f"{where}: /api/v1/prometheus is not denied (the /api/v1 prefix would expose it)")
        rules_of = lambda role: sorted((r["apiGroups"][0], r["resources"][0], sorted(r["verbs"])) for r in role["rules"])
        expected = {"aegis-executor": EXECUTOR_RULES, "aegis-watcher": WATCHER_RULES}
        for role in by_kind.get("ClusterRole", []):
            want = expected.get(role["metadata"]["name"])
            if want is None:
                fail(f"{where}: unexpected ClusterRole {role['metadata']['name']}")
            elif rules_of(role) != sorted(want):
                fail(f"{where}: {role['metadata']['name']} ClusterRole rules {rules_of(role)} != {want}")
        if sorted(r["metadata"]["name"] for r in by_kind.get("ClusterRole", [])) != sorted(expected):
            fail(f"{where}: ClusterRoles must be exactly {sorted(expected)}")
        for role in by_kind.get("Role", []):
            if role["metadata"]["name"] != "aegis-watcher-lease" or rules_of(role) != sorted(WATCHER_LEASE_RULES):
                fail(f"{where}: Role {role['metadata']['name']} rules {rules_of(role)} != {WATCHER_LEASE_RULES}")
        if by_kind.get("ClusterRoleBinding"):
            fail(f"{where}: ClusterRoleBindings are not allowed")
        if name != "base":
            ns_objs = [n["metadata"]["name"] for n in by_kind.get("Namespace", [])]
            app_ns = ns_objs[0] if ns_objs else None
            cm = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("aegis-executor-config"))
            allowed = sorted(n.strip() for n in cm["data"]["ALLOWED_NAMESPACES"].split(","))
            bindings = [b for b in by_kind.get("RoleBinding", []) if b["roleRef"]["name"] == "aegis-executor"]
            bound = sorted(b["metadata"]["namespace"] for b in bindings)
            if bound != allowed:
                fail(f"{where}: executor RoleBinding namespaces {bound} != ALLOWED_NAMESPACES {allowed}")
            for b in bindings:
                subject = b["subjects"][0]
                if subject != {"kind": "ServiceAccount", "name": "aegis-executor", "namespace": app_ns}:
                    fail(f"{where}: RoleBinding in {b['metadata']['namespace']} binds {subject}")
            ai = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("aegis-ai-engine-config"))
            for key in ("WATCHER_ENABLED", "FEED_ENABLED"):
                if ai["data"].get(key) != "true":
                    fail(f"{where}: ai-engine {key} must be true (on by default)")
            watched = sorted(n.strip() for n in ai["data"]["WATCH_NAMESPACES"].split(","))
            watcher_bindings = [b for b in by_kind.get("RoleBinding", []) if b["roleRef"]["name"] == "aegis-watcher"]
            if sorted(b["metadata"]["namespace"] for b in watcher_bindings) != watched:
                fail(f"{where}: watcher RoleBinding namespaces != WATCH_NAMESPACES {watched}")
            for b in watcher_bindings:
                if b["roleRef"]["kind"] != "ClusterRole" or b["subjects"][0] != {"kind": "ServiceAccount", "name": "aegis-ai-engine", "namespace": app_ns}:
                    fail(f"{where}: watcher RoleBinding in {b['metadata']['namespace']} binds {b['subjects'][0]}")
            ex = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("aegis-executor-config"))
            if name == "production":
                for key, value in (("REQUIRE_SIGNATURE_TIMESTAMP", "true"), ("APP_ENV", "production")):
                    if ex["data"].get(key) != value:
                        fail(f"{where}: executor {key} must be {value}")
            for obj in docs:
                meta = obj["metadata"]
                if obj["kind"] in ("Namespace", "ClusterRole"):
                    continue
                if obj["kind"] == "RoleBinding" and obj["roleRef"]["name"] in ("aegis-executor", "aegis-watcher"):
                    continue
                if meta.get("namespace") != app_ns:
                    fail(f"{where}: {obj['kind']}/{meta['name']} in namespace {meta.get('namespace')}")


# --------------------------------------------------------------------------- k8s/examples
# The example overlays on top of the production overlay (README "Deploy"): every Aegis image is
# re-pinned, and the kind one fits on one node of a 4-core machine.
EXAMPLE_IMAGES = {
    "kind": "kind.local/aegis-{svc}:e2e",
    "own-registry": "registry.example.com/aegis/aegis-{svc}:1.0.0",
}
KIND_MAX_CPU_REQUESTS_M = 2000


def cpu_millis(v):
    v = str(v)
    return int(float(v[:-1])) if v.endswith("m") else int(float(v) * 1000)


def check_examples(rendered_dir):
    rendered = pathlib.Path(rendered_dir)
    for name, pattern in EXAMPLE_IMAGES.items():
        where = f"k8s/examples/{name}"
        docs = [d for d in yaml.safe_load_all((rendered / f"example-{name}.yaml").read_text()) if d]
        seen = set()
        cpu = 0
        for d in docs:
            spec = d.get("spec", {})
            pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec")
            if not pod:
                continue
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                m = re.match(r"(?:.*/)?aegis-(backend|ai-engine|executor|backup)(?::|$)", c["image"])
                if m:
                    seen.add(m.group(1))
                    if c["image"] != pattern.format(svc=m.group(1)):
                        fail(f"{where}: {d['kind']}/{d['metadata']['name']} image {c['image']} != {pattern.format(svc=m.group(1))}")
            if d["kind"] in ("Deployment", "StatefulSet"):
                requests = pod["containers"][0].get("resources", {}).get("requests", {})
                cpu += spec.get("replicas", 1) * cpu_millis(requests.get("cpu", "0"))
        if seen != {"backend", "ai-engine", "executor", "backup"}:
            fail(f"{where}: renders images of {sorted(seen)}, not of all four Aegis images")
        if name == "kind":
            if cpu > KIND_MAX_CPU_REQUESTS_M:
                fail(f"{where}: workloads request {cpu}m CPU, more than {KIND_MAX_CPU_REQUESTS_M}m (one kind node)")
            for hpa in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
                if hpa["spec"]["minReplicas"] != 1:
                    fail(f"{where}: HPA {hpa['metadata']['name']} minReplicas {hpa['spec']['minReplicas']} != 1")


# --------------------------------------------------------------------------- deploy/production
# The minimal production environment files: every variable is one its service reads, each has a
# one-line comment above it, and every secret or connection string is a CHANGE_ME placeholder.
ENV_FILES = {"backend": "backend", "ai-engine": "ai-engine", "executor": "executor"}
SECRET_LIKE = re.compile(r"(SECRET|TOKEN|PASSWORD|_KEY|_KEYS|_URL)$")
NOT_SECRET = {"AI_ENGINE_URL", "EXECUTOR_URL", "BACKEND_URL"}


def check_env_files():
    for svc in ENV_FILES:
        path = ROOT / "deploy/production" / f"{svc}.env.example"
        rel = path.relative_to(ROOT)
        if not path.is_file():
            fail(f"{rel} missing")
            continue
        sources = list((ROOT / "crates" / svc / "src").rglob("*.rs"))
        sources += list((ROOT / "crates/common/src").rglob("*.rs"))
        read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', "\n".join(p.read_text() for p in sources)))
        lines = path.read_text().splitlines()
        names = []
        for i, line in enumerate(lines):
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                fail(f"{rel}:{i + 1}: not NAME=VALUE")
                continue
            name, value = line.split("=", 1)
            names.append(name)
            if name not in read:
                fail(f"{rel}: {name} is not read by {svc} (crates/{svc}/src, crates/common/src)")
            if i == 0 or not lines[i - 1].startswith("# "):
                fail(f"{rel}: {name} has no comment line above it")
            if SECRET_LIKE.search(name) and name not in NOT_SECRET and value != "CHANGE_ME":
                fail(f"{rel}: {name} must be the placeholder CHANGE_ME")
        if len(names) != len(set(names)):
            fail(f"{rel}: a variable is listed twice")
        if "APP_ENV=production" not in lines:
            fail(f"{rel}: APP_ENV=production missing")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd = sys.argv[1]
    if cmd == "compose":
        check_compose()
    elif cmd == "dashboards":
        check_dashboards()
    elif cmd == "configs":
        check_configs()
    elif cmd == "envfiles":
        check_env_files()
    elif cmd == "k8s":
        check_k8s(sys.argv[2])
    elif cmd == "examples":
        check_examples(sys.argv[2])
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

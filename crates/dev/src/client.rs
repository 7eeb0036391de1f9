//! A small client over a running [`Stack`]: what the demo and the end-to-end test do through
//! the public APIs (log in as the admin, create policies, send signals, follow incidents, read
//! kube-sim, the executor's audit and the policy audit).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Stack;

/// The admin the stack bootstraps.
pub const ADMIN_EMAIL: &str = "admin@aegis.local";

/// An authenticated client of the stack's services.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    backend: String,
    kube: String,
    executor: String,
    ai: String,
    ai_key: String,
    access_token: String,
    service_key: String,
    kube_token: String,
    audit_token: String,
}

async fn json_of(res: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

impl Client {
    /// Logs in as the bootstrap admin.
    pub async fn login(stack: &Stack) -> anyhow::Result<Self> {
        let http = stack.http_client(Duration::from_secs(40))?;
        let backend = stack.urls["backend"].clone();
        let res = http
            .post(format!("{backend}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": stack.secrets.admin_password}))
            .send()
            .await?;
        let body = json_of(res, "admin login").await?;
        let access_token = body["accessToken"]
            .as_str()
            .context("login answer without accessToken")?
            .to_owned();
        Ok(Self {
            http,
            backend,
            kube: stack.urls["kube-sim"].clone(),
            executor: stack.urls["executor"].clone(),
            ai: stack.urls["ai-engine"].clone(),
            ai_key: stack.secrets.ai_key.clone(),
            access_token,
            service_key: stack.secrets.service_key.clone(),
            kube_token: stack.secrets.kube_token.clone(),
            audit_token: stack.secrets.audit_token.clone(),
        })
    }

    /// The admin's access token.
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// `POST /api/v1/policy` (201, or 409 when a policy of that name exists: fine for reruns).
    pub async fn ensure_policy(&self, policy: &Value) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/api/v1/policy", self.backend))
            .bearer_auth(&self.access_token)
            .json(policy)
            .send()
            .await?;
        if res.status() == reqwest::StatusCode::CONFLICT {
            return Ok(());
        }
        json_of(res, "create policy").await.map(drop)
    }

    /// `POST` of `body` to a backend path as the admin; the answer's JSON.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.backend))
            .bearer_auth(&self.access_token)
            .json(body)
            .send()
            .await?;
        json_of(res, path).await
    }

    /// `PUT /api/v1/remediation/mode`: the kill switch, with a reason.
    pub async fn set_mode(&self, mode: &str, reason: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .put(format!("{}/api/v1/remediation/mode", self.backend))
            .bearer_auth(&self.access_token)
            .json(&json!({"mode": mode, "reason": reason}))
            .send()
            .await?;
        json_of(res, "set the remediation mode").await
    }

    /// `POST /api/v1/remediation/signals` with the service key (what the ai-engine feed
    /// sends); the 202 body.
    pub async fn signal(&self, signal: &Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}/api/v1/remediation/signals", self.backend))
            .header("X-API-Key", &self.service_key)
            .json(signal)
            .send()
            .await?;
        json_of(res, "send signal").await
    }

    /// `GET /api/v1/remediation/incidents/:id`, with its timeline.
    pub async fn incident(&self, id: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!(
                "{}/api/v1/remediation/incidents/{id}",
                self.backend
            ))
            .bearer_auth(&self.access_token)
            .send()
            .await?;
        json_of(res, "get incident").await
    }

    /// `GET /api/v1/remediation/incidents?...`.
    pub async fn incidents(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let res = self
            .http
            .get(format!(
                "{}/api/v1/remediation/incidents?{query}",
                self.backend
            ))
            .bearer_auth(&self.access_token)
            .send()
            .await?;
        let body = json_of(res, "list incidents").await?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }

    /// Polls the incident until its status is one of `statuses`.
    pub async fn wait_for(
        &self,
        id: &str,
        statuses: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let incident = self.incident(id).await?;
            let status = incident["status"].as_str().unwrap_or_default();
            if statuses.contains(&status) {
                return Ok(incident);
            }
            if Instant::now() > deadline {
                bail!("incident {id} is {status}, expected one of {statuses:?}: {incident:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /api/v1/remediation/incidents/:id/{approve,reject}`.
    pub async fn decide(&self, id: &str, verb: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!(
                "{}/api/v1/remediation/incidents/{id}/{verb}",
                self.backend
            ))
            .bearer_auth(&self.access_token)
            .send()
            .await?;
        json_of(res, verb).await
    }

    /// A deployment as kube-sim has it.
    pub async fn deployment(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!(
                "{}/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                self.kube
            ))
            .bearer_auth(&self.kube_token)
            .send()
            .await?;
        json_of(res, "read deployment").await
    }

    /// Rolls a deployment's container out to `image`, as a deploy pipeline would (a strategic
    /// merge patch through the Kubernetes API, with a change cause).
    pub async fn deploy_image(
        &self,
        namespace: &str,
        deployment: &str,
        container: &str,
        image: &str,
    ) -> anyhow::Result<Value> {
        let patch = json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
            "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}},
        });
        let res = self
            .http
            .patch(format!(
                "{}/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}",
                self.kube
            ))
            .bearer_auth(&self.kube_token)
            .header("content-type", "application/strategic-merge-patch+json")
            .body(patch.to_string())
            .send()
            .await?;
        json_of(res, "deploy image").await
    }

    /// Makes one pod crash-loop until it is deleted (kube-sim's fault injection).
    pub async fn crash_pod(&self, namespace: &str, pod: &str) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/_sim/crashloop", self.kube))
            .bearer_auth(&self.kube_token)
            .json(&json!({"namespace": namespace, "pod": pod, "restarts": 3}))
            .send()
            .await?;
        json_of(res, "crash a pod").await.map(|_| ())
    }

    /// Names of the pods of a deployment (label `app=<deployment>`), with their phase.
    pub async fn pods(&self, namespace: &str, app: &str) -> anyhow::Result<Vec<(String, bool)>> {
        let res = self
            .http
            .get(format!(
                "{}/api/v1/namespaces/{namespace}/pods?labelSelector=app%3D{app}",
                self.kube
            ))
            .bearer_auth(&self.kube_token)
            .send()
            .await?;
        let list = json_of(res, "list pods").await?;
        Ok(list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                (
                    p["metadata"]["name"].as_str().unwrap_or("?").to_owned(),
                    ready,
                )
            })
            .collect())
    }

    /// Sets the CPU usage kube-sim reports for a deployment's pods.
    pub async fn set_cpu(&self, namespace: &str, deployment: &str, cpu: f64) -> anyhow::Result<()> {
        self.set_metrics(&json!({"namespace": namespace, "deployment": deployment, "cpu": cpu}))
            .await
    }

    /// Gives a deployment a CPU load (percent of one pod) that kube-sim shares among its Ready
    /// pods, with ± `jitter` points of noise per scrape.
    pub async fn set_cpu_load(
        &self,
        namespace: &str,
        deployment: &str,
        load: f64,
        jitter: f64,
    ) -> anyhow::Result<()> {
        self.set_metrics(&json!({"namespace": namespace, "deployment": deployment, "cpuLoad": load, "jitter": jitter}))
            .await
    }

    async fn set_metrics(&self, update: &Value) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/_sim/metrics", self.kube))
            .bearer_auth(&self.kube_token)
            .json(update)
            .send()
            .await?;
        json_of(res, "set pod metrics").await.map(drop)
    }

    /// The ai-engine's newest anomaly predictions (`GET /metrics/predictions`), newest first.
    pub async fn anomaly_predictions(&self, limit: u32) -> anyhow::Result<Vec<Value>> {
        let res = self
            .http
            .get(format!(
                "{}/api/v1/metrics/predictions?model_type=anomaly&limit={limit}",
                self.ai
            ))
            .header("X-API-Key", &self.ai_key)
            .send()
            .await?;
        let body = json_of(res, "list predictions").await?;
        Ok(body["predictions"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `GET /remediation/incidents?{query}` until an incident satisfies `wanted`.
    pub async fn wait_for_incident(
        &self,
        query: &str,
        wanted: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.incidents(query).await?.into_iter().find(&wanted) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!("no incident as expected within {timeout:?} ({query})");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The executor's audit rows of one correlation id.
    pub async fn executor_audit(&self, correlation_id: &str) -> anyhow::Result<Vec<Value>> {
        let res = self
            .http
            .get(format!(
                "{}/audit/logs?correlationId={correlation_id}",
                self.executor
            ))
            .bearer_auth(&self.audit_token)
            .send()
            .await?;
        let body = json_of(res, "executor audit").await?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }

    /// The policy audit rows of one correlation id (written in batches: polled briefly).
    pub async fn policy_audit(&self, correlation_id: &str) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let res = self
                .http
                .get(format!(
                    "{}/api/v1/policy/audit/logs?correlationId={correlation_id}",
                    self.backend
                ))
                .bearer_auth(&self.access_token)
                .send()
                .await?;
            let rows = json_of(res, "policy audit").await?;
            let rows = rows.as_array().cloned().unwrap_or_default();
            if !rows.is_empty() || Instant::now() > deadline {
                return Ok(rows);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A PromQL range query over the last `seconds` at a 1 s step: `(unix seconds, value)` of the
/// first series.
pub async fn prometheus_range(
    prometheus: &str,
    promql: &str,
    seconds: i64,
) -> anyhow::Result<Vec<(f64, f64)>> {
    // One second ahead, so the newest scrape (stamped a fraction of a second ago) is in range.
    let end = Utc::now().timestamp() + 1;
    let res = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query_range"))
        .query(&[
            ("query", promql.to_owned()),
            ("start", (end - seconds).to_string()),
            ("end", end.to_string()),
            ("step", "1".to_owned()),
        ])
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    let body = json_of(res, "Prometheus range query").await?;
    Ok(body["data"]["result"][0]["values"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let t = p[0].as_f64()?;
            let v = p[1].as_str()?.parse::<f64>().ok()?;
            v.is_finite().then_some((t, v))
        })
        .collect())
}

/// A contract-4 anomaly signal whose window is `points` (`(unix seconds, cpu %)`), as the
/// ai-engine feed builds it from a Prometheus range query.
#[must_use]
pub fn cpu_signal_from(namespace: &str, deployment: &str, points: &[(f64, f64)]) -> Value {
    let mut signal = cpu_signal(namespace, deployment, 0.0, 0);
    let metrics: Vec<Value> = points
        .iter()
        .filter_map(|(t, v)| {
            let at = DateTime::<Utc>::from_timestamp(*t as i64, 0)?;
            Some(
                json!({"metric_type": "cpu_usage", "value": v, "timestamp": rfc3339(at),
                        "labels": {"namespace": namespace, "deployment": deployment}}),
            )
        })
        .collect();
    signal["window"] = json!({"metrics": metrics});
    signal
}

/// An allow policy for the loop: `action` on `service:<deployment>`, optionally with a mode.
#[must_use]
pub fn allow_policy(name: &str, action: &str, deployment: &str, mode: Option<&str>) -> Value {
    let mut p = json!({
        "name": name,
        "description": "Allows the remediation loop to act on this deployment",
        "type": "self_healing", "effect": "allow", "priority": 500,
        "conditions": {}, "actions": [action], "resources": [format!("service:{deployment}")],
        "isActive": true
    });
    if let Some(m) = mode {
        p["remediationMode"] = json!(m);
    }
    p
}

/// A contract-4 signal like the ai-engine feed sends: `minutes` of CPU at `cpu`% ending now.
#[must_use]
pub fn cpu_signal(namespace: &str, deployment: &str, cpu: f64, minutes: i64) -> Value {
    let end = Utc::now();
    let metrics: Vec<Value> = (0..=minutes)
        .map(|i| {
            let at = end - chrono::Duration::minutes(minutes - i);
            json!({"metric_type": "cpu_usage", "value": cpu, "timestamp": rfc3339(at),
                   "labels": {"namespace": namespace, "deployment": deployment}})
        })
        .collect();
    json!({
        "source": "ai-engine", "kind": "anomaly", "observedAt": rfc3339(end),
        "target": {"namespace": namespace, "deployment": deployment},
        "severity": "high", "score": 0.93, "confidence": 0.88,
        "recommendedAction": "scale_up",
        "window": {"metrics": metrics},
        "prediction": {"is_anomaly": true, "anomaly_score": 0.93, "severity": "high",
                       "recommended_action": "scale_up"}
    })
}

/// A contract-4 failure signal for a crash-looping pod.
#[must_use]
pub fn crashloop_signal(namespace: &str, deployment: &str, pod: &str) -> Value {
    let now = Utc::now();
    let logs: Vec<Value> = (0..5)
        .map(|i| {
            json!({"timestamp": rfc3339(now - chrono::Duration::seconds(50 - i * 10)), "level": "ERROR",
                   "message": format!("container exited with code 137; back-off restarting failed container (restart {})", i + 1),
                   "service": deployment})
        })
        .collect();
    json!({
        "source": "ai-engine", "kind": "failure", "observedAt": rfc3339(now),
        "target": {"namespace": namespace, "deployment": deployment, "pod": pod},
        "severity": "critical", "score": 0.97, "confidence": 0.9,
        "recommendedAction": "restart_pod",
        "window": {"metrics": [{"metric_type": "error_rate", "value": 0.4, "timestamp": rfc3339(now),
                                "labels": {"namespace": namespace, "deployment": deployment, "pod": pod}}],
                   "logs": logs},
        "prediction": {"failure_detected": true, "failure_type": "pod_crash", "severity": "critical",
                       "recommended_actions": ["restart_pod"]}
    })
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

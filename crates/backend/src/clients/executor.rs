//! The executor client: signed `POST /executor/execute`
//! (v2 signature with `EXECUTOR_HMAC_SECRET`, `traceparent` + `X-Correlation-Id`, 35 s
//! timeout, up to 3 retries on 429/409/503 after `Retry-After`, each with a fresh nonce),
//! `GET /executor/deployments/{ns}/{name}` with `X-API-Key: EXECUTOR_API_KEY`, and the audit
//! API (`/audit/*`) with bearer `EXECUTOR_AUDIT_TOKEN`.

use std::time::Duration;

use aegis_common::{
    contracts::{
        ActionType, DeploymentStatus, ExecuteRequest, ExecuteResponse, PolicyDecisionSummary,
    },
    telemetry::{TraceParent, propagate},
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// `requestedBy` of every request the backend signs.
pub const REQUESTED_BY: &str = "aegis-backend";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A required setting is missing (e.g. `EXECUTOR_HMAC_SECRET`).
    #[error("executor client is not configured: {0} is unset")]
    NotConfigured(&'static str),
    /// Connect error, timeout, unreadable answer, or retries exhausted.
    #[error("Executor unavailable: {0}")]
    Unavailable(String),
    /// The executor answered with a non-retryable error status.
    #[error("Executor rejected request ({status}): {body}")]
    Rejected {
        /// Upstream status.
        status: u16,
        /// Upstream body.
        body: Value,
    },
}

/// A cheap-to-clone executor client.
#[derive(Debug, Clone)]
pub struct ExecutorClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<SecretString>,
    hmac_secret: Option<SecretString>,
    audit_token: Option<SecretString>,
    timeout: Duration,
    retries: u32,
    max_retry_wait: Duration,
}

impl ExecutorClient {
    /// A client for `base_url` (no trailing slash).
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: Option<SecretString>,
        hmac_secret: Option<SecretString>,
        audit_token: Option<SecretString>,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            hmac_secret,
            audit_token,
            timeout: Duration::from_secs(35),
            retries: 3,
            max_retry_wait: Duration::from_secs(30),
        }
    }

    /// Signs (v2) and sends one action. `Ok` holds the executor's 200 answer, which may be a
    /// failed outcome (`success: false`, not retried).
    pub async fn execute(
        &self,
        action_type: ActionType,
        action_params: Map<String, Value>,
        policy_decision: Option<PolicyDecisionSummary>,
        trace: &TraceParent,
    ) -> Result<ExecuteResponse, ExecutorError> {
        let key = self
            .hmac_secret
            .as_ref()
            .ok_or(ExecutorError::NotConfigured("EXECUTOR_HMAC_SECRET"))?;
        let url = format!("{}/executor/execute", self.base_url);
        let mut request = ExecuteRequest {
            action_type,
            action_params,
            requested_by: Some(REQUESTED_BY.to_owned()),
            policy_decision,
            timestamp: None,
            nonce: None,
            signature: None,
        };
        let mut attempt = 0;
        loop {
            // A fresh timestamp and nonce on every attempt.
            request.sign_v2(
                key.expose_secret().as_bytes(),
                chrono::Utc::now().timestamp_millis(),
            );
            let req = self.http.post(&url).timeout(self.timeout).json(&request);
            let res = propagate(req, trace)
                .send()
                .await
                .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
            let status = res.status();
            let retryable = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::CONFLICT
                    | StatusCode::SERVICE_UNAVAILABLE
            );
            if retryable && attempt < self.retries {
                attempt += 1;
                let wait = retry_after(res.headers()).min(self.max_retry_wait);
                tracing::warn!(%status, attempt, ?wait, "executor asked to retry");
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = res
                .text()
                .await
                .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
            if status == StatusCode::OK {
                return serde_json::from_str(&text).map_err(|e| {
                    ExecutorError::Unavailable(format!("invalid executor answer: {e}"))
                });
            }
            return Err(rejected(status, text));
        }
    }

    /// `GET /executor/deployments/{namespace}/{name}`: the deployment's status, `None` when it does not exist.
    pub async fn deployment(
        &self,
        namespace: &str,
        name: &str,
        trace: &TraceParent,
    ) -> Result<Option<DeploymentStatus>, ExecutorError> {
        let key = self
            .api_key
            .as_ref()
            .ok_or(ExecutorError::NotConfigured("EXECUTOR_API_KEY"))?;
        let url = format!(
            "{}/executor/deployments/{}/{}",
            self.base_url,
            urlencode(namespace),
            urlencode(name)
        );
        let req = self
            .http
            .get(&url)
            .timeout(self.timeout)
            .header("X-API-Key", key.expose_secret());
        let res = propagate(req, trace)
            .send()
            .await
            .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
        match status {
            StatusCode::OK => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ExecutorError::Unavailable(format!("invalid executor answer: {e}"))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(rejected(status, text)),
        }
    }

    /// `GET {EXECUTOR_URL}/audit/{path}?{query}` with the audit bearer token; the upstream
    /// status and JSON body as they are.
    pub async fn audit(
        &self,
        path: &str,
        query: Option<&str>,
        trace: &TraceParent,
    ) -> Result<(u16, Value), ExecutorError> {
        let token = self
            .audit_token
            .as_ref()
            .ok_or(ExecutorError::NotConfigured("EXECUTOR_AUDIT_TOKEN"))?;
        let mut url = format!("{}/audit/{path}", self.base_url);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        let req = self
            .http
            .get(&url)
            .timeout(self.timeout)
            .bearer_auth(token.expose_secret());
        let res = propagate(req, trace)
            .send()
            .await
            .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
        let status = res.status().as_u16();
        let text = res
            .text()
            .await
            .map_err(|e| ExecutorError::Unavailable(e.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }
}

fn rejected(status: StatusCode, text: String) -> ExecutorError {
    ExecutorError::Rejected {
        status: status.as_u16(),
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// `Retry-After` in seconds (default 1 s).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

/// Percent-encodes one path segment.
fn urlencode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! The ai-engine client: `X-API-Key` when `AI_ENGINE_API_KEY` is set, a 30 s
//! timeout per attempt, and bounded retries with linear backoff (1 s, then 2 s) on connect
//! errors, timeouts and 5xx only. A 4xx is never retried; it comes back as
//! [`AiEngineError::Rejected`] with the upstream status and body.

use std::time::Duration;

use aegis_common::telemetry::{TraceParent, propagate};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum AiEngineError {
    /// Every attempt hit a connect error, a timeout, a 5xx or an unreadable body.
    #[error("AI Engine unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last error, as text.
        last_error: String,
    },
    /// The engine answered 4xx (not retried).
    #[error("AI Engine rejected request ({status}): {body}")]
    Rejected {
        /// Upstream status.
        status: u16,
        /// Upstream body (JSON when it parsed, else the text as a string).
        body: Value,
    },
}

/// A cheap-to-clone ai-engine client.
#[derive(Debug, Clone)]
pub struct AiEngineClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
}

impl AiEngineClient {
    /// A client for `base_url` (no trailing slash). `backoff` is the first wait; the n-th
    /// retry waits `n × backoff`.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: Option<SecretString>,
        backoff: Duration,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff,
        }
    }

    /// The engine's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /api/v1/detect-anomaly` with `{metrics, context}`.
    pub async fn detect_anomaly(
        &self,
        body: &Value,
        trace: Option<&TraceParent>,
    ) -> Result<Value, AiEngineError> {
        self.post_json("/api/v1/detect-anomaly", body, trace).await
    }

    /// `POST /api/v1/detect-failure` with `{metrics, logs, context}`.
    pub async fn detect_failure(
        &self,
        body: &Value,
        trace: Option<&TraceParent>,
    ) -> Result<Value, AiEngineError> {
        self.post_json("/api/v1/detect-failure", body, trace).await
    }

    /// POSTs `body` to `path` (relative to the base URL) with the retry policy above and
    /// returns the 2xx JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        trace: Option<&TraceParent>,
    ) -> Result<Value, AiEngineError> {
        let url = format!("{}{path}", self.base_url);
        let mut last_error = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(self.backoff * (attempt - 1)).await;
            }
            let mut req = self.http.post(&url).timeout(self.timeout).json(body);
            if let Some(key) = &self.api_key {
                req = req.header("X-API-Key", key.expose_secret());
            }
            if let Some(parent) = trace {
                req = propagate(req, parent);
            }
            match req.send().await {
                Err(e) => {
                    last_error = error_text(&e);
                }
                Ok(res) => {
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    if status.is_success() {
                        match serde_json::from_str::<Value>(&text) {
                            Ok(v) => return Ok(v),
                            Err(e) => last_error = format!("invalid JSON from AI Engine: {e}"),
                        }
                    } else if status.is_client_error() {
                        let body =
                            serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                        return Err(AiEngineError::Rejected {
                            status: status.as_u16(),
                            body,
                        });
                    } else {
                        last_error = format!("AI Engine returned {status}");
                    }
                }
            }
            tracing::warn!(attempt, %url, error = %last_error, "ai-engine call failed");
        }
        Err(AiEngineError::Unavailable {
            attempts: self.attempts,
            last_error,
        })
    }
}

fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_owned()
    } else if e.is_connect() {
        format!("connection failed: {e}")
    } else {
        e.to_string()
    }
}

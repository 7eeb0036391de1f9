//! Liveness and readiness helpers.
//!
//! Liveness (`/health/ping`) never depends on another service. Readiness and the aggregated
//! health report check dependencies, each with a timeout, concurrently.

use std::{future::Future, sync::OnceLock, time::Duration, time::Instant};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the process start; call once early in `main` (later calls are no-ops).
pub fn mark_start() {
    let _ = STARTED.get_or_init(Instant::now);
}

/// Seconds since [`mark_start`] (or since the first call of this function).
#[must_use]
pub fn uptime_seconds() -> f64 {
    STARTED.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The liveness body of every service: `{"status":"ok","timestamp":...}`, plus `uptime` in
/// seconds where the service's contract has it (the backend).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Ping {
    /// Always `ok`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Now, RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Seconds since the process started (backend only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime: Option<f64>,
}

impl Ping {
    /// `{"status":"ok","timestamp":...}`.
    #[must_use]
    pub fn now() -> Self {
        Self {
            status: "ok",
            timestamp: crate::time::now_rfc3339(),
            uptime: None,
        }
    }

    /// [`Ping::now`] with `uptime`.
    #[must_use]
    pub fn with_uptime() -> Self {
        Self {
            uptime: Some(uptime_seconds()),
            ..Self::now()
        }
    }
}

/// The outcome of checking one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Component name as reported (`database`, `redis`, `aiEngine` ...).
    pub name: &'static str,
    /// `Err(message)` when down.
    pub result: Result<(), String>,
}

/// Runs `probe` with a timeout; a timeout counts as down.
pub async fn check<F, E>(name: &'static str, timeout: Duration, probe: F) -> Check
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let result = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {}ms", timeout.as_millis())),
    };
    Check { name, result }
}

/// The terminus-style report: 200 `{"status":"ok", info, error, details}`
/// when all are up, else 503 with `"status":"error"`.
#[must_use]
pub fn report(checks: &[Check]) -> (StatusCode, Value) {
    let mut info = Map::new();
    let mut error = Map::new();
    let mut details = Map::new();
    for c in checks {
        let entry = match &c.result {
            Ok(()) => json!({"status": "up"}),
            Err(m) => json!({"status": "down", "message": m}),
        };
        details.insert(c.name.into(), entry.clone());
        if c.result.is_ok() {
            info.insert(c.name.into(), entry);
        } else {
            error.insert(c.name.into(), entry);
        }
    }
    let ok = error.is_empty();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({
            "status": if ok { "ok" } else { "error" },
            "info": info,
            "error": error,
            "details": details,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn down_component_gives_503_with_details() {
        let db = check("database", Duration::from_secs(1), async {
            Ok::<_, String>(())
        })
        .await;
        let redis = check("redis", Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, String>(())
        })
        .await;
        let (status, body) = report(&[db, redis]);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "error");
        assert_eq!(body["info"]["database"]["status"], "up");
        assert_eq!(body["error"]["redis"]["status"], "down");
        assert!(
            body["details"]["redis"]["message"]
                .as_str()
                .unwrap()
                .contains("timed out")
        );
    }

    #[test]
    fn all_up_is_200() {
        let (status, body) = report(&[Check {
            name: "database",
            result: Ok(()),
        }]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["error"], json!({}));
    }
}

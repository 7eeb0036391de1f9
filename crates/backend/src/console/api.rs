//! The console's calls into the backend's own API, in process: the same router, layers,
//! authentication, role checks, validation and rate limits as any REST client, with the
//! signed-in user's access token and the browser's address and user agent. The console
//! decides nothing on its own: what the API refuses, the page shows as refused.

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::auth::client::ClientInfo;

/// The largest API answer the console reads (incidents with long timelines stay far below).
const ANSWER_LIMIT: usize = 8 * 1024 * 1024;

/// An API answer: its status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// 2xx.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The API's error message (`message`: a string or a list), for showing in the page.
    #[must_use]
    pub fn message(&self) -> String {
        match &self.body["message"] {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
            _ => self
                .status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned(),
        }
    }

    /// Each validation message on its own (for inline errors).
    #[must_use]
    pub fn messages(&self) -> Vec<String> {
        match &self.body["message"] {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect(),
            _ => vec![self.message()],
        }
    }
}

/// The API router and its prefix.
#[derive(Clone)]
pub struct Api {
    router: axum::Router,
    prefix: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("prefix", &self.prefix).finish()
    }
}

impl Api {
    /// Calls into `router` (the served API, without the console), under `prefix`.
    #[must_use]
    pub fn new(router: axum::Router, prefix: String) -> Self {
        Self { router, prefix }
    }

    /// One call: `path` is relative to the API prefix (`/remediation/incidents?limit=5`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        client: &ClientInfo,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(agent) = &client.user_agent {
            request = request.header(header::USER_AGENT, agent.as_str());
        }
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let Ok(mut request) = request.body(body) else {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: serde_json::json!({"message": "the console built an invalid request"}),
            };
        };
        // The API sees the browser's address (rate limits, lockout, audit), not the console's.
        request.extensions_mut().insert(client.clone());
        let Ok(response) = self.router.clone().oneshot(request).await;
        let status = response.status();
        let body = match axum::body::to_bytes(response.into_body(), ANSWER_LIMIT).await {
            Ok(bytes) if !bytes.is_empty() => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Answer { status, body }
    }
}

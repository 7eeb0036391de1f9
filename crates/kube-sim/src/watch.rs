//! Watches (`?watch=true`): a stream of `ADDED`/`MODIFIED`/`DELETED` events, produced by polling
//! the store every 100 ms. Good enough for `kubectl get -w`, `kubectl rollout status` and
//! kube-rs watchers in tests; there is no watch cache and no bookmarks.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::StatusError;
use crate::object;
use crate::ops;
use crate::resource::Resource;
use crate::table::{self, IncludeObject};

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What to watch and how to render events.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Resource type.
    pub resource: Resource,
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `resourceVersion` to start after; none or "0" sends the current state as ADDED first.
    pub resource_version: Option<u64>,
    /// Render event objects as one-row Tables.
    pub table: Option<IncludeObject>,
    /// Close the stream after this long (`timeoutSeconds`).
    pub timeout: Duration,
}

struct State {
    cluster: Cluster,
    request: WatchRequest,
    seen: HashMap<String, Value>,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    first: bool,
}

fn key(obj: &Value) -> String {
    format!(
        "{}/{}/{}",
        object::namespace(obj),
        object::name(obj),
        object::uid(obj)
    )
}

fn rv(obj: &Value) -> u64 {
    object::resource_version(obj)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl State {
    fn event(&self, kind: &str, obj: &Value) -> Bytes {
        let rendered = match self.request.table {
            Some(include) => table::to_table(self.request.resource, obj, include),
            None => obj.clone(),
        };
        let mut line = json!({"type": kind, "object": rendered}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    fn poll(&mut self) -> Result<(), StatusError> {
        let list = self.cluster.with_store(|s| {
            ops::list(
                s,
                self.request.resource,
                self.request.namespace.as_deref(),
                self.request.label_selector.as_deref(),
                self.request.field_selector.as_deref(),
            )
        })?;
        let items = list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut current = HashMap::new();
        for item in items {
            let k = key(&item);
            match self.seen.get(&k) {
                None => {
                    let after = self.request.resource_version.unwrap_or(0);
                    if self.first && after > 0 {
                        if rv(&item) > after {
                            self.pending.push_back(self.event("MODIFIED", &item));
                        }
                    } else {
                        self.pending.push_back(self.event("ADDED", &item));
                    }
                }
                Some(old) if rv(old) != rv(&item) => {
                    self.pending.push_back(self.event("MODIFIED", &item));
                }
                Some(_) => {}
            }
            current.insert(k, item);
        }
        let gone: Vec<Value> = self
            .seen
            .iter()
            .filter(|(k, _)| !current.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        for obj in gone {
            self.pending.push_back(self.event("DELETED", &obj));
        }
        self.seen = current;
        self.first = false;
        Ok(())
    }
}

/// Starts a watch; fails at once on a bad selector.
pub fn watch(cluster: Cluster, request: WatchRequest) -> Result<Response, StatusError> {
    let mut state = State {
        deadline: Instant::now() + request.timeout,
        cluster,
        request,
        seen: HashMap::new(),
        pending: VecDeque::new(),
        first: true,
    };
    state.poll()?;
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(bytes) = state.pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(bytes), state));
            }
            if Instant::now() >= state.deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            if state.poll().is_err() {
                return None;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(|e| StatusError::new(500, "InternalError", e.to_string()))
}

//! A protocol-level fake of Grafana Loki (which cannot be installed here).
//!
//! It accepts `POST /loki/api/v1/push` in both encodings Loki documents — JSON, and protobuf
//! compressed with snappy — and answers `GET /loki/api/v1/query_range` for what it received,
//! filtering by a stream selector (`{job="aegis-executor", level=~"info|error"}`) and time range.
//! It can be stopped and restarted on the same port with its contents kept, and told to fail,
//! so outage tests can exercise a shipper's retries.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// One received log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiEntry {
    /// Stream labels.
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i128,
    /// The line.
    pub line: String,
}

#[derive(Debug, Default)]
struct Store {
    entries: Mutex<Vec<LokiEntry>>,
    /// When non-zero, pushes answer this status.
    failing: AtomicU16,
    pushes: std::sync::atomic::AtomicU64,
    /// Milliseconds a push waits, after storing its lines, before it is answered.
    answer_delay_ms: std::sync::atomic::AtomicU64,
}

/// A running Loki fake.
#[derive(Debug)]
pub struct LokiFake {
    addr: SocketAddr,
    store: Arc<Store>,
    server: Option<JoinHandle<()>>,
}

impl LokiFake {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(
            "127.0.0.1:0"
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            Arc::default(),
        )
        .await
    }

    async fn start_on(addr: SocketAddr, store: Arc<Store>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/loki/api/v1/push", post(push))
            .route("/loki/api/v1/query_range", get(query_range))
            .route("/ready", get(|| async { "ready" }))
            .with_state(store.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            store,
            server: Some(server),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (what `LOKI_URL` takes).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening (connections are refused) but keeps what was received.
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    /// Listens again on the same port after [`LokiFake::stop`].
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        // The aborted task releases the socket asynchronously; retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match Self::start_on(self.addr, self.store.clone()).await {
                Ok(mut fresh) => {
                    self.server = fresh.server.take();
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("restart failed")))
    }

    /// Makes pushes answer `status` (e.g. 500 or 429); `None` accepts again.
    pub fn set_failing(&self, status: Option<u16>) {
        self.store
            .failing
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Makes every push store its lines, then wait `delay` before answering (a slow Loki).
    pub fn set_answer_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.store.answer_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Everything received so far, in arrival order.
    #[must_use]
    pub fn entries(&self) -> Vec<LokiEntry> {
        self.store
            .entries
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// How many push requests were accepted.
    #[must_use]
    pub fn accepted_pushes(&self) -> u64 {
        self.store.pushes.load(Ordering::SeqCst)
    }
}

impl Drop for LokiFake {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug, Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Debug, Deserialize)]
struct JsonStream {
    stream: BTreeMap<String, String>,
    values: Vec<Vec<Value>>,
}

/// Loki's protobuf push format (`logproto.PushRequest`).
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    line: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, msg.into()).into_response()
}

async fn push(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let failing = store.failing.load(Ordering::SeqCst);
    if failing != 0 {
        let status = StatusCode::from_u16(failing).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "injected failure").into_response();
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = if ct.starts_with("application/json") {
        parse_json_push(&body)
    } else if ct.starts_with("application/x-protobuf") {
        parse_proto_push(&body)
    } else {
        Err(format!("unsupported content type {ct:?}"))
    };
    match parsed {
        Ok(new) => {
            if let Ok(mut entries) = store.entries.lock() {
                entries.extend(new);
            }
            store.pushes.fetch_add(1, Ordering::SeqCst);
            let delay = store.answer_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(e),
    }
}

fn parse_json_push(body: &[u8]) -> Result<Vec<LokiEntry>, String> {
    let push: JsonPush = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in push.streams {
        if s.stream.is_empty() {
            return Err("stream has no labels".into());
        }
        for v in s.values {
            let (Some(ts), Some(line)) = (
                v.first().and_then(Value::as_str),
                v.get(1).and_then(Value::as_str),
            ) else {
                return Err("each value must be [\"<unix ns>\", \"<line>\"]".into());
            };
            let timestamp_ns = ts
                .parse::<i128>()
                .map_err(|_| format!("timestamp {ts:?} is not unix nanoseconds as a string"))?;
            out.push(LokiEntry {
                labels: s.stream.clone(),
                timestamp_ns,
                line: line.to_owned(),
            });
        }
    }
    Ok(out)
}

fn parse_proto_push(body: &[u8]) -> Result<Vec<LokiEntry>, String> {
    use prost::Message as _;
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let req = PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
    let mut out = Vec::new();
    for s in req.streams {
        let labels = parse_selector(&s.labels)?
            .into_iter()
            .map(|m| (m.name, m.value))
            .collect::<BTreeMap<_, _>>();
        for e in s.entries {
            let ts = e.timestamp.unwrap_or_default();
            out.push(LokiEntry {
                labels: labels.clone(),
                timestamp_ns: i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos),
                line: e.line,
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

#[derive(Debug, Clone)]
struct Matcher {
    name: String,
    op: Op,
    value: String,
}

/// Parses `{a="b", c=~"d.*"}` (label matchers only; line filters are not supported).
fn parse_selector(s: &str) -> Result<Vec<Matcher>, String> {
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("not a stream selector: {s:?}"))?;
    let re = regex::Regex::new(
        r#"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)"#,
    )
    .map_err(|e| e.to_string())?;
    let mut rest = inner;
    let mut out = Vec::new();
    while !rest.trim().is_empty() {
        let caps = re
            .captures(rest)
            .ok_or_else(|| format!("cannot parse matcher at {rest:?}"))?;
        let whole = caps.get(0).map_or(0, |m| m.end());
        let get = |i| caps.get(i).map_or("", |m: regex::Match<'_>| m.as_str());
        let op = match get(2) {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "=~" => Op::Re,
            _ => Op::NotRe,
        };
        out.push(Matcher {
            name: get(1).to_owned(),
            op,
            value: get(3).replace("\\\"", "\"").replace("\\\\", "\\"),
        });
        rest = rest.get(whole..).unwrap_or_default();
    }
    Ok(out)
}

fn matches(m: &Matcher, labels: &BTreeMap<String, String>) -> bool {
    let v = labels.get(&m.name).map_or("", String::as_str);
    let re = || regex::Regex::new(&format!("^(?:{})$", m.value)).ok();
    match m.op {
        Op::Eq => v == m.value,
        Op::Ne => v != m.value,
        Op::Re => re().is_some_and(|r| r.is_match(v)),
        Op::NotRe => re().is_some_and(|r| !r.is_match(v)),
    }
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    query: String,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    direction: Option<String>,
}

/// Loki accepts nanosecond integers or RFC 3339.
fn parse_time(s: &str) -> Option<i128> {
    if let Ok(n) = s.parse::<i128>() {
        return Some(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(i128::from)
}

async fn query_range(State(store): State<Arc<Store>>, Query(q): Query<RangeQuery>) -> Response {
    let matchers = match parse_selector(&q.query) {
        Ok(m) => m,
        Err(e) => return bad_request(e),
    };
    let start = q.start.as_deref().and_then(parse_time).unwrap_or(i128::MIN);
    let end = q.end.as_deref().and_then(parse_time).unwrap_or(i128::MAX);
    let limit = q.limit.unwrap_or(100);
    let forward = q.direction.as_deref() == Some("forward");
    let mut hits: Vec<LokiEntry> = store
        .entries
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.timestamp_ns >= start && e.timestamp_ns <= end)
        .filter(|e| matchers.iter().all(|m| matches(m, &e.labels)))
        .collect();
    hits.sort_by_key(|e| e.timestamp_ns);
    if !forward {
        hits.reverse();
    }
    hits.truncate(limit);
    let mut streams: Vec<(BTreeMap<String, String>, Vec<Value>)> = Vec::new();
    for e in hits {
        let value = json!([e.timestamp_ns.to_string(), e.line]);
        match streams.iter_mut().find(|(l, _)| *l == e.labels) {
            Some((_, values)) => values.push(value),
            None => streams.push((e.labels, vec![value])),
        }
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(stream, values)| json!({"stream": stream, "values": values}))
        .collect();
    Json(json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}},
    }))
    .into_response()
}

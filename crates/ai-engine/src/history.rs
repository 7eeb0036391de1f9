//! Persistence off the request path: prediction history and anomaly baseline rows
//! go through a bounded channel to one writer task that inserts them in batches, one prepared
//! `UNNEST` statement per table.
//!
//! Nothing accepted is dropped: when PostgreSQL is down the writer keeps its batch and retries
//! with backoff (the channel then fills and applies back-pressure), and on shutdown the channel
//! is drained before the task ends.

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use sqlx::PgPool;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

/// A JSON document as text, fit for a `jsonb` column.
///
/// The request task serialises each document once (the answer is serialised for the reply
/// anyway, and the body arrived as text), so the writer binds strings and PostgreSQL parses
/// them: no `Value` is copied or walked again on the way. `jsonb` refuses `\u0000`, and the
/// writer retries a refused batch row by row, so the escape is taken out here, at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `value` serialised.
    #[must_use]
    pub fn from_value(value: &Value) -> Self {
        Self::without_nul(value.to_string())
    }

    /// Text that `serde_json` produced or accepted as one JSON document.
    #[must_use]
    pub fn from_json(text: String) -> Self {
        Self::without_nul(text)
    }

    /// A request body exactly as received, when it is UTF-8; the caller has parsed it as JSON
    /// unmodified. Numbers keep every digit the client sent (`jsonb` stores them as `numeric`).
    #[must_use]
    pub fn from_body(body: &[u8]) -> Option<Self> {
        std::str::from_utf8(body)
            .ok()
            .map(|text| Self::without_nul(text.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `text` unless it holds the `\u0000` escape (rare: log lines, labels), in which case it is
    /// parsed, stripped of U+0000 and serialised again. The substring test may also match an
    /// escaped backslash followed by `u0000`; that text only takes the slow path and comes out
    /// unchanged.
    fn without_nul(text: String) -> Self {
        if !text.contains("\\u0000") {
            return Self(text);
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => Self(aegis_common::db::strip_nul_json(value).to_string()),
            // Not JSON at all: PostgreSQL refuses it and the writer sets the row aside.
            Err(_) => Self(text),
        }
    }
}

/// One `prediction_history` row.
#[derive(Debug, Clone)]
pub struct PredictionRecord {
    /// `anomaly` or `failure`.
    pub model_type: &'static str,
    /// The request body as received.
    pub input_data: JsonText,
    /// The full response.
    pub prediction: JsonText,
    /// 4 dp.
    pub severity_score: f64,
    /// 4 dp.
    pub confidence_score: f64,
    /// The (first) recommended action.
    pub recommended_action: String,
    /// Inference time.
    pub execution_time_ms: i32,
    /// model version.
    pub model_version: String,
    /// `{name: value}`.
    pub features: JsonText,
    /// `{"method": ...}` plus the correlation id when one came in.
    pub metadata: JsonText,
}

/// One anomaly baseline row (`training_data`, `model_type='anomaly'`): what a series' state
/// is rebuilt from ([`crate::models::load_series`]).
#[derive(Debug, Clone)]
pub struct BaselineRecord {
    /// `{name: value}`: the window's statistics (its `<type>_mean` are replayed).
    pub features: JsonText,
    /// `{"signature": …, "series": <workload>, "last": {<type>: <newest value>}}`; `series` is
    /// left out when the window names no workload.
    pub metadata: JsonText,
}

impl BaselineRecord {
    /// The row of a window of `series` with statistics `features`.
    #[must_use]
    pub fn new(
        signature: &str,
        workload: Option<&str>,
        series: &std::collections::BTreeMap<crate::detector::MetricType, Vec<f64>>,
        features: JsonText,
    ) -> Self {
        let last: serde_json::Map<String, Value> = series
            .iter()
            .filter_map(|(t, v)| Some((t.as_str().to_owned(), serde_json::json!(v.last()?))))
            .collect();
        let mut metadata = serde_json::json!({"signature": signature, "last": last});
        if let (Some(w), Some(obj)) = (workload, metadata.as_object_mut()) {
            obj.insert("series".into(), Value::String(w.to_owned()));
        }
        Self {
            features,
            metadata: JsonText::from_value(&metadata),
        }
    }
}

/// What the writer stores.
#[derive(Debug, Clone)]
pub enum Record {
    /// A prediction.
    Prediction(Box<PredictionRecord>),
    /// A baseline row.
    Baseline(BaselineRecord),
}

impl Record {
    /// The record with every text fit for PostgreSQL (no U+0000; [`JsonText`] already has
    /// none). Requests carry arbitrary strings (log lines, labels), and a value PostgreSQL
    /// refuses would cost its whole batch a row-by-row retry.
    #[must_use]
    pub fn storable(self) -> Self {
        use aegis_common::db::strip_nul;
        match self {
            Self::Prediction(mut p) => {
                p.recommended_action = strip_nul(std::mem::take(&mut p.recommended_action));
                p.model_version = strip_nul(std::mem::take(&mut p.model_version));
                Self::Prediction(p)
            }
            Self::Baseline(b) => Self::Baseline(b),
        }
    }
}

/// Sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    tx: mpsc::Sender<Record>,
}

/// Owner's handle: closes the writer after draining everything queued.
#[derive(Debug)]
pub struct HistoryHandle {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl HistoryHandle {
    /// Drains the queue, writes it, and waits (at most `limit`) for the task to end. Call it
    /// after the server has stopped, so no handler can still be queueing.
    pub async fn close(self, limit: Duration) -> bool {
        self.stop.notify_one();
        tokio::time::timeout(limit, self.task).await.is_ok()
    }
}

const BATCH: usize = 256;

impl HistoryWriter {
    /// Starts the writer task. `on_error` is called once per failed attempt (metrics).
    pub fn spawn(
        pool: PgPool,
        capacity: usize,
        on_error: impl Fn() + Send + Sync + 'static,
    ) -> (Self, HistoryHandle) {
        let (tx, mut rx) = mpsc::channel::<Record>(capacity.max(1));
        let stop = Arc::new(Notify::new());
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let closing = tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => n == 0,
                    () = stopping.notified() => {
                        rx.close();
                        true
                    }
                };
                if closing {
                    // Whatever is still queued is written before the task ends.
                    while rx.recv_many(&mut batch, BATCH).await > 0 {
                        write_with_retry(&pool, &mut batch, &on_error).await;
                    }
                    write_with_retry(&pool, &mut batch, &on_error).await;
                    return;
                }
                write_with_retry(&pool, &mut batch, &on_error).await;
            }
        });
        (Self { tx }, HistoryHandle { stop, task })
    }

    /// Queues a record; waits when the queue is full (back-pressure, never loss).
    pub async fn record(&self, record: Record) {
        if self.tx.send(record.storable()).await.is_err() {
            tracing::error!("history writer has stopped; record not stored");
        }
    }
}

/// Whether PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23,
/// integrity violation): retrying the same rows can never succeed.
fn is_permanent(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
}

/// Writes `batch` (retrying with backoff while PostgreSQL is unavailable) and empties it. A
/// batch PostgreSQL refuses for its content is written row by row, so one bad row cannot
/// block the rows behind it; a row that is refused on its own is logged and set aside.
async fn write_with_retry(pool: &PgPool, batch: &mut Vec<Record>, on_error: &impl Fn()) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(100);
    loop {
        match write_batch(pool, batch).await {
            Ok(()) => break,
            Err(e) if is_permanent(&e) => {
                on_error();
                tracing::warn!(error = %e, rows = batch.len(), "history batch refused; writing rows one by one");
                for record in batch.iter() {
                    write_one(pool, record, on_error).await;
                }
                break;
            }
            Err(e) => {
                on_error();
                tracing::warn!(error = %e, rows = batch.len(), "history write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    batch.clear();
}

/// One record, retried while PostgreSQL is unavailable; dropped (with an error log) when
/// PostgreSQL refuses its content.
async fn write_one(pool: &PgPool, record: &Record, on_error: &impl Fn()) {
    let mut delay = Duration::from_millis(100);
    loop {
        match write_batch(pool, std::slice::from_ref(record)).await {
            Ok(()) => return,
            Err(e) if is_permanent(&e) => {
                on_error();
                let kind = match record {
                    Record::Prediction(p) => p.model_type,
                    Record::Baseline(_) => "baseline",
                };
                tracing::error!(error = %e, kind, "history row refused by PostgreSQL; set aside");
                return;
            }
            Err(e) => {
                on_error();
                tracing::warn!(error = %e, "history write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Inserts `batch` in one transaction: one statement per table, whatever the batch size.
///
/// The rows travel as one array per column through `UNNEST`, so every batch size shares one
/// prepared statement per table (as the backend's audit writer does). A multi-row `VALUES` list
/// is a different statement for each size: it was parsed and planned again for every batch,
/// which cost PostgreSQL, on the same cores, more than the rows themselves. The documents
/// travel as `text[]` and are cast to `jsonb` row by row: text that is not valid JSON is a data
/// exception (class 22), which [`write_with_retry`] answers row by row.
async fn write_batch(pool: &PgPool, batch: &[Record]) -> Result<(), sqlx::Error> {
    let predictions: Vec<&PredictionRecord> = batch
        .iter()
        .filter_map(|r| match r {
            Record::Prediction(p) => Some(p.as_ref()),
            Record::Baseline(_) => None,
        })
        .collect();
    let baselines: Vec<&BaselineRecord> = batch
        .iter()
        .filter_map(|r| match r {
            Record::Baseline(b) => Some(b),
            Record::Prediction(_) => None,
        })
        .collect();
    let mut tx = pool.begin().await?;
    if !predictions.is_empty() {
        let json = |f: fn(&PredictionRecord) -> &JsonText| -> Vec<&str> {
            predictions.iter().map(|p| f(p).as_str()).collect()
        };
        let text = |f: fn(&PredictionRecord) -> &str| -> Vec<&str> {
            predictions.iter().map(|p| f(p)).collect()
        };
        let score = |f: fn(&PredictionRecord) -> f64| -> Vec<f64> {
            predictions.iter().map(|p| round4(f(p))).collect()
        };
        let times: Vec<i32> = predictions.iter().map(|p| p.execution_time_ms).collect();
        sqlx::query(
            "INSERT INTO prediction_history (model_type, input_data, prediction, severity_score, \
             confidence_score, recommended_action, execution_time_ms, model_version, features, \
             metadata) \
             SELECT m, i::jsonb, p::jsonb, s, c, r, t, v, f::jsonb, d::jsonb \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], \
             $6::text[], $7::int4[], $8::text[], $9::text[], $10::text[]) \
             AS u(m, i, p, s, c, r, t, v, f, d)",
        )
        .bind(text(|p| p.model_type))
        .bind(json(|p| &p.input_data))
        .bind(json(|p| &p.prediction))
        .bind(score(|p| p.severity_score))
        .bind(score(|p| p.confidence_score))
        .bind(text(|p| &p.recommended_action))
        .bind(times)
        .bind(text(|p| &p.model_version))
        .bind(json(|p| &p.features))
        .bind(json(|p| &p.metadata))
        .execute(&mut *tx)
        .await?;
    }
    if !baselines.is_empty() {
        let features: Vec<&str> = baselines.iter().map(|b| b.features.as_str()).collect();
        let metadata: Vec<&str> = baselines.iter().map(|b| b.metadata.as_str()).collect();
        sqlx::query(
            "INSERT INTO training_data (model_type, features, label, source, metadata) \
             SELECT 'anomaly', f::jsonb, NULL, 'request', m::jsonb \
             FROM UNNEST($1::text[], $2::text[]) AS t(f, m)",
        )
        .bind(features)
        .bind(metadata)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Rounds to 4 decimal places and clamps to [0, 1] (the columns' CHECK).
#[must_use]
pub fn round4(x: f64) -> f64 {
    if x.is_finite() {
        ((x * 10_000.0).round() / 10_000.0).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::JsonText;

    #[test]
    fn json_text_strips_nul_from_strings_and_keys() {
        let text = JsonText::from_value(&json!({"a\u{0}b": ["x\u{0}y", 1]}));
        assert_eq!(text.as_str(), r#"{"ab":["xy",1]}"#);
        let body = JsonText::from_body(br#"{"m": "nul \u0000 inside"}"#).expect("utf-8");
        assert_eq!(body.as_str(), r#"{"m":"nul  inside"}"#);
    }

    #[test]
    fn json_text_keeps_an_escaped_backslash_before_u0000() {
        // `\\u0000` is a backslash and the letters u0000: no NUL, nothing to take out.
        let text = JsonText::from_json(r#"{"path":"C:\\u0000"}"#.to_owned());
        assert_eq!(text.as_str(), r#"{"path":"C:\\u0000"}"#);
        let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
        assert_eq!(value["path"], "C:\\u0000");
    }

    #[test]
    fn json_text_keeps_a_body_byte_for_byte() {
        let body = br#"{"metrics": [{"metric_type": "cpu", "value": 45.123456789012345678}]}"#;
        let text = JsonText::from_body(body).expect("utf-8");
        assert_eq!(text.as_str().as_bytes(), body);
        assert!(JsonText::from_body(b"{\"m\": \"\xff\"}").is_none());
    }
}

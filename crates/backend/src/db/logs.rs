//! `logs`: rows ingested through `POST /logs` and the backend's own
//! warn-and-above events; read by `GET /logs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Accepted levels.
pub const LEVELS: &[&str] = &["debug", "info", "warn", "error", "fatal"];

/// One row to insert.
#[derive(Debug, Clone)]
pub struct NewLog {
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// One of [`LEVELS`].
    pub level: String,
    /// Emitting service.
    pub service: String,
    /// Text.
    pub message: String,
    /// Free-form context object.
    pub context: Value,
    /// Trace id, if any.
    pub trace_id: Option<String>,
}

/// Inserts `rows` in one statement.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn insert_many(db: &PgPool, rows: &[NewLog]) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ts: Vec<DateTime<Utc>> = rows.iter().map(|r| r.timestamp).collect();
    let level: Vec<&str> = rows.iter().map(|r| r.level.as_str()).collect();
    let service: Vec<&str> = rows.iter().map(|r| r.service.as_str()).collect();
    let message: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
    let context: Vec<Value> = rows.iter().map(|r| r.context.clone()).collect();
    let trace: Vec<Option<&str>> = rows.iter().map(|r| r.trace_id.as_deref()).collect();
    sqlx::query(
        "INSERT INTO logs (timestamp, level, service, message, context, trace_id) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], \
         $5::jsonb[], $6::text[])",
    )
    .bind(ts)
    .bind(level)
    .bind(service)
    .bind(message)
    .bind(context)
    .bind(trace)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// A stored log entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRow {
    /// Id.
    pub id: Uuid,
    /// When.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: DateTime<Utc>,
    /// Service.
    pub service: String,
    /// Level.
    pub level: String,
    /// Text.
    pub message: String,
    /// Context.
    pub context: Value,
    /// Trace id.
    pub trace_id: Option<String>,
}

/// Filters of `GET /logs`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Any of these levels.
    pub levels: Option<Vec<String>>,
    /// Any of these services.
    pub services: Option<Vec<String>>,
    /// From (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// To (inclusive).
    pub to: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the message.
    pub search: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

const WHERE: &str = "WHERE ($1::text[] IS NULL OR level = ANY($1)) \
     AND ($2::text[] IS NULL OR service = ANY($2)) \
     AND ($3::timestamptz IS NULL OR timestamp >= $3) \
     AND ($4::timestamptz IS NULL OR timestamp <= $4) \
     AND ($5::text IS NULL OR message ILIKE '%' || $5 || '%' ESCAPE '\\')";

/// Escapes `%`, `_` and `\` for ILIKE.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The total matching `filter` and one page of it, newest first.
#[tracing::instrument(skip(db))]
pub async fn page(db: &PgPool, filter: &LogFilter) -> Result<(i64, Vec<LogRow>), sqlx::Error> {
    let search = filter.search.as_deref().map(like_escape);
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM logs {WHERE}"))
        .bind(filter.levels.as_deref())
        .bind(filter.services.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(search.as_deref())
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as::<_, LogRow>(&format!(
        "SELECT id, timestamp, service, level, message, context, trace_id FROM logs {WHERE} \
         ORDER BY timestamp DESC, id DESC LIMIT $6 OFFSET $7"
    ))
    .bind(filter.levels.as_deref())
    .bind(filter.services.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(search.as_deref())
    .bind(filter.limit)
    .bind(filter.offset)
    .fetch_all(db)
    .await?;
    Ok((total, rows))
}

/// The tracing layer that feeds the backend's own warn-and-above events into `logs`: events
/// go through a bounded channel (never blocking, dropped when full) to a writer task that
/// inserts them in batches off the request path. A failed insert is reported on stderr only,
/// never through `tracing`, so it cannot log back into the table; events of `sqlx` and of the
/// writer itself are skipped for the same reason.
pub mod sink {
    use std::{
        fmt::Write as _,
        sync::{Mutex, PoisonError},
        time::Duration,
    };

    use chrono::Utc;
    use serde_json::{Map, Value};
    use sqlx::PgPool;
    use tokio::sync::mpsc;
    use tracing::{Event, Level, Subscriber, field::Field};
    use tracing_subscriber::{Layer, layer::Context};

    use super::NewLog;

    /// Events waiting for the writer before it falls behind and drops them.
    const CAPACITY: usize = 4096;
    /// Rows per INSERT.
    const BATCH: usize = 200;
    /// Longest wait before a partial batch is written.
    const FLUSH_EVERY: Duration = Duration::from_millis(500);

    /// The receiver of the globally installed layer, until `Application::build` takes it.
    static PENDING: Mutex<Option<mpsc::Receiver<NewLog>>> = Mutex::new(None);

    /// The layer; see the module docs.
    #[derive(Debug, Clone)]
    pub struct DbLogLayer {
        tx: mpsc::Sender<NewLog>,
        service: &'static str,
    }

    impl DbLogLayer {
        /// A layer and the receiver its writer drains (see [`spawn_writer`]).
        #[must_use]
        pub fn new(service: &'static str) -> (Self, mpsc::Receiver<NewLog>) {
            let (tx, rx) = mpsc::channel(CAPACITY);
            (Self { tx, service }, rx)
        }

        /// A layer for the global subscriber; its receiver waits for [`take_pending`].
        #[must_use]
        pub fn global(service: &'static str) -> Self {
            let (layer, rx) = Self::new(service);
            *PENDING.lock().unwrap_or_else(PoisonError::into_inner) = Some(rx);
            layer
        }
    }

    /// The receiver of the global layer, once.
    pub fn take_pending() -> Option<mpsc::Receiver<NewLog>> {
        PENDING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        context: Map<String, Value>,
        trace_id: Option<String>,
    }

    impl tracing::field::Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "message" => self.message.push_str(value),
                "trace_id" => self.trace_id = Some(value.chars().take(64).collect()),
                name => {
                    self.context
                        .insert(name.to_owned(), Value::String(value.to_owned()));
                }
            }
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.context.insert(field.name().to_owned(), value.into());
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.context.insert(field.name().to_owned(), value.into());
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.context.insert(field.name().to_owned(), value.into());
        }
        fn record_f64(&mut self, field: &Field, value: f64) {
            self.context.insert(field.name().to_owned(), value.into());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.message, "{value:?}");
            } else {
                self.context
                    .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
            }
        }
    }

    impl<S: Subscriber> Layer<S> for DbLogLayer {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let meta = event.metadata();
            // Levels compare by verbosity: ERROR < WARN < INFO.
            if *meta.level() > Level::WARN {
                return;
            }
            let target = meta.target();
            if target.starts_with("sqlx") || target.starts_with(module_path!()) {
                return;
            }
            let mut fields = Fields::default();
            event.record(&mut fields);
            fields
                .context
                .insert("target".into(), Value::String(target.to_owned()));
            let level = if *meta.level() == Level::ERROR {
                "error"
            } else {
                "warn"
            };
            // Full or closed: drop the event rather than slow the request down.
            let _ = self.tx.try_send(NewLog {
                timestamp: Utc::now(),
                level: level.to_owned(),
                service: self.service.to_owned(),
                message: fields.message,
                context: Value::Object(fields.context),
                trace_id: fields.trace_id,
            });
        }
    }

    /// Drains `rx` into `logs` in batches until every sender is gone.
    pub fn spawn_writer(db: PgPool, mut rx: mpsc::Receiver<NewLog>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(row)) => batch.push(row),
                        Ok(None) | Err(_) => break,
                    }
                }
                if let Err(e) = super::insert_many(&db, &batch).await {
                    // Never through tracing: that would feed the failure back into the table.
                    eprintln!(
                        "aegis-backend: failed to store {} log rows: {e}",
                        batch.len()
                    );
                }
                batch.clear();
            }
        })
    }
}

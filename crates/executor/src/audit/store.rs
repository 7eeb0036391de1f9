//! Writing audit rows and their Loki lines.
//!
//! Every state change is one transaction: the row change (the database assigns the hash-chain
//! link when the row becomes final) plus, when `LOKI_URL` is set, the Loki line in
//! `loki_outbox`. So a line exists exactly when its state change committed, and the shipper
//! delivers it later whatever Loki's state is.
//!
//! Every statement is checked against the schema when the crate compiles (`sqlx::query!`,
//! against the descriptions in `.sqlx/`, which `scripts/sqlx-prepare.sh` regenerates after a
//! statement or a migration changes).

use aegis_common::contracts::ActionType;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What an audit row is about (fixed at insert).
#[derive(Debug, Clone)]
pub struct AuditSubject {
    /// The action.
    pub action_type: ActionType,
    /// Namespace as sent (may be `undefined` for rejected rows without one).
    pub namespace: String,
    /// `pod`, `deployment` or `unknown`.
    pub resource_type: &'static str,
    /// `podName` ‖ `deploymentName` ‖ `unknown`.
    pub resource_name: String,
    /// Parameters as received.
    pub action_params: Value,
    /// `requestedBy`.
    pub requested_by: Option<String>,
    /// The advisory policy decision.
    pub policy_decision: Option<Value>,
    /// Client IP.
    pub ip_address: Option<String>,
    /// Signature as sent (stored, never returned).
    pub signature: Option<String>,
    /// W3C trace id.
    pub correlation_id: Option<String>,
}

impl AuditSubject {
    /// The subject with every value fit for PostgreSQL (no U+0000 in text or jsonb, names
    /// within their column's length), so that a hostile request is audited as a rejection
    /// instead of failing the insert. The parameters as sent stay whole in `action_params`.
    #[must_use]
    pub fn storable(self) -> Self {
        use aegis_common::db::{bounded, strip_nul, strip_nul_json};
        Self {
            namespace: bounded(strip_nul(self.namespace), NAME_COLUMN_CHARS),
            resource_name: bounded(strip_nul(self.resource_name), NAME_COLUMN_CHARS),
            action_params: strip_nul_json(self.action_params),
            requested_by: self
                .requested_by
                .map(|r| bounded(strip_nul(r), NAME_COLUMN_CHARS)),
            policy_decision: self.policy_decision.map(strip_nul_json),
            signature: self.signature.map(strip_nul),
            correlation_id: self
                .correlation_id
                .map(|c| bounded(strip_nul(c), CORRELATION_COLUMN_CHARS)),
            ..self
        }
    }
}

/// `varchar(255)` of `namespace`, `resource_name` and `requested_by`.
const NAME_COLUMN_CHARS: usize = 255;
/// `varchar(64)` of `correlation_id`.
const CORRELATION_COLUMN_CHARS: usize = 64;

/// A row in progress: what the Loki lines need.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Row id.
    pub id: Uuid,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// The subject.
    pub subject: AuditSubject,
}

/// Final outcome of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    /// The action succeeded.
    Completed,
    /// The action failed.
    Failed,
}

impl FinalStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Writes rows and lines.
#[derive(Debug, Clone)]
pub struct AuditStore {
    db: PgPool,
    loki: bool,
    head: Option<prometheus::IntGauge>,
}

/// The line: keys in a fixed order that log queries rely on, `correlation_id` last, `null`
/// when unset.
#[must_use]
pub fn loki_line(
    row: &AuditRow,
    status: &str,
    error_message: Option<&str>,
    execution_duration: Option<i32>,
) -> String {
    let s = &row.subject;
    let mut m = Map::new();
    m.insert("audit_id".into(), json!(row.id.to_string()));
    m.insert("action_type".into(), json!(s.action_type.as_str()));
    m.insert("status".into(), json!(status));
    m.insert("namespace".into(), json!(s.namespace));
    m.insert("resource_type".into(), json!(s.resource_type));
    m.insert("resource_name".into(), json!(s.resource_name));
    m.insert("requested_by".into(), json!(s.requested_by));
    m.insert("error_message".into(), json!(error_message));
    m.insert("execution_duration".into(), json!(execution_duration));
    m.insert(
        "timestamp".into(),
        json!(row.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    m.insert("correlation_id".into(), json!(s.correlation_id));
    Value::Object(m).to_string()
}

/// The stream labels.
#[must_use]
pub fn loki_labels(row: &AuditRow, status: &str) -> Value {
    let level = match status {
        "failed" => "error",
        "rejected" => "warn",
        _ => "info",
    };
    json!({
        "job": "aegis-executor",
        "level": level,
        "action_type": row.subject.action_type.as_str(),
        "namespace": row.subject.namespace,
        "status": status,
    })
}

fn now_ns() -> i64 {
    Utc::now().timestamp_millis().saturating_mul(1_000_000)
}

impl AuditStore {
    /// A store; `loki` = whether lines go to the outbox.
    #[must_use]
    pub fn new(db: PgPool, loki: bool) -> Self {
        Self {
            db,
            loki,
            head: None,
        }
    }

    /// Raises `gauge` to each chain link this store writes (`executor_audit_chain_head_seq`).
    #[must_use]
    pub fn with_head_gauge(mut self, gauge: prometheus::IntGauge) -> Self {
        self.head = Some(gauge);
        self
    }

    fn saw_link(&self, seq: Option<i64>) {
        if let (Some(g), Some(seq)) = (&self.head, seq)
            && seq > g.get()
        {
            g.set(seq);
        }
    }

    async fn outbox(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        row: &AuditRow,
        status: &str,
        error_message: Option<&str>,
        execution_duration: Option<i32>,
    ) -> Result<(), sqlx::Error> {
        if !self.loki {
            return Ok(());
        }
        // A final row's line ends with its chain link (`chain_seq`, `chain_hash`), so the
        // chain's head leaves the database with every final line.
        sqlx::query!(
            r#"INSERT INTO loki_outbox (audit_id, labels, line, timestamp_ns)
               SELECT r.id, $2, CASE WHEN r.chain_seq IS NULL THEN $3
                      ELSE left($3, -1) || ',"chain_seq":' || r.chain_seq
                           || ',"chain_hash":"' || r.hash || '"}' END,
                      $4
                 FROM action_audit_logs r WHERE r.id = $1"#,
            row.id,
            loki_labels(row, status),
            loki_line(row, status, error_message, execution_duration),
            now_ns(),
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert(
        &self,
        db: impl sqlx::PgExecutor<'_>,
        subject: &AuditSubject,
        status: &str,
        error_message: Option<&str>,
        execution_duration: Option<i32>,
    ) -> Result<(Uuid, DateTime<Utc>, Option<i64>), sqlx::Error> {
        let row = sqlx::query!(
            "INSERT INTO action_audit_logs
                (action_type, namespace, resource_type, resource_name, action_params,
                 requested_by, policy_decision, ip_address, signature, correlation_id,
                 status, error_message, execution_duration, completed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::inet, $9, $10, $11, $12, $13,
                     CASE WHEN $11::varchar = 'rejected' THEN now() END)
             RETURNING id, created_at, chain_seq",
            subject.action_type.as_str(),
            subject.namespace,
            subject.resource_type,
            subject.resource_name,
            subject.action_params,
            subject.requested_by,
            subject.policy_decision,
            subject.ip_address,
            subject.signature,
            subject.correlation_id,
            status,
            error_message,
            execution_duration,
        )
        .fetch_one(db)
        .await?;
        Ok((row.id, row.created_at, row.chain_seq))
    }

    /// Inserts a row that is final at once (`rejected`), with its `execution_errors` row.
    pub async fn insert_rejected(
        &self,
        subject: AuditSubject,
        message: &str,
        category: &str,
        execution_duration: i32,
    ) -> Result<AuditRow, sqlx::Error> {
        let subject = subject.storable();
        let message = aegis_common::db::strip_nul(message.to_owned());
        let message = message.as_str();
        let mut tx = self.db.begin().await?;
        let (id, created_at, link) = self
            .insert(
                &mut *tx,
                &subject,
                "rejected",
                Some(message),
                Some(execution_duration),
            )
            .await?;
        let row = AuditRow {
            id,
            created_at,
            subject,
        };
        record_error(&mut tx, id, category, message).await?;
        self.outbox(
            &mut tx,
            &row,
            "rejected",
            Some(message),
            Some(execution_duration),
        )
        .await?;
        tx.commit().await?;
        self.saw_link(link);
        Ok(row)
    }

    /// Steps 5 and 6: the `pending` row and its move to `in_progress` (the trigger sees and
    /// checks both transitions).
    ///
    /// With Loki, one transaction holds both changes and a line for each (the move and both
    /// lines are one statement), so that a line exists exactly when its change committed:
    /// four round trips. Without Loki there is no line to keep with its change, and both steps
    /// are one call of the `audit_open` function: one round trip and one commit.
    pub async fn insert_in_progress(&self, subject: AuditSubject) -> Result<AuditRow, sqlx::Error> {
        let subject = subject.storable();
        if !self.loki {
            // `audit_open` inserts the `pending` row and moves it to `in_progress` as two
            // statements of one call.
            let row = sqlx::query!(
                r#"SELECT audit_id AS "audit_id!", audit_created_at AS "audit_created_at!"
                     FROM audit_open($1, $2, $3, $4, $5, $6, $7, $8::text::inet, $9, $10)"#,
                subject.action_type.as_str(),
                subject.namespace,
                subject.resource_type,
                subject.resource_name,
                subject.action_params,
                subject.requested_by,
                subject.policy_decision,
                subject.ip_address,
                subject.signature,
                subject.correlation_id,
            )
            .fetch_one(&self.db)
            .await?;
            return Ok(AuditRow {
                id: row.audit_id,
                created_at: row.audit_created_at,
                subject,
            });
        }
        let mut tx = self.db.begin().await?;
        let (id, created_at, _) = self
            .insert(&mut *tx, &subject, "pending", None, None)
            .await?;
        let row = AuditRow {
            id,
            created_at,
            subject,
        };
        let pending_at = now_ns();
        // The move to `in_progress` with the lines of both steps, `pending` first (outbox ids
        // follow the row order, and the shipper sends in id order).
        sqlx::query!(
            "WITH u AS (
                UPDATE action_audit_logs SET status = 'in_progress' WHERE id = $1 RETURNING id)
             INSERT INTO loki_outbox (audit_id, labels, line, timestamp_ns)
             SELECT u.id, l.labels, l.line, l.ts
               FROM u, (VALUES (1, $2::jsonb, $3::text, $4::int8),
                               (2, $5::jsonb, $6::text, $7::int8)) AS l (ord, labels, line, ts)
              ORDER BY l.ord",
            row.id,
            loki_labels(&row, "pending"),
            loki_line(&row, "pending", None, None),
            pending_at,
            loki_labels(&row, "in_progress"),
            loki_line(&row, "in_progress", None, None),
            now_ns().max(pending_at + 1),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Step 8: `in_progress` → `completed` | `failed`, with the `execution_errors` row of a
    /// failure and the Loki line, as one statement (one round trip and one commit; the
    /// trigger assigns the chain link as before).
    pub async fn finish(
        &self,
        row: &AuditRow,
        status: FinalStatus,
        result: Option<&Value>,
        error: Option<(&str, &str)>,
        execution_duration: i32,
    ) -> Result<(), sqlx::Error> {
        let message = error.map(|(m, _)| m);
        let category = error.map(|(_, c)| c);
        let (labels, line) = if self.loki {
            (
                Some(loki_labels(row, status.as_str())),
                Some(loki_line(
                    row,
                    status.as_str(),
                    message,
                    Some(execution_duration),
                )),
            )
        } else {
            (None, None)
        };
        // One statement: `$6` (the error category) and `$8` (the Loki labels) are NULL when
        // there is no error row or no Loki line to write.
        let link = sqlx::query_scalar!(
            r#"WITH u AS (
                UPDATE action_audit_logs
                   SET status = $2, result = $3, error_message = $4, execution_duration = $5,
                       completed_at = now()
                 WHERE id = $1
                RETURNING id, chain_seq, hash),
              e AS (
                INSERT INTO execution_errors
                    (audit_log_id, error_category, error_message, recoverable)
                SELECT id, $6, $4, $7 FROM u WHERE $6::varchar IS NOT NULL),
              o AS (
                INSERT INTO loki_outbox (audit_id, labels, line, timestamp_ns)
                SELECT id, $8,
                       left($9, -1) || ',"chain_seq":' || chain_seq
                       || ',"chain_hash":"' || hash || '"}',
                       $10
                  FROM u WHERE $8::jsonb IS NOT NULL)
            SELECT max(chain_seq) FROM u"#,
            row.id,
            status.as_str(),
            result,
            message,
            execution_duration,
            category,
            category.is_some_and(recoverable),
            labels,
            line,
            now_ns(),
        )
        .fetch_one(&self.db)
        .await?;
        self.saw_link(link);
        Ok(())
    }
}

/// Timeouts and network errors may succeed when tried again.
fn recoverable(category: &str) -> bool {
    matches!(category, "timeout" | "network")
}

async fn record_error(
    tx: &mut Transaction<'_, Postgres>,
    audit_id: Uuid,
    category: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO execution_errors (audit_log_id, error_category, error_message, recoverable)
         VALUES ($1, $2, $3, $4)",
        audit_id,
        category,
        message,
        recoverable(category),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

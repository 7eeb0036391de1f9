//! The notification tables: channels, routing rules, the outbox (`notification_events`) and
//! its deliveries.
//!
//! Incident events enter the outbox through the `incidents_notification` trigger, in the
//! statement of the step itself; other events ([`enqueue`]) are written by their caller in the
//! transaction of the change they report. [`route_pending`] turns events into one delivery row
//! per matching channel; [`claim_due`] leases due deliveries to one replica for one attempt.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Row, postgres::PgRow};
use uuid::Uuid;

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text form, as stored and sent.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the text form.
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }

            /// The text forms, comma-separated (for error messages).
            #[must_use]
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = sqlx::Error;

            fn try_from(text: String) -> Result<Self, sqlx::Error> {
                Self::parse(&text).ok_or_else(|| {
                    sqlx::Error::Decode(format!(concat!("unknown ", $what, " {:?}"), text).into())
                })
            }
        }
    };
}

closed_set!(
    /// What a notification reports. The incident ones follow its status; the database's
    /// `notification_events.event_type` check lists the same names.
    EventType, "notification event type" {
        /// A signal opened an incident.
        Opened => "opened",
        /// A planned action waits for an admin or operator.
        AwaitingApproval => "awaiting_approval",
        /// The action is being applied.
        Executing => "executing",
        /// The action worked.
        Resolved => "resolved",
        /// The action or its plan failed.
        Failed => "failed",
        /// A human has to look.
        Escalated => "escalated",
        /// Deliberately not acted on (policy, mode, dry run, guardrail).
        Suppressed => "suppressed",
        /// An admin or operator rejected the action.
        Rejected => "rejected",
        /// Nobody approved or rejected in time.
        Expired => "expired",
        /// The remediation mode (the kill switch) changed.
        ModeChanged => "mode_changed",
        /// A test sent through the API.
        Test => "test",
    }
);

closed_set!(
    /// The kinds of channel.
    ChannelType, "notification channel type" {
        /// A Slack incoming webhook.
        Slack => "slack",
        /// An HTTP endpoint, signed by the Standard Webhooks specification.
        Webhook => "webhook",
        /// Alertmanager's `POST /api/v2/alerts`.
        Alertmanager => "alertmanager",
        /// E-mail through the backend's SMTP settings.
        Email => "email",
    }
);

/// The severities of a notification, lowest first.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// An event for the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// What it reports.
    pub event_type: EventType,
    /// The incident, if it is about one.
    pub incident_id: Option<Uuid>,
    /// One of [`SEVERITIES`].
    pub severity: &'a str,
    /// The namespace, if it is about one (routes match it against their pattern).
    pub namespace: Option<&'a str>,
    /// What the channels render.
    pub payload: &'a Value,
}

/// Adds `event` to the outbox, in the caller's transaction; answers its id.
pub async fn enqueue(db: impl PgExecutor<'_>, event: &NewEvent<'_>) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO notification_events (event_type, incident_id, severity, namespace, payload) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(event.event_type.as_str())
    .bind(event.incident_id)
    .bind(event.severity)
    .bind(event.namespace)
    .bind(event.payload)
    .fetch_one(db)
    .await
}

/// A channel as the API shows it: the secret only as whether one is set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// `slack`, `webhook`, `alertmanager` or `email`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub channel_type: ChannelType,
    /// The settings that may be shown (URL, recipients).
    pub config: Value,
    /// Whether a secret is stored (it is never returned).
    pub has_secret: bool,
    /// A disabled channel is routed no new event (deliveries already made still go out).
    pub enabled: bool,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

const CHANNEL_COLUMNS: &str =
    "id, name, type, config, secret IS NOT NULL AS has_secret, enabled, created_at, updated_at";

fn channel(row: &PgRow) -> Result<Channel, sqlx::Error> {
    Ok(Channel {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        channel_type: ChannelType::try_from(row.try_get::<String, _>("type")?)?,
        config: row.try_get("config")?,
        has_secret: row.try_get("has_secret")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A channel to create, or the fields of one to change (`None` keeps a field as it is).
#[derive(Debug, Default)]
pub struct ChannelFields {
    /// Name.
    pub name: Option<String>,
    /// Type (creation only).
    pub channel_type: Option<ChannelType>,
    /// Shown settings.
    pub config: Option<Value>,
    /// The new secret.
    pub secret: Option<SecretString>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// Creates a channel.
#[tracing::instrument(skip(db, fields))]
pub async fn create_channel(db: &PgPool, fields: &ChannelFields) -> Result<Channel, sqlx::Error> {
    use secrecy::ExposeSecret;
    let row = sqlx::query(&format!(
        "INSERT INTO notification_channels (name, type, config, secret, enabled) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {CHANNEL_COLUMNS}"
    ))
    .bind(&fields.name)
    .bind(fields.channel_type.map(ChannelType::as_str))
    .bind(
        fields
            .config
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default())),
    )
    .bind(fields.secret.as_ref().map(|s| s.expose_secret().to_owned()))
    .bind(fields.enabled.unwrap_or(true))
    .fetch_one(db)
    .await?;
    channel(&row)
}

/// Changes a channel; `None` when there is no such channel.
#[tracing::instrument(skip(db, fields))]
pub async fn update_channel(
    db: &PgPool,
    id: Uuid,
    fields: &ChannelFields,
) -> Result<Option<Channel>, sqlx::Error> {
    use secrecy::ExposeSecret;
    sqlx::query(&format!(
        "UPDATE notification_channels SET name = COALESCE($2, name), \
             config = COALESCE($3, config), secret = COALESCE($4, secret), \
             enabled = COALESCE($5, enabled) \
         WHERE id = $1 RETURNING {CHANNEL_COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.config)
    .bind(fields.secret.as_ref().map(|s| s.expose_secret().to_owned()))
    .bind(fields.enabled)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(channel)
    .transpose()
}

/// Every channel, by name.
#[tracing::instrument(skip(db))]
pub async fn list_channels(db: &PgPool) -> Result<Vec<Channel>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM notification_channels ORDER BY name"
    ))
    .fetch_all(db)
    .await?
    .iter()
    .map(channel)
    .collect()
}

/// One channel.
#[tracing::instrument(skip(db))]
pub async fn get_channel(db: &PgPool, id: Uuid) -> Result<Option<Channel>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(channel)
    .transpose()
}

/// The secret of a channel, for sending (never for answering).
#[tracing::instrument(skip(db))]
pub async fn channel_secret(db: &PgPool, id: Uuid) -> Result<Option<SecretString>, sqlx::Error> {
    let secret: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM notification_channels WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(secret.flatten().map(SecretString::from))
}

/// Deletes a channel (its pending deliveries go with it) and takes it out of every route.
/// `false` when there was no such channel.
#[tracing::instrument(skip(db))]
pub async fn delete_channel(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE notification_routes SET channel_ids = array_remove(channel_ids, $1) \
         WHERE $1 = ANY(channel_ids)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let gone = sqlx::query("DELETE FROM notification_channels WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    tx.commit().await?;
    Ok(gone)
}

/// A routing rule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Event types it matches; empty matches every type but `test`.
    pub event_types: Vec<String>,
    /// The lowest severity it matches.
    pub min_severity: String,
    /// A namespace glob (`*` any run of characters, `?` one); events without a namespace
    /// match only `*`.
    pub namespace_pattern: String,
    /// The channels it sends to.
    pub channel_ids: Vec<Uuid>,
    /// Disabled routes match nothing.
    pub enabled: bool,
    /// Created.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

const ROUTE_COLUMNS: &str = "id, name, event_types, min_severity, namespace_pattern, channel_ids, \
                             enabled, created_at, updated_at";

fn route(row: &PgRow) -> Result<Route, sqlx::Error> {
    Ok(Route {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        event_types: row.try_get("event_types")?,
        min_severity: row.try_get("min_severity")?,
        namespace_pattern: row.try_get("namespace_pattern")?,
        channel_ids: row.try_get("channel_ids")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A route to create, or the fields of one to change (`None` keeps a field as it is).
#[derive(Debug, Default)]
pub struct RouteFields {
    /// Name.
    pub name: Option<String>,
    /// Event types.
    pub event_types: Option<Vec<String>>,
    /// Minimum severity.
    pub min_severity: Option<String>,
    /// Namespace glob.
    pub namespace_pattern: Option<String>,
    /// Channels.
    pub channel_ids: Option<Vec<Uuid>>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// Creates a route.
#[tracing::instrument(skip(db, fields))]
pub async fn create_route(db: &PgPool, fields: &RouteFields) -> Result<Route, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO notification_routes \
             (name, event_types, min_severity, namespace_pattern, channel_ids, enabled) \
         VALUES ($1, COALESCE($2, '{{}}'), COALESCE($3, 'low'), COALESCE($4, '*'), $5, \
                 COALESCE($6, true)) \
         RETURNING {ROUTE_COLUMNS}"
    ))
    .bind(&fields.name)
    .bind(&fields.event_types)
    .bind(&fields.min_severity)
    .bind(&fields.namespace_pattern)
    .bind(fields.channel_ids.clone().unwrap_or_default())
    .bind(fields.enabled)
    .fetch_one(db)
    .await?;
    route(&row)
}

/// Changes a route; `None` when there is no such route.
#[tracing::instrument(skip(db, fields))]
pub async fn update_route(
    db: &PgPool,
    id: Uuid,
    fields: &RouteFields,
) -> Result<Option<Route>, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE notification_routes SET name = COALESCE($2, name), \
             event_types = COALESCE($3, event_types), min_severity = COALESCE($4, min_severity), \
             namespace_pattern = COALESCE($5, namespace_pattern), \
             channel_ids = COALESCE($6, channel_ids), enabled = COALESCE($7, enabled) \
         WHERE id = $1 RETURNING {ROUTE_COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.event_types)
    .bind(&fields.min_severity)
    .bind(&fields.namespace_pattern)
    .bind(&fields.channel_ids)
    .bind(fields.enabled)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(route)
    .transpose()
}

/// Every route, by name.
#[tracing::instrument(skip(db))]
pub async fn list_routes(db: &PgPool) -> Result<Vec<Route>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ROUTE_COLUMNS} FROM notification_routes ORDER BY name"
    ))
    .fetch_all(db)
    .await?
    .iter()
    .map(route)
    .collect()
}

/// Deletes a route; `false` when there was none.
#[tracing::instrument(skip(db))]
pub async fn delete_route(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM notification_routes WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// Which of `ids` name no channel.
#[tracing::instrument(skip(db))]
pub async fn unknown_channels(db: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT x FROM unnest($1::uuid[]) AS x \
         WHERE NOT EXISTS (SELECT 1 FROM notification_channels c WHERE c.id = x)",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Routes up to `limit` unrouted events, oldest first: one pending delivery per enabled
/// channel of every enabled route that matches (type, severity, namespace), then the events
/// are marked routed, in one statement. Replicas skip each other's rows. Answers how many
/// events were routed.
#[tracing::instrument(skip(db))]
pub async fn route_pending(db: &PgPool, limit: i64) -> Result<u64, sqlx::Error> {
    let routed = sqlx::query(
        "WITH ev AS (
            SELECT id, event_type, severity, namespace FROM notification_events
             WHERE routed_at IS NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED),
          d AS (
            INSERT INTO notification_deliveries (event_id, channel_id)
            SELECT DISTINCT ev.id, ch.id
              FROM ev
              JOIN notification_routes r ON r.enabled
               AND (cardinality(r.event_types) = 0 AND ev.event_type <> 'test'
                    OR ev.event_type = ANY(r.event_types))
               AND array_position($2::text[], ev.severity) >= array_position($2::text[], r.min_severity)
               AND (r.namespace_pattern = '*'
                    OR ev.namespace LIKE translate(r.namespace_pattern, '*?', '%_'))
              JOIN notification_channels ch ON ch.id = ANY(r.channel_ids) AND ch.enabled
            ON CONFLICT (event_id, channel_id) DO NOTHING)
         UPDATE notification_events SET routed_at = now() WHERE id IN (SELECT id FROM ev)",
    )
    .bind(limit)
    .bind(&SEVERITIES[..])
    .execute(db)
    .await?
    .rows_affected();
    Ok(routed)
}

/// A delivery leased for one attempt, with what it sends and where.
#[derive(Debug, Clone)]
pub struct Due {
    /// The delivery row.
    pub id: i64,
    /// The event id: the idempotency key.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: EventType,
    /// Its incident.
    pub incident_id: Option<Uuid>,
    /// Its severity.
    pub severity: String,
    /// Its namespace.
    pub namespace: Option<String>,
    /// What it reports.
    pub payload: Value,
    /// When it was written.
    pub event_at: DateTime<Utc>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When the delivery row was made.
    pub created_at: DateTime<Utc>,
    /// The channel.
    pub channel_id: Uuid,
    /// Its name.
    pub channel_name: String,
    /// Its type.
    pub channel_type: ChannelType,
    /// Its settings.
    pub config: Value,
    /// Its secret.
    pub secret: Option<SecretString>,
}

/// Leases up to `limit` due deliveries for one attempt each: at most `per_channel` of any one
/// channel, none of the channels in `busy`, and, per channel, an incident's event only once
/// every earlier event of that incident is settled there, so that a receiver sees an
/// incident's events in order (Alertmanager keeps the last update of an alert). Their next
/// attempt moves `lease_seconds` ahead (so a replica that dies mid-attempt leaves them due
/// again then) and their attempt count goes up. Replicas skip each other's rows.
#[tracing::instrument(skip(db, busy))]
pub async fn claim_due(
    db: &PgPool,
    limit: i64,
    per_channel: i64,
    busy: &[Uuid],
    lease_seconds: f64,
) -> Result<Vec<Due>, sqlx::Error> {
    // Each channel with due rows is asked for its own oldest `per_channel`: one channel's
    // backlog never hides another channel's rows.
    let rows = sqlx::query(
        "WITH chans AS (
            SELECT DISTINCT channel_id FROM notification_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now() AND channel_id <> ALL($3)),
          due AS (
            SELECT d.id, d.next_attempt_at
              FROM chans CROSS JOIN LATERAL (
                SELECT x.id, x.next_attempt_at
                  FROM notification_deliveries x
                  JOIN notification_events e ON e.id = x.event_id
                 WHERE x.channel_id = chans.channel_id AND x.status = 'pending'
                   AND x.next_attempt_at <= now()
                   AND (e.incident_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM notification_deliveries o
                          JOIN notification_events oe ON oe.id = o.event_id
                         WHERE o.channel_id = x.channel_id AND o.status = 'pending'
                           AND oe.incident_id = e.incident_id
                           AND (oe.created_at, oe.id) < (e.created_at, e.id)))
                 ORDER BY x.next_attempt_at LIMIT $4
                 FOR UPDATE OF x SKIP LOCKED) d),
          c AS (
            UPDATE notification_deliveries d
               SET attempts = attempts + 1,
                   next_attempt_at = now() + make_interval(secs => $2)
             WHERE id IN (SELECT id FROM due ORDER BY next_attempt_at LIMIT $1)
            RETURNING d.id, d.event_id, d.channel_id, d.attempts, d.created_at)
         SELECT c.id, c.event_id, c.channel_id, c.attempts, c.created_at,
                e.event_type, e.incident_id, e.severity, e.namespace, e.payload,
                e.created_at AS event_at,
                ch.name AS channel_name, ch.type AS channel_type, ch.config, ch.secret
           FROM c JOIN notification_events e ON e.id = c.event_id
                  JOIN notification_channels ch ON ch.id = c.channel_id
          ORDER BY e.created_at",
    )
    .bind(limit)
    .bind(lease_seconds)
    .bind(busy)
    .bind(per_channel)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                event_type: EventType::try_from(r.try_get::<String, _>("event_type")?)?,
                incident_id: r.try_get("incident_id")?,
                severity: r.try_get("severity")?,
                namespace: r.try_get("namespace")?,
                payload: r.try_get("payload")?,
                event_at: r.try_get("event_at")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                channel_id: r.try_get("channel_id")?,
                channel_name: r.try_get("channel_name")?,
                channel_type: ChannelType::try_from(r.try_get::<String, _>("channel_type")?)?,
                config: r.try_get("config")?,
                secret: r
                    .try_get::<Option<String>, _>("secret")?
                    .map(SecretString::from),
            })
        })
        .collect()
}

/// Gives a leased delivery back unattempted: due now, its attempt not counted.
#[tracing::instrument(skip(db))]
pub async fn release(db: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_deliveries SET next_attempt_at = now(), attempts = attempts - 1 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(db)
    .await
    .map(|_| ())
}

/// Marks a delivery delivered, if it is still the attempt `attempts` of this lease (a
/// replica whose lease ran out must not overwrite what the next attempt recorded).
#[tracing::instrument(skip(db))]
pub async fn delivered(db: &PgPool, id: i64, attempts: i32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_deliveries SET status = 'delivered', delivered_at = now(), \
             last_error = NULL WHERE id = $1 AND status = 'pending' AND attempts = $2",
    )
    .bind(id)
    .bind(attempts)
    .execute(db)
    .await
    .map(|_| ())
}

/// Records the failed attempt `attempts` (if it is still the current one): the next one is
/// due at `retry_at`, or, with `None`, the delivery is dead.
#[tracing::instrument(skip(db, error))]
pub async fn attempt_failed(
    db: &PgPool,
    id: i64,
    attempts: i32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_deliveries SET last_error = $2, \
             status = CASE WHEN $3::timestamptz IS NULL THEN 'dead' ELSE 'pending' END, \
             next_attempt_at = COALESCE($3, next_attempt_at) \
         WHERE id = $1 AND status = 'pending' AND attempts = $4",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .bind(attempts)
    .execute(db)
    .await
    .map(|_| ())
}

/// What is still to send: unrouted events plus pending deliveries.
#[tracing::instrument(skip(db))]
pub async fn backlog(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM notification_events WHERE routed_at IS NULL) \
              + (SELECT count(*) FROM notification_deliveries WHERE status = 'pending')",
    )
    .fetch_one(db)
    .await
}

/// Deletes events older than `days` days whose deliveries are all settled (delivered or
/// dead), with their deliveries; answers how many events went.
#[tracing::instrument(skip(db))]
pub async fn prune(db: &PgPool, days: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM notification_events e \
          WHERE e.created_at < now() - make_interval(days => $1::int) AND e.routed_at IS NOT NULL \
            AND NOT EXISTS (SELECT 1 FROM notification_deliveries d \
                             WHERE d.event_id = e.id AND d.status = 'pending')",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(db)
    .await?
    .rows_affected())
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// The event (the idempotency key receivers see).
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// Its incident.
    pub incident_id: Option<Uuid>,
    /// The channel.
    pub channel_id: Uuid,
    /// Its name.
    pub channel_name: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending ones).
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    #[serde(serialize_with = "aegis_common::time::serde_millis_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the delivery was made.
    #[serde(with = "aegis_common::time::serde_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// Deliveries, newest first, optionally only those with `status`.
#[tracing::instrument(skip(db))]
pub async fn deliveries(
    db: &PgPool,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query(
        "SELECT d.id, d.event_id, e.event_type, e.incident_id, d.channel_id, \
                ch.name AS channel_name, d.status, d.attempts, d.last_error, \
                d.next_attempt_at, d.delivered_at, d.created_at \
           FROM notification_deliveries d \
           JOIN notification_events e ON e.id = d.event_id \
           JOIN notification_channels ch ON ch.id = d.channel_id \
          WHERE $1::text IS NULL OR d.status = $1 \
          ORDER BY d.created_at DESC, d.id DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(Delivery {
            id: r.try_get("id")?,
            event_id: r.try_get("event_id")?,
            event_type: r.try_get("event_type")?,
            incident_id: r.try_get("incident_id")?,
            channel_id: r.try_get("channel_id")?,
            channel_name: r.try_get("channel_name")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            last_error: r.try_get("last_error")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            delivered_at: r.try_get("delivered_at")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .collect()
}

/// Makes a dead delivery pending again, due now (after the channel was fixed).
#[tracing::instrument(skip(db))]
pub async fn retry(db: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE notification_deliveries SET status = 'pending', next_attempt_at = now(), \
             created_at = now() WHERE id = $1 AND status = 'dead'",
    )
    .bind(id)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

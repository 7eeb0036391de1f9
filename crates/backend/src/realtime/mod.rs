//! Real-time push: every event goes to the connected clients allowed to see it, as one
//! argument `{"event": <name>, "data": {…}}`. [`Hub`] is the publish API the routes and the
//! remediation loop use; it is cheap to clone. It also tells the gateway when a user's
//! sessions end ([`Hub::end_sessions`]), and holds the gateway's live sessions.

pub mod socket;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use uuid::Uuid;

/// How many events a slow subscriber may lag behind before it misses some.
const CAPACITY: usize = 1024;

/// Who may receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Audience {
    /// Every authenticated client.
    #[default]
    Everyone,
    /// Clients whose user may read incidents through REST (admins, auditors, operators).
    IncidentReaders,
}

/// One pushed event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// Event name, e.g. `alert`.
    pub event: String,
    /// Payload.
    pub data: Value,
    /// Who receives it (not sent).
    #[serde(skip)]
    pub audience: Audience,
}

/// A connected socket's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user_id: Uuid,
    /// When the socket connected.
    pub connected_at: DateTime<Utc>,
    /// When its access token expires (later after the client re-authenticates).
    pub expires_at: DateTime<Utc>,
}

/// The publish side of the real-time gateway.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Envelope>,
    ended: broadcast::Sender<Uuid>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no subscribers.
    #[must_use]
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        let (ended, _) = broadcast::channel(CAPACITY);
        Self {
            tx,
            ended,
            sessions: Arc::default(),
        }
    }

    /// Closes the user's live sockets on this replica at once (logout, deactivation, a
    /// password change). Other replicas close theirs at their next session check.
    pub fn end_sessions(&self, user_id: Uuid) {
        let _ = self.ended.send(user_id);
    }

    /// Users whose sessions ended, from now on.
    #[must_use]
    pub fn subscribe_ended(&self) -> broadcast::Receiver<Uuid> {
        self.ended.subscribe()
    }

    /// Records (or replaces) the session of socket `sid`.
    pub fn set_session(&self, sid: &str, session: Session) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(sid.to_owned(), session);
        }
    }

    /// The session of socket `sid`, while it is connected.
    #[must_use]
    pub fn session(&self, sid: &str) -> Option<Session> {
        self.sessions.lock().ok()?.get(sid).copied()
    }

    /// Forgets socket `sid`.
    pub fn remove_session(&self, sid: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(sid);
        }
    }

    /// Every live session, by socket id.
    #[must_use]
    pub fn sessions(&self) -> Vec<(String, Session)> {
        self.sessions
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Every event published from now on (the gateway forwards these to its sockets).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.tx.subscribe()
    }

    /// Publishes `data` as event `event` to every client; never fails (no subscriber =
    /// dropped).
    pub fn emit(&self, event: &str, data: Value) {
        self.emit_to(Audience::Everyone, event, data);
    }

    fn emit_to(&self, audience: Audience, event: &str, data: Value) {
        let _ = self.tx.send(Envelope {
            event: event.to_owned(),
            data,
            audience,
        });
    }

    /// An `alert` event with the full alert object (created, updated or resolved).
    pub fn emit_alert(&self, alert: &crate::db::alerts::Alert) {
        self.emit(
            "alert",
            serde_json::to_value(alert).unwrap_or_else(|_| json!({})),
        );
    }

    /// `metrics:update` with the current open-alert count.
    pub fn emit_metrics_update(&self, open_alerts: i64) {
        self.emit(
            "metrics:update",
            json!({"openAlerts": open_alerts, "timestamp": aegis_common::time::now_rfc3339()}),
        );
    }

    /// An `anomaly` event (dashboard anomaly shape).
    pub fn emit_anomaly(&self, payload: Value) {
        self.emit("anomaly", payload);
    }

    /// A `remediation` event: `{event: "remediation", data: {incidentId, correlationId, step,
    /// status, at, details}}`, only to clients that may read incidents.
    pub fn emit_remediation(&self, event: &RemediationEvent) {
        self.emit_to(
            Audience::IncidentReaders,
            "remediation",
            serde_json::to_value(event).unwrap_or_else(|_| json!({})),
        );
    }
}

/// The `data` of a `remediation` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationEvent {
    /// The incident.
    pub incident_id: uuid::Uuid,
    /// Correlation id shared with the executor call and the logs.
    pub correlation_id: String,
    /// The loop step, e.g. `signal`, `decision`, `execute`, `verify`.
    pub step: String,
    /// The incident status after this step (`open`, `executing`, `resolved`, …).
    pub status: String,
    /// When the step happened.
    #[serde(with = "aegis_common::time::serde_millis")]
    pub at: chrono::DateTime<chrono::Utc>,
    /// Step details.
    pub details: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn remediation_events_use_the_contract_10_envelope() {
        let hub = Hub::new();
        let mut rx = hub.subscribe();
        let id = uuid::Uuid::nil();
        hub.emit_remediation(&RemediationEvent {
            incident_id: id,
            correlation_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            step: "execute".into(),
            status: "executing".into(),
            at: chrono::Utc.with_ymd_and_hms(2024, 1, 25, 14, 0, 2).unwrap(),
            details: json!({"action": "restart_pod"}),
        });
        let got = rx.recv().await.unwrap();
        assert_eq!(got.event, "remediation");
        assert_eq!(got.audience, Audience::IncidentReaders);
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            json!({"event": "remediation", "data": {
                "incidentId": id, "correlationId": "4bf92f3577b34da6a3ce929d0e0e4736",
                "step": "execute", "status": "executing", "at": "2024-01-25T14:00:02.000Z",
                "details": {"action": "restart_pod"}}})
        );
    }
}

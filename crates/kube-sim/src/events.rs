//! `core/v1` Events as the kubelet, the scheduler and the deployment controller write them.
//!
//! Like the API server's event recorder, a repeat of the same event (same object, reason and
//! message) is not a new object: the stored one counts it (`count`, `lastTimestamp`). Events
//! outlive the pods they are about, and, as the API server's one-hour TTL does, an event not
//! seen for [`TTL_SECONDS`] is removed by [`expire`].

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::object::{self, now_timestamp};
use crate::resource::Resource;
use crate::store::Store;

/// How long an event is kept after it was last seen, as the API server's default `--event-ttl`.
pub const TTL_SECONDS: i64 = 3600;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What one event says, about which object.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The object it is about (a pod or a deployment as stored).
    pub involved: &'a Value,
    /// The container it is about, when it is about one (`spec.containers{app}`).
    pub container: Option<&'a str>,
    /// Normal or Warning.
    pub kind: EventType,
    /// `BackOff`, `Failed`, `ScalingReplicaSet`...
    pub reason: &'a str,
    /// What happened, in the words the real component uses.
    pub message: &'a str,
    /// `kubelet`, `default-scheduler`, `deployment-controller`.
    pub component: &'a str,
}

/// Records `event`: a new Event object, or one more count of the stored one.
pub fn record(store: &mut Store, event: &Event<'_>) {
    let namespace = object::namespace(event.involved).to_owned();
    let involved_name = object::name(event.involved);
    let field_path = event.container.map(|c| format!("spec.containers{{{c}}}"));
    let name = format!(
        "{involved_name}.{}",
        short_hash(&[
            object::uid(event.involved),
            event.reason,
            event.message,
            field_path.as_deref().unwrap_or(""),
        ])
    );
    let now = now_timestamp();
    if let Some(existing) = store.get(Resource::Event, &namespace, &name).cloned() {
        let mut updated = existing;
        let count = updated.get("count").and_then(Value::as_i64).unwrap_or(1) + 1;
        if let Some(map) = updated.as_object_mut() {
            map.insert("count".into(), json!(count));
            map.insert("lastTimestamp".into(), json!(now));
        }
        store.put(Resource::Event, updated);
        return;
    }
    let mut involved = json!({
        "kind": event.involved.get("kind").cloned().unwrap_or(Value::Null),
        "apiVersion": event.involved.get("apiVersion").cloned().unwrap_or(Value::Null),
        "namespace": namespace,
        "name": involved_name,
        "uid": object::uid(event.involved),
        "resourceVersion": object::resource_version(event.involved),
    });
    if let (Some(path), Some(map)) = (field_path, involved.as_object_mut()) {
        map.insert("fieldPath".into(), json!(path));
    }
    let host = (event.component == "kubelet").then_some(crate::node::NODE_NAME);
    store.put(
        Resource::Event,
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": object::new_uid(),
                "creationTimestamp": now,
            },
            "involvedObject": involved,
            "reason": event.reason,
            "message": event.message,
            "source": match host {
                Some(host) => json!({"component": event.component, "host": host}),
                None => json!({"component": event.component}),
            },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": event.kind.as_str(),
            "eventTime": null,
            "reportingComponent": event.component,
            "reportingInstance": host.unwrap_or(""),
        }),
    );
}

/// Removes events last seen more than [`TTL_SECONDS`] ago.
pub fn expire(store: &mut Store) {
    let cutoff = chrono::Utc::now() - chrono::Duration::seconds(TTL_SECONDS);
    let stale: Vec<(String, String)> = store
        .list(Resource::Event, None)
        .into_iter()
        .filter(|e| {
            e.get("lastTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < cutoff)
        })
        .map(|e| (object::namespace(e).to_owned(), object::name(e).to_owned()))
        .collect();
    for (namespace, name) in stale {
        store.remove(Resource::Event, &namespace, &name);
    }
}

/// Sixteen hex digits identifying an event's aggregation key.
fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"}})
    }

    fn back_off<'a>(pod: &'a Value, message: &'a str) -> Event<'a> {
        Event {
            involved: pod,
            container: Some("app"),
            kind: EventType::Warning,
            reason: "BackOff",
            message,
            component: "kubelet",
        }
    }

    #[test]
    fn a_repeated_event_is_counted_and_a_different_message_is_a_new_event() {
        let mut store = Store::new();
        let pod = pod();
        record(
            &mut store,
            &back_off(&pod, "Back-off restarting failed container"),
        );
        record(
            &mut store,
            &back_off(&pod, "Back-off restarting failed container"),
        );
        let events = store.list(Resource::Event, Some("shop"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["count"], 2);
        assert_eq!(
            events[0]["involvedObject"]["fieldPath"],
            "spec.containers{app}"
        );
        assert_eq!(events[0]["source"]["host"], crate::node::NODE_NAME);
        record(&mut store, &back_off(&pod, "something else"));
        assert_eq!(store.list(Resource::Event, Some("shop")).len(), 2);
    }

    #[test]
    fn events_not_seen_for_the_ttl_expire() {
        let mut store = Store::new();
        let pod = pod();
        record(&mut store, &back_off(&pod, "old"));
        record(&mut store, &back_off(&pod, "new"));
        let mut old = store
            .list(Resource::Event, Some("shop"))
            .into_iter()
            .find(|e| e["message"] == "old")
            .cloned()
            .unwrap();
        old["lastTimestamp"] = json!("2020-01-01T00:00:00Z");
        store.put(Resource::Event, old);
        expire(&mut store);
        let left = store.list(Resource::Event, Some("shop"));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["message"], "new");
    }
}

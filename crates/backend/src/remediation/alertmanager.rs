//! Alertmanager's webhook format (version 4) turned into loop signals.
//!
//! Only firing alerts act. Each becomes a [`Signal`] of kind `alert` with Alertmanager's own
//! fingerprint, the target from the `namespace`, `deployment` and `pod` labels,
//! the severity from the `severity` label, and the action from the `aegis_action` annotation.
//! Without that annotation there is nothing to analyse (an alert carries no metric window), so
//! the incident only raises an alert. When the labels name no deployment, the original's fixed
//! mapping is the fallback (namespace `production`, deployment by `category`).

use std::collections::BTreeMap;

use aegis_common::{
    contracts::RemediationAction,
    names::{Namespace, ResourceName},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Signal, Target, signal::normalise_severity};

/// The webhook body (fields the loop does not use are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `4`.
    #[serde(default)]
    pub version: Option<String>,
    /// The group key.
    #[serde(default)]
    pub group_key: Option<String>,
    /// The receiver name.
    #[serde(default)]
    pub receiver: Option<String>,
    /// The alerts of the group.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of the group.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Alertmanager's fingerprint.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// What to do with one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertSignal {
    /// A firing alert: a signal for intake.
    Firing(Box<Signal>),
    /// A resolved alert: noted on the open incident with this fingerprint, if any.
    Resolved {
        /// Alertmanager's fingerprint.
        fingerprint: String,
    },
    /// Not usable (the reason is returned to Alertmanager and logged).
    Skipped {
        /// The alert's fingerprint, when it had one.
        fingerprint: Option<String>,
        /// Why.
        reason: String,
    },
}

/// The original's fixed deployment names by `category`, used only when
/// the labels name no deployment.
fn fallback_deployment(category: Option<&str>) -> &'static str {
    match category {
        Some("api" | "infrastructure") => "backend-deployment",
        Some("ai_engine") => "ai-engine-deployment",
        Some("executor") => "executor-deployment",
        _ => "default-deployment",
    }
}

/// Classifies every alert of `hook`.
#[must_use]
pub fn signals(hook: &Webhook) -> Vec<AlertSignal> {
    hook.alerts.iter().map(|a| classify(hook, a)).collect()
}

fn classify(hook: &Webhook, alert: &WebhookAlert) -> AlertSignal {
    let fingerprint = alert
        .fingerprint
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned);
    match alert.status.as_str() {
        "firing" => {}
        "resolved" => {
            return match fingerprint {
                Some(fingerprint) => AlertSignal::Resolved { fingerprint },
                None => AlertSignal::Skipped {
                    fingerprint: None,
                    reason: "a resolved alert without a fingerprint matches no incident".into(),
                },
            };
        }
        other => {
            return AlertSignal::Skipped {
                fingerprint,
                reason: format!("status must be firing or resolved, got {other:?}"),
            };
        }
    }
    let label = |k: &str| {
        alert
            .labels
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let fallback = label("deployment").is_none();
    let namespace = Namespace::new(label("namespace").unwrap_or("production"));
    let deployment = ResourceName::new(
        label("deployment").unwrap_or_else(|| fallback_deployment(label("category"))),
    );
    let pod = label("pod").map(ResourceName::new).transpose();
    let (Ok(namespace), Ok(deployment), Ok(pod)) = (namespace, deployment, pod) else {
        return AlertSignal::Skipped {
            fingerprint,
            reason: "the namespace, deployment or pod label is not a valid Kubernetes name".into(),
        };
    };
    let annotation = alert.annotations.get("aegis_action").map(|s| s.trim());
    let (recommended_action, action_note) = match annotation {
        None | Some("") => (None, None),
        Some(raw) => match serde_json::from_value::<RemediationAction>(json!(raw)) {
            Ok(a) => (Some(a), None),
            Err(_) => (
                None,
                Some(format!(
                    "aegis_action {raw:?} is not a known action; ignored"
                )),
            ),
        },
    };
    let confidence = alert
        .annotations
        .get("aegis_confidence")
        .and_then(|c| c.trim().parse::<f64>().ok())
        .filter(|c| c.is_finite() && (0.0..=1.0).contains(c))
        .unwrap_or(1.0);
    let raw = json!({
        "source": "alertmanager",
        "receiver": hook.receiver,
        "groupKey": hook.group_key,
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at,
        "fingerprint": fingerprint,
        "targetFromFallback": fallback,
        "note": action_note,
    });
    AlertSignal::Firing(Box::new(Signal {
        source: "alertmanager".into(),
        kind: "alert".into(),
        observed_at: alert.starts_at.clone(),
        target: Target {
            namespace,
            deployment,
            pod,
        },
        severity: normalise_severity(label("severity").unwrap_or("warning")).to_owned(),
        score: 0.0,
        confidence,
        recommended_action,
        fingerprint,
        raw,
    }))
}

/// Parses a webhook body, with a message for the 400 when it is not one.
pub fn parse(body: &Value) -> Result<Webhook, String> {
    serde_json::from_value::<Webhook>(body.clone())
        .map_err(|e| format!("not an Alertmanager webhook body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(alerts: Value) -> Webhook {
        parse(&json!({
            "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "status": "firing",
            "receiver": "aegis", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://am", "alerts": alerts
        }))
        .unwrap()
    }

    #[test]
    fn a_firing_alert_becomes_a_signal_with_alertmanagers_fingerprint() {
        let h = hook(json!([{
            "status": "firing",
            "labels": {"alertname": "HighCPU", "namespace": "shop", "deployment": "web", "severity": "critical"},
            "annotations": {"aegis_action": "scale_up"},
            "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "c0ffee1234567890"
        }]));
        let out = signals(&h);
        let [AlertSignal::Firing(s)] = out.as_slice() else {
            panic!("expected one firing signal, got {out:?}");
        };
        assert_eq!(s.fingerprint.as_deref(), Some("c0ffee1234567890"));
        assert_eq!(s.target.namespace, "shop");
        assert_eq!(s.target.deployment, "web");
        assert_eq!(s.severity, "critical");
        assert_eq!(s.recommended_action, Some(RemediationAction::ScaleUp));
        assert_eq!(s.kind, "alert");
    }

    #[test]
    fn resolved_unknown_and_malformed_alerts() {
        let h = hook(json!([
            {"status": "resolved", "labels": {}, "fingerprint": "abc"},
            {"status": "pending", "labels": {}},
            {"status": "firing", "labels": {"namespace": "Bad_NS", "deployment": "web"}},
            {"status": "firing", "labels": {"category": "api"}, "annotations": {"aegis_action": "nuke"}}
        ]));
        let out = signals(&h);
        assert_eq!(
            out[0],
            AlertSignal::Resolved {
                fingerprint: "abc".into()
            }
        );
        assert!(
            matches!(&out[1], AlertSignal::Skipped { reason, .. } if reason.contains("pending"))
        );
        assert!(matches!(&out[2], AlertSignal::Skipped { reason, .. } if reason.contains("valid")));
        let AlertSignal::Firing(s) = &out[3] else {
            panic!("expected a firing signal");
        };
        // No deployment label: the original's mapping, and an unknown action is ignored.
        assert_eq!(s.target.namespace, "production");
        assert_eq!(s.target.deployment, "backend-deployment");
        assert_eq!(s.recommended_action, None);
        assert_eq!(s.severity, "medium");
    }

    #[test]
    fn a_body_without_alerts_is_refused() {
        assert!(
            parse(&json!({"status": "firing"}))
                .unwrap_err()
                .contains("alerts")
        );
    }
}

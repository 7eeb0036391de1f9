//! The loop's own view of a signal, whatever sent it: the ai-engine, Alertmanager
//! or an admin.

use aegis_common::{
    contracts::{RemediationAction, RemediationSignal, SignalTarget, SignalWindow},
    names::{InvalidName, Namespace, ResourceName},
};
use serde::Serialize;
use serde_json::Value;

/// A signal as intake and the decision path see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Who sent it (`ai-engine`, `alertmanager`, `admin:<email>`).
    pub source: String,
    /// `anomaly`, `failure` or `alert`.
    pub kind: String,
    /// When it was observed (RFC 3339), when known.
    pub observed_at: Option<String>,
    /// The workload.
    pub target: Target,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Anomaly score (0 when the sender had none).
    pub score: f64,
    /// Confidence (0 when the sender had none).
    pub confidence: f64,
    /// What the sender recommends; `None` asks the ai-engine.
    pub recommended_action: Option<RemediationAction>,
    /// The sender's fingerprint (Alertmanager's own), if any.
    pub fingerprint: Option<String>,
    /// The body as received, stored with the incident; its `window` (if any) is what the
    /// ai-engine analyses and what the policy context is computed from.
    pub raw: Value,
}

impl Signal {
    /// The signal with every value fit for PostgreSQL (no U+0000 in text or jsonb); the
    /// target's names are DNS-1123 names, fit already.
    #[must_use]
    pub fn storable(self) -> Self {
        use aegis_common::db::{strip_nul, strip_nul_json};
        Self {
            source: strip_nul(self.source),
            kind: strip_nul(self.kind),
            observed_at: self.observed_at.map(strip_nul),
            severity: strip_nul(self.severity),
            fingerprint: self.fingerprint.map(strip_nul),
            raw: strip_nul_json(self.raw),
            ..self
        }
    }
}

impl TryFrom<&RemediationSignal> for Signal {
    /// The messages of [`Target::parse`].
    type Error = Vec<String>;

    fn try_from(s: &RemediationSignal) -> Result<Self, Self::Error> {
        Ok(Self {
            source: s.source.clone(),
            kind: s.kind.as_str().to_owned(),
            observed_at: Some(s.observed_at.clone()),
            target: Target::parse(&s.target)?,
            severity: s.severity.as_str().to_owned(),
            score: s.score,
            confidence: s.confidence,
            recommended_action: Some(s.recommended_action),
            fingerprint: s.fingerprint.clone(),
            raw: serde_json::to_value(s).unwrap_or(Value::Null),
        })
    }
}

/// The workload a signal is about, every name checked. It serialises as the
/// [`SignalTarget`] it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Namespace.
    pub namespace: Namespace,
    /// Deployment.
    pub deployment: ResourceName,
    /// Pod, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<ResourceName>,
}

impl Target {
    /// Checks the names of a request body's `target`: one message per invalid name, which
    /// names it as a field of the body (`target.namespace must be a valid DNS-1123 label`).
    pub fn parse(target: &SignalTarget) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let namespace = checked(
            "namespace",
            Namespace::new(target.namespace.as_str()),
            &mut errors,
        );
        let deployment = checked(
            "deployment",
            ResourceName::new(target.deployment.as_str()),
            &mut errors,
        );
        let pod = checked(
            "pod",
            target.pod.as_deref().map(ResourceName::new).transpose(),
            &mut errors,
        );
        match (namespace, deployment, pod) {
            (Some(namespace), Some(deployment), Some(pod)) => Ok(Self {
                namespace,
                deployment,
                pod,
            }),
            _ => Err(errors),
        }
    }
}

/// The checked name, or `None` with a message naming `field` of the body's `target`.
fn checked<T>(field: &str, name: Result<T, InvalidName>, errors: &mut Vec<String>) -> Option<T> {
    match name {
        Ok(name) => Some(name),
        Err(e) => {
            errors.push(format!("target.{field} {e}"));
            None
        }
    }
}

/// The metric window stored with a signal (`raw.window`), when it has a usable one.
#[must_use]
pub fn window_of(raw: &Value) -> Option<SignalWindow> {
    let window = raw.get("window")?;
    serde_json::from_value::<SignalWindow>(window.clone())
        .ok()
        .filter(|w| !w.metrics.is_empty() || w.logs.as_ref().is_some_and(|l| !l.is_empty()))
}

/// A severity from another vocabulary (Alertmanager's `severity` label, the alerts API) in the
/// loop's four levels; unknown words count as `medium`.
#[must_use]
pub fn normalise_severity(raw: &str) -> &'static str {
    match raw.trim().to_ascii_lowercase().as_str() {
        "critical" | "page" | "fatal" => "critical",
        "high" | "error" => "high",
        "low" | "info" | "none" => "low",
        _ => "medium",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn severities_from_other_vocabularies() {
        assert_eq!(normalise_severity("critical"), "critical");
        assert_eq!(normalise_severity("Warning"), "medium");
        assert_eq!(normalise_severity("info"), "low");
        assert_eq!(normalise_severity("error"), "high");
        assert_eq!(normalise_severity("whatever"), "medium");
    }

    #[test]
    fn an_empty_or_malformed_window_is_no_window() {
        assert!(window_of(&json!({})).is_none());
        assert!(window_of(&json!({"window": {"metrics": []}})).is_none());
        assert!(window_of(&json!({"window": {"metrics": [{"bad": 1}]}})).is_none());
        let w = window_of(&json!({"window": {"metrics": [
            {"metric_type": "cpu_usage", "value": 91.0, "timestamp": "2026-11-25T10:00:00Z"}
        ]}}))
        .unwrap();
        assert_eq!(w.metrics.len(), 1);
    }

    fn wire_target(value: Value) -> SignalTarget {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_target_with_valid_names_parses_and_serialises_as_it_came() {
        for body in [
            json!({"namespace": "shop", "deployment": "web"}),
            json!({"namespace": "shop", "deployment": "web.v2", "pod": "web-7d4b9c-x2x"}),
        ] {
            let target = Target::parse(&wire_target(body.clone())).unwrap();
            assert_eq!(target.namespace, "shop");
            assert_eq!(serde_json::to_value(&target).unwrap(), body);
        }
    }

    #[test]
    fn every_invalid_name_of_a_target_is_named_as_a_body_field() {
        let refused = Target::parse(&wire_target(
            json!({"namespace": "Shop!", "deployment": "web_1", "pod": "-x"}),
        ));
        assert_eq!(
            refused,
            Err(vec![
                "target.namespace must be a valid DNS-1123 label".to_owned(),
                "target.deployment must be a valid DNS-1123 subdomain".to_owned(),
                "target.pod must be a valid DNS-1123 subdomain".to_owned(),
            ])
        );
        let refused = Target::parse(&wire_target(json!({"namespace": "shop", "deployment": ""})));
        assert_eq!(
            refused,
            Err(vec![
                "target.deployment must be a valid DNS-1123 subdomain".to_owned()
            ])
        );
    }
}

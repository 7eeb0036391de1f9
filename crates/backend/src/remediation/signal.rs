//! The loop's own view of a signal, whatever sent it: the ai-engine, Alertmanager
//! or an admin.

use aegis_common::contracts::{RemediationAction, RemediationSignal, SignalTarget, SignalWindow};
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
    pub target: SignalTarget,
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
    /// The signal with every value fit for PostgreSQL (no U+0000 in text or jsonb).
    #[must_use]
    pub fn pg_safe(self) -> Self {
        use aegis_common::db::{pg_json, pg_text};
        Self {
            source: pg_text(self.source),
            kind: pg_text(self.kind),
            observed_at: self.observed_at.map(pg_text),
            severity: pg_text(self.severity),
            fingerprint: self.fingerprint.map(pg_text),
            raw: pg_json(self.raw),
            ..self
        }
    }
}

impl From<&RemediationSignal> for Signal {
    fn from(s: &RemediationSignal) -> Self {
        Self {
            source: s.source.clone(),
            kind: s.kind.as_str().to_owned(),
            observed_at: Some(s.observed_at.clone()),
            target: s.target.clone(),
            severity: s.severity.as_str().to_owned(),
            score: s.score,
            confidence: s.confidence,
            recommended_action: Some(s.recommended_action),
            fingerprint: s.fingerprint.clone(),
            raw: serde_json::to_value(s).unwrap_or(Value::Null),
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
}

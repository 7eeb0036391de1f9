//! The deduplication fingerprint of a signal (docs/contracts.md, "Deduplication").

use sha2::{Digest, Sha256};

use aegis_common::{contracts::RemediationAction, names::ResourceName};

use super::Signal;

/// The signal's own fingerprint when it carries a non-empty one (e.g. Alertmanager's), else the
/// first 16 hex characters of sha256(`kind|namespace|deployment|pod|recommendedAction`), with an
/// empty string for a missing pod.
#[must_use]
pub fn fingerprint(signal: &Signal) -> String {
    if let Some(fp) = signal.fingerprint.as_deref().map(str::trim)
        && !fp.is_empty()
    {
        return fp.to_owned();
    }
    computed(
        &signal.kind,
        signal.target.namespace.as_str(),
        signal.target.deployment.as_str(),
        signal.target.pod.as_ref().map_or("", ResourceName::as_str),
        signal
            .recommended_action
            .map_or("", RemediationAction::as_str),
    )
}

fn computed(kind: &str, namespace: &str, deployment: &str, pod: &str, action: &str) -> String {
    let digest = Sha256::digest(format!("{kind}|{namespace}|{deployment}|{pod}|{action}"));
    let mut hex = hex::encode(digest);
    hex.truncate(16);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_common::contracts::RemediationSignal;
    use serde_json::json;

    fn signal(pod: Option<&str>, fp: Option<&str>) -> Signal {
        let mut target = json!({"namespace": "production", "deployment": "api-server"});
        if let Some(p) = pod {
            target["pod"] = json!(p);
        }
        let mut body = json!({
            "source": "ai-engine", "kind": "anomaly", "observedAt": "2026-11-25T10:00:00Z",
            "target": target, "severity": "high", "score": 0.9, "confidence": 0.8,
            "recommendedAction": "scale_up", "window": {"metrics": []}, "prediction": {}
        });
        if let Some(f) = fp {
            body["fingerprint"] = json!(f);
        }
        let wire: RemediationSignal = serde_json::from_value(body).unwrap();
        Signal::try_from(&wire).unwrap()
    }

    #[test]
    fn computed_fingerprint_matches_a_hand_computed_sha256() {
        // printf '%s' 'anomaly|production|api-server||scale_up' | sha256sum | cut -c1-16
        assert_eq!(fingerprint(&signal(None, None)), "609d1cc6ae88cbcd");
        // printf '%s' 'failure|shop|web|web-7d4b9c-x2x|restart_pod' | sha256sum | cut -c1-16
        assert_eq!(
            computed("failure", "shop", "web", "web-7d4b9c-x2x", "restart_pod"),
            "5b34d30560dbb453"
        );
    }

    #[test]
    fn the_pod_is_part_of_the_fingerprint() {
        assert_ne!(
            fingerprint(&signal(Some("api-1"), None)),
            fingerprint(&signal(None, None))
        );
    }

    #[test]
    fn an_explicit_fingerprint_wins() {
        assert_eq!(fingerprint(&signal(None, Some("am-abc123"))), "am-abc123");
        // An empty one is treated as absent.
        assert_eq!(fingerprint(&signal(None, Some(""))), "609d1cc6ae88cbcd");
    }
}

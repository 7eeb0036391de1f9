//! The pure part of the decision path: which policy action and executor action a
//! recommendation becomes, how far to scale, what counts as a large blast radius,
//! and the policy context computed from the signal's window.

use aegis_contracts::{
    ActionType, KubernetesEvidence, MetricType, RemediationAction, SignalWindow,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// What planning needs to know about an incident: its target and how sure the signal was.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Target namespace.
    pub namespace: &'a str,
    /// Target deployment.
    pub deployment: &'a str,
    /// Target pod, when the signal named one.
    pub pod: Option<&'a str>,
    /// The signal's severity.
    pub severity: &'a str,
    /// The signal's confidence.
    pub confidence: f64,
    /// The signal's anomaly score.
    pub score: f64,
    /// The revision a rollback returns to, when the signal named one (the Kubernetes
    /// watcher's last healthy revision); `None` returns to the previous revision.
    pub rollback_revision: Option<i64>,
}

/// What a recommendation becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An executor action, allowed or not by the `self_healing` policy `action`.
    Act {
        /// The policy request's `action`.
        policy_action: &'static str,
        /// The executor request's `actionType`.
        action_type: ActionType,
    },
    /// No executor call: an alert for a human (the alert-only actions).
    AlertOnly,
    /// Nothing to do.
    Nothing,
}

/// Recommended action → executor action (docs/contracts.md). `restart_pod` without a pod
/// becomes an alert, since restarting a whole deployment is not what was recommended.
#[must_use]
pub fn route(action: RemediationAction, has_pod: bool) -> Route {
    match action {
        RemediationAction::ScaleUp => Route::Act {
            policy_action: "scale_up",
            action_type: ActionType::ScaleDeployment,
        },
        RemediationAction::ScaleDown => Route::Act {
            policy_action: "scale_down",
            action_type: ActionType::ScaleDeployment,
        },
        RemediationAction::RestartPod if has_pod => Route::Act {
            policy_action: "restart",
            action_type: ActionType::RestartPod,
        },
        RemediationAction::Rollback => Route::Act {
            policy_action: "rollback",
            action_type: ActionType::RollbackDeployment,
        },
        RemediationAction::RestartPod
        | RemediationAction::ThrottleApi
        | RemediationAction::ClearCache
        | RemediationAction::AlertAdmin => Route::AlertOnly,
        RemediationAction::NoAction => Route::Nothing,
    }
}

/// max(current + 1, ⌈current × factor⌉), capped at `max`. Never below `current`
/// (a deployment already above the cap is left alone).
#[must_use]
pub fn scale_up_target(current: i32, factor: f64, max: i32) -> i32 {
    let current = current.max(0);
    let grown = (f64::from(current) * factor).ceil();
    // `grown` is finite and small here (factor ≤ 10); saturate instead of wrapping anyway.
    let grown = if grown >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        grown as i32
    };
    (current.saturating_add(1)).max(grown).min(max).max(current)
}

/// The mirror of [`scale_up_target`]: min(current − 1, ⌊current ÷ factor⌋), never negative.
/// Scaling to zero is allowed here and caught by the blast-radius rule.
#[must_use]
pub fn scale_down_target(current: i32, factor: f64) -> i32 {
    let shrunk = (f64::from(current.max(0)) / factor).floor() as i32;
    (current - 1).min(shrunk).max(0)
}

/// Why an action needs an admin's approval even in `auto` mode, if it does.
#[must_use]
pub fn blast_radius(
    action_type: ActionType,
    namespace: &str,
    current: Option<i32>,
    target: Option<i32>,
    ratio: f64,
    production_namespaces: &[String],
) -> Option<String> {
    match (action_type, current, target) {
        (ActionType::ScaleDeployment, _, Some(t)) if t < 1 => {
            Some(format!("scaling to {t} replicas leaves no pod running"))
        }
        (ActionType::ScaleDeployment, Some(c), Some(t)) if f64::from(t) > f64::from(c) * ratio => {
            Some(format!(
                "scaling from {c} to {t} replicas is more than {ratio}× the current size"
            ))
        }
        (ActionType::RollbackDeployment, _, _)
            if production_namespaces.iter().any(|p| p == namespace) =>
        {
            Some(format!("a rollback in production namespace {namespace}"))
        }
        _ => None,
    }
}

/// The executor's `actionParams` for `action_type` on the incident's target, in the order
/// they are signed.
#[must_use]
pub fn action_params(
    action_type: ActionType,
    subject: &Subject<'_>,
    replicas: Option<i32>,
    dry_run: bool,
) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("namespace".into(), json!(subject.namespace));
    match action_type {
        ActionType::RestartPod | ActionType::DeletePod => {
            params.insert("podName".into(), json!(subject.pod));
        }
        _ => {
            params.insert("deploymentName".into(), json!(subject.deployment));
        }
    }
    if let Some(r) = replicas {
        params.insert("replicas".into(), json!(r));
    }
    if action_type == ActionType::RollbackDeployment
        && let Some(revision) = subject.rollback_revision
    {
        params.insert("revision".into(), json!(revision));
    }
    if dry_run {
        params.insert("dryRun".into(), json!(true));
    }
    params
}

/// The policy request's `metadata`: the target, the signal's severity, confidence and score,
/// and what the window shows (latest value of each metric, error-level log lines, and its
/// length in seconds as `duration`). Keys with nothing behind them are left out.
#[must_use]
pub fn policy_metadata(
    subject: &Subject<'_>,
    window: Option<&SignalWindow>,
    evidence: Option<&KubernetesEvidence>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".into(), json!(subject.namespace));
    m.insert("deployment".into(), json!(subject.deployment));
    if let Some(pod) = subject.pod {
        m.insert("pod".into(), json!(pod));
    }
    m.insert("severity".into(), json!(subject.severity));
    m.insert("confidence".into(), json!(subject.confidence));
    m.insert("anomalyScore".into(), json!(subject.score));
    if let Some(evidence) = evidence {
        kubernetes_metadata(evidence, &mut m);
    }
    let Some(window) = window else {
        return m;
    };
    for (metric, key) in [
        (MetricType::CpuUsage, "cpuUsage"),
        (MetricType::MemoryUsage, "memoryUsage"),
        (MetricType::ErrorRate, "errorRate"),
    ] {
        if let Some(v) = latest(window, metric) {
            m.insert(key.into(), json!(v));
        }
    }
    if let Some(logs) = &window.logs {
        let failures = logs
            .iter()
            .filter(|l| {
                matches!(
                    l.level.to_ascii_uppercase().as_str(),
                    "ERROR" | "CRITICAL" | "FATAL"
                )
            })
            .count();
        m.insert("failureCount".into(), json!(failures));
    }
    if let Some(d) = duration_seconds(window) {
        m.insert("duration".into(), json!(d));
    }
    m
}

/// What a policy can match of a Kubernetes failure: `source: kubernetes`,
/// `healthStatus: unhealthy`, the `failure` and Kubernetes' `reason`, `failureCount` (the
/// container's restarts, or the pods affected when no container restarted), `exitCode` when
/// there is one, and `afterRollout` (whether it began after a rollout).
fn kubernetes_metadata(evidence: &KubernetesEvidence, m: &mut Map<String, Value>) {
    m.insert("source".into(), json!("kubernetes"));
    m.insert("healthStatus".into(), json!("unhealthy"));
    m.insert("failure".into(), json!(evidence.failure.as_str()));
    m.insert("reason".into(), json!(evidence.reason));
    let count = evidence
        .restart_count
        .filter(|r| *r > 0)
        .map_or(i64::from(evidence.affected_pods), i64::from);
    m.insert("failureCount".into(), json!(count));
    if let Some(code) = evidence.exit_code {
        m.insert("exitCode".into(), json!(code));
    }
    m.insert("afterRollout".into(), json!(evidence.rollout.is_some()));
}

fn latest(window: &SignalWindow, metric: MetricType) -> Option<f64> {
    window
        .metrics
        .iter()
        .filter(|s| s.metric_type == metric && s.value.is_finite())
        .max_by_key(|s| parse_time(&s.timestamp))
        .map(|s| s.value)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Seconds between the window's first and last metric points.
fn duration_seconds(window: &SignalWindow) -> Option<i64> {
    let times = window
        .metrics
        .iter()
        .filter_map(|s| parse_time(&s.timestamp));
    let (min, max) = times.fold((None, None), |(lo, hi): (Option<DateTime<Utc>>, _), t| {
        (
            Some(lo.map_or(t, |l| l.min(t))),
            Some(hi.map_or(t, |h: DateTime<Utc>| h.max(t))),
        )
    });
    Some((max? - min?).num_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_up_grows_by_the_factor_at_least_one_and_stops_at_the_cap() {
        assert_eq!(scale_up_target(1, 1.5, 10), 2);
        assert_eq!(scale_up_target(2, 1.5, 10), 3);
        assert_eq!(scale_up_target(3, 1.5, 10), 5);
        assert_eq!(scale_up_target(4, 1.5, 10), 6);
        assert_eq!(scale_up_target(8, 1.5, 10), 10);
        assert_eq!(scale_up_target(10, 1.5, 10), 10);
        // Above the cap already: never scaled down by a scale-up.
        assert_eq!(scale_up_target(12, 1.5, 10), 12);
        assert_eq!(scale_up_target(0, 1.5, 10), 1);
    }

    #[test]
    fn a_rollback_names_the_revision_the_signal_gave_in_signing_order() {
        let subject = Subject {
            namespace: "shop",
            deployment: "api",
            pod: Some("api-1"),
            severity: "high",
            confidence: 1.0,
            score: 1.0,
            rollback_revision: Some(3),
        };
        let params = action_params(ActionType::RollbackDeployment, &subject, None, true);
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(keys, ["namespace", "deploymentName", "revision", "dryRun"]);
        assert_eq!(params["revision"], 3);
        // Only a rollback takes it; without one the executor returns to the previous revision.
        let restart = action_params(ActionType::RestartPod, &subject, None, false);
        assert!(!restart.contains_key("revision"));
        let previous = Subject {
            rollback_revision: None,
            ..subject
        };
        let params = action_params(ActionType::RollbackDeployment, &previous, None, false);
        assert!(!params.contains_key("revision"));
    }

    #[test]
    fn scale_down_mirrors_it() {
        assert_eq!(scale_down_target(6, 1.5), 4);
        assert_eq!(scale_down_target(2, 1.5), 1);
        assert_eq!(scale_down_target(1, 1.5), 0);
        assert_eq!(scale_down_target(0, 1.5), 0);
    }

    #[test]
    fn blast_radius_rules() {
        let prod = vec!["production".to_owned()];
        let scale = ActionType::ScaleDeployment;
        assert!(blast_radius(scale, "shop", Some(2), Some(3), 2.0, &prod).is_none());
        assert!(blast_radius(scale, "shop", Some(2), Some(4), 2.0, &prod).is_none());
        assert!(blast_radius(scale, "shop", Some(2), Some(5), 2.0, &prod).is_some());
        assert!(blast_radius(scale, "shop", Some(1), Some(0), 2.0, &prod).is_some());
        let rollback = ActionType::RollbackDeployment;
        assert!(blast_radius(rollback, "production", None, None, 2.0, &prod).is_some());
        assert!(blast_radius(rollback, "staging", None, None, 2.0, &prod).is_none());
        assert!(
            blast_radius(ActionType::RestartPod, "production", None, None, 2.0, &prod).is_none()
        );
    }

    #[test]
    fn each_recommendation_routes_to_its_executor_action_or_an_alert() {
        assert!(matches!(
            route(RemediationAction::RestartPod, true),
            Route::Act {
                policy_action: "restart",
                action_type: ActionType::RestartPod
            }
        ));
        assert_eq!(
            route(RemediationAction::RestartPod, false),
            Route::AlertOnly
        );
        assert_eq!(
            route(RemediationAction::ThrottleApi, true),
            Route::AlertOnly
        );
        assert_eq!(route(RemediationAction::NoAction, true), Route::Nothing);
    }
}

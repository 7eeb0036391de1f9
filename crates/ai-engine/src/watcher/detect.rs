//! What the watcher sees in a workload's objects: pure functions of the pods, replicasets and
//! deployment as the reflectors hold them, and of the time.
//!
//! Each workload (a Deployment) has at most one [`Finding`]: of the failures it shows, the most
//! specific names the cause, in the order of [`Failure::rank`]: a pull failure explains
//! everything after it, an OOM kill explains the crash loop it causes, a crash loop explains the
//! failed readiness and the stuck rollout.

use std::collections::BTreeMap;

use aegis_common::contracts::KubernetesFailure as Failure;
use chrono::{DateTime, Utc};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{ContainerStatus, Pod},
};

/// Thresholds of detection.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A pod failing readiness, a pod unschedulable, or a rollout with unavailable replicas
    /// counts as failing once it has been so for this long.
    pub not_ready_after: chrono::Duration,
    /// A container that is not ready counts as crash-looping once it has restarted this many
    /// times.
    pub crash_restarts: i32,
}

/// A workload's failure, with the pod and container that show it best.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Namespace.
    pub namespace: String,
    /// Deployment.
    pub deployment: String,
    /// What failed.
    pub failure: Failure,
    /// Kubernetes' reason.
    pub reason: String,
    /// Kubernetes' message.
    pub message: Option<String>,
    /// The pod (none for a rollout that failed without a failing pod).
    pub pod: Option<String>,
    /// The pod's UID.
    pub pod_uid: Option<String>,
    /// The container.
    pub container: Option<String>,
    /// The container's image.
    pub image: Option<String>,
    /// Exit code of the last termination.
    pub exit_code: Option<i32>,
    /// Restart count.
    pub restart_count: Option<i32>,
    /// Whether the container has a terminated previous instance (its log is worth reading).
    pub crashed: bool,
    /// How many pods show this failure.
    pub affected_pods: u32,
    /// The revision of the replicaset the failing pod belongs to (or the deployment's).
    pub revision: Option<i64>,
}

/// The rank of a failure: lower explains higher.
#[must_use]
pub fn rank(failure: Failure) -> u8 {
    match failure {
        Failure::ImagePull => 0,
        Failure::OomKilled => 1,
        Failure::CrashLoop => 2,
        Failure::Unschedulable => 3,
        Failure::NotReady => 4,
        Failure::FailedRollout => 5,
    }
}

/// The revision annotation of a replicaset or deployment.
#[must_use]
pub fn revision_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

/// The deployment a pod belongs to, through its controlling replicaset.
#[must_use]
pub fn deployment_of<'a>(
    pod: &Pod,
    replicasets: &'a [ReplicaSet],
) -> Option<(&'a ReplicaSet, String)> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")?;
    let rs = replicasets
        .iter()
        .find(|rs| rs.metadata.uid.as_deref() == Some(owner.uid.as_str()))?;
    let deployment = rs
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "Deployment")?
        .name
        .clone();
    Some((rs, deployment))
}

/// A pod's own failure, if it shows one.
fn pod_failure(pod: &Pod, now: DateTime<Utc>, t: &Thresholds) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        && c.reason.as_deref() == Some("Unschedulable")
    {
        let since = c.last_transition_time.as_ref().map(|t| t.0);
        if since.is_none_or(|s| now - s >= t.not_ready_after) {
            return Some(PodFailure {
                failure: Failure::Unschedulable,
                reason: "Unschedulable".into(),
                message: c.message.clone(),
                container: None,
            });
        }
        return None;
    }
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let mut worst: Option<PodFailure> = None;
    for c in containers {
        if let Some(found) = container_failure(c, now, t) {
            worst = match worst {
                Some(w) if rank(w.failure) <= rank(found.failure) => Some(w),
                _ => Some(found),
            };
        }
    }
    if worst.is_some() {
        return worst;
    }
    // Failing readiness: running containers that do not pass their probe. A container that is
    // waiting (restarting, pulling) is not that; it is a crash loop or a pull failure in the
    // making, and is reported as one once it is.
    let running = status.phase.as_deref() == Some("Running");
    let probes_fail = containers
        .iter()
        .filter(|c| !c.ready)
        .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    let ready = conditions.iter().find(|c| c.type_ == "Ready");
    if running
        && probes_fail
        && let Some(ready) = ready
        && ready.status == "False"
    {
        let since = ready.last_transition_time.as_ref().map(|t| t.0);
        if since.is_some_and(|s| now - s >= t.not_ready_after) {
            let container = containers
                .iter()
                .find(|c| !c.ready)
                .map(|c| (c.name.clone(), c.image.clone(), c.restart_count));
            return Some(PodFailure {
                failure: Failure::NotReady,
                reason: ready
                    .reason
                    .clone()
                    .unwrap_or_else(|| "ContainersNotReady".into()),
                message: ready.message.clone(),
                container: container.map(|(name, image, restarts)| ContainerFacts {
                    name,
                    image,
                    exit_code: None,
                    restart_count: restarts,
                    crashed: false,
                }),
            });
        }
    }
    None
}

struct PodFailure {
    failure: Failure,
    reason: String,
    message: Option<String>,
    container: Option<ContainerFacts>,
}

struct ContainerFacts {
    name: String,
    image: String,
    exit_code: Option<i32>,
    restart_count: i32,
    crashed: bool,
}

/// How recent a termination must be for a restarting, unready container to count as crash-
/// looping: twice the kubelet's longest back-off (five minutes).
const RECENT_CRASH_MINUTES: i64 = 10;

fn container_failure(
    c: &ContainerStatus,
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Option<PodFailure> {
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref());
    let last = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.state.as_ref().and_then(|s| s.terminated.as_ref()));
    let facts = |crashed: bool| ContainerFacts {
        name: c.name.clone(),
        image: c.image.clone(),
        exit_code: last.map(|l| l.exit_code),
        restart_count: c.restart_count,
        crashed,
    };
    if let Some(reason @ ("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")) =
        waiting_reason
    {
        return Some(PodFailure {
            failure: Failure::ImagePull,
            reason: reason.to_owned(),
            message: waiting.and_then(|w| w.message.clone()),
            container: Some(facts(false)),
        });
    }
    // The kubelet says CrashLoopBackOff after the first crash; a loop is a container that
    // keeps failing, so it also takes `crash_restarts` restarts (the seed policy's three). The
    // restart count covers the pod's whole life: a container that is merely not ready counts
    // only when it last terminated recently, not for crashes long past.
    let recently_terminated = last
        .and_then(|l| l.finished_at.as_ref())
        .is_some_and(|f| now - f.0 <= chrono::Duration::minutes(RECENT_CRASH_MINUTES));
    let crash_looping = c.restart_count >= t.crash_restarts
        && (waiting_reason == Some("CrashLoopBackOff") || (!c.ready && recently_terminated));
    if !crash_looping {
        return None;
    }
    if let Some(l) = last
        && l.reason.as_deref() == Some("OOMKilled")
    {
        return Some(PodFailure {
            failure: Failure::OomKilled,
            reason: "OOMKilled".into(),
            message: l.message.clone(),
            container: Some(facts(true)),
        });
    }
    Some(PodFailure {
        failure: Failure::CrashLoop,
        reason: waiting_reason.unwrap_or("CrashLoopBackOff").to_owned(),
        message: waiting.and_then(|w| w.message.clone()),
        container: Some(facts(last.is_some())),
    })
}

/// The failure of a deployment's rollout itself: `ProgressDeadlineExceeded`, or replicas of
/// the current revision unavailable with no progress for longer than the threshold.
fn rollout_failure(
    deployment: &Deployment,
    current: Option<&ReplicaSet>,
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Option<(String, Option<String>)> {
    let status = deployment.status.as_ref()?;
    let progressing = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "Progressing");
    if let Some(p) = progressing
        && p.status == "False"
        && p.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Some(("ProgressDeadlineExceeded".into(), p.message.clone()));
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let rs = current?;
    let available = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    // Stuck, not slow: the deployment controller moves `lastUpdateTime` whenever the rollout
    // makes progress, so this counts the time since the last progress, whichever replicaset
    // (a new one, or an old one a rollback reuses) it rolls to.
    let progress = progressing
        .filter(|p| p.status == "True" && p.reason.as_deref() == Some("ReplicaSetUpdated"))?;
    let since = progress.last_update_time.as_ref()?.0;
    if available < desired && now - since >= t.not_ready_after {
        return Some((
            "ReplicaSetUpdated".into(),
            Some(format!(
                "{} of {desired} replicas of revision {} unavailable, no progress since {since}",
                desired - available,
                revision_of(rs.metadata.annotations.as_ref()).unwrap_or(0)
            )),
        ));
    }
    None
}

/// The replicaset a deployment currently rolls out: the one with its revision.
#[must_use]
pub fn current_replicaset<'a>(
    deployment: &Deployment,
    replicasets: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let revision = revision_of(deployment.metadata.annotations.as_ref())?;
    owned_by(deployment, replicasets)
        .find(|rs| revision_of(rs.metadata.annotations.as_ref()) == Some(revision))
}

/// The replicasets a deployment controls.
pub fn owned_by<'a>(
    deployment: &Deployment,
    replicasets: &'a [ReplicaSet],
) -> impl Iterator<Item = &'a ReplicaSet> + 'a {
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    replicasets.iter().filter(move |rs| {
        rs.metadata
            .owner_references
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o.controller == Some(true) && o.uid == uid)
    })
}

/// Every failing workload among these objects of one namespace.
#[must_use]
pub fn findings(
    pods: &[Pod],
    replicasets: &[ReplicaSet],
    deployments: &[Deployment],
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Vec<Finding> {
    let mut by_workload: BTreeMap<String, Finding> = BTreeMap::new();
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in sorted {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some((rs, deployment)) = deployment_of(pod, replicasets) else {
            continue;
        };
        let Some(found) = pod_failure(pod, now, t) else {
            continue;
        };
        let candidate = Finding {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            deployment: deployment.clone(),
            failure: found.failure,
            reason: found.reason,
            message: found.message,
            pod: pod.metadata.name.clone(),
            pod_uid: pod.metadata.uid.clone(),
            container: found.container.as_ref().map(|c| c.name.clone()),
            image: found.container.as_ref().map(|c| c.image.clone()),
            exit_code: found.container.as_ref().and_then(|c| c.exit_code),
            restart_count: found.container.as_ref().map(|c| c.restart_count),
            crashed: found.container.as_ref().is_some_and(|c| c.crashed),
            affected_pods: 1,
            revision: revision_of(rs.metadata.annotations.as_ref()),
        };
        match by_workload.get_mut(&deployment) {
            Some(existing) if existing.failure == candidate.failure => existing.affected_pods += 1,
            Some(existing) if rank(candidate.failure) < rank(existing.failure) => {
                *existing = candidate;
            }
            Some(_) => {}
            None => {
                by_workload.insert(deployment, candidate);
            }
        }
    }
    for deployment in deployments {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        if by_workload.contains_key(&name) {
            continue;
        }
        let current = current_replicaset(deployment, replicasets);
        if let Some((reason, message)) = rollout_failure(deployment, current, now, t) {
            by_workload.insert(
                name.clone(),
                Finding {
                    namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
                    deployment: name,
                    failure: Failure::FailedRollout,
                    reason,
                    message,
                    pod: None,
                    pod_uid: None,
                    container: None,
                    image: None,
                    exit_code: None,
                    restart_count: None,
                    crashed: false,
                    affected_pods: 0,
                    revision: revision_of(deployment.metadata.annotations.as_ref()),
                },
            );
        }
    }
    by_workload.into_values().collect()
}

/// Whether a deployment has completed its rollout and every replica is available: the state
/// whose revision a later rollback returns to.
#[must_use]
pub fn healthy(deployment: &Deployment) -> bool {
    let Some(status) = deployment.status.as_ref() else {
        return false;
    };
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let complete = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c.type_ == "Progressing"
                && c.status == "True"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
    complete
        && status.updated_replicas.unwrap_or(0) >= desired
        && status.available_replicas.unwrap_or(0) >= desired
        && status.unavailable_replicas.unwrap_or(0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn t() -> Thresholds {
        Thresholds {
            not_ready_after: chrono::Duration::seconds(60),
            crash_restarts: 3,
        }
    }

    fn rs(name: &str, revision: i64, image: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                "creationTimestamp": "2026-12-06T10:00:00Z",
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "uid-web", "controller": true}]},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"replicas": 1}
        }))
        .unwrap()
    }

    fn pod(name: &str, rs: &str, status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                     "uid": format!("uid-{rs}"), "controller": true}]},
            "status": status,
        }))
        .unwrap()
    }

    fn waiting(reason: &str, restarts: i32, last: Value) -> Value {
        json!({"phase": "Running",
               "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-06T10:00:00Z"}],
               "containerStatuses": [{"name": "app", "image": "shop/web:2", "imageID": "", "ready": false,
                   "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": "m"}},
                   "lastState": last}]})
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn each_pod_failure_is_named_with_its_container_facts() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        let now = at("2026-12-06T10:00:10Z");
        let cases = [
            (
                waiting(
                    "CrashLoopBackOff",
                    4,
                    json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
                ),
                Failure::CrashLoop,
                Some(1),
            ),
            (
                waiting(
                    "CrashLoopBackOff",
                    3,
                    json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
                ),
                Failure::OomKilled,
                Some(137),
            ),
            (
                waiting("ImagePullBackOff", 0, json!({})),
                Failure::ImagePull,
                None,
            ),
            (
                waiting("ErrImagePull", 0, json!({})),
                Failure::ImagePull,
                None,
            ),
        ];
        for (status, failure, exit_code) in cases {
            let found = findings(&[pod("web-1-a", "web-1", status)], &rss, &[], now, &t());
            assert_eq!(found.len(), 1, "{failure:?}");
            assert_eq!(found[0].failure, failure);
            assert_eq!(found[0].deployment, "web");
            assert_eq!(found[0].container.as_deref(), Some("app"));
            assert_eq!(found[0].exit_code, exit_code);
            assert_eq!(found[0].revision, Some(1));
        }
    }

    #[test]
    fn a_crash_loop_takes_the_configured_restarts_and_is_never_mistaken_for_readiness() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        // Long after the pod became unready: still no finding below the restarts.
        let now = at("2026-12-06T11:00:00Z");
        let last = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        let pods = [pod(
            "web-1-a",
            "web-1",
            waiting("CrashLoopBackOff", 2, last.clone()),
        )];
        assert!(findings(&pods, &rss, &[], now, &t()).is_empty());
        let pods = [pod(
            "web-1-a",
            "web-1",
            waiting("CrashLoopBackOff", 3, last),
        )];
        assert_eq!(
            findings(&pods, &rss, &[], now, &t())[0].failure,
            Failure::CrashLoop
        );
    }

    #[test]
    fn old_restarts_of_a_container_that_is_merely_unready_are_no_crash_loop() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        let status = |finished: &str| {
            json!({"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-06T10:00:00Z"}],
                   "containerStatuses": [{"name": "app", "image": "shop/web:2", "imageID": "", "ready": false,
                       "restartCount": 5, "state": {"running": {}},
                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}}]})
        };
        let now = at("2026-12-06T10:00:30Z");
        let recent = [pod("web-1-a", "web-1", status("2026-12-06T09:59:00Z"))];
        assert_eq!(
            findings(&recent, &rss, &[], now, &t())[0].failure,
            Failure::CrashLoop
        );
        let long_ago = [pod("web-1-a", "web-1", status("2026-12-05T09:00:00Z"))];
        assert!(findings(&long_ago, &rss, &[], now, &t()).is_empty());
    }

    #[test]
    fn a_rollout_without_progress_for_the_threshold_fails_however_old_its_replicaset() {
        let deployment = |last_update: &str| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web",
                             "annotations": {"deployment.kubernetes.io/revision": "1"}},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"conditions": [{"type": "Progressing", "status": "True",
                    "reason": "ReplicaSetUpdated", "lastUpdateTime": last_update,
                    "message": "ReplicaSet \"web-1\" is progressing."}]}
            }))
            .unwrap()
        };
        // A replicaset created long before (a rollback reuses an old one) counts from the
        // last progress, not from its creation.
        let rss = [rs("web-1", 1, "shop/web:1")];
        let now = at("2026-12-06T10:01:00Z");
        assert!(findings(&[], &rss, &[deployment("2026-12-06T10:00:30Z")], now, &t()).is_empty());
        let found = findings(&[], &rss, &[deployment("2026-12-06T10:00:00Z")], now, &t());
        assert_eq!(found[0].failure, Failure::FailedRollout);
        assert_eq!(found[0].reason, "ReplicaSetUpdated");
    }

    #[test]
    fn readiness_and_scheduling_fail_only_after_the_threshold() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        let unready = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                            "lastTransitionTime": "2026-12-06T10:00:00Z"}],
            "containerStatuses": [{"name": "app", "image": "shop/web:2", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"running": {}}}]});
        let pending = json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available", "lastTransitionTime": "2026-12-06T10:00:00Z"}]});
        for (status, failure) in [
            (unready, Failure::NotReady),
            (pending, Failure::Unschedulable),
        ] {
            let pods = [pod("web-1-a", "web-1", status)];
            assert!(findings(&pods, &rss, &[], at("2026-12-06T10:00:59Z"), &t()).is_empty());
            let found = findings(&pods, &rss, &[], at("2026-12-06T10:01:00Z"), &t());
            assert_eq!(found[0].failure, failure);
        }
    }

    #[test]
    fn the_most_specific_failure_names_the_workload_and_pods_are_counted() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        let crash = waiting(
            "CrashLoopBackOff",
            4,
            json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        );
        let pull = waiting("ImagePullBackOff", 0, json!({}));
        let pods = [
            pod("web-1-a", "web-1", crash.clone()),
            pod("web-1-b", "web-1", pull),
            pod("web-1-c", "web-1", crash),
        ];
        let found = findings(&pods, &rss, &[], at("2026-12-06T10:00:10Z"), &t());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].failure, Failure::ImagePull);
        assert_eq!(found[0].pod.as_deref(), Some("web-1-b"));
    }

    #[test]
    fn a_healthy_pod_or_a_pod_without_a_deployment_is_no_finding() {
        let rss = [rs("web-1", 1, "shop/web:2")];
        let fine = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {}}}]});
        let now = at("2026-12-06T11:00:00Z");
        assert!(findings(&[pod("a", "web-1", fine)], &rss, &[], now, &t()).is_empty());
        let crash = waiting("CrashLoopBackOff", 4, json!({}));
        assert!(findings(&[pod("a", "other", crash)], &rss, &[], now, &t()).is_empty());
    }

    #[test]
    fn a_rollout_past_its_deadline_fails_without_a_failing_pod() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web",
                         "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"conditions": [{"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-2\" has timed out progressing."}]}
        }))
        .unwrap();
        let found = findings(
            &[],
            &[rs("web-2", 2, "x")],
            &[deployment],
            at("2026-12-06T10:00:00Z"),
            &t(),
        );
        assert_eq!(found[0].failure, Failure::FailedRollout);
        assert_eq!(found[0].reason, "ProgressDeadlineExceeded");
        assert_eq!(found[0].revision, Some(2));
    }
}

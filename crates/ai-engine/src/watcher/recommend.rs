//! Deploy correlation and the recommendation: pure functions of what detection found, the
//! workload's replicasets and what the watcher remembers.

use aegis_common::contracts::{
    ImageChange, KubernetesFailure as Failure, RemediationAction, RolloutEvidence,
};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::detect::{owned_by, revision_of};

/// Slack for clocks: a failure seen up to this long before its replicaset's creation time
/// still began after the rollout (timestamps have whole seconds).
const CLOCK_SLACK_SECONDS: i64 = 5;

/// The rollout a failure began after, when it began within `window` of the creation of the
/// failing revision's replicaset and there is an earlier revision to return to.
#[must_use]
pub fn correlate(
    began: DateTime<Utc>,
    revision: Option<i64>,
    deployment: &Deployment,
    replicasets: &[ReplicaSet],
    healthy: Option<i64>,
    window: chrono::Duration,
) -> Option<RolloutEvidence> {
    let revision = revision.or_else(|| revision_of(deployment.metadata.annotations.as_ref()))?;
    let owned: Vec<&ReplicaSet> = owned_by(deployment, replicasets).collect();
    let rs = owned
        .iter()
        .find(|rs| revision_of(rs.metadata.annotations.as_ref()) == Some(revision))?;
    let started = rs.metadata.creation_timestamp.as_ref()?.0;
    let after = began - started;
    if after < chrono::Duration::seconds(-CLOCK_SLACK_SECONDS) || after > window {
        return None;
    }
    let previous = owned
        .iter()
        .filter_map(|rs| revision_of(rs.metadata.annotations.as_ref()))
        .filter(|r| *r < revision)
        .max()?;
    // The remembered healthy revision only while a replicaset still holds it (history is
    // pruned beyond revisionHistoryLimit); else the previous one.
    let healthy = healthy
        .filter(|h| {
            *h < revision
                && owned
                    .iter()
                    .any(|rs| revision_of(rs.metadata.annotations.as_ref()) == Some(*h))
        })
        .unwrap_or(previous);
    let before = owned
        .iter()
        .find(|rs| revision_of(rs.metadata.annotations.as_ref()) == Some(healthy));
    Some(RolloutEvidence {
        revision,
        previous_revision: Some(previous),
        healthy_revision: Some(healthy),
        started_at: aegis_common::time::rfc3339_millis(started),
        images: image_changes(before.copied(), rs),
    })
}

fn images(rs: &ReplicaSet) -> Vec<(String, String)> {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn image_changes(before: Option<&ReplicaSet>, after: &ReplicaSet) -> Vec<ImageChange> {
    let before = before.map(images).unwrap_or_default();
    images(after)
        .into_iter()
        .filter_map(|(container, to)| {
            let from = before
                .iter()
                .find(|(name, _)| *name == container)
                .map(|(_, image)| image.clone());
            (from.as_deref() != Some(to.as_str())).then_some(ImageChange {
                container,
                from,
                to,
            })
        })
        .collect()
}

/// What to do about a failure, and why in one sentence.
///
/// - after a rollout (except unschedulable pods): roll back to the healthy revision;
/// - a crash loop with no rollout: restart the pod once; if a restart was already recommended
///   for the workload within the cooldown, restarting did not help: a human must look;
/// - anything else: an alert with the evidence, no action.
#[must_use]
pub fn recommend(
    failure: Failure,
    rollout: Option<&RolloutEvidence>,
    restarted_recently: bool,
) -> (RemediationAction, String) {
    if let Some(r) = rollout
        && failure != Failure::Unschedulable
    {
        let target = r.healthy_revision.map_or_else(
            || "the previous revision".to_owned(),
            |h| format!("revision {h}"),
        );
        return (
            RemediationAction::Rollback,
            format!(
                "the failure began after the rollout of revision {}; roll back to {target}",
                r.revision
            ),
        );
    }
    match failure {
        Failure::CrashLoop if restarted_recently => (
            RemediationAction::AlertAdmin,
            "the crash loop came back within the cooldown after a restart: restarting did not help"
                .to_owned(),
        ),
        Failure::CrashLoop => (
            RemediationAction::RestartPod,
            "a crash loop with no recent rollout: restart the pod once".to_owned(),
        ),
        Failure::OomKilled => (
            RemediationAction::AlertAdmin,
            "OOM-killed with no recent rollout: the memory limit or the workload needs a human"
                .to_owned(),
        ),
        Failure::ImagePull => (
            RemediationAction::AlertAdmin,
            "the image cannot be pulled and no rollout explains it: check the registry and its credentials"
                .to_owned(),
        ),
        Failure::Unschedulable => (
            RemediationAction::AlertAdmin,
            "pods cannot be scheduled: capacity or placement needs a human".to_owned(),
        ),
        Failure::NotReady => (
            RemediationAction::AlertAdmin,
            "pods fail readiness with no recent rollout".to_owned(),
        ),
        Failure::FailedRollout => (
            RemediationAction::AlertAdmin,
            "a rollout does not complete and has no earlier revision to return to".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(revision: i64, image: &str, created: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{revision}"), "namespace": "shop",
                "creationTimestamp": created,
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "uid-web", "controller": true}]},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "image": image}, {"name": "sidecar", "image": "proxy:1"}]}}}
        }))
        .unwrap()
    }

    fn deployment(revision: i64) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web",
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string()}},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_failure_within_the_window_after_a_rollout_names_the_revisions_and_the_image() {
        let rss = [
            rs(1, "shop/web:1", "2026-12-06T09:00:00Z"),
            rs(2, "shop/web:2", "2026-12-06T09:30:00Z"),
            rs(3, "shop/web:crash", "2026-12-06T10:00:00Z"),
        ];
        let window = chrono::Duration::minutes(15);
        let found = correlate(
            at("2026-12-06T10:05:00Z"),
            Some(3),
            &deployment(3),
            &rss,
            Some(1),
            window,
        )
        .unwrap();
        assert_eq!(found.revision, 3);
        assert_eq!(found.previous_revision, Some(2));
        assert_eq!(found.healthy_revision, Some(1));
        assert_eq!(
            found.images,
            [ImageChange {
                container: "app".into(),
                from: Some("shop/web:1".into()),
                to: "shop/web:crash".into()
            }]
        );
        // A remembered revision whose replicaset was pruned is no target.
        let pruned = [rss[1].clone(), rss[2].clone()];
        let found = correlate(
            at("2026-12-06T10:05:00Z"),
            Some(3),
            &deployment(3),
            &pruned,
            Some(1),
            window,
        )
        .unwrap();
        assert_eq!(found.healthy_revision, Some(2));
        // Without a remembered healthy revision, the previous one is the target.
        let found = correlate(
            at("2026-12-06T10:05:00Z"),
            Some(3),
            &deployment(3),
            &rss,
            None,
            window,
        )
        .unwrap();
        assert_eq!(found.healthy_revision, Some(2));
        // Too late after the rollout, or the first revision: no correlation.
        assert!(
            correlate(
                at("2026-12-06T10:16:00Z"),
                Some(3),
                &deployment(3),
                &rss,
                None,
                window
            )
            .is_none()
        );
        assert!(
            correlate(
                at("2026-12-06T09:05:00Z"),
                Some(1),
                &deployment(1),
                &rss[..1],
                None,
                window
            )
            .is_none()
        );
    }

    #[test]
    fn the_recommendation_follows_the_rollout_and_the_restart_history() {
        let rollout = RolloutEvidence {
            revision: 3,
            previous_revision: Some(2),
            healthy_revision: Some(2),
            started_at: "2026-12-06T10:00:00Z".into(),
            images: vec![],
        };
        for failure in [
            Failure::CrashLoop,
            Failure::OomKilled,
            Failure::ImagePull,
            Failure::FailedRollout,
            Failure::NotReady,
        ] {
            assert_eq!(
                recommend(failure, Some(&rollout), false).0,
                RemediationAction::Rollback
            );
        }
        assert_eq!(
            recommend(Failure::Unschedulable, Some(&rollout), false).0,
            RemediationAction::AlertAdmin
        );
        assert_eq!(
            recommend(Failure::CrashLoop, None, false).0,
            RemediationAction::RestartPod
        );
        let (action, why) = recommend(Failure::CrashLoop, None, true);
        assert_eq!(action, RemediationAction::AlertAdmin);
        assert!(why.contains("did not help"), "{why}");
        for failure in [
            Failure::OomKilled,
            Failure::ImagePull,
            Failure::Unschedulable,
        ] {
            assert_eq!(
                recommend(failure, None, false).0,
                RemediationAction::AlertAdmin
            );
        }
    }
}

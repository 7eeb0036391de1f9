//! The three real actions and the deployment read.
//!
//! Each returns the result object on success or a failure message that goes to the caller as
//! `success:false` and into the audit row. Mutating calls carry `dryRun=All` when asked. Names
//! arrive checked ([`Namespace`], [`ResourceName`]), so none reaches the API server unchecked.

use std::collections::BTreeMap;

use aegis_common::{
    contracts::DeploymentStatus,
    names::{Namespace, ResourceName},
};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::Pod,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::client::{K8sError, KubeClient, Op};

const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Why an action failed; the message is what the caller and the audit row see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// A business rule refused (not found, bare pod, paused, no revision...).
    #[error("{0}")]
    Refused(String),
    /// The Kubernetes API failed.
    #[error(transparent)]
    Kube(#[from] K8sError),
    /// The whole action exceeded `ACTION_TIMEOUT_MS`.
    #[error("Action timed out after {0}ms")]
    Timeout(u128),
}

impl ActionError {
    /// `(executor_errors_total error_type, execution_errors.error_category)`.
    #[must_use]
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Refused(_) => ("k8s_api", "kubernetes_api"),
            Self::Kube(K8sError::Timeout(_)) | Self::Timeout(_) => ("timeout", "timeout"),
            Self::Kube(K8sError::Unreachable(_)) => ("k8s_api", "network"),
            Self::Kube(K8sError::Api { .. }) => ("k8s_api", "kubernetes_api"),
        }
    }
}

fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        ..PatchParams::default()
    }
}

/// `restart_pod`: a controller-owned pod only; DELETE with background propagation.
pub async fn restart_pod(
    kube: &KubeClient,
    namespace: &Namespace,
    pod_name: &ResourceName,
    dry_run: bool,
) -> Result<Value, ActionError> {
    let client = kube.client().await?;
    let pods: Api<Pod> = Api::namespaced(client, namespace.as_str());
    let pod = kube
        .call(Op::Get, "pod", pods.get_opt(pod_name.as_str()))
        .await?
        .ok_or_else(|| {
            ActionError::Refused(format!("Pod {pod_name} not found in namespace {namespace}"))
        })?;
    let controlled = pod
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o.controller == Some(true));
    if !controlled {
        return Err(ActionError::Refused(format!(
            "Pod {pod_name} is not managed by a controller; refusing to delete"
        )));
    }
    let mut params = DeleteParams::background();
    params.dry_run = dry_run;
    match kube
        .call(Op::Delete, "pod", pods.delete(pod_name.as_str(), &params))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            return Err(ActionError::Refused(format!(
                "Pod {pod_name} not found in namespace {namespace}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let mut result = json!({
        "action": "restart_pod",
        "namespace": namespace,
        "podName": pod_name,
        "status": "deleted",
        "message": "Pod deleted and will be recreated by deployment",
    });
    if let (Some(map), Some(uid)) = (result.as_object_mut(), pod.metadata.uid) {
        map.insert("uid".into(), json!(uid));
    }
    Ok(with_dry_run(result, dry_run))
}

fn deployment_not_found(name: &ResourceName, namespace: &Namespace) -> ActionError {
    ActionError::Refused(format!(
        "Deployment {name} not found in namespace {namespace}"
    ))
}

/// `scale_deployment` through the scale subresource with a merge patch.
pub async fn scale_deployment(
    kube: &KubeClient,
    namespace: &Namespace,
    name: &ResourceName,
    replicas: i64,
    dry_run: bool,
) -> Result<Value, ActionError> {
    let client = kube.client().await?;
    let deployments: Api<Deployment> = Api::namespaced(client, namespace.as_str());
    let scale = match kube
        .call(
            Op::Get,
            "deployment_scale",
            deployments.get_scale(name.as_str()),
        )
        .await
    {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Err(deployment_not_found(name, namespace)),
        Err(e) => return Err(e.into()),
    };
    let previous = i64::from(scale.spec.and_then(|s| s.replicas).unwrap_or(0));
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    match kube
        .call(
            Op::Patch,
            "deployment_scale",
            deployments.patch_scale(name.as_str(), &patch_params(dry_run), &patch),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Err(deployment_not_found(name, namespace)),
        Err(e) => return Err(e.into()),
    }
    let direction = match replicas.cmp(&previous) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "none",
    };
    Ok(with_dry_run(
        json!({
            "action": "scale_deployment",
            "namespace": namespace,
            "deploymentName": name,
            "previousReplicas": previous,
            "newReplicas": replicas,
            "status": "scaled",
            "direction": direction,
        }),
        dry_run,
    ))
}

fn revision_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(REVISION_ANNOTATION)?.trim().parse().ok()
}

/// `rollback_deployment` with `kubectl rollout undo` semantics.
pub async fn rollback_deployment(
    kube: &KubeClient,
    namespace: &Namespace,
    name: &ResourceName,
    revision: Option<i64>,
    dry_run: bool,
) -> Result<Value, ActionError> {
    let client = kube.client().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace.as_str());
    let deployment = kube
        .call(Op::Get, "deployment", deployments.get_opt(name.as_str()))
        .await?
        .ok_or_else(|| deployment_not_found(name, namespace))?;
    let spec = deployment.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        return Err(ActionError::Refused(format!(
            "Deployment {name} is paused; resume it before rolling back"
        )));
    }
    let current = revision_of(deployment.metadata.annotations.as_ref()).unwrap_or(0);
    let selector = spec
        .selector
        .match_labels
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client, namespace.as_str());
    let list = kube
        .call(
            Op::List,
            "replicaset",
            replicasets.list(&ListParams::default().labels(&selector)),
        )
        .await?;
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let mut history: Vec<(i64, ReplicaSet)> = list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o.uid == uid)
        })
        .filter_map(|rs| revision_of(rs.metadata.annotations.as_ref()).map(|r| (r, rs)))
        .collect();
    history.sort_by_key(|(r, _)| *r);
    let target = match revision {
        Some(r) => history.iter().find(|(rev, _)| *rev == r).ok_or_else(|| {
            ActionError::Refused(format!("Revision {r} not found for deployment {name}"))
        })?,
        None => history
            .iter()
            .rev()
            .find(|(rev, _)| *rev < current)
            .ok_or_else(|| {
                ActionError::Refused(format!("No previous revision found for deployment {name}"))
            })?,
    };
    let (to_revision, rs) = (target.0, &target.1);
    if to_revision == current {
        return Err(ActionError::Refused(format!(
            "Revision {to_revision} is already the current revision"
        )));
    }
    let mut template = serde_json::to_value(
        rs.spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default(),
    )
    .map_err(|e| ActionError::Refused(format!("Cannot read revision {to_revision}: {e}")))?;
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    let mut ops = vec![json!({"op": "replace", "path": "/spec/template", "value": template})];
    if deployment.metadata.annotations.is_none() {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
    }
    ops.push(json!({
        "op": "add",
        "path": "/metadata/annotations/aegis.io~1rolled-back-from",
        "value": current.to_string(),
    }));
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| ActionError::Refused(format!("Cannot build the rollback patch: {e}")))?;
    match kube
        .call(
            Op::Patch,
            "deployment",
            deployments.patch(
                name.as_str(),
                &patch_params(dry_run),
                &Patch::<()>::Json(patch),
            ),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Err(deployment_not_found(name, namespace)),
        Err(e) => return Err(e.into()),
    }
    let requested = match revision {
        Some(r) => json!(r),
        None => json!("previous"),
    };
    Ok(with_dry_run(
        json!({
            "action": "rollback_deployment",
            "namespace": namespace,
            "deploymentName": name,
            "revision": requested,
            "status": "rolled_back",
            "fromRevision": current,
            "toRevision": to_revision,
        }),
        dry_run,
    ))
}

/// `GET /executor/deployments/…`: the deployment's replica counts and revision (`None` when absent).
pub async fn deployment_status(
    kube: &KubeClient,
    namespace: &Namespace,
    name: &ResourceName,
) -> Result<Option<DeploymentStatus>, K8sError> {
    let client = kube.client().await?;
    let deployments: Api<Deployment> = Api::namespaced(client, namespace.as_str());
    let Some(d) = kube
        .call(Op::Get, "deployment", deployments.get_opt(name.as_str()))
        .await?
    else {
        return Ok(None);
    };
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    Ok(Some(DeploymentStatus {
        namespace: namespace.to_string(),
        deployment_name: name.to_string(),
        replicas: spec.replicas.unwrap_or(1),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        revision: revision_of(d.metadata.annotations.as_ref()),
        paused: spec.paused.unwrap_or(false),
    }))
}

fn with_dry_run(mut result: Value, dry_run: bool) -> Value {
    if dry_run && let Some(map) = result.as_object_mut() {
        map.insert("dryRun".into(), json!(true));
    }
    result
}

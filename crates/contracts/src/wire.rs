//! The types that cross service boundaries; docs/contracts.md lists which service sends each.
//!
//! Field names and enum strings here are wire contracts: renaming one breaks a peer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Executor action types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Delete a controller-owned pod so it is recreated.
    RestartPod,
    /// Set a deployment's replicas through the scale subresource.
    ScaleDeployment,
    /// `kubectl rollout undo` semantics.
    RollbackDeployment,
    /// Accepted, always fails without touching the cluster.
    DeletePod,
    /// Accepted, always fails without touching the cluster.
    UpdateConfig,
}

impl ActionType {
    /// Every value, in the order the API lists them.
    pub const ALL: [ActionType; 5] = [
        Self::RestartPod,
        Self::ScaleDeployment,
        Self::RollbackDeployment,
        Self::DeletePod,
        Self::UpdateConfig,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RestartPod => "restart_pod",
            Self::ScaleDeployment => "scale_deployment",
            Self::RollbackDeployment => "rollback_deployment",
            Self::DeletePod => "delete_pod",
            Self::UpdateConfig => "update_config",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The advisory policy decision attached to an execute request (recorded, not signed).
///
/// The backend's evaluate answer passes as it is: its `decisionId` (and `explanation`, with
/// `explain=true`) are accepted and kept in the executor's audit row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDecisionSummary {
    /// Whether the policy engine allowed the action.
    pub allowed: bool,
    /// The engine's reason.
    pub reason: String,
    /// Names of the policies that matched.
    pub applied_policies: Vec<String>,
    /// The evaluation's audit row id in the backend, when the decision came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_length = 255)]
    pub decision_id: Option<String>,
    /// The evaluation's explanation (`explain=true`), when the caller passes it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Object>)]
    pub explanation: Option<Value>,
}

/// `POST {EXECUTOR_URL}/executor/execute`.
///
/// `action_params` keeps the key order that was signed; serialise this struct as is. Unknown
/// top-level keys are refused (400).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The action.
    pub action_type: ActionType,
    /// `namespace`, `deploymentName`|`podName`, `replicas`?, `revision`?, `dryRun`?; the
    /// per-action schema is checked after the signature.
    pub action_params: Map<String, Value>,
    /// Who asks (`aegis-backend` for the loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 255)]
    pub requested_by: Option<String>,
    /// Advisory decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_decision: Option<PolicyDecisionSummary>,
    /// v2: decimal milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// v2: 16..64 chars of `[A-Za-z0-9_-]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{16,64}$")]
    pub nonce: Option<String>,
    /// Lowercase hex HMAC-SHA256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ExecuteRequest {
    /// Signs the request with a fresh v2 timestamp and nonce (the backend always sends v2).
    pub fn sign_v2(&mut self, key: &[u8], now_ms: i64) {
        use crate::signing::{RequestedBy, SignedFields, V2Fields, new_nonce, sign_v2};
        let timestamp = now_ms.to_string();
        let nonce = new_nonce();
        let fields = SignedFields {
            action_type: self.action_type.as_str(),
            action_params: &self.action_params,
            requested_by: self
                .requested_by
                .as_deref()
                .map_or(RequestedBy::Absent, RequestedBy::Value),
        };
        let signature = sign_v2(
            key,
            &fields,
            &V2Fields {
                timestamp: &timestamp,
                nonce: &nonce,
            },
        );
        self.timestamp = Some(timestamp);
        self.nonce = Some(nonce);
        self.signature = Some(signature);
    }
}

/// The answer to an execute: 200 with `success` true or false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    /// Whether the action succeeded.
    pub success: bool,
    /// The audit row id.
    #[schema(format = Uuid)]
    pub audit_id: String,
    /// The action's result (success only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed (failure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// `GET /executor/deployments/{namespace}/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment_name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.updatedReplicas`.
    pub updated_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// `deployment.kubernetes.io/revision` (`null` when the annotation is missing).
    #[schema(required = true)]
    pub revision: Option<i64>,
    /// `spec.paused`.
    pub paused: bool,
}

/// The six metric types, declared in name (code point) order: the derived `Ord` follows it,
/// and the ai-engine's feature vectors are ordered by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// `cpu_usage`, percent.
    CpuUsage,
    /// `disk_io`.
    DiskIo,
    /// `error_rate`, percent.
    ErrorRate,
    /// `memory_usage`, percent.
    MemoryUsage,
    /// `request_rate`, per second.
    RequestRate,
    /// `response_time`.
    ResponseTime,
}

impl MetricType {
    /// All types in name order.
    pub const ALL: [Self; 6] = [
        Self::CpuUsage,
        Self::DiskIo,
        Self::ErrorRate,
        Self::MemoryUsage,
        Self::RequestRate,
        Self::ResponseTime,
    ];

    /// The wire name, e.g. `cpu_usage`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CpuUsage => "cpu_usage",
            Self::DiskIo => "disk_io",
            Self::ErrorRate => "error_rate",
            Self::MemoryUsage => "memory_usage",
            Self::RequestRate => "request_rate",
            Self::ResponseTime => "response_time",
        }
    }

    /// Parses the exact, case-sensitive wire name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ai-engine remediation actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemediationAction {
    /// Scale the deployment up.
    ScaleUp,
    /// Scale the deployment down.
    ScaleDown,
    /// Restart a pod.
    RestartPod,
    /// Throttle the API (alert only).
    ThrottleApi,
    /// Clear caches (alert only).
    ClearCache,
    /// Nothing to do.
    NoAction,
    /// Tell a human.
    AlertAdmin,
    /// Roll back the deployment (loop extension).
    Rollback,
}

impl RemediationAction {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ScaleUp => "scale_up",
            Self::ScaleDown => "scale_down",
            Self::RestartPod => "restart_pod",
            Self::ThrottleApi => "throttle_api",
            Self::ClearCache => "clear_cache",
            Self::NoAction => "no_action",
            Self::AlertAdmin => "alert_admin",
            Self::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for RemediationAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detection severity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric point (ai-engine `MetricData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSample {
    /// The metric type.
    pub metric_type: MetricType,
    /// The value.
    pub value: f64,
    /// RFC 3339 timestamp.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Series labels (`namespace`, `deployment`, `pod` ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One log line (ai-engine `LogData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogSample {
    /// RFC 3339 timestamp.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Level, free text.
    pub level: String,
    /// Message.
    pub message: String,
    /// Service name.
    pub service: String,
}

/// ai-engine `AnomalyDetectionResponse`, key order as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnomalyResult {
    /// Whether the window is anomalous.
    pub is_anomaly: bool,
    /// Score in [0, 1].
    pub anomaly_score: f64,
    /// Severity from the score.
    pub severity: Severity,
    /// What to do.
    pub recommended_action: RemediationAction,
    /// How unusual the window is, in [0, 1], rising with the score: the share of the
    /// signature's recent windows that were less anomalous (forest), or `erf(|z|/√2)` (z-score).
    pub confidence: f64,
    /// Distinct metric types that produced features, sorted.
    pub affected_metrics: Vec<MetricType>,
    /// Model details.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Response time, RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// ai-engine `FailureDetectionResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailureResult {
    /// Whether a failure pattern was found.
    pub failure_detected: bool,
    /// The failure type, null when none.
    #[schema(required = true)]
    pub failure_type: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// Never empty; `["no_action"]` when no failure.
    pub recommended_actions: Vec<RemediationAction>,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// Root cause, if known.
    #[schema(required = true)]
    pub root_cause: Option<String>,
    /// Affected services.
    pub affected_services: Vec<String>,
    /// Details, including `method` (`heuristic` or `random_forest`).
    #[schema(value_type = Object)]
    pub details: Value,
    /// Response time, RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Signal kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// From anomaly detection.
    Anomaly,
    /// From failure-pattern detection.
    Failure,
}

impl SignalKind {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Anomaly => "anomaly",
            Self::Failure => "failure",
        }
    }
}

/// The workload a signal is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalTarget {
    /// Namespace.
    pub namespace: String,
    /// Deployment.
    pub deployment: String,
    /// Pod, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// The data window behind a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalWindow {
    /// Metric points.
    pub metrics: Vec<MetricSample>,
    /// Log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogSample>>,
}

/// ai-engine → backend `POST /api/v1/remediation/signals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemediationSignal {
    /// `ai-engine`.
    pub source: String,
    /// Anomaly or failure.
    pub kind: SignalKind,
    /// When it was observed (RFC 3339).
    pub observed_at: String,
    /// What it is about.
    pub target: SignalTarget,
    /// Severity.
    pub severity: Severity,
    /// Anomaly score.
    pub score: f64,
    /// Confidence.
    pub confidence: f64,
    /// What the engine recommends.
    pub recommended_action: RemediationAction,
    /// The data behind it.
    pub window: SignalWindow,
    /// The engine's full response.
    pub prediction: Value,
    /// Optional fingerprint; computed by the backend when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// What the cluster showed, when the signal comes from the Kubernetes watcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<KubernetesEvidence>,
}

/// The `source` of the Kubernetes watcher's signals; only their evidence counts.
pub const KUBERNETES_SOURCE: &str = "kubernetes";

/// The failures the Kubernetes watcher detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KubernetesFailure {
    /// A container restarts again and again (`CrashLoopBackOff`).
    CrashLoop,
    /// A container was killed for exceeding its memory limit (`OOMKilled`).
    OomKilled,
    /// An image cannot be pulled (`ErrImagePull`, `ImagePullBackOff`).
    ImagePull,
    /// A rollout that does not complete (`ProgressDeadlineExceeded`, or replicas unavailable
    /// for longer than the threshold after a revision change).
    FailedRollout,
    /// Pods running but failing readiness for longer than the threshold.
    NotReady,
    /// Pods the scheduler cannot place.
    Unschedulable,
}

impl KubernetesFailure {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CrashLoop => "crash_loop",
            Self::OomKilled => "oom_killed",
            Self::ImagePull => "image_pull",
            Self::FailedRollout => "failed_rollout",
            Self::NotReady => "not_ready",
            Self::Unschedulable => "unschedulable",
        }
    }
}

/// The cause of a Kubernetes failure, as the watcher found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesEvidence {
    /// What failed.
    pub failure: KubernetesFailure,
    /// The reason Kubernetes gives (`CrashLoopBackOff`, `OOMKilled`, `ImagePullBackOff`,
    /// `ProgressDeadlineExceeded`, `Unschedulable`, `ContainersNotReady`).
    pub reason: String,
    /// Kubernetes' message with it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The failing pod, when the failure is a pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The failing container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The exit code of the container's last termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The container's restart count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<i32>,
    /// How many of the workload's pods show the failure.
    pub affected_pods: u32,
    /// When the watcher first saw the failure (RFC 3339).
    pub first_seen: String,
    /// The last lines of the container's log: of the instance that crashed when it crashed.
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Whether `logTail` is the previous (terminated) instance's.
    #[serde(default)]
    pub log_from_previous_instance: bool,
    /// The recent Events of the pod, its replicasets and its deployment: warnings first, each
    /// newest first.
    #[serde(default)]
    pub events: Vec<EventSummary>,
    /// The rollout the failure began after, when it began within the window after one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutEvidence>,
    /// Why the watcher recommends what it does, in one sentence.
    pub explanation: String,
}

/// One Kubernetes Event, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSummary {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `BackOff`, `Failed`, `ScalingReplicaSet`...
    pub reason: String,
    /// What happened.
    pub message: String,
    /// The object it is about (`pod/web-7d4b9c-x2x`).
    pub object: String,
    /// How many times it was seen.
    pub count: i32,
    /// When it was last seen (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// The rollout a failure began after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutEvidence {
    /// The revision the deployment rolled out.
    pub revision: i64,
    /// The revision before it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<i64>,
    /// The last revision seen healthy, which a rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_revision: Option<i64>,
    /// When the new revision's replicaset was created (RFC 3339).
    pub started_at: String,
    /// The containers whose image changed, from the healthy (or previous) revision.
    #[serde(default)]
    pub images: Vec<ImageChange>,
}

/// A container's image before and after a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageChange {
    /// Container name.
    pub container: String,
    /// The image before, when the container existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The image after.
    pub to: String,
}

/// The answer to a signal: 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalAccepted {
    /// The incident the signal opened or joined.
    pub incident_id: String,
    /// The incident's correlation (trace) id.
    pub correlation_id: String,
    /// Whether it joined an open incident.
    pub deduplicated: bool,
}

/// Training data sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrainingSource {
    /// An operator labelled an incident.
    Operator,
    /// Sent through the API.
    Api,
}

/// `POST /api/v1/training-data` on the ai-engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingDataRequest {
    /// A failure type or `none`.
    pub failure_type: String,
    /// Metric points of the window.
    #[serde(default)]
    pub metrics: Vec<MetricSample>,
    /// Log lines of the window.
    #[serde(default)]
    pub logs: Vec<LogSample>,
    /// Precomputed feature vector (55 values in name order), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 55, max_items = 55)]
    pub features: Option<Vec<f64>>,
    /// Who labelled it.
    pub source: TrainingSource,
    /// The backend incident, when labelled from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

/// The answer to a training row: 201.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrainingDataCreated {
    /// Row id.
    pub id: String,
    /// Class id (`none` = 0).
    pub label: i32,
}

/// The kind of decision a policy takes part in, declared in [`PolicyType::ALL`] order: the
/// derived `Ord` follows it, and the policy engine groups its policies by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    /// Access to API routes.
    ApiAccess,
    /// Automated remediation (the closed loop asks with this type).
    SelfHealing,
    /// Access to data sets and tables.
    DataAccess,
    /// Quotas and rate limits.
    ResourceLimit,
}

impl PolicyType {
    /// Every policy type, in declaration order.
    pub const ALL: [PolicyType; 4] = [
        PolicyType::ApiAccess,
        PolicyType::SelfHealing,
        PolicyType::DataAccess,
        PolicyType::ResourceLimit,
    ];

    /// The wire name (`api_access`, …).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyType::ApiAccess => "api_access",
            PolicyType::SelfHealing => "self_healing",
            PolicyType::DataAccess => "data_access",
            PolicyType::ResourceLimit => "resource_limit",
        }
    }
}

impl std::fmt::Display for PolicyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the four policy types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("type must be one of: api_access, self_healing, data_access, resource_limit")]
pub struct UnknownPolicyType;

impl std::str::FromStr for PolicyType {
    type Err = UnknownPolicyType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownPolicyType)
    }
}

/// `context` of a policy evaluation, owned; the policy engine evaluates a borrowed view of it
/// (`aegis_policy::Context`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluationContext {
    /// Caller's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Caller's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Free-form facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Client user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// `POST /api/v1/policy/evaluate` body (also what the remediation loop evaluates), owned; the
/// policy engine evaluates a borrowed view of it (`aegis_policy::Request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// Policy type.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// Action, e.g. `scale_up`.
    pub action: String,
    /// Resource, e.g. `service:api`.
    pub resource: String,
    /// Context (required, may be empty).
    pub context: EvaluationContext,
}

/// Policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResponse {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: String,
    /// Matching policies in evaluation order.
    pub applied_policies: Vec<String>,
    /// The audit row id of this evaluation (port addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{RequestedBy, SignedFields, V2Fields, verify_v2};
    use serde_json::json;

    #[test]
    fn execute_request_serialises_params_in_signed_order_and_verifies() {
        let mut params = Map::new();
        params.insert("namespace".into(), json!("production"));
        params.insert("deploymentName".into(), json!("api"));
        params.insert("replicas".into(), json!(4));
        let mut req = ExecuteRequest {
            action_type: ActionType::ScaleDeployment,
            action_params: params,
            requested_by: Some("aegis-backend".into()),
            policy_decision: Some(PolicyDecisionSummary {
                allowed: true,
                reason: "Allowed by policy: x".into(),
                applied_policies: vec!["x".into()],
                decision_id: None,
                explanation: None,
            }),
            timestamp: None,
            nonce: None,
            signature: None,
        };
        req.sign_v2(b"k", 1_700_000_000_000);
        let wire = serde_json::to_string(&req).unwrap();
        assert!(
            wire.contains(
                r#""actionParams":{"namespace":"production","deploymentName":"api","replicas":4}"#
            ),
            "{wire}"
        );
        let back: ExecuteRequest = serde_json::from_str(&wire).unwrap();
        let fields = SignedFields {
            action_type: back.action_type.as_str(),
            action_params: &back.action_params,
            requested_by: RequestedBy::Value("aegis-backend"),
        };
        let v2 = V2Fields {
            timestamp: back.timestamp.as_deref().unwrap(),
            nonce: back.nonce.as_deref().unwrap(),
        };
        assert!(verify_v2(
            b"k",
            &fields,
            &v2,
            back.signature.as_deref().unwrap()
        ));
        assert_eq!(back.nonce.as_deref().unwrap().len(), 22);
    }

    #[test]
    fn signal_rejects_unknown_fields() {
        let body = json!({
            "source": "ai-engine", "kind": "anomaly", "observedAt": "2024-01-25T14:00:02.123Z",
            "target": {"namespace": "production", "deployment": "api"},
            "severity": "high", "score": 0.9, "confidence": 0.8, "recommendedAction": "scale_up",
            "window": {"metrics": []}, "prediction": {}, "bogus": 1
        });
        assert!(serde_json::from_value::<RemediationSignal>(body).is_err());
    }
}

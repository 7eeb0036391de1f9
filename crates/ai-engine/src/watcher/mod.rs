//! The Kubernetes watcher: sees what breaks in the cluster, names the cause and reports it to
//! the backend as a remediation signal.
//!
//! Every replica keeps reflectors (kube-rs watchers, not polling) over the Pods, ReplicaSets,
//! Deployments and Events of the watched namespaces, so a new leader starts with a warm view.
//! Only the holder of a `coordination.k8s.io/v1` Lease ([`lease`]) evaluates and reports. It
//! evaluates whenever a watched object changes, and once per second for the thresholds that
//! are a matter of time. What counts as a failure is [`detect`]; the deploy correlation and
//! the recommendation are [`recommend`]; the episodes, shared through PostgreSQL, are
//! [`episodes`].
//!
//! The watcher only reads the cluster: its identity may get, list and watch, read pod logs,
//! and write its Lease. The executor stays the only component that changes anything.
//!
//! A report is a `RemediationSignal` with `source: kubernetes`, kind `failure`, the
//! fingerprint `kubernetes/<namespace>/<deployment>` (so a repeat while the incident is open
//! joins it, whichever replica sends it) and [`KubernetesEvidence`]: the pod, container,
//! reason, exit code, restart count, the last log lines (of the instance that crashed when it
//! crashed), the recent Events, and the rollout it began after.

pub mod detect;
pub mod episodes;
pub mod lease;
pub mod recommend;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use aegis_common::contracts::{
    EventSummary, KUBERNETES_SOURCE, KubernetesEvidence, KubernetesFailure, RemediationSignal,
    Severity, SignalKind, SignalTarget, SignalWindow,
};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Event, Pod},
};
use kube::{
    Api, Client, Resource as _,
    api::LogParams,
    runtime::{WatchStreamExt as _, reflector, watcher},
};
use tokio::{sync::Notify, task::JoinHandle};

use self::detect::{Finding, Thresholds};
pub use crate::config::{KubeSource, WatcherConfig};
use crate::state::AppState;

/// What one replica knows of whether it leads: until when its last successful renewal lets it
/// act. The deadline counts from the start of the renewal attempt and lasts two thirds of the
/// lease, so it always ends before a rival, which waits a whole lease duration after it last
/// saw the record change, can take the lease.
#[derive(Debug, Clone, Default)]
struct Leadership(Arc<std::sync::Mutex<Option<Instant>>>);

impl Leadership {
    /// Whether this replica holds the lease now.
    fn leading(&self) -> bool {
        self.0
            .lock()
            .is_ok_and(|until| until.is_some_and(|u| Instant::now() < u))
    }

    fn set(&self, until: Option<Instant>) {
        if let Ok(mut current) = self.0.lock() {
            *current = until;
        }
    }
}

/// The reflectors of one namespace.
#[derive(Clone)]
struct View {
    namespace: String,
    pods: reflector::Store<Pod>,
    replicasets: reflector::Store<ReplicaSet>,
    deployments: reflector::Store<Deployment>,
    events: reflector::Store<Event>,
}

/// The detection thresholds of the configuration.
fn thresholds(cfg: &WatcherConfig) -> Thresholds {
    Thresholds {
        not_ready_after: chrono::Duration::from_std(cfg.not_ready_after)
            .unwrap_or_else(|_| chrono::Duration::seconds(120)),
        crash_restarts: cfg.crash_restarts,
    }
}

impl View {
    /// Waits until every reflector of the namespace has its first list: before that the view
    /// is an empty cluster. Only one task may wait on a store at a time.
    async fn ready(&self) {
        let _ = self.pods.wait_until_ready().await;
        let _ = self.replicasets.wait_until_ready().await;
        let _ = self.deployments.wait_until_ready().await;
        let _ = self.events.wait_until_ready().await;
    }
}

/// Builds the client from the configured credentials.
pub async fn client(cfg: &WatcherConfig) -> anyhow::Result<Client> {
    let mut config = match &cfg.kube {
        KubeSource::InCluster => kube::Config::incluster()?,
        KubeSource::Kubeconfig(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
    };
    config.connect_timeout = Some(cfg.api_timeout);
    Ok(Client::try_from(config)?)
}

/// Starts the watcher: the reflectors, the lease and the evaluation loop; its tasks, aborted
/// on shutdown (the lease then lapses within its duration).
pub fn spawn(state: AppState, cfg: WatcherConfig, client: Client) -> Vec<JoinHandle<()>> {
    let notify = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    let mut views = Vec::new();
    for namespace in &cfg.namespaces {
        let (pods, t) = reflect::<Pod>(&client, namespace, &notify);
        tasks.push(t);
        let (replicasets, t) = reflect::<ReplicaSet>(&client, namespace, &notify);
        tasks.push(t);
        let (deployments, t) = reflect::<Deployment>(&client, namespace, &notify);
        tasks.push(t);
        let (events, t) = reflect::<Event>(&client, namespace, &notify);
        tasks.push(t);
        views.push(View {
            namespace: namespace.clone(),
            pods,
            replicasets,
            deployments,
            events,
        });
    }
    let leadership = Leadership::default();
    let campaign = hold_lease(
        client.clone(),
        cfg.clone(),
        leadership.clone(),
        notify.clone(),
        state.clone(),
    );
    let evaluation = evaluate_forever(
        state,
        cfg,
        client,
        views.clone(),
        leadership.clone(),
        notify,
    );
    // One task waits for the views: a reflector store wakes only one waiter.
    tasks.push(tokio::spawn(async move {
        for view in &views {
            view.ready().await;
        }
        tokio::join!(campaign, evaluation);
    }));
    tasks
}

/// A reflector over one resource type of one namespace; every change wakes the evaluation.
fn reflect<K>(
    client: &Client,
    namespace: &str,
    notify: &Arc<Notify>,
) -> (reflector::Store<K>, JoinHandle<()>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let notify = notify.clone();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let namespace = namespace.to_owned();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => notify.notify_one(),
                Err(e) => tracing::warn!(%namespace, %kind, error = %e, "watch failed; retrying"),
            }
        }
    });
    (reader, task)
}

/// Takes and renews the lease; it runs once this replica's view of every namespace is
/// complete (a leader must see the cluster). Leadership lapses by itself when renewals stop
/// succeeding.
async fn hold_lease(
    client: Client,
    cfg: WatcherConfig,
    leadership: Leadership,
    notify: Arc<Notify>,
    state: AppState,
) {
    let api = Api::namespaced(client, &cfg.lease_namespace);
    let mut lock = lease::LeaseLock::new(api, &cfg.lease_name, &cfg.identity, cfg.lease_duration);
    let retry = (cfg.lease_duration / 8).max(Duration::from_millis(100));
    let renew_deadline = cfg.lease_duration * 2 / 3;
    loop {
        let was = leadership.leading();
        let started = Instant::now();
        let attempt = tokio::time::timeout(
            cfg.api_timeout.min(renew_deadline),
            lock.try_acquire_or_renew(),
        )
        .await;
        match attempt {
            Ok(Ok(true)) => leadership.set(Some(started + renew_deadline)),
            Ok(Ok(false)) => leadership.set(None),
            // Not renewed: the deadline of the last renewal still stands.
            Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
            Err(_) => tracing::warn!("lease renewal timed out"),
        }
        let now_leading = leadership.leading();
        state
            .ai_metrics
            .watcher_leader
            .set(i64::from(u8::from(now_leading)));
        if now_leading != was {
            tracing::info!(identity = %lock.identity(), leading = now_leading, "watcher leadership changed");
            notify.notify_one();
        }
        tokio::time::sleep(retry).await;
    }
}

/// What the leader remembers between evaluations (rebuilt from the cluster after a restart).
#[derive(Debug, Default)]
struct Memory {
    /// The last revision each deployment (by UID: a deployment deleted and created again under
    /// its name starts afresh) was seen healthy at.
    healthy: HashMap<String, i64>,
    /// When each workload's current failure was first seen.
    first_seen: HashMap<(String, String), DateTime<Utc>>,
    /// When a workload whose report the backend did not accept is tried again, and the delay
    /// after the next refusal: one second, doubling to a minute.
    retry: HashMap<(String, String), (Instant, Duration)>,
}

/// The longest delay between two attempts to report one workload's failure.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The longest log line and event message kept as evidence, in bytes; longer ones are cut.
const MAX_EVIDENCE_LINE: usize = 2048;

async fn evaluate_forever(
    state: AppState,
    cfg: WatcherConfig,
    client: Client,
    views: Vec<View>,
    leadership: Leadership,
    notify: Arc<Notify>,
) {
    let http = reqwest::Client::new();
    let mut memory = Memory::default();
    loop {
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for view in &views {
            remember_healthy(view, &mut memory);
        }
        if !leadership.leading() {
            continue;
        }
        for view in &views {
            let ctx = Context {
                state: &state,
                cfg: &cfg,
                client: &client,
                http: &http,
                leadership: &leadership,
            };
            if let Err(e) = evaluate(&ctx, view, &mut memory).await {
                tracing::warn!(namespace = %view.namespace, error = %e, "watcher evaluation failed; retried");
            }
        }
    }
}

fn remember_healthy(view: &View, memory: &mut Memory) {
    for d in view.deployments.state() {
        if detect::healthy(&d)
            && let Some(revision) = detect::revision_of(d.metadata.annotations.as_ref())
            && let Some(uid) = d.metadata.uid.clone()
        {
            memory.healthy.insert(uid, revision);
        }
    }
}

/// What one evaluation works with.
struct Context<'a> {
    state: &'a AppState,
    cfg: &'a WatcherConfig,
    client: &'a Client,
    http: &'a reqwest::Client,
    leadership: &'a Leadership,
}

/// `text` cut to at most [`MAX_EVIDENCE_LINE`] bytes, on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_EVIDENCE_LINE {
        let mut end = MAX_EVIDENCE_LINE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.iter().map(|k| K::clone(k)).collect()
}

/// One evaluation of one namespace: report new and returning failures, clear the rest.
///
/// A failure that clears and comes back within `WATCHER_NOT_READY_SECONDS` is a flap of the
/// same failure (a container between two crashes may pass its probe) and is not reported
/// again; one that comes back later is.
async fn evaluate(ctx: &Context<'_>, view: &View, memory: &mut Memory) -> anyhow::Result<()> {
    let Context {
        state,
        cfg,
        client,
        http,
        leadership,
    } = *ctx;
    let now = Utc::now();
    let pods = owned(view.pods.state());
    let replicasets = owned(view.replicasets.state());
    let deployments = owned(view.deployments.state());
    let found = detect::findings(&pods, &replicasets, &deployments, now, &thresholds(cfg));
    let failing: Vec<String> = found.iter().map(|f| f.deployment.clone()).collect();
    memory
        .first_seen
        .retain(|(ns, d), _| *ns != view.namespace || failing.contains(d));
    for finding in &found {
        let began = *memory
            .first_seen
            .entry((view.namespace.clone(), finding.deployment.clone()))
            .or_insert(now);
        let key = (view.namespace.clone(), finding.deployment.clone());
        if memory
            .retry
            .get(&key)
            .is_some_and(|(at, _)| Instant::now() < *at)
        {
            continue;
        }
        let open = episodes::open(&state.db, &view.namespace, &finding.deployment).await?;
        if let Some(episode) = &open {
            let grace = chrono::Duration::from_std(cfg.not_ready_after)
                .unwrap_or_else(|_| chrono::Duration::seconds(120));
            match episode.cleared_at {
                None => continue,
                Some(cleared) if now - cleared < grace => {
                    episodes::failing_again(&state.db, episode.id).await?;
                    continue;
                }
                Some(_) => {}
            }
        }
        let Some(deployment) = deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(finding.deployment.as_str()))
        else {
            continue;
        };
        let restarted = episodes::restarted_within(
            &state.db,
            &view.namespace,
            &finding.deployment,
            cfg.restart_cooldown,
        )
        .await?;
        let healthy = deployment
            .metadata
            .uid
            .as_ref()
            .and_then(|uid| memory.healthy.get(uid))
            .copied();
        let window = chrono::Duration::from_std(cfg.rollout_window)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let rollout = recommend::correlate(
            began,
            finding.revision,
            deployment,
            &replicasets,
            healthy,
            window,
        );
        let (action, explanation) =
            recommend::recommend(finding.failure, rollout.as_ref(), restarted);
        let (log_tail, from_previous) = logs(cfg, client, finding).await;
        let evidence = KubernetesEvidence {
            failure: finding.failure,
            reason: finding.reason.clone(),
            message: finding.message.clone().map(bounded),
            pod: finding.pod.clone(),
            container: finding.container.clone(),
            image: finding.image.clone(),
            exit_code: finding.exit_code,
            restart_count: finding.restart_count,
            affected_pods: finding.affected_pods,
            first_seen: aegis_common::time::rfc3339_millis(began),
            log_tail,
            log_from_previous_instance: from_previous,
            events: recent_events(view, finding, deployment, &replicasets),
            rollout,
            explanation,
        };
        let fingerprint = format!("kubernetes/{}/{}", view.namespace, finding.deployment);
        let signal = RemediationSignal {
            source: KUBERNETES_SOURCE.into(),
            kind: SignalKind::Failure,
            observed_at: aegis_common::time::rfc3339_millis(now),
            target: SignalTarget {
                namespace: view.namespace.clone(),
                deployment: finding.deployment.clone(),
                pod: finding.pod.clone(),
            },
            severity: severity(finding.failure),
            score: 1.0,
            confidence: 1.0,
            recommended_action: action,
            window: SignalWindow {
                metrics: Vec::new(),
                logs: None,
            },
            prediction: serde_json::json!({"method": "kubernetes_watcher"}),
            fingerprint: Some(fingerprint.clone()),
            evidence: Some(evidence),
        };
        // The lease may have lapsed while the evidence was gathered.
        if !leadership.leading() {
            return Ok(());
        }
        let sent = crate::feed::send_signal(
            http,
            &cfg.backend_url,
            cfg.backend_api_key.as_ref(),
            &signal,
        )
        .await;
        let result = if sent.is_ok() { "accepted" } else { "rejected" };
        state
            .ai_metrics
            .watcher_signals
            .with_label_values(&[finding.failure.as_str(), result])
            .inc();
        match sent {
            Ok(()) => {
                memory.retry.remove(&key);
                tracing::info!(
                    namespace = %view.namespace,
                    deployment = %finding.deployment,
                    failure = finding.failure.as_str(),
                    action = action.as_str(),
                    "Kubernetes failure reported"
                );
                episodes::reported(
                    &state.db,
                    open.as_ref(),
                    &episodes::Report {
                        namespace: &view.namespace,
                        deployment: &finding.deployment,
                        failure: finding.failure.as_str(),
                        action: action.as_str(),
                        fingerprint: &fingerprint,
                    },
                )
                .await?;
            }
            // Not recorded: a later evaluation reports it again, after a growing delay.
            Err(e) => {
                let delay = memory
                    .retry
                    .get(&key)
                    .map_or(Duration::from_secs(1), |(_, d)| {
                        (*d * 2).min(MAX_RETRY_DELAY)
                    });
                memory.retry.insert(key, (Instant::now() + delay, delay));
                tracing::warn!(deployment = %finding.deployment, error = %e, retry_in = ?delay, "signal not accepted");
            }
        }
    }
    episodes::clear_all_but(&state.db, &view.namespace, &failing, cfg.episode_quiet).await?;
    Ok(())
}

fn severity(failure: KubernetesFailure) -> Severity {
    match failure {
        KubernetesFailure::NotReady | KubernetesFailure::Unschedulable => Severity::Medium,
        _ => Severity::High,
    }
}

/// The last log lines of the failing container: of the instance that crashed when it crashed
/// (falling back to the running one), and whether they are the previous instance's.
async fn logs(cfg: &WatcherConfig, client: &Client, finding: &Finding) -> (Vec<String>, bool) {
    let (Some(pod), Some(container)) = (&finding.pod, &finding.container) else {
        return (Vec::new(), false);
    };
    if finding.failure == KubernetesFailure::ImagePull
        || finding.failure == KubernetesFailure::Unschedulable
    {
        return (Vec::new(), false);
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &finding.namespace);
    let attempts: &[bool] = if finding.crashed {
        &[true, false]
    } else {
        &[false]
    };
    for previous in attempts {
        let params = LogParams {
            container: Some(container.clone()),
            previous: *previous,
            tail_lines: Some(cfg.log_lines),
            ..LogParams::default()
        };
        match tokio::time::timeout(cfg.api_timeout, api.logs(pod, &params)).await {
            Ok(Ok(text)) => {
                let lines = text.lines().map(|l| bounded(l.to_owned())).collect();
                return (lines, *previous);
            }
            Ok(Err(e)) => tracing::debug!(%pod, previous, error = %e, "log not readable"),
            Err(_) => tracing::debug!(%pod, previous, "log read timed out"),
        }
    }
    (Vec::new(), false)
}

/// The recent Events of the failing pod, the workload's replicasets and the deployment,
/// warnings first and each newest first, at most ten.
fn recent_events(
    view: &View,
    finding: &Finding,
    deployment: &Deployment,
    replicasets: &[ReplicaSet],
) -> Vec<EventSummary> {
    let mut uids: Vec<String> = detect::owned_by(deployment, replicasets)
        .filter_map(|rs| rs.metadata.uid.clone())
        .collect();
    uids.extend(deployment.meta().uid.clone());
    uids.extend(finding.pod_uid.clone());
    let mut events: Vec<Arc<Event>> = view
        .events
        .state()
        .into_iter()
        .filter(|e| {
            e.involved_object
                .uid
                .as_ref()
                .is_some_and(|uid| uids.contains(uid))
        })
        .collect();
    let seen = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    // Warnings first (they name what went wrong), then the newest.
    events.sort_by_key(|e| {
        (
            e.type_.as_deref() != Some("Warning"),
            std::cmp::Reverse(seen(e)),
        )
    });
    events
        .iter()
        .take(10)
        .map(|e| EventSummary {
            kind: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: bounded(e.message.clone().unwrap_or_default()),
            object: format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                e.involved_object.name.as_deref().unwrap_or_default()
            ),
            count: e.count.unwrap_or(1),
            last_seen: seen(e).map(aegis_common::time::rfc3339_millis),
        })
        .collect()
}

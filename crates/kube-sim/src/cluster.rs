//! The simulated cluster as shared state: the object store, fault rules, metric overrides and a
//! log of recent requests. Cheap to clone; every handler and in-process helper goes through it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::StatusError;
use crate::faults::{self, FaultDecision, FaultRule};
use crate::metrics::{self, MetricUpdate, MetricsState};
use crate::object;
use crate::ops::{self, DeleteOptions};
use crate::resource::Resource;
use crate::seed::Seed;
use crate::store::Store;

/// How many requests [`Cluster::requests`] remembers.
const REQUEST_LOG_CAPACITY: usize = 1000;

/// One request the server received, for tests that assert on what a client sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Body parsed as JSON, if it was JSON.
    pub body: Option<Value>,
}

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    faults: Mutex<Vec<FaultRule>>,
    metrics: Mutex<MetricsState>,
    requests: Mutex<VecDeque<RecordedRequest>>,
}

/// Handle to the simulated cluster's state.
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// A cluster with the `default`, `kube-system` and `kube-public` namespaces and the given
    /// baseline pod CPU and memory percentages.
    pub fn new(baseline_cpu: f64, baseline_memory: f64) -> Cluster {
        let cluster = Cluster {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::new()),
                faults: Mutex::new(Vec::new()),
                metrics: Mutex::new(MetricsState::new(baseline_cpu, baseline_memory)),
                requests: Mutex::new(VecDeque::new()),
            }),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            // Creating a namespace in a fresh store cannot fail.
            let _ = cluster.create(Resource::Namespace, None, json!({"metadata": {"name": ns}}));
        }
        cluster
    }

    /// Runs `f` with the store locked. Do not block inside.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.inner.store))
    }

    /// One object, if it exists.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.with_store(|s| s.get(resource, namespace, name).cloned())
    }

    /// All objects of a type in a namespace (or everywhere with `None`).
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> Vec<Value> {
        self.with_store(|s| s.list(resource, namespace).into_iter().cloned().collect())
    }

    /// The pods controlled (through replicasets) by a deployment, ordered by name.
    pub fn pods_of_deployment(&self, namespace: &str, deployment: &str) -> Vec<Value> {
        self.with_store(|s| {
            s.list(Resource::Pod, Some(namespace))
                .into_iter()
                .filter(|p| metrics::deployment_of_pod(s, p).as_deref() == Some(deployment))
                .cloned()
                .collect()
        })
    }

    /// The replicasets controlled by a deployment, ordered by revision.
    pub fn replicasets_of_deployment(&self, namespace: &str, deployment: &str) -> Vec<Value> {
        self.with_store(|s| {
            let Some(uid) = s
                .get(Resource::Deployment, namespace, deployment)
                .map(|d| object::uid(d).to_owned())
            else {
                return Vec::new();
            };
            let mut owned: Vec<Value> = s
                .list(Resource::ReplicaSet, Some(namespace))
                .into_iter()
                .filter(|rs| object::controller_uid(rs) == Some(uid.as_str()))
                .cloned()
                .collect();
            owned.sort_by_key(crate::controller::revision);
            owned
        })
    }

    /// The latest `resourceVersion`.
    pub fn resource_version(&self) -> u64 {
        self.with_store(|s| s.resource_version())
    }

    /// Creates an object as a `POST` would (validated, defaulted, reconciled).
    pub fn create(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        obj: Value,
    ) -> Result<Value, StatusError> {
        self.with_store(|s| ops::create(s, resource, namespace, obj, false))
    }

    /// Deletes an object as a `DELETE` with background propagation would.
    pub fn delete(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StatusError> {
        self.with_store(|s| {
            ops::delete(
                s,
                resource,
                namespace,
                name,
                &DeleteOptions::default(),
                false,
            )
        })
    }

    /// Creates the seed's namespaces (unless they exist) and deployments.
    pub fn apply_seed(&self, seed: &Seed) -> Result<(), StatusError> {
        for namespace in &seed.namespaces {
            let exists = self.get(Resource::Namespace, "", &namespace.name).is_some();
            if !exists {
                self.create(Resource::Namespace, None, namespace.to_object())?;
            }
            for deployment in &namespace.deployments {
                self.create(
                    Resource::Deployment,
                    Some(&namespace.name),
                    deployment.to_object(&namespace.name),
                )?;
            }
        }
        Ok(())
    }

    /// Replaces every fault rule.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.inner.faults) = rules;
    }

    /// Appends a fault rule (rules apply first-match).
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.inner.faults).push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// The current fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.inner.faults).clone()
    }

    /// The fault to apply to one request, if any rule matches.
    pub fn decide_fault(&self, method: &str, path: &str) -> Option<FaultDecision> {
        faults::decide(&mut lock(&self.inner.faults), method, path)
    }

    /// Sets CPU/memory of a pod or of all pods of a deployment; 404 when they do not exist and
    /// 400 for values that are not finite non-negative numbers.
    pub fn set_pod_metric(&self, update: &MetricUpdate) -> Result<(), StatusError> {
        update.validate().map_err(StatusError::bad_request)?;
        if self
            .get(Resource::Deployment, &update.namespace, &update.deployment)
            .is_none()
        {
            return Err(StatusError::not_found(
                Resource::Deployment,
                &update.deployment,
            ));
        }
        let pods: Vec<String> = self
            .pods_of_deployment(&update.namespace, &update.deployment)
            .iter()
            .map(|p| object::name(p).to_owned())
            .collect();
        if let Some(pod) = &update.pod
            && !pods.contains(pod)
        {
            return Err(StatusError::not_found(Resource::Pod, pod));
        }
        lock(&self.inner.metrics).apply(update, &pods);
        Ok(())
    }

    /// Makes a pod crash-loop (not Ready, `CrashLoopBackOff`, `restarts` restarts, one more each
    /// kubelet period) until it is deleted; its deployment's ready count drops accordingly.
    /// 404 when it does not exist.
    pub fn crash_pod(
        &self,
        namespace: &str,
        pod: &str,
        restarts: u32,
    ) -> Result<Value, StatusError> {
        self.with_store(|s| {
            let mut obj = s
                .get(Resource::Pod, namespace, pod)
                .cloned()
                .ok_or_else(|| StatusError::not_found(Resource::Pod, pod))?;
            let status = crate::kubelet::crashloop_status(&obj, restarts);
            if let Some(map) = obj.as_object_mut() {
                map.insert("status".into(), status);
            }
            let obj = s.put(Resource::Pod, obj);
            s.set_crashing(namespace, pod);
            crate::kubelet::record_crash(s, &obj);
            crate::controller::reconcile(s);
            Ok(obj)
        })
    }

    /// One kubelet period (see [`crate::kubelet::tick`]), then the controllers, so that
    /// replicaset and deployment status follow the pods and a rollout that has made no progress
    /// for its `progressDeadlineSeconds` is marked as failed.
    pub fn tick(&self) {
        self.with_store(|s| {
            crate::kubelet::tick(s);
            crate::controller::reconcile(s);
        });
    }

    /// Sets what containers of `image` do from their next start or kubelet period on,
    /// whatever its tag says.
    pub fn set_image_behaviour(&self, image: &str, behaviour: crate::node::Behaviour) {
        self.with_store(|s| s.set_behaviour(image, behaviour));
    }

    /// The behaviours set through [`Cluster::set_image_behaviour`].
    pub fn image_behaviours(&self) -> crate::node::ImageBehaviours {
        self.with_store(|s| s.image_behaviours().clone())
    }

    /// Appends `lines` to the log of a pod's running container (`None`: its only or first
    /// container).
    pub fn append_log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        lines: &[String],
    ) -> Result<(), StatusError> {
        let container = self.log_container(namespace, pod, container, false)?;
        self.with_store(|s| s.logs_mut().append(namespace, pod, &container, lines));
        Ok(())
    }

    /// A container's log as `GET .../pods/{name}/log` answers it: the running instance, or
    /// with `previous` the last terminated one, at most the last `tail` lines.
    pub fn read_log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        previous: bool,
        tail: Option<usize>,
    ) -> Result<Vec<String>, StatusError> {
        let container = self.log_container(namespace, pod, container, true)?;
        self.with_store(|s| s.logs().read(namespace, pod, &container, previous, tail))
            .ok_or_else(|| {
                StatusError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                ))
            })
    }

    /// The container a log request means, checked against the pod's spec. Reading a pod with
    /// several containers needs the name, as the API server requires.
    fn log_container(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        strict: bool,
    ) -> Result<String, StatusError> {
        let obj = self
            .with_store(|s| s.get(Resource::Pod, namespace, pod).cloned())
            .ok_or_else(|| StatusError::not_found(Resource::Pod, pod))?;
        let names: Vec<String> = crate::kubelet::containers(&obj)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        match container {
            Some(name) if names.iter().any(|n| n == name) => Ok(name.to_owned()),
            Some(name) => Err(StatusError::bad_request(format!(
                "container {name} is not valid for pod {pod}"
            ))),
            None if names.len() == 1 || (!strict && !names.is_empty()) => Ok(names[0].clone()),
            None => Err(StatusError::bad_request(format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                names.join(" ")
            ))),
        }
    }

    /// Drops every metric override (pods fall back to the baseline).
    pub fn reset_metrics(&self) {
        lock(&self.inner.metrics).reset();
    }

    /// The (cpu, memory) percentages currently reported for a pod, before jitter.
    pub fn pod_usage(&self, namespace: &str, pod: &str) -> Option<(f64, f64)> {
        let (deployment, ready, ready_pods) = self.with_store(|s| {
            let p = s.get(Resource::Pod, namespace, pod)?;
            let deployment = metrics::deployment_of_pod(s, p).unwrap_or_default();
            let ready_pods = s
                .list(Resource::Pod, Some(namespace))
                .into_iter()
                .filter(|other| {
                    crate::controller::pod_is_ready(other)
                        && metrics::deployment_of_pod(s, other).as_deref() == Some(&deployment)
                })
                .count();
            Some((deployment, crate::controller::pod_is_ready(p), ready_pods))
        })?;
        Some(lock(&self.inner.metrics).usage(namespace, &deployment, pod, ready, ready_pods))
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let metrics = lock(&self.inner.metrics).clone();
        self.with_store(|s| metrics.render(s))
    }

    /// Remembers a request (the oldest are forgotten beyond a thousand).
    pub fn record_request(&self, request: RecordedRequest) {
        let mut log = lock(&self.inner.requests);
        if log.len() >= REQUEST_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(request);
    }

    /// Recent requests, oldest first (admin and metrics calls are not recorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.inner.requests).clear();
    }
}

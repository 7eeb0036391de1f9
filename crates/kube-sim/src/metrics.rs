//! Per-pod CPU and memory gauges in Prometheus text format, settable for demos and tests.
//!
//! A value is set per pod or per deployment. A deployment can instead be given a CPU *load*
//! (`cpuLoad`, in percent of one pod): it is shared by the deployment's Ready pods, so scaling
//! up lowers what each pod reports, as it would on a real cluster. `jitter` adds uniform noise
//! to every scrape, so a series looks like a live one (an anomaly detector trained on a flat
//! line learns nothing).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object;
use crate::resource::Resource;
use crate::store::Store;

/// A request to set the CPU and/or memory usage of one pod, or of every pod of a deployment
/// (current and future) when `pod` is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricUpdate {
    /// Namespace of the deployment.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// One pod of it; all pods when absent.
    #[serde(default)]
    pub pod: Option<String>,
    /// CPU usage in percent.
    #[serde(default)]
    pub cpu: Option<f64>,
    /// Memory usage in percent.
    #[serde(default)]
    pub memory: Option<f64>,
    /// CPU load of the whole deployment in percent of one pod, shared by its Ready pods
    /// (deployment-wide only; replaces a `cpu` value and is replaced by one).
    #[serde(default)]
    pub cpu_load: Option<f64>,
    /// Uniform noise of ± this many percentage points on every scrape (0 turns it off).
    #[serde(default)]
    pub jitter: Option<f64>,
}

/// The largest accepted `jitter`, in percentage points.
pub const MAX_JITTER: f64 = 50.0;

impl MetricUpdate {
    /// Checks the values; the message says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let values = [
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("cpuLoad", self.cpu_load),
            ("jitter", self.jitter),
        ];
        for (name, value) in values {
            if let Some(v) = value
                && (!v.is_finite() || v < 0.0)
            {
                return Err(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        if values.iter().all(|(_, v)| v.is_none()) {
            return Err("set at least one of cpu, memory, cpuLoad, jitter".into());
        }
        if self.cpu.is_some() && self.cpu_load.is_some() {
            return Err("set cpu or cpuLoad, not both".into());
        }
        if self.pod.is_some() && self.cpu_load.is_some() {
            return Err(
                "cpuLoad is shared by a deployment's pods; it cannot be set for one pod".into(),
            );
        }
        if self.jitter.is_some_and(|j| j > MAX_JITTER) {
            return Err(format!(
                "jitter must be at most {MAX_JITTER} percentage points"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    cpu: Option<f64>,
    memory: Option<f64>,
    cpu_load: Option<f64>,
    jitter: Option<f64>,
}

/// Metric overrides on top of the baseline values.
#[derive(Debug, Clone, Default)]
pub struct MetricsState {
    baseline_cpu: f64,
    baseline_memory: f64,
    by_deployment: BTreeMap<(String, String), Usage>,
    by_pod: BTreeMap<(String, String), Usage>,
}

/// The deployment that controls a pod (through its replicaset), if any.
pub fn deployment_of_pod(store: &Store, pod: &Value) -> Option<String> {
    let ns = object::namespace(pod);
    let rs_uid = object::controller_uid(pod)?;
    let rs = store
        .list(Resource::ReplicaSet, Some(ns))
        .into_iter()
        .find(|rs| object::uid(rs) == rs_uid)?;
    let deploy_uid = object::controller_uid(rs)?;
    store
        .list(Resource::Deployment, Some(ns))
        .into_iter()
        .find(|d| object::uid(d) == deploy_uid)
        .map(|d| object::name(d).to_owned())
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl MetricsState {
    /// Metrics with the given baseline percentages.
    pub fn new(baseline_cpu: f64, baseline_memory: f64) -> Self {
        MetricsState {
            baseline_cpu,
            baseline_memory,
            ..MetricsState::default()
        }
    }

    /// Applies a validated update; the caller has checked that the targets exist.
    pub fn apply(&mut self, update: &MetricUpdate, pods_of_deployment: &[String]) {
        let key_ns = update.namespace.clone();
        match &update.pod {
            Some(pod) => {
                let entry = self.by_pod.entry((key_ns, pod.clone())).or_default();
                entry.cpu = update.cpu.or(entry.cpu);
                entry.memory = update.memory.or(entry.memory);
                entry.jitter = update.jitter.or(entry.jitter);
            }
            None => {
                let entry = self
                    .by_deployment
                    .entry((key_ns.clone(), update.deployment.clone()))
                    .or_default();
                // A fixed value and a shared load are two ways to say the same thing: the newer
                // one wins.
                if update.cpu.is_some() {
                    entry.cpu = update.cpu;
                    entry.cpu_load = None;
                }
                if update.cpu_load.is_some() {
                    entry.cpu_load = update.cpu_load;
                    entry.cpu = None;
                }
                entry.memory = update.memory.or(entry.memory);
                entry.jitter = update.jitter.or(entry.jitter);
                // A deployment-wide value wins over earlier per-pod values of the same metric.
                let sets_cpu = update.cpu.is_some() || update.cpu_load.is_some();
                for pod in pods_of_deployment {
                    if let Some(entry) = self.by_pod.get_mut(&(key_ns.clone(), pod.clone())) {
                        if sets_cpu {
                            entry.cpu = None;
                        }
                        if update.memory.is_some() {
                            entry.memory = None;
                        }
                        if update.jitter.is_some() {
                            entry.jitter = None;
                        }
                    }
                }
            }
        }
    }

    /// Forgets every override.
    pub fn reset(&mut self) {
        self.by_deployment.clear();
        self.by_pod.clear();
    }

    /// The (cpu, memory) percentages of one pod before jitter, given how many Ready pods its
    /// deployment has (they share a `cpuLoad`; a pod that is not Ready serves none of it).
    pub fn usage(
        &self,
        namespace: &str,
        deployment: &str,
        pod: &str,
        ready: bool,
        ready_pods: usize,
    ) -> (f64, f64) {
        let (pod_usage, deploy_usage) = self.overrides(namespace, deployment, pod);
        let shared = deploy_usage.cpu_load.map(|load| {
            if ready && ready_pods > 0 {
                load / ready_pods as f64
            } else {
                0.0
            }
        });
        (
            pod_usage
                .cpu
                .or(shared)
                .or(deploy_usage.cpu)
                .unwrap_or(self.baseline_cpu),
            pod_usage
                .memory
                .or(deploy_usage.memory)
                .unwrap_or(self.baseline_memory),
        )
    }

    /// The noise amplitude of one pod (0 when none was set).
    fn jitter(&self, namespace: &str, deployment: &str, pod: &str) -> f64 {
        let (pod_usage, deploy_usage) = self.overrides(namespace, deployment, pod);
        pod_usage.jitter.or(deploy_usage.jitter).unwrap_or(0.0)
    }

    fn overrides(&self, namespace: &str, deployment: &str, pod: &str) -> (Usage, Usage) {
        (
            self.by_pod
                .get(&(namespace.to_owned(), pod.to_owned()))
                .copied()
                .unwrap_or_default(),
            self.by_deployment
                .get(&(namespace.to_owned(), deployment.to_owned()))
                .copied()
                .unwrap_or_default(),
        )
    }

    /// Renders the Prometheus text exposition for every pod in the store.
    pub fn render(&self, store: &Store) -> String {
        let pods: Vec<(&Value, String, bool)> = store
            .list(Resource::Pod, None)
            .into_iter()
            .map(|pod| {
                let deployment = deployment_of_pod(store, pod).unwrap_or_default();
                (pod, deployment, crate::controller::pod_is_ready(pod))
            })
            .collect();
        let mut ready_pods: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (pod, deployment, ready) in &pods {
            if *ready {
                *ready_pods
                    .entry((object::namespace(pod), deployment.as_str()))
                    .or_default() += 1;
            }
        }
        let mut rng = rand::rng();
        let mut rows = Vec::with_capacity(pods.len());
        for (pod, deployment, ready) in &pods {
            let ns = object::namespace(pod);
            let name = object::name(pod);
            let ready_count = ready_pods
                .get(&(ns, deployment.as_str()))
                .copied()
                .unwrap_or(0);
            let (cpu, memory) = self.usage(ns, deployment, name, *ready, ready_count);
            let jitter = self.jitter(ns, deployment, name);
            let mut noisy = |v: f64| {
                if jitter > 0.0 {
                    (v + rng.random_range(-jitter..=jitter)).max(0.0)
                } else {
                    v
                }
            };
            let (cpu, memory) = (noisy(cpu), noisy(memory));
            rows.push((ns, deployment.as_str(), name, cpu, memory));
        }
        let mut out = String::new();
        let families = [
            (
                "kube_sim_pod_cpu_usage_percent",
                "CPU usage of the pod in percent of its limit (simulated).",
                true,
            ),
            (
                "kube_sim_pod_memory_usage_percent",
                "Memory usage of the pod in percent of its limit (simulated).",
                false,
            ),
        ];
        for (metric, help, is_cpu) in families {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} gauge");
            for (ns, deployment, pod, cpu, memory) in &rows {
                let value = if is_cpu { cpu } else { memory };
                let _ = writeln!(
                    out,
                    "{metric}{{namespace=\"{}\",deployment=\"{}\",pod=\"{}\"}} {value}",
                    escape(ns),
                    escape(deployment),
                    escape(pod)
                );
            }
        }
        out
    }
}

//! Per-pod CPU and memory gauges in Prometheus text format, settable for demos and tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object;
use crate::resource::Resource;
use crate::store::Store;

/// A request to set the CPU and/or memory usage of one pod, or of every pod of a deployment
/// (current and future) when `pod` is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    cpu: Option<f64>,
    memory: Option<f64>,
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

    /// Applies an update; the caller has checked that the targets exist.
    pub fn apply(&mut self, update: &MetricUpdate, pods_of_deployment: &[String]) {
        let key_ns = update.namespace.clone();
        match &update.pod {
            Some(pod) => {
                let entry = self.by_pod.entry((key_ns, pod.clone())).or_default();
                entry.cpu = update.cpu.or(entry.cpu);
                entry.memory = update.memory.or(entry.memory);
            }
            None => {
                let entry = self
                    .by_deployment
                    .entry((key_ns.clone(), update.deployment.clone()))
                    .or_default();
                entry.cpu = update.cpu.or(entry.cpu);
                entry.memory = update.memory.or(entry.memory);
                // A deployment-wide value wins over earlier per-pod values of the same metric.
                for pod in pods_of_deployment {
                    if let Some(entry) = self.by_pod.get_mut(&(key_ns.clone(), pod.clone())) {
                        if update.cpu.is_some() {
                            entry.cpu = None;
                        }
                        if update.memory.is_some() {
                            entry.memory = None;
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

    /// The (cpu, memory) percentages of one pod.
    pub fn usage(&self, namespace: &str, deployment: &str, pod: &str) -> (f64, f64) {
        let pod_usage = self
            .by_pod
            .get(&(namespace.to_owned(), pod.to_owned()))
            .copied()
            .unwrap_or_default();
        let deploy_usage = self
            .by_deployment
            .get(&(namespace.to_owned(), deployment.to_owned()))
            .copied()
            .unwrap_or_default();
        (
            pod_usage
                .cpu
                .or(deploy_usage.cpu)
                .unwrap_or(self.baseline_cpu),
            pod_usage
                .memory
                .or(deploy_usage.memory)
                .unwrap_or(self.baseline_memory),
        )
    }

    /// Renders the Prometheus text exposition for every pod in the store.
    pub fn render(&self, store: &Store) -> String {
        let mut rows = Vec::new();
        for pod in store.list(Resource::Pod, None) {
            let ns = object::namespace(pod);
            let name = object::name(pod);
            let deployment = deployment_of_pod(store, pod).unwrap_or_default();
            let (cpu, memory) = self.usage(ns, &deployment, name);
            rows.push((ns.to_owned(), deployment, name.to_owned(), cpu, memory));
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

//! The one simulated node: its name and labels (what a `nodeSelector` can ask for), and what a
//! container of a given image does on it ([`Behaviour`]).

use std::collections::BTreeMap;

use serde_json::Value;

/// The one node every schedulable pod runs on.
pub const NODE_NAME: &str = "kube-sim-node";

/// What a container does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Behaviour {
    /// Runs, and is Ready at once.
    Runs,
    /// Exits with status 1 at start, again after every back-off: `CrashLoopBackOff`.
    Crash,
    /// Killed by the kernel for exceeding its memory limit (exit 137, `OOMKilled`), again after
    /// every back-off.
    Oom,
    /// Its image cannot be pulled: `ErrImagePull`, then `ImagePullBackOff`, alternately.
    Missing,
    /// Runs, but its readiness probe never passes.
    Unready,
}

impl Behaviour {
    /// What an image's tag says (`registry/app:crash` crash-loops); anything else runs.
    pub fn of_tag(image: &str) -> Behaviour {
        let tag = image
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or("", |(_, tag)| tag);
        match tag {
            "crash" => Behaviour::Crash,
            "oom" => Behaviour::Oom,
            "missing" => Behaviour::Missing,
            "unready" => Behaviour::Unready,
            _ => Behaviour::Runs,
        }
    }

    /// Whether the container exits again and again (crash or OOM kill).
    pub fn crashes(self) -> bool {
        matches!(self, Behaviour::Crash | Behaviour::Oom)
    }
}

/// Behaviours set through the admin API, by exact image reference; they win over the tag.
pub type ImageBehaviours = BTreeMap<String, Behaviour>;

/// The labels of the one node; a `nodeSelector` must be a subset of them.
pub const NODE_LABELS: [(&str, &str); 3] = [
    ("kubernetes.io/hostname", NODE_NAME),
    ("kubernetes.io/os", "linux"),
    ("kubernetes.io/arch", "amd64"),
];

/// Whether a pod spec fits the node.
pub fn schedulable(spec: &Value) -> bool {
    spec.get("nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|selector| {
            selector.iter().all(|(key, value)| {
                NODE_LABELS
                    .iter()
                    .any(|(k, v)| k == key && value.as_str() == Some(v))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tag_names_the_behaviour_and_a_registry_port_is_not_a_tag() {
        assert_eq!(Behaviour::of_tag("shop/api:crash"), Behaviour::Crash);
        assert_eq!(Behaviour::of_tag("api:oom"), Behaviour::Oom);
        assert_eq!(
            Behaviour::of_tag("ghcr.io/x/api:missing"),
            Behaviour::Missing
        );
        assert_eq!(Behaviour::of_tag("api:unready"), Behaviour::Unready);
        assert_eq!(Behaviour::of_tag("api:1.2.3"), Behaviour::Runs);
        assert_eq!(Behaviour::of_tag("localhost:5000/crash"), Behaviour::Runs);
        assert_eq!(Behaviour::of_tag("nginx"), Behaviour::Runs);
    }

    #[test]
    fn a_node_selector_fits_only_labels_the_node_has() {
        assert!(schedulable(&json!({})));
        assert!(schedulable(
            &json!({"nodeSelector": {"kubernetes.io/os": "linux"}})
        ));
        assert!(!schedulable(&json!({"nodeSelector": {"disktype": "ssd"}})));
        assert!(!schedulable(
            &json!({"nodeSelector": {"kubernetes.io/os": "windows"}})
        ));
    }
}

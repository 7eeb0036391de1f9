//! Initial cluster state from YAML, so the demo starts with realistic workloads.
//!
//! ```yaml
//! namespaces:
//!   - name: production
//!     deployments:
//!       - name: api
//!         replicas: 3
//!         image: ghcr.io/example/api:1.4.2
//!         labels: { app: api, tier: backend }
//!   - name: default
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The seed document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Namespaces to create, each with its deployments.
    #[serde(default)]
    pub namespaces: Vec<SeedNamespace>,
}

/// A namespace to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedNamespace {
    /// Namespace name.
    pub name: String,
    /// Namespace labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Deployments in it.
    #[serde(default)]
    pub deployments: Vec<SeedDeployment>,
}

/// A deployment to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDeployment {
    /// Deployment name.
    pub name: String,
    /// Replica count (1 when absent).
    #[serde(default = "one")]
    pub replicas: i64,
    /// Container image.
    pub image: String,
    /// Labels of the deployment, its selector and its pods (`app: <name>` when empty).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Container name (the deployment name when absent).
    #[serde(default)]
    pub container: Option<String>,
    /// Container port, if any.
    #[serde(default)]
    pub port: Option<u16>,
    /// Deployment annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn one() -> i64 {
    1
}

/// Errors reading a seed file.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("failed to read seed file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The YAML does not match the seed format.
    #[error("invalid seed YAML: {0}")]
    Parse(#[from] serde_norway::Error),
}

impl Seed {
    /// Parses seed YAML.
    pub fn from_yaml(yaml: &str) -> Result<Seed, SeedError> {
        Ok(serde_norway::from_str(yaml)?)
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Seed::from_yaml(&text)
    }
}

impl SeedNamespace {
    /// The Namespace object.
    pub fn to_object(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": self.name, "labels": self.labels },
        })
    }
}

impl SeedDeployment {
    /// The Deployment object.
    pub fn to_object(&self, namespace: &str) -> Value {
        let labels = if self.labels.is_empty() {
            BTreeMap::from([("app".to_owned(), self.name.clone())])
        } else {
            self.labels.clone()
        };
        let mut container = json!({
            "name": self.container.clone().unwrap_or_else(|| self.name.clone()),
            "image": self.image,
        });
        if let (Some(port), Some(map)) = (self.port, container.as_object_mut()) {
            map.insert(
                "ports".into(),
                json!([{"containerPort": port, "protocol": "TCP"}]),
            );
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "labels": labels,
                "annotations": self.annotations,
            },
            "spec": {
                "replicas": self.replicas,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": { "containers": [container] },
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_demo_seed_parses() {
        let seed = Seed::from_yaml(include_str!("../seed/demo.yaml")).unwrap();
        let production = seed
            .namespaces
            .iter()
            .find(|n| n.name == "production")
            .unwrap();
        assert!(
            production
                .deployments
                .iter()
                .any(|d| d.name == "api" && d.replicas == 3)
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(Seed::from_yaml("namespaces: [{name: a, bogus: 1}]").is_err());
    }
}

//! The resource types kube-sim serves and their API metadata.

/// A resource type served by kube-sim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `core/v1` namespaces (cluster scoped).
    Namespace,
    /// `core/v1` pods.
    Pod,
    /// `apps/v1` deployments.
    Deployment,
    /// `apps/v1` replicasets.
    ReplicaSet,
    /// `coordination.k8s.io/v1` leases (leader election).
    Lease,
    /// `core/v1` events, written by the simulated kubelet, scheduler and deployment controller.
    Event,
}

impl Resource {
    /// Every served resource type.
    pub const ALL: [Resource; 6] = [
        Resource::Namespace,
        Resource::Pod,
        Resource::Deployment,
        Resource::ReplicaSet,
        Resource::Lease,
        Resource::Event,
    ];

    /// Lower-case plural name used in URLs (`pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Namespace => "namespaces",
            Resource::Pod => "pods",
            Resource::Deployment => "deployments",
            Resource::ReplicaSet => "replicasets",
            Resource::Lease => "leases",
            Resource::Event => "events",
        }
    }

    /// Lower-case singular name (`pod`).
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Namespace => "namespace",
            Resource::Pod => "pod",
            Resource::Deployment => "deployment",
            Resource::ReplicaSet => "replicaset",
            Resource::Lease => "lease",
            Resource::Event => "event",
        }
    }

    /// The object kind (`Pod`).
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Namespace => "Namespace",
            Resource::Pod => "Pod",
            Resource::Deployment => "Deployment",
            Resource::ReplicaSet => "ReplicaSet",
            Resource::Lease => "Lease",
            Resource::Event => "Event",
        }
    }

    /// API group, empty for the core group.
    pub fn group(self) -> &'static str {
        match self {
            Resource::Namespace | Resource::Pod | Resource::Event => "",
            Resource::Deployment | Resource::ReplicaSet => "apps",
            Resource::Lease => "coordination.k8s.io",
        }
    }

    /// `apiVersion` of objects of this type.
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Namespace | Resource::Pod | Resource::Event => "v1",
            Resource::Deployment | Resource::ReplicaSet => "apps/v1",
            Resource::Lease => "coordination.k8s.io/v1",
        }
    }

    /// Whether objects live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespace)
    }

    /// Kind of a list of this type (`PodList`).
    pub fn list_kind(self) -> String {
        format!("{}List", self.kind())
    }

    /// Resource name qualified by group, as the API server writes it in messages
    /// (`pods`, `deployments.apps`).
    pub fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_owned()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }

    /// Kind qualified by group, as used in `Invalid` messages (`Deployment.apps`).
    pub fn qualified_kind(self) -> String {
        if self.group().is_empty() {
            self.kind().to_owned()
        } else {
            format!("{}.{}", self.kind(), self.group())
        }
    }

    /// Short names kubectl accepts (`po`, `deploy`).
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Namespace => &["ns"],
            Resource::Pod => &["po"],
            Resource::Deployment => &["deploy"],
            Resource::ReplicaSet => &["rs"],
            Resource::Lease => &[],
            Resource::Event => &["ev"],
        }
    }

    /// Finds the resource served under `group` with the given plural name.
    pub fn from_group_plural(group: &str, plural: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.group() == group && r.plural() == plural)
    }
}

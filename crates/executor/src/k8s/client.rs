//! The Kubernetes client: built lazily (the API server may be unreachable at start-up), every
//! call bounded by `K8S_REQUEST_TIMEOUT_MS`, counted and timed, and its errors mapped to the
//! messages.

use std::{future::Future, time::Duration};

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;

use crate::{config::KubeSource, metrics::ExecutorMetrics};

/// A failed Kubernetes call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K8sError {
    /// The API answered with a `Status` error.
    #[error("Kubernetes API error {code}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// `Status.message`.
        message: String,
    },
    /// Transport failure (connection refused, TLS, DNS...) or an unusable client configuration.
    #[error("Kubernetes API unreachable: {0}")]
    Unreachable(String),
    /// The per-call timeout fired.
    #[error("Kubernetes API timeout after {0}ms")]
    Timeout(u128),
}

impl K8sError {
    /// Whether the API said 404.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code: 404, .. })
    }

    fn from_kube(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Self::Api {
                code: status.code,
                message: status.message,
            },
            other => Self::Unreachable(root_cause(&other)),
        }
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    text
}

/// Operation label of `executor_k8s_api_calls_total`.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// `get`.
    Get,
    /// `list`.
    List,
    /// `delete`.
    Delete,
    /// `patch`.
    Patch,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Patch => "patch",
        }
    }
}

/// A lazily built `kube::Client` with the executor's timeouts and metrics.
pub struct KubeClient {
    source: KubeSource,
    client: OnceCell<kube::Client>,
    timeout: Duration,
    metrics: ExecutorMetrics,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("source", &self.source)
            .field("connected", &self.client.initialized())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KubeClient {
    /// A client that connects on first use.
    #[must_use]
    pub fn new(source: KubeSource, timeout: Duration, metrics: ExecutorMetrics) -> Self {
        Self {
            source,
            client: OnceCell::new(),
            timeout,
            metrics,
        }
    }

    /// The per-call timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying client, built on first use (a failure is retried on the next call).
    pub async fn client(&self) -> Result<kube::Client, K8sError> {
        self.client
            .get_or_try_init(|| async {
                let config = match &self.source {
                    KubeSource::InCluster => kube::Config::incluster()
                        .map_err(|e| K8sError::Unreachable(root_cause(&e)))?,
                    KubeSource::Kubeconfig(path) => {
                        let kc = Kubeconfig::read_from(path).map_err(|e| {
                            K8sError::Unreachable(format!(
                                "cannot read kubeconfig {}: {}",
                                path.display(),
                                root_cause(&e)
                            ))
                        })?;
                        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                            .await
                            .map_err(|e| K8sError::Unreachable(root_cause(&e)))?
                    }
                };
                let mut config = config;
                config.connect_timeout = Some(self.timeout);
                config.read_timeout = Some(self.timeout);
                config.write_timeout = Some(self.timeout);
                kube::Client::try_from(config).map_err(|e| K8sError::Unreachable(root_cause(&e)))
            })
            .await
            .cloned()
    }

    /// Runs one API call with the timeout, counting and timing it.
    pub async fn call<T, F>(
        &self,
        op: Op,
        resource_type: &'static str,
        fut: F,
    ) -> Result<T, K8sError>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        let timer = self
            .metrics
            .k8s_api_duration
            .with_label_values(&[op.as_str(), resource_type])
            .start_timer();
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(K8sError::from_kube),
            Err(_) => Err(K8sError::Timeout(self.timeout.as_millis())),
        };
        timer.observe_duration();
        // A 404 is an answer, not an API failure of the executor.
        let status = match &result {
            Ok(_) => "success",
            Err(e) if e.is_not_found() => "success",
            Err(_) => "error",
        };
        self.metrics
            .k8s_api_calls
            .with_label_values(&[op.as_str(), resource_type, status])
            .inc();
        result
    }

    /// `GET /version` with a two-second timeout (readiness).
    pub async fn ping(&self) -> Result<(), K8sError> {
        let client = self.client().await?;
        match tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(K8sError::from_kube(e)),
            Err(_) => Err(K8sError::Timeout(2000)),
        }
    }
}

//! kube-sim is a small Kubernetes API server for Aegis tests and the local demo. It speaks the
//! real Kubernetes API over HTTP or HTTPS for the resources Aegis touches (namespaces, pods
//! and their logs, events, deployments with the `scale` subresource, replicasets, and the
//! leases of leader election), reading JSON and protobuf bodies and answering JSON. It runs a
//! tiny synchronous controller that keeps replicasets, revisions and pods the way a real cluster
//! does, and a kubelet whose containers behave as their image says (run, crash-loop, be
//! OOM-killed, fail to pull, fail readiness), writing the Events a real cluster writes. It adds
//! what tests need: fault injection, settable per-pod CPU/memory metrics, container log lines,
//! a request log and a generated kubeconfig. kubectl and kube-rs talk to it exactly as to a
//! real cluster.
//!
//! kubectl only sends credentials over TLS, so start with [`SimConfig::with_tls`] (binary:
//! `--tls`) when kubectl is the client; kube-rs sends the token over plain HTTP too.
//!
//! It is **not** a real cluster and must not be used as one: nothing runs, there is no watch
//! cache, no admission, no RBAC beyond one bearer token (and an optional read-only one that may
//! only get, list and watch, and write leases), no persistence, and only the fields
//! Aegis uses are validated. Never point production configuration at it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::StartError> {
//! use kube_sim::{KubeSim, SimConfig};
//! let sim = KubeSim::start(SimConfig::default()).await?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kube-sim.kubeconfig"))?;
//! println!("kube-sim at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod cluster;
pub mod config;
pub mod controller;
mod discovery;
pub mod error;
pub mod events;
pub mod faults;
pub mod http;
mod kubeconfig;
pub mod kubelet;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod object;
pub mod ops;
pub mod patch;
pub mod protobuf;
pub mod resource;
pub mod seed;
pub mod selector;
pub mod store;
mod table;
mod tls;
mod validation;
mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cluster::{Cluster, RecordedRequest};
pub use config::SimConfig;
pub use error::StatusError;
pub use faults::FaultRule;
pub use metrics::MetricUpdate;
pub use resource::Resource;
pub use seed::Seed;
pub use tls::TlsError;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port could not be bound.
    #[error("failed to bind kube-sim to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The seed could not be applied (for example an invalid deployment).
    #[error("failed to apply the seed: {0}")]
    Seed(StatusError),
    /// A fault rule in the config is invalid.
    #[error("invalid fault rule: {0}")]
    Fault(String),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Writing a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Entry point: `KubeSim::start(config).await`.
#[derive(Debug)]
pub struct KubeSim;

impl KubeSim {
    /// Binds the port, seeds the cluster and serves it in a background task until the returned
    /// [`RunningSim`] is shut down or dropped.
    pub async fn start(config: SimConfig) -> Result<RunningSim, StartError> {
        for rule in &config.faults {
            rule.validate().map_err(StartError::Fault)?;
        }
        let cluster = Cluster::new(config.baseline_cpu, config.baseline_memory);
        if let Some(seed) = &config.seed {
            cluster.apply_seed(seed).map_err(StartError::Seed)?;
        }
        cluster.set_faults(config.faults.clone());

        let bind_addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(bind_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: bind_addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: bind_addr,
            source,
        })?;
        // A wildcard bind is reached through loopback by local clients.
        let client_ip = if local.ip().is_unspecified() {
            match local.ip() {
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            }
        } else {
            local.ip()
        };
        let client_addr = SocketAddr::new(client_ip, local.port());
        let token = config
            .token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let tls = if config.tls {
            let mut hosts = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            hosts.push(client_ip.to_string());
            hosts.dedup();
            Some(tls::generate(&hosts)?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = http::AppState {
            cluster: cluster.clone(),
            token: Arc::from(token.as_str()),
            read_only_token: config.read_only_token.as_deref().map(Arc::from),
            server_address: Arc::from(client_addr.to_string().as_str()),
        };
        let app = http::router(state);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let task = match tls {
            None => tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "kube-sim server failed");
                }
            }),
            Some(tls) => tokio::spawn(serve_tls(listener, app, tls.acceptor, shutdown_rx)),
        };
        let kubelet = {
            let cluster = cluster.clone();
            let period = config.kubelet_period;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    cluster.tick();
                }
            })
        };
        tracing::info!(%local, scheme, "kube-sim listening");
        Ok(RunningSim {
            kubelet: Some(kubelet),
            addr: client_addr,
            base_url: format!("{scheme}://{client_addr}"),
            token,
            ca_pem,
            cluster,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        })
    }
}

async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    acceptor: tokio_rustls::TlsAcceptor,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let tls_stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    base_url: String,
    token: String,
    ca_pem: Option<String>,
    cluster: Cluster,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The kubelet's periodic work.
    kubelet: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// PEM of the CA to trust when serving HTTPS.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig (cluster, user and context `kube-sim`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.base_url, &self.token, self.ca_pem.as_deref())
    }

    /// A kubeconfig like [`RunningSim::kubeconfig_yaml`] for another token, such as the
    /// read-only one.
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        kubeconfig::render(&self.base_url, token, self.ca_pem.as_deref())
    }

    /// Writes the kubeconfig to `path` (mode 0600 on Unix, as it holds the token).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// In-process access to the cluster state, faults, metrics and request log.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Replaces every fault rule.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.cluster.set_faults(rules);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.cluster.clear_faults();
    }

    /// Sets pod CPU/memory percentages (see [`MetricUpdate`]).
    pub fn set_pod_metric(&self, update: &MetricUpdate) -> Result<(), StatusError> {
        self.cluster.set_pod_metric(update)
    }

    /// One object, if it exists.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.cluster.get(resource, namespace, name)
    }

    /// All objects of a type in a namespace, or everywhere with `None`.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> Vec<Value> {
        self.cluster.list(resource, namespace)
    }

    /// Stops accepting connections and waits (up to two seconds) for the server task.
    pub async fn shutdown(mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(std::time::Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

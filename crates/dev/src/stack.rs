//! Starting kube-sim and the three services as child processes, waiting for health, stopping
//! them with SIGTERM.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// What to start and where.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Directory holding the built binaries (`kube-sim`, `aegis-backend`, ...).
    pub bin_dir: PathBuf,
    /// Where logs, the kubeconfig and other run files go.
    pub run_dir: PathBuf,
    /// kube-sim seed file.
    pub seed: PathBuf,
    /// PostgreSQL URL without a database, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub postgres_base: String,
    /// Redis URL.
    pub redis_url: String,
    /// Prefer the documented ports (3000, 8000, 4000, 6443) when free.
    pub preferred_ports: bool,
    /// Extra variables per service name (`backend`, `ai-engine`, `executor`, `kube-sim`).
    pub extra_env: BTreeMap<String, Vec<(String, String)>>,
    /// Run the ai-engine's Prometheus feed against the Prometheus of
    /// [`Stack::start_prometheus`] (start that one too, or the feed finds nothing).
    pub feed: Option<FeedOptions>,
    /// Run the ai-engine's Kubernetes watcher over `default` and `production`, with its own
    /// read-only kube-sim token (its Lease in `default`).
    pub watcher: bool,
    /// Serve kube-sim over HTTPS with a generated CA (in the kubeconfig), as a real API server
    /// does: kubectl sends its token only over HTTPS.
    pub kube_tls: bool,
}

/// The ai-engine feed's settings for a stack (its `FEED_*` variables).
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// `FEED_INTERVAL_SECONDS`.
    pub interval_seconds: u64,
    /// `FEED_LOOKBACK_MINUTES` (fractions allowed).
    pub lookback_minutes: f64,
    /// `FEED_STEP`.
    pub step: String,
    /// The `FEED_QUERIES_FILE` contents (YAML).
    pub queries: String,
}

/// Random per-run secrets shared between the services.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// backend ↔ executor HMAC key.
    pub hmac: String,
    /// Service API key (ai-engine → backend, backend → executor reads).
    pub service_key: String,
    /// ai-engine `API_KEY`.
    pub ai_key: String,
    /// Executor `AUDIT_API_TOKEN`.
    pub audit_token: String,
    /// kube-sim bearer token.
    pub kube_token: String,
    /// kube-sim's read-only token: the Kubernetes watcher's identity.
    pub watcher_token: String,
    /// Bootstrap admin password.
    pub admin_password: String,
}

impl Secrets {
    fn random() -> Self {
        let r = || hex::encode(rand::random::<[u8; 24]>());
        Self {
            hmac: r(),
            service_key: r(),
            ai_key: r(),
            audit_token: r(),
            kube_token: r(),
            watcher_token: r(),
            admin_password: format!("Admin-{}", &r()[..16]),
        }
    }
}

/// One running child.
#[derive(Debug)]
struct Managed {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// The running stack.
#[derive(Debug)]
pub struct Stack {
    children: Vec<Managed>,
    /// Base URLs by name: `kube-sim`, `backend`, `ai-engine`, `executor`.
    pub urls: BTreeMap<&'static str, String>,
    /// kubeconfig written by kube-sim.
    pub kubeconfig: PathBuf,
    /// The PEM of kube-sim's CA when it serves HTTPS (from its kubeconfig).
    pub kube_ca_pem: Option<String>,
    /// The run's secrets.
    pub secrets: Secrets,
    /// Where logs are.
    pub run_dir: PathBuf,
    /// The port [`Stack::start_prometheus`] listens on (reserved at start, so the feed knows it).
    prometheus_port: u16,
}

fn free_port(preferred: u16, use_preferred: bool) -> anyhow::Result<u16> {
    if use_preferred && TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return Ok(preferred);
    }
    aegis_common::server::unused_port().context("no free port")
}

impl Stack {
    /// Starts kube-sim, the executor, the ai-engine and the backend, in that order, each
    /// waited for until healthy.
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.run_dir)
            .with_context(|| format!("cannot create {}", opts.run_dir.display()))?;
        let secrets = Secrets::random();
        let kube_port = free_port(6443, opts.preferred_ports)?;
        let executor_port = free_port(4000, opts.preferred_ports)?;
        let ai_port = free_port(8000, opts.preferred_ports)?;
        let backend_port = free_port(3000, opts.preferred_ports)?;
        let prometheus_port = free_port(9090, opts.preferred_ports)?;
        let url = |p: u16| format!("http://127.0.0.1:{p}");
        let kubeconfig = opts.run_dir.join("kubeconfig.yaml");
        let mut stack = Self {
            children: Vec::new(),
            urls: BTreeMap::new(),
            kubeconfig: kubeconfig.clone(),
            kube_ca_pem: None,
            secrets: secrets.clone(),
            run_dir: opts.run_dir.clone(),
            prometheus_port,
        };
        let kube_url = if opts.kube_tls {
            format!("https://127.0.0.1:{kube_port}")
        } else {
            url(kube_port)
        };
        stack.urls.insert("kube-sim", kube_url.clone());
        stack.urls.insert("executor", url(executor_port));
        stack.urls.insert("ai-engine", url(ai_port));
        stack.urls.insert("backend", url(backend_port));

        let db = |name: &str| format!("{}/{name}", opts.postgres_base.trim_end_matches('/'));
        let common = |port: u16| -> Vec<(String, String)> {
            vec![
                ("APP_ENV".into(), "development".into()),
                ("HOST".into(), "127.0.0.1".into()),
                ("PORT".into(), port.to_string()),
                ("LOG_LEVEL".into(), "info".into()),
            ]
        };

        let mut kube_env = vec![
            ("KUBE_SIM_BIND".to_owned(), "127.0.0.1".to_owned()),
            ("KUBE_SIM_PORT".into(), kube_port.to_string()),
            ("KUBE_SIM_TOKEN".into(), secrets.kube_token.clone()),
            (
                "KUBE_SIM_READ_ONLY_TOKEN".into(),
                secrets.watcher_token.clone(),
            ),
            ("KUBE_SIM_SEED".into(), opts.seed.display().to_string()),
            (
                "KUBE_SIM_KUBECONFIG_OUT".into(),
                kubeconfig.display().to_string(),
            ),
            ("KUBE_SIM_TLS".into(), opts.kube_tls.to_string()),
        ];
        kube_env.extend(extra(&opts, "kube-sim"));
        stack
            .spawn(
                &opts,
                "kube-sim",
                "kube-sim",
                kube_env,
                &format!("{kube_url}/healthz"),
            )
            .await?;

        let mut executor_env = common(executor_port);
        executor_env.extend([
            ("DATABASE_URL".into(), db("aegis_executor")),
            ("EXECUTOR_HMAC_SECRET".into(), secrets.hmac.clone()),
            ("KUBECONFIG_PATH".into(), kubeconfig.display().to_string()),
            ("ALLOWED_NAMESPACES".into(), "default,production".into()),
            ("SERVICE_API_KEYS".into(), secrets.service_key.clone()),
            ("AUDIT_API_AUTH".into(), "token".into()),
            ("AUDIT_API_TOKEN".into(), secrets.audit_token.clone()),
        ]);
        executor_env.extend(extra(&opts, "executor"));
        stack
            .spawn(
                &opts,
                "executor",
                "aegis-executor",
                executor_env,
                &format!("{}/health/ping", url(executor_port)),
            )
            .await?;

        let mut ai_env = common(ai_port);
        ai_env.extend([
            ("DATABASE_URL".into(), db("aegis_ai")),
            ("API_KEY".into(), secrets.ai_key.clone()),
            ("ADMIN_API_KEY".into(), secrets.ai_key.clone()),
            ("BACKEND_URL".into(), url(backend_port)),
            ("BACKEND_API_KEY".into(), secrets.service_key.clone()),
        ]);
        if opts.watcher {
            let watcher_kubeconfig = watcher_kubeconfig(&kubeconfig, &opts.run_dir, &secrets)?;
            ai_env.extend([
                ("WATCHER_ENABLED".into(), "true".into()),
                (
                    "WATCHER_KUBECONFIG".into(),
                    watcher_kubeconfig.display().to_string(),
                ),
                ("WATCH_NAMESPACES".into(), "default,production".into()),
                ("WATCHER_LEASE_NAMESPACE".into(), "default".into()),
                ("WATCHER_NOT_READY_SECONDS".into(), "10".into()),
            ]);
        }
        if let Some(feed) = &opts.feed {
            let queries = opts.run_dir.join("feed-queries.yaml");
            std::fs::write(&queries, &feed.queries)
                .with_context(|| format!("cannot write {}", queries.display()))?;
            ai_env.extend([
                ("FEED_ENABLED".into(), "true".into()),
                ("PROMETHEUS_URL".into(), url(prometheus_port)),
                (
                    "FEED_INTERVAL_SECONDS".into(),
                    feed.interval_seconds.to_string(),
                ),
                (
                    "FEED_LOOKBACK_MINUTES".into(),
                    feed.lookback_minutes.to_string(),
                ),
                ("FEED_STEP".into(), feed.step.clone()),
                ("FEED_QUERIES_FILE".into(), queries.display().to_string()),
            ]);
        }
        ai_env.extend(extra(&opts, "ai-engine"));
        stack
            .spawn(
                &opts,
                "ai-engine",
                "aegis-ai-engine",
                ai_env,
                &format!("{}/ping", url(ai_port)),
            )
            .await?;

        let mut backend_env = common(backend_port);
        backend_env.extend([
            ("DATABASE_URL".into(), db("aegis_backend")),
            ("REDIS_URL".into(), opts.redis_url.clone()),
            ("JWT_SECRET".into(), hex::encode(rand::random::<[u8; 32]>())),
            (
                "JWT_REFRESH_SECRET".into(),
                hex::encode(rand::random::<[u8; 32]>()),
            ),
            ("AI_ENGINE_URL".into(), url(ai_port)),
            ("AI_ENGINE_API_KEY".into(), secrets.ai_key.clone()),
            ("EXECUTOR_URL".into(), url(executor_port)),
            ("EXECUTOR_API_KEY".into(), secrets.service_key.clone()),
            ("EXECUTOR_HMAC_SECRET".into(), secrets.hmac.clone()),
            ("EXECUTOR_AUDIT_TOKEN".into(), secrets.audit_token.clone()),
            ("SERVICE_API_KEYS".into(), secrets.service_key.clone()),
            ("ADMIN_EMAIL".into(), "admin@aegis.local".into()),
            ("ADMIN_PASSWORD".into(), secrets.admin_password.clone()),
            ("REMEDIATION_MODE".into(), "auto".into()),
        ]);
        backend_env.extend(extra(&opts, "backend"));
        stack
            .spawn(
                &opts,
                "backend",
                "aegis-backend",
                backend_env,
                &format!("{}/health/ping", url(backend_port)),
            )
            .await?;
        Ok(stack)
    }

    async fn spawn(
        &mut self,
        opts: &StackOptions,
        name: &'static str,
        binary: &str,
        env: Vec<(String, String)>,
        health_url: &str,
    ) -> anyhow::Result<()> {
        let path = opts.bin_dir.join(binary);
        if !path.exists() {
            bail!(
                "{} is not built (expected {}); run scripts/demo.sh, which builds it",
                binary,
                path.display()
            );
        }
        self.spawn_path(name, &path, &[], env, health_url).await
    }

    async fn spawn_path(
        &mut self,
        name: &'static str,
        path: &Path,
        args: &[String],
        env: Vec<(String, String)>,
        health_url: &str,
    ) -> anyhow::Result<()> {
        let log = self.run_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(path)
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", path.display()))?;
        self.children.push(Managed { name, child, log });
        self.wait_healthy(name, health_url).await
    }

    async fn wait_healthy(&mut self, name: &'static str, url: &str) -> anyhow::Result<()> {
        let mut client = self.http_client(Duration::from_secs(2))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // kube-sim writes its kubeconfig, with the CA its HTTPS needs, as it starts.
            if url.starts_with("https://")
                && self.kube_ca_pem.is_none()
                && let Some(pem) = kube_ca_of(&self.kubeconfig)
            {
                self.kube_ca_pem = Some(pem);
                match self.http_client(Duration::from_secs(2)) {
                    Ok(trusting) => client = trusting,
                    // Not a certificate after all: read the kubeconfig again next time.
                    Err(_) => self.kube_ca_pem = None,
                }
            }
            // A starting service already answers liveness (`{"status":"starting"}`); it is
            // healthy once its own router answers.
            if let Ok(res) = client.get(url).send().await
                && res.status().is_success()
                && res
                    .text()
                    .await
                    .is_ok_and(|body| !body.contains("\"starting\""))
            {
                return Ok(());
            }
            if let Some(m) = self.children.iter_mut().find(|m| m.name == name)
                && let Some(status) = m.child.try_wait()?
            {
                bail!(
                    "{name} exited ({status}) before becoming healthy; last log lines:\n{}",
                    tail(&m.log, 15)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not become healthy at {url} within 60 s; see {}",
                    self.log_of(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An HTTP client for the stack's URLs, trusting kube-sim's CA when it serves HTTPS.
    pub fn http_client(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(pem) = &self.kube_ca_pem {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(pem.as_bytes())
                    .context("kube-sim's CA is not a PEM certificate")?,
            );
        }
        Ok(builder.build()?)
    }

    fn log_of(&self, name: &str) -> String {
        self.children
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.log.display().to_string())
            .unwrap_or_default()
    }

    /// The last `n` log lines of a child.
    #[must_use]
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        self.children
            .iter()
            .find(|m| m.name == name)
            .map(|m| tail(&m.log, n))
            .unwrap_or_default()
    }

    /// Starts a real Prometheus scraping kube-sim and the three services every second, when
    /// one is installed (`PROMETHEUS_BIN`, else `prometheus` on the `PATH`); its URL, or `None`
    /// when there is none.
    pub async fn start_prometheus(&mut self) -> anyhow::Result<Option<String>> {
        let Some(binary) = prometheus_binary() else {
            return Ok(None);
        };
        let port = self.prometheus_port;
        let ca_file = self.run_dir.join("kube-sim-ca.pem");
        if let Some(pem) = &self.kube_ca_pem {
            std::fs::write(&ca_file, pem)
                .with_context(|| format!("cannot write {}", ca_file.display()))?;
        }
        let jobs: String = ["kube-sim", "backend", "ai-engine", "executor"]
            .iter()
            .map(|name| {
                let url = self.urls[name].trim_end_matches('/');
                let (scheme, host) = url.split_once("://").unwrap_or(("http", url));
                let tls = if scheme == "https" {
                    format!(
                        "    scheme: https\n    tls_config:\n      ca_file: '{}'\n",
                        ca_file.display()
                    )
                } else {
                    String::new()
                };
                format!(
                    "  - job_name: aegis-{name}\n{tls}    static_configs:\n      - targets: ['{host}']\n"
                )
            })
            .collect();
        let config = self.run_dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
            ),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let args = vec![
            format!("--config.file={}", config.display()),
            format!(
                "--storage.tsdb.path={}",
                self.run_dir.join("prometheus-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        self.spawn_path(
            "prometheus",
            &binary,
            &args,
            Vec::new(),
            &format!("{url}/-/ready"),
        )
        .await?;
        self.urls.insert("prometheus", url.clone());
        Ok(Some(url))
    }

    /// Process ids of the running children by name (`kube-sim`, `executor`, `ai-engine`,
    /// `backend`), e.g. for reading their CPU time and memory from `/proc`.
    #[must_use]
    pub fn pids(&self) -> BTreeMap<&'static str, u32> {
        self.children
            .iter()
            .filter_map(|m| m.child.id().map(|pid| (m.name, pid)))
            .collect()
    }

    /// Sends SIGTERM to every child (newest first) and waits up to 10 s each.
    pub async fn stop(mut self) {
        while let Some(mut m) = self.children.pop() {
            if let Some(pid) = m.child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), m.child.wait())
                .await
                .is_err()
            {
                let _ = m.child.kill().await;
            }
        }
    }
}

/// Whether [`Stack::start_prometheus`] finds a Prometheus to start.
#[must_use]
pub fn prometheus_installed() -> bool {
    prometheus_binary().is_some()
}

/// `PROMETHEUS_BIN`, else `prometheus` on the `PATH`.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// The watcher's kubeconfig: kube-sim's, with the read-only token instead of the full one,
/// readable by its owner only.
fn watcher_kubeconfig(admin: &Path, run_dir: &Path, secrets: &Secrets) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(admin)
        .with_context(|| format!("cannot read {}", admin.display()))?;
    anyhow::ensure!(
        text.contains(&secrets.kube_token),
        "kube-sim's kubeconfig does not hold its token"
    );
    let path = run_dir.join("watcher-kubeconfig.yaml");
    std::fs::write(
        &path,
        text.replace(&secrets.kube_token, &secrets.watcher_token),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path)
}

/// The CA of a kubeconfig's cluster (`certificate-authority-data`), as PEM; `None` until the
/// file holds a whole certificate (kube-sim may be writing it while this reads).
fn kube_ca_of(kubeconfig: &Path) -> Option<String> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    String::from_utf8(pem)
        .ok()
        .filter(|pem| pem.trim_end().ends_with("-----END CERTIFICATE-----"))
}

fn extra(opts: &StackOptions, name: &str) -> Vec<(String, String)> {
    opts.extra_env.get(name).cloned().unwrap_or_default()
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

//! `aegis-dev [--keep]`: start the local Aegis stack and show it working.

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

use aegis_dev::{
    Stack, StackOptions,
    client::{ADMIN_EMAIL, Client},
    demo,
    notices::Notices,
    preflight::{self, DataTier},
};
use serde_json::Value;

const USAGE: &str = "usage: aegis-dev [--keep]\n\
  Starts kube-sim and the three Aegis services on loopback against the local PostgreSQL and\n\
  Redis, waits until they are healthy, then plays four incidents end to end (a CPU spike, a\n\
  crash-looping pod, a bad deploy rolled back after an approval, and the kill switch) and\n\
  prints their timelines. The demo's databases (aegis_demo_backend, aegis_demo_ai,\n\
  aegis_demo_executor) are recreated on every run.\n\
  --keep     stay up until Ctrl-C, and print how to log in, the URLs and a kubeconfig\n\
  -h, --help print this\n\
Environment: PGHOST/PGPORT (127.0.0.1:5432, user postgres, trust auth), REDIS_HOST/REDIS_PORT\n\
(127.0.0.1:6379), PROMETHEUS_BIN (default: prometheus on the PATH), AEGIS_BIN_DIR (directory\n\
of the built binaries; default: next to aegis-dev).";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut keep = false;
    for a in &args {
        match a.as_str() {
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("aegis-dev: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(keep).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\naegis-dev: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn run(keep: bool) -> anyhow::Result<()> {
    let tier = DataTier {
        pg_host: env_or("PGHOST", "127.0.0.1"),
        pg_port: env_or("PGPORT", "5432").parse()?,
        redis_host: env_or("REDIS_HOST", "127.0.0.1"),
        redis_port: env_or("REDIS_PORT", "6379").parse()?,
    };
    println!("Aegis local demo\n================\n");
    println!(
        "1. Checking the data tier (PostgreSQL {}:{}, Redis {}:{}) ...",
        tier.pg_host, tier.pg_port, tier.redis_host, tier.redis_port
    );
    preflight::check(&tier).await.map_err(anyhow::Error::msg)?;
    println!("   both answer.");

    let bin_dir = match std::env::var_os("AEGIS_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let stamp = chrono_stamp();
    let run_dir = bin_dir.join("aegis-dev-runs").join(&stamp);
    let postgres_base = format!("postgres://postgres@{}:{}", tier.pg_host, tier.pg_port);
    // Fresh databases every run, so an earlier run's incidents (and their cooldowns) never
    // change what this one shows; each service creates and migrates its own at start-up.
    let databases = preflight::reset_demo_databases(&postgres_base)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut extra_env = BTreeMap::new();
    for (service, database) in databases {
        let mut env = vec![(
            "DATABASE_URL".to_owned(),
            format!("{postgres_base}/{database}"),
        )];
        if service == "backend" {
            env.push((
                "REDIS_KEY_PREFIX".to_owned(),
                format!("aegis-demo:{stamp}:"),
            ));
            env.push((
                "REMEDIATION_VERIFY_DELAY_SECONDS".to_owned(),
                "5".to_owned(),
            ));
            // Scene 3 rolls back the api seconds after scene 1 scaled it; the default
            // five-minute cooldown per deployment would hold the rollback back.
            env.push(("REMEDIATION_COOLDOWN_SECONDS".to_owned(), "5".to_owned()));
            // The launcher follows its incidents by polling the API several times a second.
            env.push(("RATE_LIMIT_MAX".to_owned(), "10000".to_owned()));
        }
        if service == "ai-engine" {
            env.extend(
                demo::AI_ENGINE_ENV
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
        }
        extra_env.insert(service.to_owned(), env);
    }
    let opts = StackOptions {
        bin_dir,
        run_dir: run_dir.clone(),
        seed: repo.join("crates/kube-sim/seed/demo.yaml"),
        postgres_base,
        redis_url: format!("redis://{}:{}", tier.redis_host, tier.redis_port),
        preferred_ports: true,
        extra_env,
        feed: aegis_dev::stack::prometheus_installed().then(demo::feed),
        watcher: true,
        kube_tls: true,
    };
    println!(
        "2. Starting kube-sim, the executor, the ai-engine and the backend (logs in {}) ...",
        run_dir.display()
    );
    let mut stack = Stack::start(opts).await?;
    let client = Client::login(&stack).await?;
    demo::normal_load(&client).await?;
    match stack.start_prometheus().await {
        Ok(Some(_)) => {}
        Ok(None) => println!(
            "   (Prometheus is not installed; the demo runs without it: apt-get install prometheus)"
        ),
        Err(e) => println!("   (Prometheus did not start: {e:#}; the demo runs without it)"),
    }
    for (name, url) in &stack.urls {
        println!("   {name:<10} {url}");
    }
    println!("   kubeconfig {}", stack.kubeconfig.display());

    println!("\n3. The cluster Aegis manages (kube-sim):");
    if let Err(e) = show_cluster(&stack).await {
        println!("   (could not list deployments: {e})");
    }

    println!("\n4. Service health:");
    let http = reqwest::Client::new();
    for (name, path) in [
        ("backend", "/api/v1/health"),
        ("ai-engine", "/health"),
        ("executor", "/health"),
    ] {
        let url = format!("{}{}", stack.urls[name], path);
        let status = match http.get(&url).send().await {
            Ok(r) => r.status().to_string(),
            Err(e) => format!("unreachable: {e}"),
        };
        println!("   {name:<10} {path:<16} {status}");
    }

    let notices = Notices::start().await?;
    notices.subscribe(&client).await?;
    println!(
        "\n5. Incidents, end to end (REMEDIATION_MODE=auto); notifications go to a local receiver at {}:",
        notices.url()
    );
    if let Err(e) = demo::play(&stack, &client, &notices).await {
        println!("\n   The incident did not play out: {e:#}");
        println!("   Backend log tail:\n{}", stack.log_tail("backend", 20));
        stack.stop().await;
        return Err(e);
    }

    if keep {
        print_keep(&stack);
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("\nStopping ...");
    stack.stop().await;
    println!("Stopped cleanly.");
    Ok(())
}

/// What `--keep` leaves running, and how to use it: every line can be pasted as is.
fn print_keep(stack: &Stack) {
    let backend = &stack.urls["backend"];
    let password = &stack.secrets.admin_password;
    let bin = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("aegisctl")))
        .map_or_else(
            || "aegisctl".to_owned(),
            |p| shell_quote(&p.display().to_string()),
        );
    let kubeconfig = shell_quote(&stack.kubeconfig.display().to_string());
    let quoted_password = shell_quote(password);
    println!("\nThe stack is up; Ctrl-C stops it.\n");
    println!("   console    {backend}/console  (sign in as the admin below)\n");
    println!("   service    URL                       API reference                  metrics");
    for name in ["backend", "ai-engine", "executor"] {
        let url = &stack.urls[name];
        println!(
            "   {name:<10} {url:<25} {:<30} {url}/metrics",
            format!("{url}/docs")
        );
    }
    if let Some(prometheus) = stack.urls.get("prometheus") {
        println!("   prometheus {prometheus:<25} (graphs: {prometheus}/graph)");
    }
    println!("   kube-sim   {}", stack.urls["kube-sim"]);
    println!("\nAdmin login: {ADMIN_EMAIL} / {password}");
    println!("\nThe CLI (built next to this launcher):");
    println!(
        "   echo {quoted_password} | {bin} --server {backend} login --email {ADMIN_EMAIL} --password-stdin"
    );
    println!("   {bin} incidents list");
    println!("   {bin} incidents show <ID>");
    println!("   {bin} incidents follow");
    println!("   {bin} audit verify");
    println!("\nA token for curl:");
    println!("   export TOKEN=$({bin} token)");
    println!(
        "   curl -s {backend}/api/v1/remediation/incidents -H \"Authorization: Bearer $TOKEN\""
    );
    println!("Or without the CLI:");
    println!(
        "    export TOKEN=$(curl -s {backend}/api/v1/auth/login -H 'Content-Type: application/json' -d '{{\"email\":\"{ADMIN_EMAIL}\",\"password\":\"{password}\"}}' | sed -E 's/.*\"accessToken\":\"([^\"]+)\".*/\\1/')"
    );
    println!("\nThe cluster, with kubectl (kube-sim serves HTTPS; its CA is in the kubeconfig):");
    println!("   kubectl --kubeconfig {kubeconfig} get deployments,pods -A");
    println!("\nLogs: {}", stack.run_dir.display());
}

async fn show_cluster(stack: &Stack) -> anyhow::Result<()> {
    let url = format!("{}/apis/apps/v1/deployments", stack.urls["kube-sim"]);
    let list: Value = stack
        .http_client(std::time::Duration::from_secs(10))?
        .get(url)
        .bearer_auth(&stack.secrets.kube_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "   {:<12} {:<10} {:>5} {:>8}  REVISION",
        "NAMESPACE", "NAME", "READY", "REPLICAS"
    );
    for d in list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "   {:<12} {:<10} {:>5} {:>8}  {}",
            d["metadata"]["namespace"].as_str().unwrap_or("?"),
            d["metadata"]["name"].as_str().unwrap_or("?"),
            d["status"]["readyReplicas"].as_i64().unwrap_or(0),
            d["spec"]["replicas"].as_i64().unwrap_or(0),
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap_or("-"),
        );
    }
    Ok(())
}

/// `s` as one shell word: as is when it holds only safe characters, else single-quoted.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("run-{secs}")
}

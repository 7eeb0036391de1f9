//! `aegis-loadgen watch-latency`: how long after a pod's state changes in kube-sim the backend
//! has opened the incident, with the watcher's default watch settings.
//!
//! One sample per bench deployment, one at a time: a pod of the deployment is made to
//! crash-loop (kube-sim writes its status with three restarts at once), and the backend's
//! incident list is polled every 10 ms until the watcher's incident for that deployment
//! appears; the sample is the incident's `createdAt` minus the moment the change was made (one
//! machine, one clock). Each deployment is a new workload, so every sample is a new episode.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::args::{Args, read_state, state_str};

/// Runs the measurement and writes `{samples, p50_ms, p99_ms, max_ms}` to `--out`.
pub async fn run(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let state = read_state(&args.path("state")?)?;
    let out = args.path("out")?;
    let deployments = state["deployments"].as_u64().unwrap_or(1);
    let samples: u64 = args.get_or("samples", deployments.min(40))?;
    if samples == 0 || samples > deployments {
        bail!("--samples must be between 1 and the {deployments} bench deployments");
    }
    if state["watcher"] != true {
        bail!("the stack runs without the watcher: start it with --watcher 1");
    }
    let kube = state_str(&state, "/urls/kube-sim")?.to_owned();
    let kube_token = state_str(&state, "/secrets/kube_token")?.to_owned();
    let backend = state_str(&state, "/urls/backend")?.to_owned();
    let namespace = state_str(&state, "/namespace")?.to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let login: Value = http
        .post(format!("{backend}/api/v1/auth/login"))
        .json(&json!({
            "email": state_str(&state, "/secrets/admin_email")?,
            "password": state_str(&state, "/secrets/admin_password")?,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["accessToken"]
        .as_str()
        .context("login answer without accessToken")?
        .to_owned();

    let mut latencies_ms = Vec::new();
    for i in 0..samples {
        let deployment = crate::stack::deployment(usize::try_from(i)?);
        let pods: Value = http
            .get(format!(
                "{kube}/api/v1/namespaces/{namespace}/pods?labelSelector=app%3D{deployment}"
            ))
            .bearer_auth(&kube_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let pod = pods["items"][0]["metadata"]["name"]
            .as_str()
            .with_context(|| format!("{deployment} has no pod"))?
            .to_owned();
        let changed = Utc::now();
        http.post(format!("{kube}/_sim/crashloop"))
            .bearer_auth(&kube_token)
            .json(&json!({"namespace": namespace, "pod": pod, "restarts": 3}))
            .send()
            .await?
            .error_for_status()?;
        let deadline = changed + chrono::Duration::seconds(30);
        let opened = loop {
            let list: Value = http
                .get(format!(
                    "{backend}/api/v1/remediation/incidents?namespace={namespace}&limit=20"
                ))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let found = list.as_array().and_then(|items| {
                items
                    .iter()
                    .find(|i| i["source"] == "kubernetes" && i["deployment"] == deployment.as_str())
            });
            if let Some(incident) = found {
                break incident["createdAt"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .context("incident without createdAt")?;
            }
            if Utc::now() > deadline {
                bail!("no incident for {deployment} within 30 s of its pod's crash");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let ms = (opened - changed).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        eprintln!("  {deployment}: incident opened {ms:.0} ms after the pod's change");
        latencies_ms.push(ms);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let rank = ((q * latencies_ms.len() as f64).ceil() as usize).clamp(1, latencies_ms.len());
        latencies_ms[rank - 1]
    };
    let report = json!({
        "scenario": "watch-latency",
        "samples": latencies_ms.len(),
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": latencies_ms.last(),
        "min_ms": latencies_ms.first(),
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "watch-latency: {} samples, p50 {:.0} ms, p99 {:.0} ms (pod state change to incident opened)",
        latencies_ms.len(),
        pick(0.50),
        pick(0.99)
    );
    Ok(())
}

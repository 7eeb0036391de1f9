//! The scripted incident of `scripts/demo.sh` (spec README decision 6): a CPU spike on
//! `production/api`, then a crash-looping pod of `production/worker`, each followed through
//! signal → anomaly → policy decision → executor action → Kubernetes state → audit, printed as
//! a timeline a newcomer can read.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    Stack,
    client::{Client, cpu_signal, cpu_signal_from, crashloop_signal, prometheus_range},
};

/// The demo's own allow policies (contract 6: "the demo seeds one more allow policy").
#[must_use]
pub fn policies() -> Vec<Value> {
    vec![
        json!({
            "name": "Demo: scale the api on high CPU",
            "description": "Lets the loop scale production/api when its CPU stays at or above 80%",
            "type": "self_healing", "effect": "allow", "priority": 200,
            "conditions": {"metadata": {"namespace": "production", "cpuUsage": {"$gte": 80}}},
            "actions": ["scale_up"], "resources": ["service:api"], "isActive": true
        }),
        json!({
            "name": "Demo: restart crash-looping workers",
            "description": "Lets the loop restart a production/worker pod after three or more errors",
            "type": "self_healing", "effect": "allow", "priority": 200,
            "conditions": {"metadata": {"namespace": "production", "failureCount": {"$gte": 3}}},
            "actions": ["restart"], "resources": ["service:worker"], "isActive": true
        }),
    ]
}

/// What to wait for: every status that ends the loop's work on an incident.
const SETTLED: &[&str] = &[
    "resolved",
    "suppressed",
    "escalated",
    "failed",
    "rejected",
    "awaiting_approval",
];

/// Plays both scenes and prints their timelines.
pub async fn play(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    for policy in policies() {
        client.ensure_policy(&policy).await?;
    }
    println!(
        "   Allow policies for the demo: \"Demo: scale the api on high CPU\", \"Demo: restart crash-looping workers\"."
    );

    println!("\n   Scene 1: the api's CPU spikes");
    println!("   ------------------------------");
    let before = deployment_line(client, "api").await?;
    let prometheus = stack.urls.get("prometheus").cloned();
    if let Some(p) = &prometheus {
        println!(
            "   Prometheus scrapes kube-sim every second; a few seconds of normal load first ..."
        );
        wait_for_cpu(p, |v| v < 80.0, 5).await?;
    }
    client.set_cpu("production", "api", 96.0).await?;
    println!(
        "   kube-sim  production/api pods now report 96% CPU (kube_sim_pod_cpu_usage_percent)"
    );
    let signal = match &prometheus {
        Some(p) => {
            wait_for_cpu(p, |v| v >= 96.0, 5).await?;
            scraped_signal(p).await?
        }
        None => {
            println!(
                "   (Prometheus is not installed: the report below carries ten minutes of samples at 96%.)"
            );
            cpu_signal("production", "api", 96.0, 10)
        }
    };
    let accepted = client.signal(&signal).await?;
    println!(
        "   An anomaly report in the ai-engine feed's format (contract 4) goes to the backend."
    );
    let incident = follow(client, &accepted).await?;
    print_timeline(&incident);
    client.set_cpu("production", "api", 45.0).await?;
    print_state("api", &before, &deployment_line(client, "api").await?);
    print_audit(client, &incident).await?;

    println!("\n   Scene 2: a worker pod crash-loops");
    println!("   ---------------------------------");
    let pods = client.pods("production", "worker").await?;
    let victim = pods
        .first()
        .map(|p| p.0.clone())
        .context("worker has no pods")?;
    crash(stack, &victim).await?;
    let before = pods_line(client).await?;
    println!("   kube-sim  {victim} is in CrashLoopBackOff (5 restarts, not ready)");
    let accepted = client
        .signal(&crashloop_signal("production", "worker", &victim))
        .await?;
    println!("   A failure report in the ai-engine's format (contract 4) goes to the backend.");
    let incident = follow(client, &accepted).await?;
    print_timeline(&incident);
    print_state("worker", &before, &pods_line(client).await?);
    print_audit(client, &incident).await?;
    Ok(())
}

const API_CPU: &str = r#"avg by (namespace, deployment) (kube_sim_pod_cpu_usage_percent{namespace="production",deployment="api"})"#;

/// Waits (20 s at most) until Prometheus has recorded `samples` one-second scrapes of the api's
/// CPU in a row that satisfy `ok`.
async fn wait_for_cpu(
    prometheus: &str,
    ok: impl Fn(f64) -> bool,
    samples: usize,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let points = prometheus_range(prometheus, API_CPU, 30).await?;
        let run = points.iter().rev().take_while(|(_, v)| ok(*v)).count();
        if run >= samples {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "Prometheus did not record the expected CPU within 20 s (last points {:?})",
            points.iter().rev().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The report built from what Prometheus recorded (the feed's range query for the deployment).
async fn scraped_signal(prometheus: &str) -> anyhow::Result<Value> {
    let points = prometheus_range(prometheus, API_CPU, 60).await?;
    let high = points.iter().filter(|(_, v)| *v >= 80.0).count();
    println!(
        "   Prometheus recorded {} one-second samples of the api's average CPU, {high} of them at or above 80%, with:",
        points.len()
    );
    println!("     {API_CPU}");
    Ok(cpu_signal_from("production", "api", &points))
}

async fn crash(stack: &Stack, pod: &str) -> anyhow::Result<()> {
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/crashloop", stack.urls["kube-sim"]))
        .bearer_auth(&stack.secrets.kube_token)
        .json(&json!({"namespace": "production", "pod": pod}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "kube-sim refused the crash: {}",
        res.status()
    );
    Ok(())
}

/// Waits until the incident settles (verification included).
async fn follow(client: &Client, accepted: &Value) -> anyhow::Result<Value> {
    let id = accepted["incidentId"]
        .as_str()
        .context("signal answer without incidentId")?;
    println!(
        "   incident {id}, correlation id {} (also the trace id)",
        accepted["correlationId"].as_str().unwrap_or("-")
    );
    client.wait_for(id, SETTLED, Duration::from_secs(60)).await
}

fn time_of(event: &Value) -> &str {
    // `2026-11-25T10:00:01.234Z` → `10:00:01.234`
    event["at"]
        .as_str()
        .and_then(|t| t.split('T').nth(1))
        .map_or("", |t| t.trim_end_matches('Z'))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// One readable line per timeline step.
fn describe(incident: &Value, event: &Value) -> String {
    let d = &event["details"];
    match event["step"].as_str().unwrap_or_default() {
        "signal" => format!(
            "{} reported {} on {}/{}: score {}, severity {}, confidence {}, recommends {}",
            s(&d["source"]),
            s(&d["kind"]),
            s(&incident["namespace"]),
            s(&incident["deployment"]),
            s(&d["score"]),
            s(&d["severity"]),
            s(&d["confidence"]),
            s(&d["recommendedAction"]),
        ),
        "analysis" => format!(
            "ai-engine analysis ({}): recommends {}",
            s(&d["method"]),
            s(&d["recommendedAction"])
        ),
        "policy" => format!(
            "{} {} on {} ({}; decision {})",
            if d["allowed"] == true {
                "ALLOW"
            } else {
                "DENY"
            },
            s(&d["action"]),
            s(&d["resource"]),
            s(&d["reason"]),
            s(&d["decisionId"]),
        ),
        "execute" => format!(
            "{} {} (mode {}), signed request to the executor",
            s(&d["actionType"]),
            s(&d["actionParams"]),
            s(&d["mode"]),
        ),
        "outcome" if d["success"] == true => format!(
            "executor succeeded (audit row {}); verifying at {}",
            s(&d["auditId"]),
            s(&d["verifyAt"])
        ),
        "verify" => format!(
            "{}/{} replicas ready, {} repeat signal(s){}",
            s(&d["readyReplicas"]),
            s(&d["replicas"]),
            s(&d["repeatSignals"]),
            d["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        _ => d["reason"]
            .as_str()
            .map_or_else(|| d.to_string(), str::to_owned),
    }
}

fn print_timeline(incident: &Value) {
    println!("   Timeline:");
    for event in incident["timeline"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "     {}  {:<9} {:<10} {}",
            time_of(event),
            s(&event["step"]),
            s(&event["status"]),
            describe(incident, event)
        );
    }
    println!("   Outcome: incident {}", s(&incident["status"]));
}

async fn deployment_line(client: &Client, name: &str) -> anyhow::Result<String> {
    let d = client.deployment("production", name).await?;
    Ok(format!(
        "{} replicas, {} ready",
        d["spec"]["replicas"].as_i64().unwrap_or(0),
        d["status"]["readyReplicas"].as_i64().unwrap_or(0)
    ))
}

async fn pods_line(client: &Client) -> anyhow::Result<String> {
    let pods = client.pods("production", "worker").await?;
    Ok(pods
        .iter()
        .map(|(name, ready)| format!("{name} ({})", if *ready { "ready" } else { "NOT ready" }))
        .collect::<Vec<_>>()
        .join(", "))
}

fn print_state(name: &str, before: &str, after: &str) {
    println!("   Kubernetes production/{name}");
    println!("     before: {before}");
    println!("     after:  {after}");
}

async fn print_audit(client: &Client, incident: &Value) -> anyhow::Result<()> {
    let cid = incident["correlationId"].as_str().unwrap_or_default();
    for row in client.executor_audit(cid).await? {
        println!(
            "   Executor audit: {} {} {}/{} status {}, hash {} (chain #{})",
            s(&row["id"]),
            s(&row["actionType"]),
            s(&row["namespace"]),
            s(&row["resourceName"]),
            s(&row["status"]),
            s(&row["hash"]),
            s(&row["chainSeq"]),
        );
    }
    for row in client.policy_audit(cid).await? {
        println!(
            "   Policy audit:   {} {} {} ({})",
            s(&row["id"]),
            s(&row["action"]),
            s(&row["result"]),
            s(&row["reason"]),
        );
    }
    Ok(())
}

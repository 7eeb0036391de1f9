//! The scripted incidents of `scripts/demo.sh`, none of them reported by the launcher: a CPU
//! spike on `production/api` caught by the Prometheus feed, a crash-looping pod of
//! `production/worker` and a bad deploy of `production/api`, both caught by the Kubernetes
//! watcher. Each is followed through signal → evidence → policy decision → executor action →
//! Kubernetes state → verification → audit, printed as a timeline a newcomer can read.
//!
//! The spike is caught the way it would be in production: kube-sim serves the api's CPU (a load
//! shared by its Ready pods, with noise), Prometheus scrapes it, and the ai-engine's feed learns
//! the normal level, scores each new window with its isolation forest and sends the anomaly to
//! the backend. Scaling up spreads the load over more pods, so the scale-up itself brings the
//! CPU down. Without Prometheus that scene is skipped.
//!
//! The launcher only does what happens to a cluster: it makes a pod crash-loop (kube-sim's
//! fault injection) and rolls the api out to an image that crashes, as a deploy pipeline
//! would. The watcher names the cause; the rollback in production waits for an admin, and the
//! launcher approves it through the API, as an admin would, and says so.
//!
//! Every notification the backend sends goes to a local receiver the launcher runs
//! ([`Notices`]), printed after each scene; a fourth scene turns the kill switch off, shows a
//! signal recorded and not acted on, and turns it back on.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    Stack,
    client::{Client, cpu_signal, prometheus_range},
    notices::{Notice, Notices},
    stack::FeedOptions,
};

/// How long to wait for a scene's notifications.
const NOTIFIED_WITHIN: Duration = Duration::from_secs(5);

/// How often the demo's feed runs, in seconds.
const FEED_INTERVAL_SECONDS: u64 = 2;
/// How far back each of its windows reaches, in seconds.
const FEED_LOOKBACK_SECONDS: u64 = 6;
/// The api's normal CPU load: 150 % of one pod, 50 % on each of its three pods.
pub const NORMAL_LOAD: f64 = 150.0;
/// The burst: 288 %, 96 % on each of three pods (57.6 % on five).
pub const BURST_LOAD: f64 = 288.0;
/// A burst is noisier than the normal level: ± 6 points per pod and scrape.
pub const BURST_JITTER: f64 = 6.0;

/// The demo's ai-engine settings: the forest learns from ten windows (the smallest baseline the
/// ai-engine accepts) so it is ready within half a minute, and with `ANOMALY_THRESHOLD` 0.75
/// (contamination 0.25) it flags a burst window even from so small a baseline: in 2,000
/// simulated baselines it caught every burst within three windows, against 98 % at the default
/// 0.85 (a ten-row forest scores an out-of-range window like its most extreme training rows).
pub const AI_ENGINE_ENV: &[(&str, &str)] = &[
    ("MIN_SAMPLES_FOR_TRAINING", "10"),
    ("ANOMALY_THRESHOLD", "0.75"),
];

/// The demo's feed: the api's average CPU per pod, every two seconds over the last six, one
/// sample a second (Prometheus scrapes every second).
#[must_use]
pub fn feed() -> FeedOptions {
    FeedOptions {
        interval_seconds: FEED_INTERVAL_SECONDS,
        lookback_minutes: FEED_LOOKBACK_SECONDS as f64 / 60.0,
        step: "1s".into(),
        queries: format!("- category: workload\n  metric_type: cpu_usage\n  query: '{API_CPU}'\n"),
    }
}

/// The api's normal load, set before Prometheus starts so that everything the feed learns
/// from is normal.
pub async fn normal_load(client: &Client) -> anyhow::Result<()> {
    client
        .set_cpu_load("production", "api", NORMAL_LOAD, 3.0)
        .await
}

/// The demo's own allow policies (besides the seed policies).
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

/// Plays the four scenes and prints their timelines and notifications.
pub async fn play(stack: &Stack, client: &Client, notices: &Notices) -> anyhow::Result<()> {
    for policy in policies() {
        client.ensure_policy(&policy).await?;
    }
    println!(
        "   Allow policies for the demo: \"Demo: scale the api on high CPU\", \"Demo: restart crash-looping workers\"."
    );

    println!("\n   Scene 1: the api's CPU spikes");
    println!("   ------------------------------");
    let before = deployment_line(client, "api").await?;
    match stack.urls.get("prometheus") {
        Some(prometheus) => {
            let incident = spike_caught_by_the_feed(client, prometheus).await?;
            print_timeline(&incident);
            print_state("api", &before, &deployment_line(client, "api").await?);
            wait_for_cpu(prometheus, |v| v < 70.0, 2).await?;
            let points = prometheus_range(prometheus, API_CPU, 5).await?;
            if let Some((_, cpu)) = points.last() {
                println!(
                    "     CPU:    the same load over more pods: Prometheus now records {cpu:.0}% per pod"
                );
            }
            print_audit(client, &incident).await?;
            notices
                .print_after(resolved("production/api"), NOTIFIED_WITHIN)
                .await;
        }
        None => println!(
            "   Skipped: Prometheus is not installed, so nothing scrapes the api's CPU (apt-get install prometheus)."
        ),
    }

    println!("\n   Scene 2: a worker pod crash-loops");
    println!("   ---------------------------------");
    let pods = client.pods("production", "worker").await?;
    let victim = pods
        .first()
        .map(|p| p.0.clone())
        .context("worker has no pods")?;
    let before = pods_line(client).await?;
    let since = Utc::now();
    client.crash_pod("production", &victim).await?;
    println!(
        "   kube-sim  {victim} starts crash-looping (exit 1, one more restart each second); the launcher reports nothing"
    );
    let incident = caught_by_the_watcher(client, "worker", since).await?;
    print_evidence(&incident);
    print_timeline(&incident);
    print_state("worker", &before, &pods_line(client).await?);
    print_audit(client, &incident).await?;
    notices
        .print_after(resolved("production/worker"), NOTIFIED_WITHIN)
        .await;

    println!("\n   Scene 3: a bad deploy");
    println!("   ---------------------");
    let before = revision_line(client, "api").await?;
    let since = Utc::now();
    client
        .deploy_image("production", "api", "api", BAD_IMAGE)
        .await?;
    println!(
        "   A deploy pipeline rolls production/api out to {BAD_IMAGE}, which crashes at start."
    );
    let incident = caught_by_the_watcher(client, "api", since).await?;
    print_evidence(&incident);
    let incident = if incident["status"] == "awaiting_approval" {
        let id = s(&incident["id"]);
        println!(
            "   The policy allows the rollback, and a rollback in production waits for an admin: the launcher approves it as admin@aegis.local (POST /api/v1/remediation/incidents/{id}/approve)."
        );
        client.decide(&id, "approve").await?;
        client.wait_for(&id, FINAL, Duration::from_secs(60)).await?
    } else {
        incident
    };
    print_timeline(&incident);
    print_state("api", &before, &revision_line(client, "api").await?);
    print_audit(client, &incident).await?;
    notices
        .print_after(resolved("production/api"), NOTIFIED_WITHIN)
        .await;

    println!("\n   Scene 4: the kill switch");
    println!("   ------------------------");
    kill_switch(client).await?;
    notices
        .print_after(
            |n| n.event_type == "aegis.mode_changed" && n.summary.ends_with("now auto"),
            NOTIFIED_WITHIN,
        )
        .await;
    Ok(())
}

/// Whether a notification says the incident of `workload` resolved.
fn resolved(workload: &'static str) -> impl Fn(&Notice) -> bool {
    move |n| n.event_type == "aegis.resolved" && n.summary.ends_with(workload)
}

/// Turns remediation off, shows a signal recorded and not acted on, and turns it back on.
async fn kill_switch(client: &Client) -> anyhow::Result<()> {
    client
        .set_mode("off", "demo: a change freeze starts")
        .await?;
    println!(
        "   An operator turns remediation off everywhere: PUT /api/v1/remediation/mode {{\"mode\": \"off\"}}. Every backend replica reads it before its next decision."
    );
    let before = deployment_line(client, "api").await?;
    let accepted = client
        .signal(&cpu_signal("production", "api", 97.0, 10))
        .await?;
    let id = s(&accepted["incidentId"]);
    println!("   A CPU anomaly on production/api arrives (incident {id}).");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let incident = loop {
        let incident = client.incident(&id).await?;
        let decided = incident["timeline"]
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["step"] == "decision"));
        if decided {
            break incident;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "incident {id} was not decided within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    print_timeline(&incident);
    print_state("api", &before, &deployment_line(client, "api").await?);
    client.decide(&id, "reject").await?;
    println!(
        "   Left open, it would be decided once remediation is on again; the operator rejects it (POST .../reject) and turns remediation back on."
    );
    client.set_mode("auto", "demo: the freeze is over").await?;
    Ok(())
}

/// The image of scene 3: kube-sim crash-loops any image tagged `crash`.
const BAD_IMAGE: &str = "ghcr.io/aegis-demo/api:crash";

/// Statuses after which the loop does nothing more on its own.
const FINAL: &[&str] = &["resolved", "suppressed", "escalated", "failed", "rejected"];

/// Waits for the incident the watcher opens for `deployment` after `since`, then until it
/// settles, and says how long detection took.
async fn caught_by_the_watcher(
    client: &Client,
    deployment: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let found = client
        .wait_for_incident(
            "namespace=production",
            |i| {
                i["source"] == "kubernetes"
                    && i["deployment"] == deployment
                    && i["createdAt"]
                        .as_str()
                        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                        .is_some_and(|t| t >= since)
            },
            Duration::from_secs(60),
        )
        .await?;
    let id = s(&found["id"]);
    let opened = found["createdAt"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .unwrap_or(since);
    println!(
        "   The Kubernetes watcher opened incident {id} {} ms later (correlation id {})",
        (opened - since).num_milliseconds(),
        s(&found["correlationId"])
    );
    client.wait_for(&id, SETTLED, Duration::from_secs(60)).await
}

/// The cause the watcher named: what failed, the log, the events and the rollout.
fn print_evidence(incident: &Value) {
    let Some(e) = incident["timeline"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["step"] == "signal"))
        .map(|e| &e["details"]["evidence"])
        .filter(|e| e.is_object())
    else {
        return;
    };
    println!(
        "   Evidence: {} ({}) in pod {}, container {}: exit code {}, {} restarts, {} pod(s) affected",
        s(&e["failure"]),
        s(&e["reason"]),
        s(&e["pod"]),
        s(&e["container"]),
        s(&e["exitCode"]),
        s(&e["restartCount"]),
        s(&e["affectedPods"]),
    );
    if let Some(r) = e.get("rollout").filter(|r| r.is_object()) {
        let images: Vec<String> = r["images"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|i| {
                format!(
                    "{}: {} -> {}",
                    s(&i["container"]),
                    s(&i["from"]),
                    s(&i["to"])
                )
            })
            .collect();
        println!(
            "     began after the rollout of revision {} (last healthy: {}); image {}",
            s(&r["revision"]),
            s(&r["healthyRevision"]),
            images.join(", ")
        );
    }
    let from = if e["logFromPreviousInstance"] == true {
        "the crashed instance's log"
    } else {
        "log"
    };
    for line in e["logTail"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .rev()
        .take(2)
        .rev()
    {
        println!("     {from}: {}", s(line));
    }
    for ev in e["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .take(3)
    {
        println!(
            "     event: {} {} {}: {} (x{})",
            s(&ev["type"]),
            s(&ev["reason"]),
            s(&ev["object"]),
            s(&ev["message"]),
            s(&ev["count"])
        );
    }
    println!("     why: {}", s(&e["explanation"]));
}

async fn revision_line(client: &Client, name: &str) -> anyhow::Result<String> {
    let d = client.deployment("production", name).await?;
    Ok(format!(
        "revision {}, image {}, {} of {} ready",
        s(&d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
        s(&d["spec"]["template"]["spec"]["containers"][0]["image"]),
        d["status"]["readyReplicas"].as_i64().unwrap_or(0),
        d["spec"]["replicas"].as_i64().unwrap_or(0),
    ))
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

/// Scene 1 with the real feed: wait until the ai-engine has learned the api's normal CPU, set
/// off a burst, and wait for the feed's scale-up report to settle.
async fn spike_caught_by_the_feed(client: &Client, prometheus: &str) -> anyhow::Result<Value> {
    println!(
        "   The ai-engine's feed asks Prometheus every {FEED_INTERVAL_SECONDS} s for the api's CPU over the last {FEED_LOOKBACK_SECONDS} s:"
    );
    println!("     {API_CPU}");
    wait_for_cpu(prometheus, |v| (40.0..=60.0).contains(&v), 3).await?;
    let windows = wait_for_forest(client).await?;
    println!(
        "   Its isolation forest has learned the normal level (50% ± 3 per pod) from {windows} windows."
    );
    let (scored, flagged) = steady_phase(client).await?;
    if flagged.is_empty() {
        println!(
            "   Steady phase: none of the {scored} windows of normal CPU the feed scored was an anomaly."
        );
    } else {
        println!(
            "   Steady phase: {} of the {scored} windows of normal CPU the feed scored were anomalies (scores {}).",
            flagged.len(),
            flagged.join(", ")
        );
    }
    let since = Utc::now();
    client
        .set_cpu_load("production", "api", BURST_LOAD, BURST_JITTER)
        .await?;
    println!(
        "   kube-sim  a traffic burst: production/api now needs {BURST_LOAD:.0}% CPU, 96% on each of its 3 pods"
    );
    let from_feed = |i: &Value| {
        i["source"] == "ai-engine"
            && i["deployment"] == "api"
            && i["createdAt"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t >= since)
    };
    let found = client
        .wait_for_incident(
            "namespace=production&limit=100",
            |i| from_feed(i) && i["recommendedAction"] == "scale_up",
            Duration::from_secs(40),
        )
        .await?;
    let earlier: Vec<String> = client
        .incidents("namespace=production&limit=100")
        .await?
        .iter()
        .filter(|i| from_feed(i) && i["id"] != found["id"])
        .map(|i| format!("{} ({})", s(&i["recommendedAction"]), s(&i["status"])))
        .collect();
    if !earlier.is_empty() {
        println!(
            "   On the way up the feed also reported {} window(s) that were anomalous but below 80% on average: {}",
            earlier.len(),
            earlier.join(", ")
        );
    }
    let samples = found["signal"]["window"]["metrics"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "   The feed's scale-up report carries the {samples} newest one-second samples from Prometheus."
    );
    follow(
        client,
        &json!({"incidentId": found["id"], "correlationId": found["correlationId"]}),
    )
    .await
}

/// The windows the feed has scored so far, and the scores of those it called anomalies. Its
/// one query is the api's CPU, nothing else in the demo asks for anomaly detection, and this
/// runs before the burst: every one of them is a window of normal CPU.
async fn steady_phase(client: &Client) -> anyhow::Result<(usize, Vec<String>)> {
    let api = client.anomaly_predictions(1000).await?;
    let flagged = api
        .iter()
        .filter(|p| p["prediction"]["is_anomaly"] == true)
        .map(|p| two_places(&p["prediction"]["anomaly_score"]))
        .collect();
    Ok((api.len(), flagged))
}

/// Waits (60 s at most) until the feed's newest prediction comes from the isolation forest;
/// the number of windows it was trained on.
pub async fn wait_for_forest(client: &Client) -> anyhow::Result<u64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let newest = client.anomaly_predictions(1).await?;
        let details = newest.first().map(|p| &p["prediction"]["details"]);
        if let Some(d) = details
            && d["method"] == "isolation_forest"
        {
            return Ok(d["baseline_size"].as_u64().unwrap_or(0));
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the ai-engine's feed did not train its forest within 60 s (newest prediction {newest:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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

/// A score or confidence as `0.55` (the API carries every digit).
fn two_places(v: &Value) -> String {
    v.as_f64().map_or_else(|| s(v), |x| format!("{x:.2}"))
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
            two_places(&d["score"]),
            s(&d["severity"]),
            two_places(&d["confidence"]),
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
        "approved" => format!(
            "approved by {}{}{}",
            s(&d["approvedBy"]),
            d["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            if d["replanned"] == true {
                format!(" (planned again: {})", s(&d["actionParams"]))
            } else {
                String::new()
            }
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

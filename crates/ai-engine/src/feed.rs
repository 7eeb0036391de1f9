//! The Prometheus feed.
//!
//! Every `FEED_INTERVAL_SECONDS` (first run at start) it runs each configured PromQL range query
//! over the last `FEED_LOOKBACK_MINUTES` with `FEED_STEP`, sending Unix-second `start` and
//! `end`. Samples keep their series labels and are grouped per (category, namespace,
//! deployment); each group is scored in-process exactly like a `POST /detect-anomaly` request and recorded in the
//! prediction history. Each anomaly whose group names a workload is reported to the backend as
//! a remediation signal. The feed never calls the policy engine or the executor.
//!
//! **Only new data is reported.** Windows overlap (by default an hour of data every five
//! minutes), so a spike stays in them long after the loop has acted on it. Once a group's
//! signal has been accepted, that group's later windows start after the newest sample the
//! signal carried, until the look-back has moved past it. A repeat signal therefore always
//! rests on samples taken after the previous one, which is what the backend's verification
//! counts on: a spike that was healed is not reported again, one that persists
//! is. A group with fewer than [`MIN_FRESH_SAMPLES`] new samples per metric type waits for the
//! next run. The memory is per process: after a restart a group's first window is whole again.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use aegis_common::{
    contracts::{MetricSample, RemediationSignal, SignalKind, SignalTarget, SignalWindow},
    telemetry::TraceParent,
};
use chrono::{DateTime, TimeZone as _, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    detector::{
        AnomalyOutcome, MetricPoint, MetricType,
        features::{metric_features, metric_series},
    },
    history::{BaselineRecord, JsonText, PredictionRecord, Record},
    state::AppState,
};

pub use crate::config::{FeedConfig, FeedQuery, default_queries, parse_queries};

/// A sample with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSample {
    /// Metric type.
    pub metric_type: MetricType,
    /// Value (already scaled).
    pub value: f64,
    /// Sample time.
    pub at: DateTime<Utc>,
    /// Series labels.
    pub labels: BTreeMap<String, String>,
}

/// Group key: (category, namespace, deployment).
pub type GroupKey = (String, String, String);

#[derive(Debug, Deserialize)]
struct PromResponse {
    status: String,
    data: Option<PromData>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PromData {
    result: Vec<PromSeries>,
}

#[derive(Debug, Deserialize)]
struct PromSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// Runs one range query; a failed or malformed answer is an error (logged and skipped by the
/// caller), never a panic.
pub async fn query_range(
    http: &reqwest::Client,
    cfg: &FeedConfig,
    q: &FeedQuery,
    now: DateTime<Utc>,
) -> Result<Vec<LabelledSample>, String> {
    let end = now.timestamp();
    let start = end - i64::try_from(cfg.lookback.as_secs()).unwrap_or(3600);
    let res = http
        .get(format!(
            "{}/api/v1/query_range",
            cfg.prometheus_url.trim_end_matches('/')
        ))
        .query(&[
            ("query", q.query.as_str()),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", cfg.step.as_str()),
        ])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("Prometheus unreachable: {e}"))?;
    let status = res.status();
    let body: PromResponse = res
        .json()
        .await
        .map_err(|e| format!("Prometheus answered {status} with an unexpected body: {e}"))?;
    if body.status != "success" {
        return Err(format!(
            "Prometheus error: {}",
            body.error.unwrap_or_else(|| body.status.clone())
        ));
    }
    let mut out = Vec::new();
    for series in body.data.map(|d| d.result).unwrap_or_default() {
        for (ts, raw) in series.values {
            let Ok(v) = raw.parse::<f64>() else { continue };
            // NaN samples are dropped (empty ratios, idle histograms).
            if !v.is_finite() {
                continue;
            }
            let secs = ts.floor();
            let nanos = ((ts - secs) * 1e9).round() as u32;
            let Some(at) = Utc
                .timestamp_opt(secs as i64, nanos.min(999_999_999))
                .single()
            else {
                continue;
            };
            out.push(LabelledSample {
                metric_type: q.metric_type,
                value: v * q.scale,
                at,
                labels: series.metric.clone(),
            });
        }
    }
    Ok(out)
}

/// Groups samples per (category, namespace, deployment).
#[must_use]
pub fn group(samples: Vec<(String, LabelledSample)>) -> BTreeMap<GroupKey, Vec<LabelledSample>> {
    let mut groups: BTreeMap<GroupKey, Vec<LabelledSample>> = BTreeMap::new();
    for (category, s) in samples {
        let ns = s.labels.get("namespace").cloned().unwrap_or_default();
        let dep = s.labels.get("deployment").cloned().unwrap_or_default();
        groups.entry((category, ns, dep)).or_default().push(s);
    }
    groups
}

/// What one run did (tests and logs).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunReport {
    /// Groups scored.
    pub groups: usize,
    /// Anomalies found.
    pub anomalies: usize,
    /// Signals the backend accepted.
    pub signals_sent: usize,
    /// Queries that failed.
    pub failed_queries: usize,
    /// Groups not scored because too little of their data is newer than their last signal.
    pub waiting_for_fresh_data: usize,
    /// Groups left to the replica that owns their series (its feed scores them).
    pub owned_elsewhere: usize,
}

/// New samples per metric type a group needs after its last signal before it is scored again
/// (the z-score fallback needs three points).
pub const MIN_FRESH_SAMPLES: usize = 3;

/// The feed between runs: its settings, and per group the newest sample already reported.
#[derive(Debug)]
pub struct Feed {
    cfg: FeedConfig,
    http: reqwest::Client,
    reported_until: HashMap<GroupKey, DateTime<Utc>>,
}

impl Feed {
    /// A feed that has reported nothing yet.
    #[must_use]
    pub fn new(cfg: FeedConfig) -> Self {
        Self {
            cfg,
            http: reqwest::Client::new(),
            reported_until: HashMap::new(),
        }
    }

    /// One feed run at `now`.
    pub async fn run_once(&mut self, state: &AppState, now: DateTime<Utc>) -> RunReport {
        let cfg = &self.cfg;
        let mut report = RunReport::default();
        let mut samples = Vec::new();
        for q in &cfg.queries {
            match query_range(&self.http, cfg, q, now).await {
                Ok(found) => samples.extend(found.into_iter().map(|s| (q.category.clone(), s))),
                Err(e) => {
                    report.failed_queries += 1;
                    tracing::warn!(query = %q.query, error = %e, "feed query failed; skipped");
                }
            }
        }
        // A signal older than the look-back no longer overlaps any window.
        let horizon = now
            - chrono::Duration::from_std(cfg.lookback)
                .unwrap_or_else(|_| chrono::Duration::hours(1));
        self.reported_until.retain(|_, until| *until >= horizon);
        for (key, group) in group(samples) {
            let group = match self.reported_until.get(&key) {
                Some(until) => {
                    let fresh: Vec<LabelledSample> =
                        group.into_iter().filter(|s| s.at > *until).collect();
                    if !enough_fresh(&fresh) {
                        report.waiting_for_fresh_data += 1;
                        continue;
                    }
                    fresh
                }
                None => group,
            };
            let (category, namespace, deployment) = &key;
            let points: Vec<MetricPoint> = group
                .iter()
                .map(|s| MetricPoint {
                    metric_type: s.metric_type,
                    value: s.value,
                    timestamp: s.at,
                })
                .collect();
            let series = metric_series(&points);
            let features = metric_features(&points);
            let workload = (!deployment.is_empty()).then(|| format!("{namespace}/{deployment}"));
            // Every replica's feed reads the same samples; each scores only the series it owns,
            // so that a series has one model and one verdict (see crate::routing).
            let series_key = crate::detector::series_key(
                workload.as_deref(),
                &crate::detector::anomaly::signature(&series),
            );
            if state.ring.owner(&series_key).is_some() {
                report.owned_elsewhere += 1;
                continue;
            }
            let Ok(Some(outcome)) = state
                .engine
                .detect_anomaly(workload.as_deref(), &series, &features)
                .await
            else {
                continue;
            };
            report.groups += 1;
            let body =
                serde_json::to_value(crate::answer::anomaly_result(&outcome)).unwrap_or_default();
            record(
                state,
                &group,
                (&outcome, workload.as_deref(), &series),
                &body,
                category,
                &features,
            )
            .await;
            if !outcome.is_anomaly {
                continue;
            }
            report.anomalies += 1;
            if namespace.is_empty() || deployment.is_empty() {
                continue;
            }
            if let Some(url) = &cfg.backend_url {
                let newest = group.iter().map(|s| s.at).max();
                let signal = signal(namespace, deployment, &group, &outcome, body, now);
                match send_signal(&self.http, url, cfg.backend_api_key.as_ref(), &signal).await {
                    Ok(()) => {
                        report.signals_sent += 1;
                        if let Some(newest) = newest {
                            self.reported_until.insert(key.clone(), newest);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(namespace, deployment, error = %e, "signal not accepted");
                    }
                }
            }
        }
        report
    }
}

/// Whether every metric type in `fresh` has at least [`MIN_FRESH_SAMPLES`] samples.
fn enough_fresh(fresh: &[LabelledSample]) -> bool {
    let mut per_type: BTreeMap<MetricType, usize> = BTreeMap::new();
    for s in fresh {
        *per_type.entry(s.metric_type).or_default() += 1;
    }
    !per_type.is_empty() && per_type.values().all(|n| *n >= MIN_FRESH_SAMPLES)
}

async fn record(
    state: &AppState,
    group: &[LabelledSample],
    (outcome, workload, series): (
        &AnomalyOutcome,
        Option<&str>,
        &std::collections::BTreeMap<crate::detector::MetricType, Vec<f64>>,
    ),
    body: &Value,
    category: &str,
    features: &crate::detector::FeatureSet,
) {
    let m = &state.ai_metrics;
    m.predictions
        .with_label_values(&["anomaly", "success"])
        .inc();
    if outcome.is_anomaly {
        m.anomalies_detected
            .with_label_values(&[&outcome.severity.to_string()])
            .inc();
    }
    let features_json = JsonText::from_value(&Value::Object(
        features
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect(),
    ));
    state
        .history
        .record(Record::Baseline(BaselineRecord::new(
            &outcome.signature,
            workload,
            series,
            features_json.clone(),
        )))
        .await;
    let input: Vec<Value> = group
        .iter()
        .map(|s| json!({"metric_type": s.metric_type, "value": s.value, "timestamp": aegis_common::time::rfc3339_millis(s.at), "labels": s.labels}))
        .collect();
    state
        .history
        .record(Record::Prediction(Box::new(PredictionRecord {
            model_type: "anomaly",
            input_data: JsonText::from_value(
                &json!({"metrics": input, "context": {"source": "feed", "category": category}}),
            ),
            prediction: JsonText::from_value(body),
            severity_score: outcome.anomaly_score,
            confidence_score: outcome.confidence,
            recommended_action: outcome.recommended_action.to_string(),
            execution_time_ms: 0,
            model_version: outcome.model_version.clone(),
            features: features_json,
            metadata: JsonText::from_value(
                &json!({"method": outcome.method.as_str(), "source": "feed", "category": category}),
            ),
        })))
        .await;
}

/// Re-types a detector enum as its wire twin in `common` (same serde names).
fn signal(
    namespace: &str,
    deployment: &str,
    group: &[LabelledSample],
    outcome: &AnomalyOutcome,
    prediction: Value,
    now: DateTime<Utc>,
) -> RemediationSignal {
    let pods: std::collections::BTreeSet<&String> =
        group.iter().filter_map(|s| s.labels.get("pod")).collect();
    let pod = (pods.len() == 1)
        .then(|| pods.into_iter().next().cloned())
        .flatten();
    RemediationSignal {
        source: "ai-engine".into(),
        kind: SignalKind::Anomaly,
        observed_at: aegis_common::time::rfc3339_millis(now),
        target: SignalTarget {
            namespace: namespace.into(),
            deployment: deployment.into(),
            pod,
        },
        severity: outcome.severity,
        score: outcome.anomaly_score,
        confidence: outcome.confidence,
        recommended_action: outcome.recommended_action,
        window: SignalWindow {
            metrics: group
                .iter()
                .map(|s| MetricSample {
                    metric_type: s.metric_type,
                    value: s.value,
                    timestamp: aegis_common::time::rfc3339_millis(s.at),
                    labels: s.labels.clone(),
                })
                .collect(),
            logs: None,
        },
        prediction,
        fingerprint: None,
        evidence: None,
    }
}

pub(crate) async fn send_signal(
    http: &reqwest::Client,
    backend_url: &str,
    key: Option<&SecretString>,
    signal: &RemediationSignal,
) -> Result<(), String> {
    let trace = TraceParent::new_root();
    let mut req = http
        .post(format!(
            "{}/api/v1/remediation/signals",
            backend_url.trim_end_matches('/')
        ))
        .json(signal)
        .timeout(Duration::from_secs(10));
    req = aegis_common::telemetry::propagate(req, &trace);
    if let Some(k) = key {
        req = req.header("X-API-Key", k.expose_secret());
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("backend answered {}", res.status()))
    }
}

/// Runs the feed forever (first run immediately).
pub fn spawn(state: AppState, cfg: FeedConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.interval);
        let mut feed = Feed::new(cfg);
        loop {
            tick.tick().await;
            if !state.models_loaded() {
                continue;
            }
            let report = feed.run_once(&state, Utc::now()).await;
            tracing::info!(?report, "feed run finished");
        }
    })
}

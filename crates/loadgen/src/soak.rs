//! `soak`: a long, paced, mixed run against the bench stack (issue #12). Four open-loop streams
//! run at once, each at a fixed rate: audited policy evaluations that always miss the cache,
//! anomaly detections answered by the forest, signed dry-run executes, and remediation signals
//! that go all the way to a Kubernetes call. Every service's VmRSS is sampled on a fixed
//! period. The run passes when no request failed (any non-2xx or socket error counts, 409 and
//! 429 included) and no service's RSS kept growing over the second half of the run (kube-sim,
//! the Kubernetes test double, is reported but not judged).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rand::Rng as _;
use serde_json::{Map, Value, json};

use crate::{
    args::{Args, read_state, state_str},
    generate::{
        LoadStats, Tally, http_client, loop_signal, pace, signed_dry_run, stats_of, tally_answer,
    },
    procfs::status_kib,
    stack::deployment,
};

/// The largest RSS growth over the second half of the run that still counts as flat, in MiB
/// per minute (allocator noise is a few MiB either way; a leak of one row per request at these
/// rates is tens of MiB per minute).
const FLAT_MIB_PER_MINUTE: f64 = 1.0;

/// What one stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Evaluate,
    Anomaly,
    Execute,
    Signal,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Evaluate, Kind::Anomaly, Kind::Execute, Kind::Signal];

    fn name(self) -> &'static str {
        match self {
            Kind::Evaluate => "evaluate-miss",
            Kind::Anomaly => "detect-anomaly",
            Kind::Execute => "execute-dry-run",
            Kind::Signal => "loop-signal",
        }
    }

    /// The flag that sets its rate (requests per second).
    fn flag(self) -> &'static str {
        match self {
            Kind::Evaluate => "evaluate-rate",
            Kind::Anomaly => "anomaly-rate",
            Kind::Execute => "execute-rate",
            Kind::Signal => "signal-rate",
        }
    }
}

/// Everything a request builder needs, shared by the workers.
struct Target {
    backend: String,
    ai: String,
    executor: String,
    service_key: String,
    ai_key: String,
    hmac: Vec<u8>,
    deployments: usize,
    signals: AtomicU64,
}

impl Target {
    fn from_state(state: &Value) -> anyhow::Result<Self> {
        Ok(Self {
            backend: state_str(state, "/urls/backend")?.to_owned(),
            ai: state_str(state, "/urls/ai-engine")?.to_owned(),
            executor: state_str(state, "/urls/executor")?.to_owned(),
            service_key: state_str(state, "/secrets/service_key")?.to_owned(),
            ai_key: state_str(state, "/secrets/ai_key")?.to_owned(),
            hmac: state_str(state, "/secrets/hmac")?.as_bytes().to_vec(),
            deployments: state["deployments"].as_u64().unwrap_or(1).max(1) as usize,
            signals: AtomicU64::new(0),
        })
    }

    /// The `j`-th request of worker `w` of a stream.
    fn request(
        &self,
        http: &reqwest::Client,
        kind: Kind,
        w: usize,
        j: u64,
    ) -> reqwest::RequestBuilder {
        match kind {
            Kind::Evaluate => http
                .post(format!("{}/api/v1/policy/evaluate", self.backend))
                .header("X-API-Key", &self.service_key)
                .json(&json!({
                    "type": "self_healing", "action": "scale_up", "resource": "service:bench-00001",
                    "context": {"userId": "bench", "role": "service",
                                "metadata": {"cpu": "95", "request": format!("soak-{w}-{j}")}}
                })),
            Kind::Anomaly => {
                let mut rng = rand::rng();
                let mut metrics = Vec::with_capacity(15);
                for (ty, centre, spread) in [
                    ("cpu_usage", 45.0, 10.0),
                    ("memory_usage", 60.0, 8.0),
                    ("error_rate", 0.5, 0.4),
                ] {
                    for p in 0..5 {
                        let v: f64 = centre + spread * (rng.random::<f64>() - 0.5);
                        metrics.push(json!({"metric_type": ty, "value": v,
                            "timestamp": format!("2026-01-01T00:0{p}:00Z"), "labels": {"service": "bench"}}));
                    }
                }
                http.post(format!("{}/api/v1/detect-anomaly", self.ai))
                    .header("X-API-Key", &self.ai_key)
                    .json(&json!({"metrics": metrics}))
            }
            Kind::Execute => {
                // The upper half of the bench deployments: the loop's signals scale the lower
                // half for real, and a dry run on a deployment being scaled is (rightly) a 409.
                let half = (self.deployments / 2).max(1);
                let own = half + w % (self.deployments - half).max(1);
                let req = signed_dry_run(&self.hmac, &deployment(own), "soak");
                http.post(format!("{}/executor/execute", self.executor))
                    .json(&req)
            }
            Kind::Signal => {
                let k = self.signals.fetch_add(1, Ordering::Relaxed);
                let body = loop_signal(k, self.deployments as u64 / 2, "soak");
                http.post(format!("{}/api/v1/remediation/signals", self.backend))
                    .header("X-API-Key", &self.service_key)
                    .json(&body)
            }
        }
    }
}

/// One RSS sample of every service, MiB, at `at_s` seconds into the run.
#[derive(Debug, Clone)]
struct Sample {
    at_s: f64,
    rss_mib: BTreeMap<String, f64>,
}

/// Least-squares slope of `(x, y)` points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Per service: RSS at the start of the second half, at the end, and the slope over the second
/// half in MiB per minute.
fn rss_trend(samples: &[Sample], duration_s: f64) -> BTreeMap<String, (f64, f64, f64)> {
    let second_half: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_s >= duration_s / 2.0)
        .collect();
    let mut out = BTreeMap::new();
    let services = second_half
        .first()
        .map(|s| s.rss_mib.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for service in services {
        let points: Vec<(f64, f64)> = second_half
            .iter()
            .filter_map(|s| s.rss_mib.get(&service).map(|v| (s.at_s / 60.0, *v)))
            .collect();
        let first = points.first().map_or(0.0, |p| p.1);
        let last = points.last().map_or(0.0, |p| p.1);
        out.insert(service, (first, last, slope(&points)));
    }
    out
}

fn errors(s: &LoadStats) -> u64 {
    s.conflict + s.too_many + s.other + s.socket_errors
}

/// `soak --state FILE --duration S --out FILE [--evaluate-rate R] [--anomaly-rate R]
/// [--execute-rate R] [--signal-rate R] [--sample-every S]`.
pub async fn run(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let state = read_state(&args.path("state")?)?;
    let duration = Duration::from_secs_f64(args.get("duration")?);
    let out: PathBuf = args.path("out")?;
    let every = Duration::from_secs_f64(args.get_or("sample-every", 10.0)?);
    let mut rates = BTreeMap::new();
    for kind in Kind::ALL {
        let rate: f64 = args.get_or(kind.flag(), 0.0)?;
        anyhow::ensure!(
            rate.is_finite() && rate >= 0.0,
            "--{} must be a rate >= 0",
            kind.flag()
        );
        if rate > 0.0 {
            rates.insert(kind, rate);
        }
    }
    anyhow::ensure!(!rates.is_empty(), "give at least one --*-rate");
    let pids: BTreeMap<String, u32> = state["pids"]
        .as_object()
        .context("the stack state has no pids")?
        .iter()
        .filter_map(|(k, v)| {
            v.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .map(|p| (k.clone(), p))
        })
        .collect();
    let target = Arc::new(Target::from_state(&state)?);
    println!(
        "soak: {} s, {} (requests/s); RSS every {} s",
        duration.as_secs(),
        rates
            .iter()
            .map(|(k, r)| format!("{} {r}", k.name()))
            .collect::<Vec<_>>()
            .join(", "),
        every.as_secs()
    );

    let start = Instant::now();
    let deadline = start + duration;
    let mut streams = Vec::new();
    for (&kind, &rate) in &rates {
        // Enough workers that one slow answer does not hold the stream back (open loop).
        let conc = ((rate / 2.0).ceil() as usize).clamp(2, 32);
        let http = http_client(conc)?;
        let mut workers = Vec::new();
        for w in 0..conc {
            let http = http.clone();
            let target = target.clone();
            workers.push(tokio::spawn(async move {
                let mut t = Tally::default();
                let mut j = 0u64;
                loop {
                    pace(start, rate, conc, w, j).await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let started = Instant::now();
                    let res = target.request(&http, kind, w, j).send().await;
                    j += 1;
                    tally_answer(&mut t, started, res, |s| !(200..300).contains(&s)).await;
                }
                t
            }));
        }
        streams.push((kind, workers));
    }

    let sample = || Sample {
        at_s: start.elapsed().as_secs_f64(),
        rss_mib: pids
            .iter()
            .filter_map(|(n, p)| status_kib(*p, "VmRSS").map(|k| (n.clone(), k as f64 / 1024.0)))
            .collect(),
    };
    let mut samples = Vec::new();
    let mut next = start;
    while Instant::now() < deadline {
        samples.push(sample());
        next += every;
        tokio::time::sleep_until(next.min(deadline).into()).await;
    }
    samples.push(sample());

    let mut stream_json = Map::new();
    let mut failed = 0u64;
    for (kind, workers) in streams {
        let mut tallies = Vec::new();
        for w in workers {
            tallies.push(w.await.unwrap_or_default());
        }
        let (stats, sample) = stats_of(tallies, start.elapsed());
        failed += errors(&stats);
        println!(
            "  {:<16} {:>8} requests {:>7.1}/s  p50 {:>7.2} ms  p99 {:>8.2} ms  2xx {}  409 {}  429 {}  other {}  socket {}",
            kind.name(),
            stats.requests,
            stats.requests as f64 / stats.elapsed_s.max(1e-9),
            stats.p50_ms,
            stats.p99_ms,
            stats.ok,
            stats.conflict,
            stats.too_many,
            stats.other,
            stats.socket_errors
        );
        stream_json.insert(
            kind.name().into(),
            json!({
                "rate": rates[&kind],
                "requests": stats.requests,
                "rps": stats.requests as f64 / stats.elapsed_s.max(1e-9),
                "latency_ms": {"p50": stats.p50_ms, "p90": stats.p90_ms, "p99": stats.p99_ms, "max": stats.max_ms},
                "responses": {"2xx": stats.ok, "409": stats.conflict, "429": stats.too_many, "other_non_2xx": stats.other},
                "socket_errors": stats.socket_errors,
                "first_failure": sample,
            }),
        );
    }
    let trend = rss_trend(&samples, duration.as_secs_f64());
    let mut flat = true;
    let mut trend_json = Map::new();
    for (service, (first, last, per_minute)) in &trend {
        // kube-sim is the test double of the Kubernetes API: reported, not judged.
        let judged = service != "kube-sim";
        let ok = *per_minute <= FLAT_MIB_PER_MINUTE;
        flat &= ok || !judged;
        println!(
            "  RSS {service:<10} second half {first:>6.1} → {last:>6.1} MiB, slope {per_minute:>+6.2} MiB/min  {}",
            match (ok, judged) {
                (true, _) => "flat",
                (false, true) => "GROWING",
                (false, false) => "growing (test double, not judged)",
            }
        );
        trend_json.insert(
            service.clone(),
            json!({"second_half_start_mib": first, "end_mib": last, "slope_mib_per_min": per_minute, "flat": ok}),
        );
    }
    let passed = failed == 0 && flat;
    println!(
        "soak {}: {failed} failed requests, RSS {}",
        if passed { "PASSED" } else { "FAILED" },
        if flat { "flat" } else { "growing" }
    );
    let result = json!({
        "scenario": "soak",
        "duration_s": duration.as_secs_f64(),
        "streams": stream_json,
        "failed_requests": failed,
        "rss_flat_limit_mib_per_min": FLAT_MIB_PER_MINUTE,
        "rss_trend": trend_json,
        "rss_samples": samples.iter().map(|s| json!({"at_s": s.at_s, "rss_mib": s.rss_mib})).collect::<Vec<_>>(),
        "passed": passed,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    anyhow::ensure!(passed, "the soak failed (see {})", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rss_trend_is_the_slope_of_the_second_half() {
        let samples: Vec<Sample> = (0..=10)
            .map(|i| Sample {
                at_s: f64::from(i) * 60.0,
                // Grows 10 MiB/min in the first half (warm-up), flat after.
                rss_mib: BTreeMap::from([("backend".to_owned(), f64::from(i.min(5)) * 10.0)]),
            })
            .collect();
        let trend = rss_trend(&samples, 600.0);
        let (first, last, per_minute) = trend["backend"];
        assert_eq!((first, last), (50.0, 50.0));
        assert!(per_minute.abs() < 1e-9, "{per_minute}");

        let growing: Vec<Sample> = (0..=10)
            .map(|i| Sample {
                at_s: f64::from(i) * 60.0,
                rss_mib: BTreeMap::from([("ai-engine".to_owned(), 20.0 + f64::from(i) * 2.0)]),
            })
            .collect();
        let (_, _, per_minute) = rss_trend(&growing, 600.0)["ai-engine"];
        assert!((per_minute - 2.0).abs() < 1e-9, "{per_minute}");
    }
}

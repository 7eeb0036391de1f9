//! The measured runs: `wrk` wrapped, and the two generators of this crate (signed execute and
//! the remediation loop). Every run writes one result JSON (see `bench/README.md`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aegis_common::contracts::{ActionType, ExecuteRequest, PolicyDecisionSummary};
use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};

use crate::{
    args::{Args, read_state, state_str},
    procfs::{ProcReport, measured},
    stack::{NAMESPACE, deployment},
};

/// Outcome counts and latencies of one run.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    /// Completed requests (any status).
    pub requests: u64,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// 50th, 90th, 99th percentile and maximum latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// 2xx answers.
    pub ok: u64,
    /// 409 answers.
    pub conflict: u64,
    /// 429 answers.
    pub too_many: u64,
    /// Other non-2xx answers.
    pub other: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

/// One worker's tallies.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    conflict: u64,
    too_many: u64,
    other: u64,
    socket_errors: u64,
    /// The first answer worth showing (e.g. the first failure's status and body).
    pub(crate) sample: Option<Value>,
}

impl Tally {
    /// Counts one answer (`None`: no answer) of a request started at `started`.
    pub(crate) fn record(&mut self, started: Instant, status: Option<u16>) {
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
        match status {
            Some(200..=299) => self.ok += 1,
            Some(409) => self.conflict += 1,
            Some(429) => self.too_many += 1,
            Some(_) => self.other += 1,
            None => self.socket_errors += 1,
        }
    }
}

pub(crate) fn stats_of(tallies: Vec<Tally>, elapsed: Duration) -> (LoadStats, Option<Value>) {
    let mut all = Vec::new();
    let mut s = LoadStats {
        elapsed_s: elapsed.as_secs_f64(),
        ..LoadStats::default()
    };
    let mut sample = None;
    for t in tallies {
        all.extend(t.latencies_us);
        s.ok += t.ok;
        s.conflict += t.conflict;
        s.too_many += t.too_many;
        s.other += t.other;
        s.socket_errors += t.socket_errors;
        sample = sample.or(t.sample);
    }
    all.sort_unstable();
    s.requests = all.len() as u64;
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let idx = ((p / 100.0) * (all.len() - 1) as f64).round() as usize;
        f64::from(all[idx.min(all.len() - 1)]) / 1000.0
    };
    s.p50_ms = pct(50.0);
    s.p90_ms = pct(90.0);
    s.p99_ms = pct(99.0);
    s.max_ms = pct(100.0);
    (s, sample)
}

/// What every run is told.
struct RunSpec {
    scenario: String,
    conc: usize,
    duration: Duration,
    service: String,
    out: PathBuf,
    pids: BTreeMap<String, u32>,
    state: Value,
}

impl RunSpec {
    fn from_args(args: &Args, default_service: &str) -> anyhow::Result<Self> {
        let state = read_state(&args.path("state")?)?;
        let pids = state["pids"]
            .as_object()
            .context("the stack state has no pids")?
            .iter()
            .filter_map(|(k, v)| {
                v.as_u64()
                    .and_then(|p| u32::try_from(p).ok())
                    .map(|p| (k.clone(), p))
            })
            .collect();
        Ok(Self {
            scenario: args.str("scenario").unwrap_or(default_service).to_owned(),
            conc: args.get("conc")?,
            duration: Duration::from_secs_f64(args.get("duration")?),
            service: args.str("service").unwrap_or(default_service).to_owned(),
            out: args.path("out")?,
            pids,
            state,
        })
    }
}

fn write_result(
    spec: &RunSpec,
    generator: &str,
    stats: &LoadStats,
    proc: &ProcReport,
    extra: Value,
) -> anyhow::Result<()> {
    let per_req = |cpu: f64| {
        if stats.requests == 0 {
            0.0
        } else {
            cpu * 1000.0 / stats.requests as f64
        }
    };
    let service_cpu = proc.cpu_seconds.get(&spec.service).copied().unwrap_or(0.0);
    let all_cpu: f64 = proc.cpu_seconds.values().sum();
    let rps = if stats.elapsed_s > 0.0 {
        stats.requests as f64 / stats.elapsed_s
    } else {
        0.0
    };
    let result = json!({
        "scenario": spec.scenario,
        "concurrency": spec.conc,
        "duration_s": spec.duration.as_secs_f64(),
        "service": spec.service,
        "generator": generator,
        "requests": stats.requests,
        "elapsed_s": stats.elapsed_s,
        "rps": rps,
        "latency_ms": {"p50": stats.p50_ms, "p90": stats.p90_ms, "p99": stats.p99_ms, "max": stats.max_ms},
        "responses": {"2xx": stats.ok, "409": stats.conflict, "429": stats.too_many, "other_non_2xx": stats.other},
        "socket_errors": stats.socket_errors,
        "cpu_ms_per_request": {"service": per_req(service_cpu), "all_services": per_req(all_cpu)},
        "proc": proc.to_json(),
        "extra": extra,
    });
    if let Some(dir) = spec.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&spec.out, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("cannot write {}", spec.out.display()))?;
    println!(
        "{:<22} c={:<3} {:>9.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  2xx {} 409 {} 429 {} other {} sock {}  cpu/req {:.3} ms ({} {:.3} ms)  peak RSS {} {:.1} MiB",
        spec.scenario,
        spec.conc,
        rps,
        stats.p50_ms,
        stats.p99_ms,
        stats.ok,
        stats.conflict,
        stats.too_many,
        stats.other,
        stats.socket_errors,
        per_req(all_cpu),
        spec.service,
        per_req(service_cpu),
        spec.service,
        proc.peak_rss_mib.get(&spec.service).copied().unwrap_or(0.0),
    );
    Ok(())
}

/// `wrk`: runs the trailing command with `BENCH_WRK_OUT` set and reads what its Lua `done()`
/// wrote there.
pub async fn run_wrk(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let spec = RunSpec::from_args(&args, "backend")?;
    let Some((program, wrk_args)) = args.trailing.split_first() else {
        bail!("the wrk command follows `--`");
    };
    let wrk_out = spec.out.with_extension("wrk.json");
    let wrk_txt = spec.out.with_extension("wrk.txt");
    if let Some(dir) = spec.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&wrk_out);
    let stdout = std::fs::File::create(&wrk_txt)?;
    let started = Instant::now();
    let (status, proc) = measured(&spec.pids, async {
        tokio::process::Command::new(program)
            .args(wrk_args)
            .env("BENCH_WRK_OUT", &wrk_out)
            .stdin(Stdio::null())
            .stdout(stdout)
            .status()
            .await
    })
    .await;
    let status = status.with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} failed ({status}); see {}", wrk_txt.display());
    }
    let w = read_json(&wrk_out)?;
    let num = |k: &str| w[k].as_f64().unwrap_or(0.0);
    let requests = num("requests") as u64;
    let conflict = num("c409") as u64;
    let too_many = num("c429") as u64;
    let other = num("other") as u64;
    let stats = LoadStats {
        requests,
        elapsed_s: if num("duration_us") > 0.0 {
            num("duration_us") / 1e6
        } else {
            started.elapsed().as_secs_f64()
        },
        p50_ms: num("p50_us") / 1000.0,
        p90_ms: num("p90_us") / 1000.0,
        p99_ms: num("p99_us") / 1000.0,
        max_ms: num("max_us") / 1000.0,
        ok: requests.saturating_sub(conflict + too_many + other),
        conflict,
        too_many,
        other,
        socket_errors: num("socket_errors") as u64,
    };
    write_result(&spec, "wrk", &stats, &proc, json!({"wrk": w}))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

pub(crate) fn http_client(conc: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Sleeps until the `j`-th request of worker `w` is due when `rate` > 0 (open loop).
pub(crate) async fn pace(start: Instant, rate: f64, conc: usize, w: usize, j: u64) {
    if rate > 0.0 {
        let due = start + Duration::from_secs_f64((j as f64 * conc as f64 + w as f64) / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Reads an answer into `t`: its status (`None` when there was none), keeping the first answer
/// for which `worth_keeping(status)` holds as the run's sample.
pub(crate) async fn tally_answer(
    t: &mut Tally,
    started: Instant,
    res: Result<reqwest::Response, reqwest::Error>,
    worth_keeping: impl Fn(u16) -> bool,
) {
    let status = match res {
        Ok(r) => {
            let s = r.status().as_u16();
            let body = r.bytes().await;
            if t.sample.is_none() && worth_keeping(s) {
                t.sample = body
                    .ok()
                    .map(|b| json!({"status": s, "body": String::from_utf8_lossy(&b)}));
            }
            Some(s)
        }
        Err(_) => None,
    };
    t.record(started, status);
}

/// A signed (v2, fresh timestamp and nonce) dry-run `scale_deployment` of bench deployment
/// `name` to 2 replicas.
pub(crate) fn signed_dry_run(key: &[u8], name: &str, reason: &str) -> ExecuteRequest {
    let mut params = Map::new();
    params.insert("namespace".into(), json!(NAMESPACE));
    params.insert("deploymentName".into(), json!(name));
    params.insert("replicas".into(), json!(2));
    params.insert("dryRun".into(), json!(true));
    let mut req = ExecuteRequest {
        action_type: ActionType::ScaleDeployment,
        action_params: params,
        requested_by: Some("aegis-loadgen".into()),
        policy_decision: Some(PolicyDecisionSummary {
            allowed: true,
            reason: reason.into(),
            applied_policies: vec!["bench".into()],
            decision_id: None,
            explanation: None,
        }),
        timestamp: None,
        nonce: None,
        signature: None,
    };
    req.sign_v2(key, chrono::Utc::now().timestamp_millis());
    req
}

/// Signal `k` of a loop run: round robin over the first `deployments` bench deployments,
/// `scale_up` on even rounds and `scale_down` on odd ones (so the deployments oscillate between
/// 1 and 2 replicas instead of growing to the cap), with a fingerprint of its own so that no
/// signal joins an open incident.
pub(crate) fn loop_signal(k: u64, deployments: u64, tag: &str) -> Value {
    let deployments = deployments.max(1);
    let name = deployment(usize::try_from(k % deployments).unwrap_or(0));
    let mut body = aegis_dev::client::cpu_signal(NAMESPACE, &name, 95.0, 5);
    if (k / deployments) % 2 == 1 {
        body["recommendedAction"] = json!("scale_down");
        body["prediction"]["recommended_action"] = json!("scale_down");
    }
    body["fingerprint"] = json!(format!("{tag}-{k}"));
    body
}

/// `execute`: dry-run `scale_deployment` of the worker's own bench deployment (no two workers
/// contend for one per-resource lock), each request freshly signed (v2: timestamp + nonce).
pub async fn run_execute(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let mut spec = RunSpec::from_args(&args, "executor")?;
    if args.str("scenario").is_err() {
        "execute-dry-run".clone_into(&mut spec.scenario);
    }
    let url = format!(
        "{}/executor/execute",
        state_str(&spec.state, "/urls/executor")?
    );
    let key = state_str(&spec.state, "/secrets/hmac")?.as_bytes().to_vec();
    let deployments = spec.state["deployments"].as_u64().unwrap_or(1).max(1) as usize;
    let http = http_client(spec.conc)?;
    let deadline = Instant::now() + spec.duration;
    let start = Instant::now();
    let (tallies, proc) = measured(&spec.pids, async {
        let mut tasks = Vec::new();
        for w in 0..spec.conc {
            let http = http.clone();
            let url = url.clone();
            let key = key.clone();
            let name = deployment(w % deployments);
            tasks.push(tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let req = signed_dry_run(&key, &name, "bench");
                    let res = http.post(&url).json(&req).send().await;
                    tally_answer(&mut t, started, res, |s| s != 200).await;
                }
                t
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap_or_default());
        }
        out
    })
    .await;
    let (stats, sample) = stats_of(tallies, start.elapsed());
    write_result(
        &spec,
        "aegis-loadgen execute",
        &stats,
        &proc,
        json!({"first_non_200": sample}),
    )
}

/// Cumulative `remediation_loop_duration_seconds` buckets (all actions summed): (le, count).
async fn loop_histogram(http: &reqwest::Client, backend: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    let text = http
        .get(format!("{backend}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut buckets: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("remediation_loop_duration_seconds_bucket{") else {
            continue;
        };
        let Some(le_at) = rest.find("le=\"") else {
            continue;
        };
        let le_str = &rest[le_at + 4..];
        let Some(end) = le_str.find('"') else {
            continue;
        };
        let le_text = &le_str[..end];
        let le = if le_text == "+Inf" {
            f64::INFINITY
        } else {
            le_text.parse().unwrap_or(f64::INFINITY)
        };
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let e = buckets.entry(le_text.to_owned()).or_insert((le, 0.0));
        e.1 += count;
    }
    let mut v: Vec<(f64, f64)> = buckets.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(v)
}

/// `histogram_quantile` over cumulative buckets, linear inside a bucket, in ms.
fn quantile_ms(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0 * 1000.0);
            }
            let inside = count - prev.1;
            let frac = if inside > 0.0 {
                (rank - prev.1) / inside
            } else {
                1.0
            };
            return Some((prev.0 + (le - prev.0) * frac) * 1000.0);
        }
        prev = (le, count);
    }
    None
}

/// `loop`: contract-4 CPU signals, each for the next bench deployment (round robin over all of
/// them, scale_up on even rounds and scale_down on odd ones) and with its own fingerprint, so
/// no signal joins an open incident. The HTTP figures
/// are the intake (202); the loop latency comes from the backend's histogram, read before the
/// run and again once the backlog has drained.
pub async fn run_loop(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let mut spec = RunSpec::from_args(&args, "backend")?;
    if args.str("scenario").is_err() {
        "loop".clone_into(&mut spec.scenario);
    }
    let rate: f64 = args.get_or("rate", 0.0)?;
    let backend = state_str(&spec.state, "/urls/backend")?.to_owned();
    let key = state_str(&spec.state, "/secrets/service_key")?.to_owned();
    let deployments = spec.state["deployments"].as_u64().unwrap_or(1).max(1);
    // Successive loop runs continue the round robin where the previous one stopped.
    let offset_file = args.path("state")?.with_extension("loop-offset");
    let offset: u64 = std::fs::read_to_string(&offset_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let http = http_client(spec.conc)?;
    let before = loop_histogram(&http, &backend).await?;
    let counter = Arc::new(AtomicU64::new(offset));
    let run_tag = format!("{}-c{}", spec.scenario, spec.conc);
    let deadline = Instant::now() + spec.duration;
    let start = Instant::now();
    let (tallies, proc) = measured(&spec.pids, async {
        let mut tasks = Vec::new();
        for w in 0..spec.conc {
            let http = http.clone();
            let url = format!("{backend}/api/v1/remediation/signals");
            let key = key.clone();
            let counter = counter.clone();
            let conc = spec.conc;
            let run_tag = run_tag.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = Tally::default();
                let mut j = 0u64;
                loop {
                    pace(start, rate, conc, w, j).await;
                    j += 1;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    let body = loop_signal(k, deployments, &run_tag);
                    let started = Instant::now();
                    let res = http
                        .post(&url)
                        .header("X-API-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    tally_answer(&mut t, started, res, |_| true).await;
                }
                t
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap_or_default());
        }
        // Drain: the loop runs after the 202. Wait until every accepted signal has reached
        // the executor, or the histogram has not moved for 10 s (some signals end before the
        // executor, e.g. on an approval), at most 180 s.
        let accepted: u64 = out.iter().map(|t| t.ok).sum();
        let base = before.last().map_or(0.0, |b| b.1);
        let sent_at = Instant::now();
        let mut last = -1.0;
        let mut still_since = Instant::now();
        while sent_at.elapsed() < Duration::from_secs(180) {
            let now = loop_histogram(&http, &backend)
                .await
                .ok()
                .and_then(|h| h.last().map(|b| b.1))
                .unwrap_or(0.0);
            if now - base >= accepted as f64 {
                break;
            }
            if (now - last).abs() < f64::EPSILON {
                if still_since.elapsed() >= Duration::from_secs(10) {
                    break;
                }
            } else {
                still_since = Instant::now();
                last = now;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (out, sent_at.elapsed())
    })
    .await;
    let (tallies, drain) = tallies;
    let after = loop_histogram(&http, &backend).await?;
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let b = before
                .iter()
                .find(|(l, _)| l.total_cmp(le).is_eq())
                .map_or(0.0, |x| x.1);
            (*le, c - b)
        })
        .collect();
    let loops = delta.last().map_or(0.0, |b| b.1);
    let within = |limit: f64| {
        delta
            .iter()
            .find(|(le, _)| (*le - limit).abs() < 1e-9)
            .map(|b| if loops > 0.0 { b.1 / loops } else { 0.0 })
    };
    let (stats, sample) = stats_of(tallies, spec.duration);
    let extra = json!({
        "paced_rate_per_s": rate,
        "loops_completed": loops,
        "loop_ms": {
            "p50": quantile_ms(&delta, 0.5),
            "p90": quantile_ms(&delta, 0.9),
            "p99": quantile_ms(&delta, 0.99),
        },
        "loop_share_within_20ms": within(0.02),
        "loop_share_within_50ms": within(0.05),
        "loop_buckets_delta": delta.iter().map(|(le, c)| json!([if le.is_finite() { json!(le) } else { json!("+Inf") }, c])).collect::<Vec<_>>(),
        "drain_after_last_signal_s": drain.as_secs_f64(),
        "first_answer": sample,
        "next_offset": counter.load(Ordering::Relaxed),
    });
    let _ = std::fs::write(&offset_file, counter.load(Ordering::Relaxed).to_string());
    write_result(&spec, "aegis-loadgen loop", &stats, &proc, extra)?;
    println!(
        "{:<22}        loops {} (of {} signals)  loop p50 {} ms  p99 {} ms  within 20 ms {:.1}%  drained {:.1} s after the last signal",
        "",
        loops,
        stats.requests,
        fmt_opt(quantile_ms(&delta, 0.5)),
        fmt_opt(quantile_ms(&delta, 0.99)),
        within(0.02).unwrap_or(0.0) * 100.0,
        drain.as_secs_f64(),
    );
    Ok(())
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

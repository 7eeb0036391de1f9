//! The Prometheus feed against a real Prometheus whose history is backfilled with
//! `promtool tsdb create-blocks-from openmetrics` (no waiting for live scrapes).

use std::{
    net::TcpListener,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use aegis_ai_engine::feed::{Feed, FeedConfig, parse_queries};
use axum::{Json, Router, extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    url: String,
    _child: tokio::process::Child,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("aegis-{tag}-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Backfills `openmetrics` and starts Prometheus on it.
async fn start_prometheus(openmetrics: &str) -> Prometheus {
    let dir = tempdir::Dir::new("prometheus");
    let om = dir.0.join("history.om");
    std::fs::write(&om, openmetrics).unwrap();
    let data = dir.0.join("data");
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect(
            "promtool is installed (scripts/prepare-test-env.sh installs the prometheus package)",
        );
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let child = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=3650d")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus is installed (scripts/prepare-test-env.sh installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/-/ready")).send().await
            && r.status().is_success()
        {
            return Prometheus {
                url,
                _child: child,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("prometheus did not become ready");
}

/// Every 15 s for ~55 minutes: `api` hovers around 41 % and spikes to 97 % in the last
/// sample; `worker` stays flat around 30 %.
fn history(now: i64) -> String {
    let mut out = String::from(
        "# HELP kube_sim_pod_cpu_usage_percent CPU\n# TYPE kube_sim_pod_cpu_usage_percent gauge\n",
    );
    let start = now - 55 * 60;
    let end = now - 60;
    let mut t = start;
    let mut i = 0;
    let mut api = Vec::new();
    let mut worker = Vec::new();
    while t <= end {
        let noise = f64::from((i * 7) % 5) - 2.0;
        api.push((t, if t + 15 > end { 97.0 } else { 41.0 + noise }));
        worker.push((
            t,
            if t + 15 > end {
                30.0
            } else {
                30.0 + noise / 2.0
            },
        ));
        t += 15;
        i += 1;
    }
    for (t, v) in api {
        out.push_str(&format!(
            "kube_sim_pod_cpu_usage_percent{{namespace=\"production\",deployment=\"api\",pod=\"api-7d9f-x1\"}} {v} {t}\n"
        ));
    }
    for (t, v) in worker {
        out.push_str(&format!(
            "kube_sim_pod_cpu_usage_percent{{namespace=\"production\",deployment=\"worker\",pod=\"worker-5c4b-a1\"}} {v} {t}\n"
        ));
    }
    out.push_str("# EOF\n");
    out
}

/// The feed of the first tests: every pod's CPU over the last 50 minutes, reported to `backend`.
fn cpu_feed(prometheus: &str, backend: String) -> FeedConfig {
    FeedConfig {
        prometheus_url: prometheus.to_owned(),
        interval: Duration::from_secs(300),
        lookback: Duration::from_secs(50 * 60),
        step: "15s".into(),
        queries: parse_queries(
            "- category: workload\n  metric_type: cpu_usage\n  query: kube_sim_pod_cpu_usage_percent\n",
        )
        .unwrap(),
        backend_url: Some(backend),
        backend_api_key: Some("service-key".to_owned().into()),
    }
}

type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// Records signals the way the backend's endpoint receives them (202).
async fn signal_sink() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/api/v1/remediation/signals",
            post(|State(r): State<Received>, headers: HeaderMap, Json(body): Json<Value>| async move {
                r.lock().unwrap().push((headers, body));
                (axum::http::StatusCode::ACCEPTED, Json(json!({"incidentId": "i", "correlationId": "c", "deduplicated": false})))
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn feed_scores_each_workload_and_reports_the_spike_as_a_signal() {
    let now = chrono::Utc::now();
    let prometheus = start_prometheus(&history(now.timestamp())).await;
    let (backend, received) = signal_sink().await;
    let app = spawn_app().await;

    let cfg = cpu_feed(&prometheus.url, backend);
    let state = app_state(&app).await;
    let report = Feed::new(cfg).run_once(&state, now).await;
    assert_eq!(report.failed_queries, 0, "{report:?}");
    assert_eq!(
        report.groups, 2,
        "one detection per (category, namespace, deployment): {report:?}"
    );
    assert_eq!(report.anomalies, 1, "{report:?}");
    assert_eq!(report.signals_sent, 1, "{report:?}");

    let got = received.lock().unwrap().clone();
    let (headers, signal) = &got[0];
    assert_eq!(headers["x-api-key"], "service-key");
    assert!(headers.contains_key("traceparent"));
    assert_eq!(signal["source"], "ai-engine");
    assert_eq!(signal["kind"], "anomaly");
    assert_eq!(
        signal["target"],
        json!({"namespace": "production", "deployment": "api", "pod": "api-7d9f-x1"})
    );
    assert_eq!(signal["prediction"]["is_anomaly"], true);
    let metrics = signal["window"]["metrics"].as_array().unwrap();
    assert!(metrics.len() > 100);
    assert_eq!(metrics[0]["labels"]["deployment"], "api");
    assert!(metrics.iter().any(|m| m["value"] == 97.0));

    let stats = app.wait_stats(|s| s["total_predictions"] == 2).await;
    assert_eq!(stats["total_anomalies_detected"], 1);
}

/// Every 15 s from 30 minutes before `now` to 3 minutes after it: `api` is flat at 41 % except
/// a spike to 97 % in the two samples ending at `now` and a second one 75 s after `now`.
fn spike_then_recovery(now: i64) -> String {
    let mut out = String::from(
        "# HELP kube_sim_pod_cpu_usage_percent CPU\n# TYPE kube_sim_pod_cpu_usage_percent gauge\n",
    );
    let mut t = now - 30 * 60;
    while t <= now + 180 {
        let v = if t == now - 15 || t == now || t == now + 75 {
            97.0
        } else {
            41.0
        };
        out.push_str(&format!(
            "kube_sim_pod_cpu_usage_percent{{namespace=\"production\",deployment=\"api\",pod=\"api-7d9f-x1\"}} {v} {t}\n"
        ));
        t += 15;
    }
    out.push_str("# EOF\n");
    out
}

#[tokio::test]
async fn a_reported_spike_is_not_reported_again_but_a_new_one_in_later_data_is() {
    let now = chrono::Utc::now();
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap();
    let prometheus = start_prometheus(&spike_then_recovery(now.timestamp())).await;
    let (backend, received) = signal_sink().await;
    let app = spawn_app().await;
    let state = app_state(&app).await;
    let mut feed = Feed::new(FeedConfig {
        prometheus_url: prometheus.url.clone(),
        interval: Duration::from_secs(15),
        lookback: Duration::from_secs(20 * 60),
        step: "15s".into(),
        queries: parse_queries(
            "- category: workload\n  metric_type: cpu_usage\n  query: kube_sim_pod_cpu_usage_percent\n",
        )
        .unwrap(),
        backend_url: Some(backend),
        backend_api_key: None,
    });
    let at = |secs: i64| now + chrono::Duration::seconds(secs);

    let first = feed.run_once(&state, at(0)).await;
    assert_eq!((first.anomalies, first.signals_sent), (1, 1), "{first:?}");

    // The same window again (nothing newer than the signal): nothing is scored or sent, although
    // the spike is still the window's last point.
    let again = feed.run_once(&state, at(0)).await;
    assert_eq!(again.groups, 0, "{again:?}");
    assert_eq!(again.waiting_for_fresh_data, 1, "{again:?}");
    assert_eq!(again.signals_sent, 0, "{again:?}");

    // Two new samples are not enough to judge; four recovered ones are scored and are normal.
    let short = feed.run_once(&state, at(30)).await;
    assert_eq!(short.waiting_for_fresh_data, 1, "{short:?}");
    let recovered = feed.run_once(&state, at(60)).await;
    assert_eq!(
        (
            recovered.groups,
            recovered.anomalies,
            recovered.signals_sent
        ),
        (1, 0, 0),
        "{recovered:?}"
    );

    // A second spike in data newer than the first signal is reported, with only that data.
    let second = feed.run_once(&state, at(75)).await;
    assert_eq!(
        (second.anomalies, second.signals_sent),
        (1, 1),
        "{second:?}"
    );
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let first_window = got[0].1["window"]["metrics"].as_array().unwrap();
    assert!(
        first_window.len() > 70,
        "the whole look-back: {}",
        first_window.len()
    );
    let second_window = got[1].1["window"]["metrics"].as_array().unwrap();
    let newest_reported = aegis_common::time::rfc3339_millis(now);
    assert_eq!(second_window.len(), 5, "{second_window:#?}");
    assert!(
        second_window
            .iter()
            .all(|m| m["timestamp"].as_str().unwrap() > newest_reported.as_str()),
        "only samples after the first signal: {second_window:#?}"
    );
    assert_eq!(second_window.last().unwrap()["value"], 97.0);
}

#[tokio::test]
async fn an_unreachable_or_broken_prometheus_is_skipped_not_fatal() {
    let app = spawn_app().await;
    let state = app_state(&app).await;
    let cfg = FeedConfig {
        prometheus_url: "http://127.0.0.1:9".into(),
        interval: Duration::from_secs(300),
        lookback: Duration::from_secs(600),
        step: "15s".into(),
        queries: aegis_ai_engine::feed::default_queries(),
        backend_url: None,
        backend_api_key: None,
    };
    let queries = cfg.queries.len();
    let report = Feed::new(cfg).run_once(&state, chrono::Utc::now()).await;
    assert_eq!(report.failed_queries, queries);
    assert_eq!(report.groups, 0);
    assert!(parse_queries("- category: x\n  metric_type: bogus\n  query: up\n").is_err());
}

/// A second engine on the app's database, for calling the feed in-process.
async fn app_state(app: &crate::helpers::TestApp) -> aegis_ai_engine::state::AppState {
    let mut env = aegis_common::config::Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
    ]);
    env.set("DATABASE_URL", app.database_url.clone());
    let config = aegis_ai_engine::config::Config::from_env(&env).unwrap();
    let built = aegis_ai_engine::startup::Application::build(config)
        .await
        .unwrap();
    let state = built.state().clone();
    for _ in 0..100 {
        if state.models_loaded() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::spawn(built.run_until(std::future::pending()));
    state
}

/// With several replicas every feed reads the same samples, and each scores only the series
/// it owns: the api's spike is left to the replica that owns the api.
#[tokio::test]
async fn each_replicas_feed_scores_only_the_series_it_owns() {
    let now = chrono::Utc::now();
    let prometheus = start_prometheus(&history(now.timestamp())).await;
    let (backend, received) = signal_sink().await;
    let app = spawn_app().await;
    let state = app_state(&app).await;
    let api = "production/api|cpu_usage";
    let worker = "production/worker|cpu_usage";
    let other = (1..5000)
        .map(|port| format!("http://10.0.0.1:{port}"))
        .find(|other| {
            state.ring.set(
                app.address.clone(),
                vec![app.address.clone(), other.clone()],
            );
            state.ring.owner(api).as_deref() == Some(other) && state.ring.owner(worker).is_none()
        })
        .expect("a member that owns the api and not the worker");
    assert_eq!(state.ring.owner(api), Some(other));

    let cfg = cpu_feed(&prometheus.url, backend);
    let report = Feed::new(cfg).run_once(&state, now).await;
    assert_eq!(report.failed_queries, 0, "{report:?}");
    assert_eq!(
        (report.groups, report.owned_elsewhere),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(
        (report.anomalies, report.signals_sent),
        (0, 0),
        "{report:?}"
    );
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(
        state.engine.series_count(),
        1,
        "only the worker's series is held here"
    );
}

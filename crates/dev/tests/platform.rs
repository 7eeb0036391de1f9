//! Platform assets against the real services (issue 10):
//! * every metric name used by `observability/prometheus/alerts.yml` and the Grafana dashboards
//!   exists in some service's `/metrics` (`# TYPE` lines), apart from standard exporter metrics;
//! * a real `prometheus` process, configured from the project's `prometheus.yml` with the targets
//!   pointed at locally started services, scrapes all of them and loads the alert rules.
//!
//! Both tests start kube-sim and the three services with [`aegis_dev::Stack`]; the binaries must
//! be built (`cargo build -p kube-sim -p aegis-backend -p aegis-ai-engine -p aegis-executor`).
//! They fail, never skip, when a binary or `prometheus` is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use aegis_dev::Stack;
use serde_json::Value;
use support::{repo, unique};

mod support;

async fn start_stack(tag: &str) -> Stack {
    support::start_stack(tag, &[]).await
}

/// The scraped services: (name in `Stack::urls`, compose service name of `prometheus.yml`).
const SERVICES: [(&str, &str); 3] = [
    ("backend", "backend"),
    ("ai-engine", "ai-engine"),
    ("executor", "executor"),
];

/// `# TYPE name kind` of every service's `/metrics`, kube-sim included.
async fn metric_families(stack: &Stack) -> BTreeMap<String, String> {
    let client = reqwest::Client::new();
    let mut families = BTreeMap::new();
    for name in ["backend", "ai-engine", "executor", "kube-sim"] {
        let url = format!("{}/metrics", stack.urls[name]);
        let res = client.get(&url).send().await.unwrap();
        assert!(res.status().is_success(), "{url}: {}", res.status());
        let text = res.text().await.unwrap();
        let before = families.len();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(n), Some(k)) = (it.next(), it.next()) {
                    families.insert(n.to_owned(), k.to_owned());
                }
            }
        }
        assert!(families.len() > before, "{url} exposes no metric family");
    }
    families
}

/// PromQL keywords and aggregation operators (`sum by (x) (...)` is not followed by `(`).
const KEYWORDS: [&str; 28] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Metric names referenced by a PromQL expression: identifiers that are not functions,
/// keywords, label names (inside `{}` or after by/on/...), strings, durations or numbers.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut brace = 0usize;
    let mut bracket = 0usize;
    // Depth of a `(` that opened a grouping label list (by/without/on/ignoring/group_*).
    let mut label_list: Vec<usize> = Vec::new();
    let mut paren = 0usize;
    let mut expect_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' => brace += 1,
            '}' => brace = brace.saturating_sub(1),
            '[' => bracket += 1,
            ']' => bracket = bracket.saturating_sub(1),
            '(' => {
                paren += 1;
                if expect_label_list {
                    label_list.push(paren);
                    expect_label_list = false;
                }
            }
            ')' => {
                if label_list.last() == Some(&paren) {
                    label_list.pop();
                }
                paren = paren.saturating_sub(1);
            }
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prev = chars[..start].iter().rev().find(|c| !c.is_whitespace());
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                expect_label_list = next == Some('(');
                continue;
            }
            let is_number_part = prev.is_some_and(|p| p.is_ascii_digit() || *p == '.');
            if brace == 0
                && bracket == 0
                && label_list.is_empty()
                && next != Some('(')
                && !KEYWORDS.contains(&lower.as_str())
                && !is_number_part
                && !word.starts_with('$')
            {
                out.insert(word);
            }
            continue;
        }
        if c == '$' {
            // Grafana variables ($__rate_interval, ${var}).
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '{' | '}'))
            {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

#[test]
fn the_promql_name_extractor_ignores_labels_functions_and_durations() {
    let names = promql_metric_names(
        r#"sum by (service) (rate(http_requests_total{status=~"5..", job="x"}[5m])) / on (instance) group_left max by (instance) (pg_settings_max_connections) > 0.8 and up == 1e3"#,
    );
    let expected: BTreeSet<String> = ["http_requests_total", "pg_settings_max_connections", "up"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
}

/// Exporter and Prometheus-internal metrics that no Aegis service exports.
fn allowed_external(name: &str) -> bool {
    name == "up"
        || name == "ALERTS"
        || name == "ALERTS_FOR_STATE"
        || ["node_", "pg_", "redis_", "prometheus_"]
            .iter()
            .any(|p| name.starts_with(p))
}

fn alert_exprs() -> Vec<(String, String)> {
    let path = repo().join("observability/prometheus/alerts.yml");
    let doc: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or_else(|| rule["record"].as_str())
                .unwrap();
            out.push((
                format!("alerts.yml {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert!(out.len() >= 17, "alerts.yml has {} rules", out.len());
    out
}

fn provisioned_datasource_uids() -> BTreeSet<String> {
    let path = repo().join("observability/grafana/provisioning/datasources/datasources.yml");
    let doc: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap().to_owned())
        .collect()
}

/// PromQL of every dashboard panel, after checking the dashboards are provisionable.
fn dashboard_exprs() -> Vec<(String, String)> {
    let uids = provisioned_datasource_uids();
    let dir = repo().join("observability/grafana/dashboards");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the dashboards in {}",
        dir.display()
    );
    let mut seen_uids = BTreeSet::new();
    for file in files {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let f = file.display().to_string();
        assert!(d.get("dashboard").is_none(), "{f}: API envelope");
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && seen_uids.insert(uid.to_owned()),
            "{f}: uid"
        );
        assert!(
            !d["title"].as_str().unwrap_or_default().is_empty(),
            "{f}: title"
        );
        for panel in d["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap_or_default();
            let mut sources = vec![&panel["datasource"]];
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            for t in &targets {
                if !t["datasource"].is_null() {
                    sources.push(&t["datasource"]);
                }
            }
            for s in sources {
                let ds = s["uid"].as_str().unwrap_or_default();
                assert!(
                    uids.contains(ds),
                    "{f} panel {title:?}: datasource uid {ds:?}"
                );
            }
            for t in &targets {
                let ds = t["datasource"]["uid"]
                    .as_str()
                    .or_else(|| panel["datasource"]["uid"].as_str())
                    .unwrap_or_default();
                if ds == "prometheus" {
                    out.push((
                        format!("{f} panel {title:?}"),
                        t["expr"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_in_alerts_and_dashboards_is_exported() {
    let stack = start_stack("platform_metrics").await;
    let families = metric_families(&stack).await;
    stack.stop().await;

    let mut missing = Vec::new();
    let mut checked = 0;
    for (origin, expr) in alert_exprs().into_iter().chain(dashboard_exprs()) {
        for name in promql_metric_names(&expr) {
            checked += 1;
            if allowed_external(&name) || families.contains_key(&name) {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| {
                    families
                        .get(*b)
                        .is_some_and(|k| k == "histogram" || k == "summary")
                });
            if base.is_none() {
                missing.push(format!("{origin}: {name}"));
            }
        }
    }
    assert!(checked > 50, "only {checked} metric references found");
    assert!(
        missing.is_empty(),
        "metrics used but not exported by any service:\n  {}",
        missing.join("\n  ")
    );
}

fn prometheus_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "prometheus is not installed (Debian: apt-get install prometheus; or set \
                 PROMETHEUS_BIN): this test needs a real Prometheus"
            )
        })
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// The project's `prometheus.yml` with only the Aegis jobs, their targets pointed at the local
/// services, a 1 s scrape interval and the real `alerts.yml`.
fn render_prometheus_config(stack: &Stack) -> String {
    let path = repo().join("observability/prometheus/prometheus.yml");
    let mut doc: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let map = doc.as_object_mut().unwrap();
    map.remove("alerting");
    map.insert(
        "rule_files".into(),
        serde_json::json!([repo()
            .join("observability/prometheus/alerts.yml")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()]),
    );
    map["global"]["scrape_interval"] = "1s".into();
    map["global"]["evaluation_interval"] = "1s".into();
    let jobs = map["scrape_configs"].as_array().unwrap().clone();
    let mut kept = Vec::new();
    for (name, compose) in SERVICES {
        let job_name = format!("aegis-{name}");
        let mut job = jobs
            .iter()
            .find(|j| j["job_name"] == job_name.as_str())
            .unwrap_or_else(|| panic!("prometheus.yml has no job {job_name}"))
            .clone();
        assert_eq!(
            job["metrics_path"].as_str().unwrap_or("/metrics"),
            "/metrics",
            "{job_name}"
        );
        let targets = job["static_configs"][0]["targets"].as_array().unwrap();
        assert!(
            targets.iter().any(|t| t
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{compose}:")))),
            "{job_name} targets {targets:?}"
        );
        job["static_configs"][0]["targets"] = serde_json::json!([host_port(&stack.urls[name])]);
        job["scrape_interval"] = "1s".into();
        kept.push(job);
    }
    map.insert("scrape_configs".into(), Value::Array(kept));
    serde_norway::to_string(&doc).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_every_service_with_the_project_config() {
    let prometheus = prometheus_binary();
    let stack = start_stack("platform_prom").await;

    let dir = std::env::temp_dir().join(unique("aegis-prometheus"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, render_prometheus_config(&stack)).unwrap();
    let port = aegis_common::server::unused_port().unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let mut child = tokio::process::Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    let outcome = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Err(format!("prometheus exited ({status})"));
        }
        if let Ok(res) = client.get(format!("{base}/api/v1/targets")).send().await
            && let Ok(body) = res.json::<Value>().await
        {
            let active = body["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let all_up =
                active.len() == SERVICES.len() && active.iter().all(|t| t["health"] == "up");
            last = body;
            if all_up {
                break Ok(active);
            }
        }
        if Instant::now() > deadline {
            break Err(format!("not all targets up within 60 s: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let rules: Value = client
        .get(format!("{base}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill().await;
    stack.stop().await;
    let log_text = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let active = outcome.unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{log_text}"));
    let jobs: BTreeSet<&str> = active
        .iter()
        .filter_map(|t| t["labels"]["job"].as_str())
        .collect();
    assert_eq!(
        jobs,
        ["aegis-ai-engine", "aegis-backend", "aegis-executor"]
            .into_iter()
            .collect()
    );
    for t in &active {
        assert!(
            t["labels"]["service"].is_string(),
            "scrape labels missing: {t}"
        );
    }
    let groups = rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let loaded: usize = groups
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(
        loaded >= 17,
        "alerts.yml rules loaded by Prometheus: {loaded}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

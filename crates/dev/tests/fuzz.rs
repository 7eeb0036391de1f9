//! Schemathesis against each running service (issue 12): kube-sim and the three services run as
//! separate processes (the real binaries), and a pinned `schemathesis` (installed in a
//! virtualenv by `scripts/prepare-test-env.sh`) generates requests from each service's own
//! `/openapi.json`, with valid credentials. The run fails on any response ≥ 500, any response
//! whose status, content type or body the document does not describe, or a crash; each service
//! must have answered at least 1,000 generated requests (counted by the service itself, from
//! `http_requests_total`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::PathBuf, time::Duration};

use aegis_dev::{Stack, client::Client};

mod support;

/// Where `scripts/prepare-test-env.sh` puts the pinned schemathesis.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS_BIN").map_or_else(
        || PathBuf::from("/var/cache/aegis/schemathesis-venv/bin/st"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "schemathesis is not installed at {} (run scripts/prepare-test-env.sh, or set \
         SCHEMATHESIS_BIN): this test needs it",
        path.display()
    );
    path
}

/// Requests the service has answered so far (sum of `http_requests_total`).
async fn served(url: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs schemathesis against `service` with `headers` (and `extra` arguments, e.g. filters);
/// returns how many requests the service answered.
async fn fuzz(
    stack: &Stack,
    service: &str,
    headers: &[String],
    max_examples: u32,
    extra: &[&str],
) -> f64 {
    let url = &stack.urls[service];
    let before = served(url).await;
    let mut cmd = tokio::process::Command::new(schemathesis());
    cmd.arg("run")
        .arg(format!("{url}/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &max_examples.to_string(),
            // One worker: CPython 3.11 can fail `ast.parse` under threads ("AST constructor
            // recursion depth mismatch"), which hypothesis does while describing filters.
            "--workers",
            "1",
            "--request-timeout",
            "20",
            // Fuzzing repeats until this budget is spent: enough for well over 1,000 requests,
            // and a bound on CI time.
            "--max-time",
            "45",
            "--seed",
            "20261125",
            "--no-color",
        ])
        .kill_on_drop(true);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.args(extra);
    // Its caches (`.schemathesis`, `.hypothesis`) go to the run directory, not the clone.
    cmd.current_dir(&stack.run_dir);
    let out = tokio::time::timeout(Duration::from_secs(150), cmd.output())
        .await
        .expect("schemathesis finishes within 150 s")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let requests = served(url).await - before;
    assert!(
        out.status.success(),
        "schemathesis found problems in {service}:\n{stdout}\n{}\n--- {service} log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.log_tail(service, 30)
    );
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Tested"))
        .collect();
    println!("{service}: {requests} requests answered; {summary:?}");
    requests
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_or_schema_mismatch_in_any_service() {
    let stack = support::start_stack_with(
        "fuzz",
        &[
            ("RATE_LIMIT_DISABLED", "true"),
            ("REMEDIATION_MODE", "dry_run"),
        ],
        &[
            ("HTTP_RATE_LIMIT_MAX", "1000000"),
            ("RATE_LIMIT_RESTART_MAX", "1000000"),
            ("RATE_LIMIT_SCALE_MAX", "1000000"),
            ("RATE_LIMIT_CRITICAL_ACTIONS", "1000000"),
        ],
    )
    .await;
    let secrets = stack.secrets.clone();

    let executor = fuzz(
        &stack,
        "executor",
        &[
            format!("Authorization: Bearer {}", secrets.audit_token),
            format!("X-API-Key: {}", secrets.service_key),
        ],
        60,
        &[],
    )
    .await;
    assert!(
        executor >= 1000.0,
        "executor answered only {executor} requests"
    );

    let ai = fuzz(
        &stack,
        "ai-engine",
        &[format!("X-API-Key: {}", secrets.ai_key)],
        60,
        &[],
    )
    .await;
    assert!(ai >= 1000.0, "ai-engine answered only {ai} requests");

    // The backend as its admin (JWT) with the service key too, so every route is reachable.
    // The calls that can lock the admin out (logout, its roles, password or account) run last,
    // in a second pass, so they do not turn the rest of the run into 401s.
    let admin = Client::login(&stack).await.unwrap();
    let headers = [
        format!("Authorization: Bearer {}", admin.access_token()),
        format!("X-API-Key: {}", secrets.service_key),
    ];
    let lockout = "^/api/v1/(auth/logout|users/\\{id\\}.*)$";
    let mut backend = fuzz(
        &stack,
        "backend",
        &headers,
        30,
        &["--exclude-path-regex", lockout],
    )
    .await;
    backend += fuzz(
        &stack,
        "backend",
        &headers,
        30,
        &["--include-path-regex", lockout, "--max-time", "20"],
    )
    .await;
    assert!(
        backend >= 1000.0,
        "backend answered only {backend} requests"
    );

    stack.stop().await;
}

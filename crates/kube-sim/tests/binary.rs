//! The `kube-sim` binary: starts on a free port, writes its kubeconfig and serves the seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Starts the binary on a free port with `args` and waits (up to 10 s) for the kubeconfig it
/// writes into a fresh directory.
fn start(
    args: &[&str],
    stderr: std::process::Stdio,
) -> (std::path::PathBuf, std::path::PathBuf, std::process::Child) {
    let dir = std::env::temp_dir().join(format!("kube-sim-bin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--port", "0"])
        .args(args)
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !kubeconfig.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    (dir, kubeconfig, child)
}

#[test]
fn the_binary_writes_a_kubeconfig_and_serves_the_demo_seed() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/demo.yaml");
    let args = ["--token", "bin-test-token", "--seed", seed];
    let (dir, kubeconfig, mut child) = start(&args, std::process::Stdio::null());
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["users"][0]["user"]["token"], "bin-test-token");
    let server = doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = server.strip_prefix("http://").unwrap().to_owned();

    let get = |path: &str, token: Option<&str>| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: kube-sim\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let deployments = get(
        "/apis/apps/v1/namespaces/production/deployments",
        Some("bin-test-token"),
    );
    assert!(deployments.starts_with("HTTP/1.1 200"), "{deployments}");
    assert!(deployments.contains("\"name\":\"api\""));
    let denied = get("/apis/apps/v1/namespaces/production/deployments", None);
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(denied.contains("\"reason\":\"Unauthorized\""));
    let metrics = get("/metrics", None);
    assert!(
        metrics
            .contains("kube_sim_pod_cpu_usage_percent{namespace=\"production\",deployment=\"api\"")
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_binary_rejects_unknown_flags_with_a_clear_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument \"--bogus\""));
}

#[test]
fn the_binary_stops_cleanly_on_sigterm() {
    let (dir, kubeconfig, mut child) = start(&[], std::process::Stdio::piped());
    assert!(kubeconfig.exists(), "kube-sim did not start");

    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "kube-sim ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("kube-sim shutting down"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

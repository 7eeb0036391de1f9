//! `aegisctl` against the real binaries (kube-sim with TLS, as the demo runs it), and the
//! demo script's own checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use aegis_dev::client::{Client, allow_policy, cpu_signal};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const WAIT: Duration = Duration::from_secs(60);
const FINAL: &[&str] = &["resolved", "suppressed", "escalated", "failed", "rejected"];

/// One run of the CLI: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.out, self.err))
    }
}

struct Ctl {
    bin: PathBuf,
    config: PathBuf,
    server: String,
}

impl Ctl {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("AEGISCTL_CONFIG", &self.config)
            .env("AEGIS_SERVER", &self.server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self.command(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("aegisctl {args:?} did not finish within {WAIT:?}"))
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    /// Runs and insists on `code`.
    async fn expect(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(
            run.code, code,
            "aegisctl {args:?}\nstdout: {}\nstderr: {}",
            run.out, run.err
        );
        run
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(support::unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn steps(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

async fn tamper_executor_audit(database_url: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
    for statement in [
        "ALTER TABLE action_audit_logs DISABLE TRIGGER action_audit_logs_guard",
        "UPDATE action_audit_logs SET namespace = 'tampered' WHERE chain_seq = 1",
        "ALTER TABLE action_audit_logs ENABLE TRIGGER action_audit_logs_guard",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn aegisctl_runs_the_on_call_tasks_against_the_real_services() {
    let (stack, executor_db) = support::start_stack_tls(
        "ctl",
        &[
            ("REMEDIATION_MODE", "auto"),
            ("REMEDIATION_VERIFY_DELAY_SECONDS", "1"),
            ("REMEDIATION_COOLDOWN_SECONDS", "1"),
            ("RATE_LIMIT_MAX", "100000"),
        ],
    )
    .await;
    let bin = support::bin_dir().join("aegisctl");
    assert!(
        bin.exists(),
        "{} is not built: cargo build -p aegisctl",
        bin.display()
    );
    let dir = scratch_dir("aegisctl");
    let ctl = Ctl {
        bin,
        config: dir.join("aegis/credentials.json"),
        server: stack.urls["backend"].clone(),
    };
    let c = Client::login(&stack).await.unwrap();
    let password = stack.secrets.admin_password.clone();

    // Not logged in: exit 3 with what to do. A wrong password: exit 3, no file.
    let run = ctl.expect(3, &["incidents", "list"]).await;
    assert!(run.err.contains("aegisctl login"), "{}", run.err);
    let run = ctl
        .run_with_stdin(
            &["login", "--email", "admin@aegis.local", "--password-stdin"],
            "wrong-password\n",
        )
        .await;
    assert_eq!(run.code, 3, "{}", run.err);
    assert!(!ctl.config.exists());

    // Log in: the token file is the owner's only.
    let run = ctl
        .run_with_stdin(
            &["login", "--email", "admin@aegis.local", "--password-stdin"],
            &format!("{password}\n"),
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.contains("Logged in to"), "{}", run.out);
    #[cfg(unix)]
    {
        assert_eq!(mode(&ctl.config), 0o600);
        assert_eq!(mode(ctl.config.parent().unwrap()), 0o700);
    }
    let me = ctl.expect(0, &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["email"], "admin@aegis.local");
    // The printed token works for curl-style clients.
    let token = ctl.expect(0, &["token"]).await.out.trim().to_owned();
    let status = reqwest::Client::new()
        .get(format!("{}/api/v1/users/me", ctl.server))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    for policy in [
        allow_policy("scale api", "scale_up", "api", None),
        allow_policy("approve web", "scale_up", "web", Some("approval")),
    ] {
        c.ensure_policy(&policy).await.unwrap();
    }

    // Follow: started before the incident, it prints the incident's steps as they happen.
    let mut follow = ctl
        .command(&["incidents", "follow", "--interval", "1", "-o", "json"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    // Its header comes once the first poll has taken stock: every later step is shown.
    let mut header = BufReader::new(follow.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, header.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("Following 0 incidents at"), "{first}");
    let accepted = c
        .signal(&cpu_signal("production", "api", 97.0, 10))
        .await
        .unwrap();
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    let incident = c.wait_for(&id, FINAL, WAIT).await.unwrap();
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    let mut followed: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while followed.len() < steps(&incident).len() {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("follow printed only {followed:?}"))
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["incident"]["id"], id.as_str(), "{line}");
        followed.push(event["event"]["step"].as_str().unwrap().to_owned());
    }
    // Nothing more comes: each step once. (Stopped, it closes its output.)
    follow.kill().await.unwrap();
    while let Ok(Ok(Some(extra))) =
        tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
    {
        followed.push(format!("extra: {extra}"));
    }
    assert_eq!(followed, steps(&incident), "each step once, in order");

    // List and show, for people and as JSON.
    let list = ctl
        .expect(
            0,
            &[
                "incidents",
                "list",
                "--namespace",
                "production",
                "-o",
                "json",
            ],
        )
        .await
        .json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    );
    let run = ctl
        .expect(0, &["incidents", "list", "--status", "resolved"])
        .await;
    assert!(
        run.out.contains(&id) && run.out.contains("production/api"),
        "{}",
        run.out
    );
    let shown = ctl
        .expect(0, &["incidents", "show", &id, "-o", "json"])
        .await
        .json();
    assert_eq!(steps(&shown), steps(&incident));
    let run = ctl.expect(0, &["incidents", "show", &id]).await;
    for step in steps(&incident) {
        assert!(
            run.out.contains(&format!("  {step}")),
            "{step} missing:\n{}",
            run.out
        );
    }
    ctl.expect(
        5,
        &["incidents", "show", "00000000-0000-0000-0000-000000000000"],
    )
    .await;
    ctl.expect(2, &["incidents", "show", "../users"]).await;

    // Approve one incident that waits, reject another; a second decision is a conflict.
    let waiting = |deployment: &'static str| {
        let c = &c;
        async move {
            let accepted = c
                .signal(&cpu_signal("production", deployment, 97.0, 10))
                .await
                .unwrap();
            let id = accepted["incidentId"].as_str().unwrap().to_owned();
            c.wait_for(&id, &["awaiting_approval"], WAIT).await.unwrap();
            id
        }
    };
    let approve_id = waiting("web").await;
    let run = ctl
        .expect(0, &["approve", &approve_id, "--reason", "on-call checked"])
        .await;
    assert!(
        run.out.contains(&format!("Approved incident {approve_id}")),
        "{}",
        run.out
    );
    let approved = c.wait_for(&approve_id, FINAL, WAIT).await.unwrap();
    assert_eq!(approved["status"], "resolved", "{approved:#}");
    assert_eq!(approved["decidedBy"], "admin@aegis.local");

    let reject_id = waiting("web").await;
    let rejected = ctl
        .expect(
            0,
            &["reject", &reject_id, "--reason", "not now", "-o", "json"],
        )
        .await
        .json();
    assert_eq!(rejected["status"], "rejected");
    let run = ctl.expect(6, &["approve", &reject_id]).await;
    assert!(run.err.contains("409"), "{}", run.err);

    // Policy: allowed is 0, denied is 1; the explanation names the policy.
    let run = ctl
        .expect(
            0,
            &[
                "policy",
                "evaluate",
                "--action",
                "scale_up",
                "--resource",
                "service:api",
                "--explain",
            ],
        )
        .await;
    assert!(run.out.starts_with("ALLOWED"), "{}", run.out);
    assert!(
        run.out.contains("scale api: matched (allow)"),
        "{}",
        run.out
    );
    let drafts = dir.join("drafts.json");
    std::fs::write(
        &drafts,
        json!([{"name": "freeze api", "type": "self_healing", "effect": "deny", "priority": 900,
                "conditions": {}, "actions": ["*"], "resources": ["service:api"], "isActive": true}])
        .to_string(),
    )
    .unwrap();
    let answer = ctl
        .expect(
            1,
            &[
                "policy",
                "dry-run",
                "--policies",
                drafts.to_str().unwrap(),
                "--action",
                "scale_up",
                "--resource",
                "service:api",
                "-o",
                "json",
            ],
        )
        .await
        .json();
    assert_eq!(answer["dryRun"], true);
    assert_eq!(answer["appliedPolicies"], json!(["freeze api"]));
    std::fs::write(&drafts, "[{\"name\": ").unwrap();
    let run = ctl
        .expect(
            2,
            &[
                "policy",
                "dry-run",
                "--policies",
                drafts.to_str().unwrap(),
                "--action",
                "a",
                "--resource",
                "b",
            ],
        )
        .await;
    assert!(run.err.contains("is not JSON"), "{}", run.err);

    // The executor's audit chain: intact, then broken where a row was rewritten.
    let run = ctl.expect(0, &["audit", "verify"]).await;
    assert!(run.out.contains("The audit chain is intact"), "{}", run.out);
    tamper_executor_audit(&executor_db).await;
    let run = ctl.expect(1, &["audit", "verify"]).await;
    assert!(run.out.contains("BROKEN at #1"), "{}", run.out);

    // An expired or revoked access token is refreshed once, transparently, and kept.
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&ctl.config).unwrap()).unwrap();
    let mut damaged = stored.clone();
    damaged["accessToken"] = json!("not-a-valid-token");
    std::fs::write(&ctl.config, damaged.to_string()).unwrap();
    ctl.expect(0, &["incidents", "list"]).await;
    let refreshed: Value =
        serde_json::from_str(&std::fs::read_to_string(&ctl.config).unwrap()).unwrap();
    assert_ne!(refreshed["accessToken"], "not-a-valid-token");
    assert_ne!(
        refreshed["refreshToken"], stored["refreshToken"],
        "the refresh token rotates"
    );

    // A user without an approver's role: 4, decided by the server.
    let user = c
        .post(
            "/api/v1/users",
            &json!({"email": "viewer@aegis.local", "password": "Viewer-Password-1"}),
        )
        .await
        .unwrap();
    assert_eq!(user["email"], "viewer@aegis.local");
    let viewer = Ctl {
        bin: ctl.bin.clone(),
        config: dir.join("viewer.json"),
        server: ctl.server.clone(),
    };
    let run = viewer
        .run_with_stdin(
            &["login", "--email", "viewer@aegis.local", "--password-stdin"],
            "Viewer-Password-1\n",
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.err);
    let waiting_id = waiting("web").await;
    let run = viewer.expect(4, &["approve", &waiting_id]).await;
    assert!(run.err.contains("403"), "{}", run.err);
    viewer.expect(4, &["audit", "verify"]).await;

    // Log out: the file is gone and the next call says to log in.
    let run = ctl.expect(0, &["logout"]).await;
    assert!(run.out.contains("Logged out"), "{}", run.out);
    assert!(!ctl.config.exists());
    ctl.expect(3, &["incidents", "list"]).await;

    // kubectl talks to the demo's kube-sim with its kubeconfig: HTTPS, the CA inside.
    let kubectl = tokio::process::Command::new("kubectl")
        .args(["--kubeconfig", stack.kubeconfig.to_str().unwrap()])
        .args(["get", "deployments", "-n", "production", "-o", "name"])
        .output()
        .await
        .expect("kubectl is installed (scripts/prepare-test-env.sh)");
    let names = String::from_utf8_lossy(&kubectl.stdout);
    assert!(
        kubectl.status.success() && names.contains("deployment.apps/api"),
        "{names}\n{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );

    // Logs written to files carry no colour codes.
    for name in ["kube-sim", "executor", "ai-engine", "backend"] {
        let log = stack.log_tail(name, 10_000);
        assert!(!log.is_empty(), "{name} wrote no log");
        assert!(!log.contains('\u{1b}'), "{name}'s log holds ANSI escapes");
    }

    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_demo_script_checks_its_prerequisites_before_building() {
    let script = support::repo().join("scripts/demo.sh");
    let target = scratch_dir("demo-target").join("target");
    let started = std::time::Instant::now();
    let closed = closed_port().to_string();
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &closed)
        .env("REDIS_HOST", "127.0.0.1")
        .env("REDIS_PORT", &closed)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "PostgreSQL is not reachable on 127.0.0.1:{closed}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("Redis is not reachable on 127.0.0.1:{closed}")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!target.exists(), "nothing is built before the checks pass");

    let help = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("--help")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    assert!(text.contains("--keep") && text.contains("--help"), "{text}");
    let wrong = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("--kep")
        .output()
        .await
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
}

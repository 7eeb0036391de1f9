//! Real receivers for the notification tests: a webhook receiver that verifies Standard
//! Webhooks signatures with the specification's Python package (and stands in for Slack,
//! which cannot run here), a local SMTP server (aiosmtpd), and Alertmanager from Debian, read
//! back with amtool. The Python packages live in the virtualenv that
//! `scripts/prepare-test-env.sh` makes (or at `NOTIFY_VENV`).

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The signing secret the receiver verifies with.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> PathBuf {
    let venv =
        std::env::var("NOTIFY_VENV").unwrap_or_else(|_| "/var/cache/aegis/notify-venv".into());
    let python = PathBuf::from(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/prepare-test-env.sh (it installs standardwebhooks and aiosmtpd)",
        python.display()
    );
    python
}

fn port() -> u16 {
    aegis_common::server::unused_port().expect("a free port")
}

/// Waits until `child` prints a line containing `marker` on stdout (10 s at most).
async fn wait_for_line(child: &mut Child, marker: &str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(marker) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "the receiver did not print {marker:?}"
    );
    // Keep draining, so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

/// The webhook receiver (and Slack stand-in).
pub struct Receiver {
    pub base: String,
    _child: Child,
    client: reqwest::Client,
}

impl Receiver {
    pub async fn start() -> Self {
        let port = port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notify/receiver.py");
        let mut child = Command::new(python())
            .args([script, &port.to_string(), SECRET])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the receiver starts");
        wait_for_line(&mut child, "ready").await;
        Self {
            base: format!("http://127.0.0.1:{port}"),
            _child: child,
            client: reqwest::Client::new(),
        }
    }

    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub fn slack_url(&self) -> String {
        format!("{}/slack", self.base)
    }

    pub async fn received(&self) -> Value {
        self.client
            .get(format!("{}/_received", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The verified deliveries' ids and event types, in arrival order.
    pub async fn verified(&self) -> Vec<(String, String)> {
        self.received().await["verified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().to_owned(),
                    d["payload"]["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Answers the next `fail_next` hooks with 503 and holds every answer `delay_ms`.
    pub async fn control(&self, fail_next: u32, delay_ms: u64) {
        let res = self
            .client
            .post(format!("{}/_control", self.base))
            .json(&json!({"failNext": fail_next, "delayMs": delay_ms}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }

    /// Polls until `done` holds for what arrived (10 s at most).
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let got = self.received().await;
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{what}: not received within 10 s: {}",
            self.received().await
        );
    }
}

/// A local SMTP server keeping every message in a Maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    _child: Child,
}

impl Smtp {
    pub async fn start() -> Self {
        let port = port();
        let maildir =
            std::env::temp_dir().join(format!("aegis-smtp-{}", uuid::Uuid::new_v4().simple()));
        let mut child = Command::new(python())
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "-c",
                "aiosmtpd.handlers.Mailbox",
                &maildir.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd starts");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    maildir,
                    _child: child,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen within 10 s");
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// Alertmanager from Debian's package, with a receiver that sends nowhere.
pub struct Alertmanager {
    pub url: String,
    dir: PathBuf,
    _child: Child,
}

impl Alertmanager {
    pub async fn start() -> Self {
        let port = port();
        let dir = std::env::temp_dir().join(format!("aegis-am-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
        )
        .unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus-alertmanager starts (scripts/prepare-test-env.sh installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{url}/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Self {
                    url,
                    dir,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Alertmanager was not ready within 10 s");
    }

    /// The active alerts, as amtool reads them.
    pub async fn active_alerts(&self) -> Vec<Value> {
        let out = Command::new("amtool")
            .args([
                "alert",
                "query",
                "--output=json",
                &format!("--alertmanager.url={}", self.url),
            ])
            .output()
            .await
            .expect("amtool runs");
        assert!(
            out.status.success(),
            "amtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

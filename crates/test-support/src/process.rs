//! A service binary as a child process on a free loopback port, for tests that must see the
//! real process: shutdown on SIGTERM, exit codes.

use std::{process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// A running service binary.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The child (killed when dropped).
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

/// Starts `binary` with `APP_ENV=test`, loopback `HOST`, a free `PORT`, `LOG_LEVEL=warn` and
/// `env`, and waits (15 s at most) until `health_path` answers 200. Panics otherwise: a test
/// that cannot start its service has nothing to check.
#[allow(clippy::panic)]
pub async fn spawn_service(
    binary: &str,
    env: &[(&str, String)],
    health_path: &str,
) -> ServiceProcess {
    let port = match aegis_common::server::unused_port() {
        Ok(port) => port,
        Err(e) => panic!("no free port: {e}"),
    };
    let child = Command::new(binary)
        .env("APP_ENV", "test")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        // A starting service already answers liveness (`{"status":"starting"}`); it is
        // healthy once its own router answers.
        if let Ok(r) = client.get(format!("{base}{health_path}")).send().await
            && r.status() == 200
            && r.text()
                .await
                .is_ok_and(|body| !body.contains("\"starting\""))
        {
            return ServiceProcess { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{binary} did not answer {health_path} within 15 s");
}

impl ServiceProcess {
    /// Sends SIGTERM.
    #[allow(clippy::panic)]
    pub async fn sigterm(&self) {
        let Some(pid) = self.child.id() else {
            panic!("the service has already exited");
        };
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
    }

    /// Waits (at most `limit`) for the process to exit and asserts it exited cleanly.
    #[allow(clippy::panic)]
    pub async fn assert_clean_exit(&mut self, limit: Duration) {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "unclean exit: {status}"),
            Ok(Err(e)) => panic!("cannot wait for the service: {e}"),
            Err(_) => panic!("the service did not exit within {limit:?} of SIGTERM"),
        }
    }
}

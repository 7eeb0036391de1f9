//! `TestApp`: an ai-engine on port 0 with its own database.

use std::time::Duration;

use aegis_ai_engine::{config::Config, startup::Application};
use aegis_common::config::Env;
use aegis_test_support::fresh_database;
use serde_json::Value;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub state: aegis_ai_engine::state::AppState,
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let db = fresh_database("ai").await;
    let mut env = Env::from_pairs([("APP_ENV", "test"), ("HOST", "127.0.0.1"), ("PORT", "0")]);
    env.set("DATABASE_URL", db.url.clone());
    for (k, v) in overrides {
        env.set(*k, *v);
    }
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("ai-engine builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let app = TestApp {
        address,
        client: reqwest::Client::new(),
        database_url: db.url,
        state,
    };
    app.wait_ready().await;
    app
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// Models load in the background at start-up.
    pub async fn wait_ready(&self) {
        for _ in 0..100 {
            if self.get("/health/ready").await.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ai-engine never became ready");
    }

    /// History is written off the request path: poll until `pred` holds for the stats.
    pub async fn wait_stats(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            last = self
                .get("/api/v1/metrics/stats")
                .await
                .json()
                .await
                .unwrap();
            if pred(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("stats never matched; last: {last}");
    }
}

/// `NOW − seconds` as RFC 3339 with `Z`.
pub fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

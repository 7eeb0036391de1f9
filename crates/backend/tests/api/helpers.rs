//! `TestApp`: a backend on port 0 with its own database and Redis prefix.

use aegis_backend::{config::Config, startup::Application, state::AppState};
use aegis_common::config::Env;
use aegis_test_support::{fresh_database, redis_prefix, redis_url};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The running app's state (to build its router again in tests).
    pub state: AppState,
}

/// Settings every test starts from; `overrides` win.
pub async fn env_for_test(overrides: &[(&str, &str)]) -> (Env, String) {
    let db = fresh_database("backend").await;
    let mut env = Env::from_pairs([
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", "test-access-secret-0123456789abcdef"),
        ("JWT_REFRESH_SECRET", "test-refresh-secret-0123456789abcdef"),
        ("HEALTH_CHECK_AI_ENGINE", "false"),
        // Cheap hashing for tests that are not about hashing (the real cost is 19 MiB, t=2).
        ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_ITERATIONS", "1"),
    ]);
    env.set("DATABASE_URL", db.url.clone());
    env.set("REDIS_URL", redis_url());
    env.set("REDIS_KEY_PREFIX", redis_prefix());
    for (k, v) in overrides {
        env.set(*k, *v);
    }
    (env, db.url)
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let (env, database_url) = env_for_test(overrides).await;
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("backend builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        database_url,
        state,
    }
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
}

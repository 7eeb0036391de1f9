//! `TestApp`: an ai-engine on port 0 with its own database.

use aegis_ai_engine::{config::Config, startup::Application};
use aegis_common::config::Env;
use aegis_test_support::fresh_database;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let db = fresh_database("ai").await;
    let mut env = Env::from_pairs([("APP_ENV", "test"), ("HOST", "127.0.0.1"), ("PORT", "0")]);
    env.set("DATABASE_URL", db.url);
    for (k, v) in overrides {
        env.set(*k, *v);
    }
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("ai-engine builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::new(),
    }
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

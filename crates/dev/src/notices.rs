//! The demo's notification receiver: a webhook endpoint on loopback that the backend delivers
//! to as it would to any receiver. Each delivery's Standard Webhooks signature is checked with
//! the channel's secret, and what arrived is kept, so the launcher prints the notifications a
//! scene sent after the scene, in order, instead of in the middle of its timeline.

use std::sync::{Arc, Mutex};

use aegis_common::webhooks;
use anyhow::Context as _;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use crate::client::Client;

/// One notification as it arrived.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `webhook-id`: the event id, which is the idempotency key.
    pub id: String,
    /// `aegis.<event type>`.
    pub event_type: String,
    /// The one-line summary.
    pub summary: String,
    /// When the event happened (RFC 3339), which is the order to print in: deliveries run
    /// concurrently and may arrive in any order.
    pub at: String,
    /// Whether its signature matched.
    pub verified: bool,
}

#[derive(Debug, Default)]
struct Inbox {
    received: Vec<Notice>,
    printed: usize,
}

#[derive(Clone)]
struct Receiver {
    key: Arc<Vec<u8>>,
    inbox: Arc<Mutex<Inbox>>,
}

/// The running receiver.
#[derive(Debug)]
pub struct Notices {
    url: String,
    secret: String,
    inbox: Arc<Mutex<Inbox>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(signatures)) => {
            webhooks::verify(key, id, timestamp, body, signatures)
        }
        _ => false,
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let verified = verify(&r.key, &headers, &body);
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let notice = Notice {
        id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
        event_type: payload["type"].as_str().unwrap_or("?").to_owned(),
        summary: payload["data"]["summary"].as_str().unwrap_or("").to_owned(),
        at: payload["timestamp"].as_str().unwrap_or("").to_owned(),
        verified,
    };
    if let Ok(mut inbox) = r.inbox.lock() {
        // At least once: a repeat of a key already received is dropped.
        if !inbox.received.iter().any(|n| n.id == notice.id) {
            inbox.received.push(notice);
        }
    }
    if verified {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

impl Notices {
    /// Listens on a free loopback port with a fresh signing secret.
    pub async fn start() -> anyhow::Result<Self> {
        let key: [u8; 32] = rand::random();
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(Receiver {
                key: Arc::new(key.to_vec()),
                inbox: inbox.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("the notification receiver cannot listen")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            secret,
            inbox,
            server,
        })
    }

    /// Creates the webhook channel and a route for every event of high severity or above,
    /// through the API as an admin would.
    pub async fn subscribe(&self, client: &Client) -> anyhow::Result<()> {
        let channel = client
            .post(
                "/api/v1/notifications/channels",
                &json!({"name": "demo receiver", "type": "webhook",
                        "config": {"url": self.url}, "secret": self.secret}),
            )
            .await?;
        client
            .post(
                "/api/v1/notifications/routes",
                &json!({"name": "demo: everything that matters",
                        "eventTypes": ["awaiting_approval", "executing", "resolved", "failed",
                                       "escalated", "expired", "mode_changed"],
                        "minSeverity": "medium",
                        "channelIds": [channel["id"]]}),
            )
            .await?;
        Ok(())
    }

    /// The receiver's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to `wait` until a notification `done` accepts has arrived, then prints what
    /// arrived since the last call, in the order the events happened.
    pub async fn print_after(&self, done: impl Fn(&Notice) -> bool, wait: std::time::Duration) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let arrived = self
                .inbox
                .lock()
                .map(|inbox| inbox.received[inbox.printed..].iter().any(&done))
                .unwrap_or(true);
            if arrived || std::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut fresh: Vec<Notice> = match self.inbox.lock() {
            Ok(mut inbox) => {
                let fresh = inbox.received[inbox.printed..].to_vec();
                inbox.printed = inbox.received.len();
                fresh
            }
            Err(_) => Vec::new(),
        };
        if fresh.is_empty() {
            println!("   (no notification arrived within {} s)", wait.as_secs());
            return;
        }
        fresh.sort_by(|a, b| a.at.cmp(&b.at));
        println!(
            "   Notifications the local receiver got (Standard Webhooks, signatures checked):"
        );
        for n in fresh {
            let check = if n.verified {
                "signature ok"
            } else {
                "SIGNATURE MISMATCH"
            };
            println!(
                "     {:<24} {}  ({check}, id {})",
                n.event_type, n.summary, n.id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_verifies_and_a_changed_body_does_not() {
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            "webhook-id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
        );
        headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
        headers.insert(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
                .parse()
                .unwrap(),
        );
        assert!(verify(&key, &headers, br#"{"test": 2432232314}"#));
        assert!(!verify(&key, &headers, br#"{"test": 2432232315}"#));
    }
}

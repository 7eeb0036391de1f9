#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans leave the process over OTLP/HTTP.
//! (Its own test binary: it installs the global tracing subscriber.)

use std::sync::{Arc, Mutex};

use aegis_common::{
    config::AppEnv,
    telemetry::{self, TelemetryConfig},
};
use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_configured_collector() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().unwrap().push((ct, body.to_vec()));
                    ""
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let guard = telemetry::init(&TelemetryConfig {
        service_name: "aegis-otlp-test",
        app_env: AppEnv::Test,
        log_level: "info".into(),
        json_logs: Some(false),
        otlp_endpoint: Some(endpoint),
    })
    .unwrap();
    {
        let span = tracing::info_span!("exported_operation");
        let _entered = span.enter();
        tracing::info!("inside the span");
    }
    // Shutting the provider down flushes the batch.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "no OTLP export arrived");
    let (ct, body) = &seen[0];
    assert_eq!(ct, "application/x-protobuf");
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("exported_operation"),
        "span name in the payload"
    );
    assert!(
        text.contains("aegis-otlp-test"),
        "service.name in the resource"
    );
}

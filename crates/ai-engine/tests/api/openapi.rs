//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1, lists exactly the routes the
//! router serves, documents the key checks only where they are active, and every operation
//! without a key is on the justified public list.

use std::collections::BTreeSet;

use aegis_ai_engine::{routes::PUBLIC_ROUTES, startup::app_router};
use aegis_test_support::openapi::{METHODS, operations};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const KEY: &str = "api-key-for-tests";
const ADMIN_KEY: &str = "admin-key-for-tests";

async fn keyed_app() -> TestApp {
    spawn_app_with(&[("API_KEY", KEY), ("ADMIN_API_KEY", ADMIN_KEY)]).await
}

async fn document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_known_operations() {
    let app = keyed_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(doc["info"]["title"], "Aegis AI engine");
    let ops = operations(&doc);
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/health/ready"),
        ("POST", "/api/v1/detect-anomaly"),
        ("POST", "/api/v1/detect-failure"),
        ("GET", "/api/v1/metrics/predictions"),
        ("GET", "/api/v1/metrics/model-performance"),
        ("GET", "/api/v1/metrics/stats"),
        ("POST", "/api/v1/training-data"),
        ("POST", "/api/v1/models/failure/train"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    ] {
        assert!(
            ops.contains(&(method.into(), path.into())),
            "{method} {path} missing"
        );
    }
    let detect = &doc["paths"]["/api/v1/detect-anomaly"]["post"];
    assert_eq!(detect["security"], json!([{"apiKey": []}]));
    for status in ["200", "403", "413", "422", "503"] {
        assert!(
            detect["responses"].get(status).is_some(),
            "detect lacks {status}"
        );
    }
    assert_eq!(
        doc["paths"]["/api/v1/models/failure/train"]["post"]["security"],
        json!([{"adminApiKey": []}])
    );
    assert_eq!(
        doc["components"]["schemas"]["FastApiErrorBody"]["required"],
        json!(["detail"])
    );
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_routes() {
    let app = keyed_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let documented: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();

    let served = aegis_test_support::served_paths(&app_router(app.state.clone()));
    assert!(
        served.contains("/api/v1/detect-anomaly"),
        "route listing broke: {served:?}"
    );
    assert_eq!(served, documented);

    for path in &documented {
        let url = format!("{}{}", app.address, path);
        for method in METHODS {
            let key = if path.ends_with("/failure/train") {
                ADMIN_KEY
            } else {
                KEY
            };
            let res = app
                .client
                .request(method.parse().unwrap(), &url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            if ops.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    status != 405 && status != 404,
                    "{method} {path} is documented but not routed ({status})"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed but not documented: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_unauthenticated_route_is_listed_with_a_reason() {
    let app = keyed_app().await;
    let doc = document(&app).await;
    let problems = aegis_common::openapi::check_public_routes(&doc, PUBLIC_ROUTES);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn without_a_key_the_document_says_the_api_is_open() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["paths"]["/api/v1/metrics/stats"]["get"]
            .get("security")
            .is_none()
    );
    assert_eq!(app.get("/api/v1/metrics/stats").await.status(), 200);
}

#[tokio::test]
async fn docs_is_an_offline_reference_of_every_operation() {
    let app = keyed_app().await;
    let doc = document(&app).await;
    let res = app.get("/docs").await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    // Rendered on the server: every operation, each with its summary, and nothing that
    // needs another host (no script, no CDN), so it reads the same offline.
    let problems = aegis_common::openapi::check_reference_page(&doc, &html, &csp);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(html.contains("href=\"openapi.json\""));
    assert!(html.contains(&format!(
        "API version {}",
        doc["info"]["version"].as_str().unwrap()
    )));
}

#[tokio::test]
async fn the_banner_and_the_document_report_one_version() {
    let app = keyed_app().await;
    let doc = document(&app).await;
    let banner: Value = app.get("/").await.json().await.unwrap();
    assert_eq!(banner["version"], doc["info"]["version"]);
    assert_eq!(banner["version"], env!("CARGO_PKG_VERSION"));
}

//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1, lists exactly the routes the
//! router serves, and every operation without authentication is on the justified public list.

use std::collections::BTreeSet;

use aegis_executor::{routes::PUBLIC_ROUTES, startup::app_router};
use aegis_test_support::openapi::{METHODS, concrete, operations};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app_with};

async fn app_with_every_route() -> TestApp {
    spawn_app_with(&[("ENABLE_SIGNATURE_HELPER", "true")]).await
}

async fn document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_known_operations() {
    let app = app_with_every_route().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Aegis executor");
    let ops = operations(&doc);
    for (method, path) in [
        ("POST", "/executor/execute"),
        ("POST", "/executor/generate-signature"),
        ("GET", "/executor/deployments/{namespace}/{name}"),
        ("GET", "/audit/logs"),
        ("GET", "/audit/statistics"),
        ("GET", "/audit/verify"),
        ("GET", "/health"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    ] {
        assert!(
            ops.contains(&(method.into(), path.into())),
            "{method} {path} missing"
        );
    }
    let execute = &doc["paths"]["/executor/execute"]["post"];
    for status in ["200", "400", "403", "409", "413", "429", "503"] {
        assert!(
            execute["responses"].get(status).is_some(),
            "execute lacks {status}"
        );
    }
    assert!(
        execute["responses"]["429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["serviceApiKey"]["in"], "header");
    assert_eq!(schemes["serviceApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["auditToken"]["scheme"], "bearer");
    assert_eq!(
        doc["paths"]["/audit/logs"]["get"]["security"],
        serde_json::json!([{"auditToken": []}])
    );
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_routes() {
    let app = app_with_every_route().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let documented: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();

    // Paths: the router's own list equals the document's.
    let served = aegis_test_support::served_paths(&app_router(app.state.clone()));
    assert!(
        served.contains("/executor/execute"),
        "route listing broke: {served:?}"
    );
    assert_eq!(served, documented);

    // Methods: each documented operation is routed (no 405, no "Cannot ..." 404) and every
    // other method on a documented path is 405.
    for path in &documented {
        let url = format!("{}{}", app.address, concrete(path, "default"));
        for method in METHODS {
            let res = app
                .client
                .request(method.parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            if ops.contains(&(method.to_owned(), path.clone())) {
                assert_ne!(status, 405, "{method} {path} is documented but not routed");
                assert!(
                    !body.contains("\"Cannot "),
                    "{method} {path} is documented but not routed: {body}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is routed but not documented");
            }
        }
    }
}

#[tokio::test]
async fn every_unauthenticated_route_is_listed_with_a_reason() {
    let app = app_with_every_route().await;
    let doc = document(&app).await;
    let problems = aegis_common::openapi::check_public_routes(&doc, PUBLIC_ROUTES);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn the_signature_helper_is_not_documented_when_it_is_not_routed() {
    let app = crate::helpers::spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["paths"].get("/executor/generate-signature").is_none());
    let served = aegis_test_support::served_paths(&app_router(app.state.clone()));
    assert!(!served.contains("/executor/generate-signature"));
}

#[tokio::test]
async fn docs_is_an_offline_reference_of_every_operation() {
    let app = crate::helpers::spawn_app().await;
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

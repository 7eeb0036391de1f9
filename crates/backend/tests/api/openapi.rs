//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1, lists exactly the routes the
//! router serves, and every operation without authentication is on the justified public list,
//! which agrees with the auth layer's own `auth::PUBLIC_ROUTES`.

use std::collections::BTreeSet;

use aegis_backend::{auth, routes::docs, startup::app_router};
use aegis_test_support::openapi::{METHODS, concrete, operations};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PREFIX: &str = "/api/v1";
const SERVICE_KEY: &str = "openapi-test-key";

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
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Aegis backend");
    let ops = operations(&doc);
    for (method, path) in [
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/api/v1/users/{id}"),
        ("PUT", "/api/v1/users/{id}/roles"),
        ("PATCH", "/api/v1/settings"),
        ("GET", "/api/v1/alerts"),
        ("POST", "/api/v1/policy/evaluate"),
        ("GET", "/api/v1/policy/audit/logs"),
        ("POST", "/api/v1/remediation/signals"),
        ("POST", "/api/v1/remediation/incidents/{id}/approve"),
        ("POST", "/api/v1/alerts/webhook/alertmanager"),
        ("POST", "/api/v1/executor/action"),
        ("GET", "/api/v1/health"),
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
    // Operation ids are unique (the root health routes have their own).
    let mut ids = BTreeSet::new();
    for (method, path) in &ops {
        let id = doc["paths"][path][method.to_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        assert!(ids.insert(id.clone()), "duplicate operationId {id}");
    }

    let paths = &doc["paths"];
    let responses = |path: &str, method: &str| paths[path][method]["responses"].clone();
    let statuses = |path: &str, method: &str| -> BTreeSet<String> {
        responses(path, method)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let has = |path: &str, method: &str, expected: &[&str]| {
        let got = statuses(path, method);
        for s in expected {
            assert!(got.contains(*s), "{method} {path} lacks {s}: {got:?}");
        }
    };
    has(
        "/api/v1/remediation/signals",
        "post",
        &["202", "400", "401", "403", "413", "429"],
    );
    has(
        "/api/v1/remediation/incidents",
        "post",
        &["200", "201", "400", "401", "403", "413", "429"],
    );
    has(
        "/api/v1/remediation/incidents/{id}/approve",
        "post",
        &["200", "400", "404", "409"],
    );
    has(
        "/api/v1/remediation/incidents/{id}/label",
        "post",
        &["201", "400", "404", "502"],
    );
    has(
        "/api/v1/alerts/webhook/alertmanager",
        "post",
        &["200", "400", "401"],
    );
    has("/api/v1/ai/predict", "post", &["200", "400", "502"]);
    assert!(
        responses("/api/v1/auth/login", "post")["429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    assert!(
        responses("/api/v1/users", "get")["429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    assert_eq!(
        responses("/api/v1/users/{id}", "get")["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/BackendErrorBody"
    );

    // correlationId is a documented filter of the policy audit log.
    let params = paths["/api/v1/policy/audit/logs"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "correlationId" && p["in"] == "query"),
        "{params:?}"
    );

    // Security schemes and where they apply.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["serviceApiKey"]["in"], "header");
    assert_eq!(schemes["serviceApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["alertmanagerToken"]["scheme"], "bearer");
    assert_eq!(schemes["refreshToken"]["scheme"], "bearer");
    let security = |path: &str, method: &str| paths[path][method]["security"].clone();
    let jwt_or_key = serde_json::json!([{"bearerAuth": []}, {"serviceApiKey": []}]);
    assert_eq!(security("/api/v1/remediation/signals", "post"), jwt_or_key);
    assert_eq!(security("/api/v1/policy/evaluate", "post"), jwt_or_key);
    assert_eq!(
        security("/api/v1/users", "get"),
        serde_json::json!([{"bearerAuth": []}])
    );
    assert_eq!(
        security("/api/v1/alerts/webhook/alertmanager", "post"),
        serde_json::json!([{"alertmanagerToken": []}])
    );
    assert_eq!(
        security("/api/v1/auth/refresh", "post"),
        serde_json::json!([{"refreshToken": []}, {}])
    );
    // Every scheme an operation names is defined.
    for (method, path) in &ops {
        for requirement in security(path, &method.to_lowercase())
            .as_array()
            .into_iter()
            .flatten()
        {
            for name in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.get(name).is_some(),
                    "{method} {path} names the undefined scheme {name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_routes() {
    // A service key gets every request past the deny-by-default layer, which otherwise
    // answers 401 before the router can answer 405.
    let app = spawn_app_with(&[("SERVICE_API_KEYS", SERVICE_KEY)]).await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let documented: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();

    // Paths: the router's own list equals the document's. Socket.IO is a layer outside
    // `app_router` (it answers `/socket.io/` before routing), so it is in neither. The
    // console's HTML pages under `/console` are not API operations and stay out of the
    // document by design; everything else the router serves is documented.
    let all = aegis_test_support::served_paths(&app_router(app.state.clone()));
    assert!(
        all.contains("/console/incidents"),
        "the console is served: {all:?}"
    );
    let served: BTreeSet<String> = all
        .into_iter()
        .filter(|p| p != "/console" && !p.starts_with("/console/"))
        .collect();
    assert!(
        served.contains("/api/v1/remediation/signals"),
        "route listing broke: {served:?}"
    );
    assert_eq!(served, documented);
    assert!(!served.iter().any(|p| p.starts_with("/socket.io")));
    let polling = app.get("/socket.io/?EIO=4&transport=polling").await;
    assert_ne!(
        polling.status(),
        404,
        "the Socket.IO layer should answer its own path"
    );

    // Methods: each documented operation is routed (no 405, no "Cannot ..." 404) and every
    // other method on a documented path is 405.
    for path in &documented {
        let url = format!("{}{}", app.address, concrete(path, "default"));
        for method in METHODS {
            let res = app
                .client
                .request(method.parse().unwrap(), &url)
                .header("x-api-key", SERVICE_KEY)
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

/// The unauthenticated operations under the prefix, relative to it.
fn public_api_operations(doc: &Value) -> BTreeSet<(String, String)> {
    aegis_common::openapi::unauthenticated_operations(doc)
        .into_iter()
        .filter_map(|op| {
            let (method, path) = op.split_once(' ')?;
            let relative = path.strip_prefix(PREFIX)?;
            Some((method.to_owned(), relative.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn every_unauthenticated_route_is_listed_with_a_reason() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let problems = docs::check_public_routes(&doc, PREFIX, false);
    assert!(problems.is_empty(), "{problems:#?}");

    // The document agrees with the auth layer: what it documents as public under the prefix
    // is exactly what `require_auth` lets through without a credential, and every route the
    // layer skips either is public or declares its own scheme (never the layer's).
    let public = public_api_operations(&doc);
    for (method, path) in &public {
        assert!(
            auth::PUBLIC_ROUTES.contains(&path.as_str()),
            "{method} {path} is documented as public but the auth layer protects it"
        );
    }
    for route in auth::PUBLIC_ROUTES {
        let full = format!("{PREFIX}{route}");
        let item = doc["paths"]
            .get(&full)
            .unwrap_or_else(|| panic!("{route} is in auth::PUBLIC_ROUTES but not documented"));
        for (method, op) in item.as_object().unwrap() {
            if public.contains(&(method.to_uppercase(), route.to_string())) {
                continue;
            }
            let names: Vec<String> = op["security"]
                .as_array()
                .unwrap_or_else(|| {
                    panic!("{method} {route} is skipped by the auth layer but declares no scheme")
                })
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().cloned())
                .collect();
            assert!(
                !names.is_empty()
                    && names
                        .iter()
                        .all(|n| n != docs::BEARER && n != docs::SERVICE_KEY),
                "{method} {route} is skipped by the auth layer, so it must check its own scheme: {names:?}"
            );
        }
    }
}

#[tokio::test]
async fn public_policy_evaluation_is_documented_as_public() {
    let app = spawn_app_with(&[("POLICY_EVALUATE_PUBLIC", "true")]).await;
    let doc = document(&app).await;
    let problems = docs::check_public_routes(&doc, PREFIX, true);
    assert!(problems.is_empty(), "{problems:#?}");
    // Without the flag the same list reports the evaluate routes as not public.
    assert_eq!(docs::check_public_routes(&doc, PREFIX, false).len(), 2);
}

#[tokio::test]
async fn docs_is_an_offline_reference_of_every_operation() {
    let app = spawn_app().await;
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

/// Write operations a role may use: for the others, an empty body must be refused with 403
/// before it is validated.
const USER_MAY_WRITE: &[&str] = &["POST /alerts", "PATCH /alerts/{id}", "POST /ai/predict"];
const AUDITOR_MAY_WRITE: &[&str] = &["POST /policy/dry-run"];
/// Operations every signed-in user may call: their own settings, and policy evaluation.
const ANYONE_MAY_WRITE: &[&str] = &["PATCH /settings", "POST /policy/evaluate"];

#[tokio::test]
async fn a_caller_without_the_role_gets_403_before_its_body_is_validated() {
    use reqwest::Method;
    let app = crate::auth_support::spawn_with_admin(&[("RATE_LIMIT_DISABLED", "true")]).await;
    let doc = document(&app).await;
    let public = public_api_operations(&doc);
    let user = app.signup("plain@example.com", "Password123!").await;
    let auditor = crate::alerts::auditor(&app, "auditor@example.com").await;
    let mut wrong = Vec::new();
    for (method, path) in operations(&doc) {
        let Some(relative) = path.strip_prefix(PREFIX) else {
            continue;
        };
        if !["POST", "PUT", "PATCH"].contains(&method.as_str())
            || public.contains(&(method.clone(), relative.to_owned()))
            || relative.starts_with("/auth/")
            // Routes with a scheme of their own (the Alertmanager webhook's token).
            || auth::PUBLIC_ROUTES.contains(&relative)
        {
            continue;
        }
        let op = format!("{method} {relative}");
        let url = relative
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "00000000-0000-4000-8000-000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (role, token, allowed) in [
            ("user", &user.access, USER_MAY_WRITE),
            ("auditor", &auditor.access, AUDITOR_MAY_WRITE),
        ] {
            if allowed.contains(&op.as_str()) || ANYONE_MAY_WRITE.contains(&op.as_str()) {
                continue;
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let status = app
                .send(
                    m,
                    &format!("{PREFIX}{url}"),
                    Some(token),
                    Some(serde_json::json!({})),
                )
                .await
                .status();
            if status != 403 {
                wrong.push(format!("{role}: {op} answered {status}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

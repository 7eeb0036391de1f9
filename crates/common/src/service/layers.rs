//! The layers every service's router is wrapped in, with `/metrics` and (for a documented
//! router) `/openapi.json` and `/docs`.

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue},
    middleware,
    routing::get,
};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    error::{ErrorStyle, envelope},
    metrics::{Metrics, metrics_handler, track_http},
};

/// Adds `GET /metrics` and the shared layers to a service's finished router.
///
/// Order, outermost first: request metrics (so every response is counted and timed, including
/// rejections), the trace context and request log, the error envelope (so framework defaults become the service's JSON body), then
/// the body limit.
pub fn with_service_layers<S: ErrorStyle>(
    router: Router,
    metrics: Arc<Metrics>,
    body_limit: usize,
) -> Router {
    let router = router.route("/metrics", get(metrics_handler).with_state(metrics.clone()));
    with_layers::<S>(router, metrics, body_limit)
}

/// [`with_service_layers`] for a router built from its OpenAPI document: adds the documented `/metrics`,
/// `/openapi.json` (the document) and `/docs` (its reference page), the error body of
/// `S` as a schema, a 413 answer on every operation with a body, then the shared layers.
/// `/openapi.json` and `/docs` are public by design.
pub fn documented_with_service_layers<S: ErrorStyle + crate::openapi::ErrorBodySchema>(
    api: utoipa_axum::router::OpenApiRouter,
    metrics: Arc<Metrics>,
    body_limit: usize,
) -> Router {
    let (router, _doc) = crate::openapi::split::<S>(api, metrics.clone());
    with_layers::<S>(router, metrics, body_limit)
}

/// [`documented_with_service_layers`] plus routes kept out of the document (such as the
/// backend's HTML console), under the same layers. `extra` is given the served API router
/// alone, with its layers, for calling the API in process.
pub fn documented_with_extra_routes<S: ErrorStyle + crate::openapi::ErrorBodySchema>(
    api: utoipa_axum::router::OpenApiRouter,
    metrics: Arc<Metrics>,
    body_limit: usize,
    extra: impl FnOnce(Router) -> Router,
) -> Router {
    let (router, _doc) = crate::openapi::split::<S>(api, metrics.clone());
    let served_api = with_layers::<S>(router.clone(), metrics.clone(), body_limit);
    with_layers::<S>(router.merge(extra(served_api)), metrics, body_limit)
}

fn with_layers<S: ErrorStyle>(router: Router, metrics: Arc<Metrics>, body_limit: usize) -> Router {
    let router = router.layer(DefaultBodyLimit::max(body_limit));
    with_security_headers(router)
        .layer(middleware::from_fn(envelope::<S>))
        .layer(middleware::from_fn(crate::telemetry::trace_requests))
        .layer(middleware::from_fn_with_state(metrics, track_http))
}

/// Headers every JSON API answer carries (including the error envelope's): no sniffing, no framing, no referrer, no caching of
/// responses that may hold personal data, and a CSP that forbids everything (no HTML is
/// served). Handlers may override them.
fn with_security_headers(router: Router) -> Router {
    const HEADERS: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    HEADERS.iter().fold(router, |r, (name, value)| {
        r.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BackendStyle, FastApiStyle, NestStyle};
    use crate::http::Json;
    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::post,
    };
    use serde::Deserialize;
    use serde_json::Value;
    use tower::ServiceExt as _;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
    }

    fn app<S: ErrorStyle>() -> Router {
        let r = Router::new().route(
            "/things",
            post(|Json(b, _): Json<Body1, S>| async move { b.name }),
        );
        with_service_layers::<S>(r, Metrics::new().unwrap(), 1024)
    }

    async fn send(app: Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{ct}");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn post_json(body: &str) -> Request<Body> {
        Request::post("/things?x=1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn backend_malformed_json_gets_the_full_error_body() {
        let (status, body) = send(app::<BackendStyle>(), post_json("{\"name\":")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["statusCode"], 400);
        assert_eq!(body["error"], "Bad Request");
        assert_eq!(body["path"], "/things?x=1");
        assert_eq!(body["method"], "POST");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn backend_unknown_property_is_named() {
        let (status, body) = send(
            app::<BackendStyle>(),
            post_json(r#"{"name":"a","admin":true}"#),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["message"][0], "property admin should not exist");
    }

    #[tokio::test]
    async fn executor_style_bodies() {
        let (status, body) = send(app::<NestStyle>(), post_json("nope")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "Bad Request");
        assert!(body.get("path").is_none());
        let req = Request::get("/nowhere").body(Body::empty()).unwrap();
        let (status, body) = send(app::<NestStyle>(), req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({"statusCode":404,"message":"Cannot GET /nowhere","error":"Not Found"})
        );
    }

    #[tokio::test]
    async fn fastapi_style_uses_422_detail_lists() {
        let (status, body) = send(app::<FastApiStyle>(), post_json("{bad")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["type"], "json_invalid");
        let (status, body) = send(app::<FastApiStyle>(), post_json("{}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["type"], "missing");
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["body", "name"])
        );
    }

    #[tokio::test]
    async fn wrong_content_type_method_and_size_use_the_style() {
        let req = Request::post("/things")
            .header("content-type", "text/plain")
            .body(Body::from("{}"))
            .unwrap();
        let (status, body) = send(app::<BackendStyle>(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["statusCode"], 400);

        let req = Request::get("/things").body(Body::empty()).unwrap();
        let (status, body) = send(app::<BackendStyle>(), req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "Method Not Allowed");

        let big = format!("{{\"name\":\"{}\"}}", "x".repeat(4096));
        let (status, body) = send(app::<BackendStyle>(), post_json(&big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["statusCode"], 413);
    }

    #[tokio::test]
    async fn metrics_label_by_route_template_and_count_rejections() {
        let metrics = Metrics::new().unwrap();
        let r = Router::new().route(
            "/users/{id}",
            post(|Json(b, _): Json<Body1, BackendStyle>| async move { b.name }),
        );
        let app = with_service_layers::<BackendStyle>(r, metrics.clone(), 1024);
        let req = Request::post("/users/123")
            .header("content-type", "application/json")
            .body(Body::from("{"))
            .unwrap();
        let _ = app.clone().oneshot(req).await.unwrap();
        let _ = app
            .oneshot(Request::get("/missing").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = metrics.render();
        assert!(
            text.contains(r#"http_requests_total{method="POST",path="/users/:id",status="400"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{method="GET",path="unmatched",status="404"} 1"#),
            "{text}"
        );
    }
}

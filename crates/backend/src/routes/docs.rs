//! The backend's OpenAPI document (served at `/openapi.json`, with `/docs`): its `info`, the
//! security schemes, the list of operations that answer without a credential (with the reason
//! for each), and the error responses the route modules share.
//!
//! Security is derived, not hand-copied: every operation behind the deny-by-default layer that
//! does not declare its own `security` is marked by [`secure_behind_layer`] as accepting what
//! `auth::require_auth` accepts (a JWT or an `X-API-Key`); an operation whose route is in
//! `auth::PUBLIC_ROUTES` keeps what its annotation says, so a new public route without a
//! scheme shows up as unauthenticated and must be added to [`PUBLIC_API_ROUTES`] with a reason.

use aegis_common::openapi::{
    BackendErrorBody, PublicRoute, add_security_scheme, api_key_header, base_document, bearer,
    operations_mut,
};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema, openapi::security::SecurityRequirement};
use utoipa_axum::router::OpenApiRouter;

/// Security scheme: `Authorization: Bearer <access token>` (a JWT from `/auth/login`).
pub const BEARER: &str = "bearerAuth";
/// Security scheme: `X-API-Key`, one of `SERVICE_API_KEYS`.
pub const SERVICE_KEY: &str = "serviceApiKey";
/// Security scheme: `Authorization: Bearer <refresh token>` on `/auth/refresh`.
pub const REFRESH_TOKEN: &str = "refreshToken";
/// Security scheme: `Authorization: Bearer <ALERTMANAGER_WEBHOOK_TOKEN>`.
pub const ALERTMANAGER_TOKEN: &str = "alertmanagerToken";

/// Operations under the API prefix (paths relative to it) that answer without a credential.
pub const PUBLIC_API_ROUTES: &[PublicRoute] = &[
    PublicRoute {
        method: "POST",
        path: "/auth/signup",
        why: "creates an account: the caller has no credential yet (rate limited per IP)",
    },
    PublicRoute {
        method: "POST",
        path: "/auth/login",
        why: "exchanges e-mail and password for tokens (rate limited per IP, lockout)",
    },
    PublicRoute {
        method: "POST",
        path: "/auth/refresh",
        why: "authenticates with the refresh token itself, from the Authorization header or the body's refreshToken (documented as the optional refreshToken scheme)",
    },
    PublicRoute {
        method: "POST",
        path: "/auth/forgot-password",
        why: "starts a reset for someone who cannot log in; the answer is the same whether the account exists",
    },
    PublicRoute {
        method: "POST",
        path: "/auth/reset-password",
        why: "authenticated by the single-use reset token in the body",
    },
    PublicRoute {
        method: "GET",
        path: "/health",
        why: "health status for probes and the dashboard; no secrets",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ping",
        why: "liveness probe",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ready",
        why: "readiness probe: up/down only",
    },
    PublicRoute {
        method: "GET",
        path: "/prometheus",
        why: "the original's alias of /metrics: Prometheus scrape inside the cluster, no secrets or personal data",
    },
    PublicRoute {
        method: "GET",
        path: "/executor/health",
        why: "static status of the executor proxy",
    },
    PublicRoute {
        method: "POST",
        path: "/executor/action",
        why: "authenticated by the HMAC-SHA256 signature inside the body (with a timestamp and a replay guard), which no HTTP scheme can express",
    },
];

/// `GET`/`POST /policy/evaluate` (relative to the prefix) answer without a credential only
/// with `POLICY_EVALUATE_PUBLIC=true`.
pub const PUBLIC_EVALUATE_ROUTES: &[PublicRoute] = &[
    PublicRoute {
        method: "GET",
        path: "/policy/evaluate",
        why: "POLICY_EVALUATE_PUBLIC=true makes evaluation public (a credential, when sent, is still verified)",
    },
    PublicRoute {
        method: "POST",
        path: "/policy/evaluate",
        why: "POLICY_EVALUATE_PUBLIC=true makes evaluation public (a credential, when sent, is still verified)",
    },
];

/// Operations served at the root that answer without a credential.
pub const PUBLIC_ROOT_ROUTES: &[PublicRoute] = &[
    PublicRoute {
        method: "GET",
        path: "/health",
        why: "health status for probes (also served under the API prefix)",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ping",
        why: "liveness probe and container HEALTHCHECK",
    },
    PublicRoute {
        method: "GET",
        path: "/health/ready",
        why: "readiness probe: up/down only",
    },
    PublicRoute {
        method: "GET",
        path: "/metrics",
        why: "Prometheus scrape inside the cluster; no secrets or personal data",
    },
    PublicRoute {
        method: "GET",
        path: "/openapi.json",
        why: "the API description, public by design",
    },
    PublicRoute {
        method: "GET",
        path: "/docs",
        why: "the API reference page, public by design",
    },
];

/// Every operation that may answer without a credential, as `("METHOD /path", why)` with the
/// paths as served (`prefix` applied to the API routes).
#[must_use]
pub fn public_routes(prefix: &str, evaluate_public: bool) -> Vec<(String, &'static str)> {
    let api = PUBLIC_API_ROUTES
        .iter()
        .chain(if evaluate_public {
            PUBLIC_EVALUATE_ROUTES
        } else {
            &[]
        })
        .map(|r| (format!("{} {prefix}{}", r.method, r.path), r.why));
    let root = PUBLIC_ROOT_ROUTES
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.why));
    api.chain(root).collect()
}

/// The public-route list must match the served document (see
/// [`aegis_common::openapi::check_public_list`]); returns the disagreements.
#[must_use]
pub fn check_public_routes(
    doc: &serde_json::Value,
    prefix: &str,
    evaluate_public: bool,
) -> Vec<String> {
    aegis_common::openapi::check_public_list(doc, &public_routes(prefix, evaluate_public))
}

/// The document's `info` and security schemes.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = base_document(
        "Aegis backend",
        env!("CARGO_PKG_VERSION"),
        "Control-plane API of Aegis: authentication and RBAC, users and settings, alerts, the policy engine, \
         the AI proxy, the executor proxy, logs and the remediation loop. Errors use the backend body \
         (`statusCode`, `timestamp`, `path`, `method`, `error`, `message`). Live events are pushed over \
         Socket.IO at `/socket.io/` (not described here).",
    );
    add_security_scheme(
        &mut doc,
        BEARER,
        bearer("An access token (JWT) from `/auth/login`, `/auth/signup` or `/auth/refresh`."),
    );
    add_security_scheme(
        &mut doc,
        SERVICE_KEY,
        api_key_header(
            "X-API-Key",
            "One of SERVICE_API_KEYS (service-to-service calls, e.g. the ai-engine's signals).",
        ),
    );
    add_security_scheme(
        &mut doc,
        REFRESH_TOKEN,
        bearer(
            "A refresh token (JWT); `/auth/refresh` also takes it as `refreshToken` in the body.",
        ),
    );
    add_security_scheme(
        &mut doc,
        ALERTMANAGER_TOKEN,
        bearer("ALERTMANAGER_WEBHOOK_TOKEN, compared in constant time."),
    );
    doc
}

/// A security requirement list: any one of `schemes`.
fn any_of(schemes: &[&str]) -> Vec<SecurityRequirement> {
    schemes
        .iter()
        .map(|s| SecurityRequirement::new::<_, [&str; 0], &str>(*s, []))
        .collect()
}

/// Marks every operation of `router` (paths relative to the prefix, all behind
/// `auth::require_auth`) that is not in `auth::PUBLIC_ROUTES` and declares no `security` of its
/// own as accepting what the layer accepts: a JWT or a service key.
#[must_use]
pub fn secure_behind_layer<S>(mut router: OpenApiRouter<S>) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for (_, path, op) in operations_mut(router.get_openapi_mut()) {
        if crate::auth::PUBLIC_ROUTES.contains(&path) {
            continue;
        }
        op.security
            .get_or_insert_with(|| any_of(&[BEARER, SERVICE_KEY]));
    }
    router
}

/// The evaluate routes accept a JWT or a service key; with `POLICY_EVALUATE_PUBLIC=true`
/// nothing at all (an empty requirement).
#[must_use]
pub fn secure_evaluate<S>(mut router: OpenApiRouter<S>, public: bool) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for (_, _, op) in operations_mut(router.get_openapi_mut()) {
        let mut security = any_of(&[BEARER, SERVICE_KEY]);
        if public {
            security.push(SecurityRequirement::default());
        }
        op.security = Some(security);
    }
    router
}

/// 401: no valid credential.
#[derive(Debug, IntoResponses)]
#[response(
    status = 401,
    description = "No valid credential: missing, invalid or expired access token, or unknown API key"
)]
pub struct Unauthorized(pub BackendErrorBody);

/// 403: authenticated, but not allowed.
#[derive(Debug, IntoResponses)]
#[response(
    status = 403,
    description = "The caller's roles do not allow this (`Insufficient permissions`); a service key on a route for users is refused the same way"
)]
pub struct Forbidden(pub BackendErrorBody);

/// 429 with `Retry-After`.
#[derive(Debug, IntoResponses)]
#[response(
    status = 429,
    description = "Rate limit of the route exceeded",
    headers(("Retry-After" = u64, description = "Seconds until the window resets"))
)]
pub struct RateLimited(pub BackendErrorBody);

/// 500: an unexpected failure (database), with a generic message.
#[derive(Debug, IntoResponses)]
#[response(
    status = 500,
    description = "Unexpected failure (e.g. the database); the message is generic"
)]
pub struct ServerError(pub BackendErrorBody);

/// `{"message": ...}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// What happened.
    pub message: String,
}

impl MessageBody {
    /// `{"message": message}`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// `{"success": true, "message": ...}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessMessage {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
}

impl SuccessMessage {
    /// `{"success": true, "message": message}`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
        }
    }
}

//! The operator console under `/console`: HTML rendered on the server (maud), from the same
//! binary, over the same API the REST clients use.
//!
//! Every page is built from in-process calls to the API ([`api`]) with the signed-in user's
//! token, so every role check, validation and rate limit is the API's own: the page only
//! hides what the role cannot do, the server refuses it either way. Sessions and CSRF are in
//! [`session`]. The only script is `console.js` (first-party, a few dozen lines: it refreshes
//! the parts of a page marked `data-live`); every page works without it, and nothing is
//! loaded from another host (the CSP says `default-src 'self'`).

pub mod api;
mod pages;
pub mod session;
mod views;

use std::time::Duration;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{
    auth::{
        client::ClientInfo,
        principal::{AuthUser, Role, user_from_access_token},
    },
    state::AppState,
};

/// What the console's handlers share.
#[derive(Clone, Debug)]
pub struct Console {
    state: AppState,
    api: api::Api,
    /// `Secure` cookies: everywhere but development and test, which run on plain HTTP.
    secure: bool,
    /// Rotations of refresh tokens shared by concurrent pages of one session.
    rotations: std::sync::Arc<session::Rotations>,
}

impl Console {
    /// A call to the API as the viewer.
    async fn call(
        &self,
        viewer: &Viewer,
        method: axum::http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> api::Answer {
        self.api
            .call(method, path, Some(&viewer.token), &viewer.client, body)
            .await
    }

    /// `GET` on the API as the viewer.
    async fn get(&self, viewer: &Viewer, path: &str) -> api::Answer {
        self.call(viewer, axum::http::Method::GET, path, None).await
    }
}

/// The client extractor ([`ClientInfo`]) reads the proxy settings from the auth context.
impl axum::extract::FromRef<Console> for std::sync::Arc<crate::auth::AuthContext> {
    fn from_ref(console: &Console) -> Self {
        console.state.auth.clone()
    }
}

/// The signed-in user of a console request, put in its extensions by [`require_session`].
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The user, as the API loaded it.
    pub user: AuthUser,
    /// The access token for the API calls of this request.
    pub token: String,
    /// The CSRF token the page's forms carry.
    pub csrf: String,
    /// The browser's address and user agent.
    pub client: ClientInfo,
}

impl Viewer {
    fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.user.has_role(*r))
    }

    /// admin, auditor, operator: may read incidents.
    fn reads_incidents(&self) -> bool {
        self.has_any(&[Role::Admin, Role::Auditor, Role::Operator])
    }

    /// admin, operator: may approve and reject, and switch the remediation mode.
    fn approves(&self) -> bool {
        self.has_any(&[Role::Admin, Role::Operator])
    }

    /// admin, auditor: may read the executor's audit.
    fn reads_audit(&self) -> bool {
        self.has_any(&[Role::Admin, Role::Auditor])
    }
}

/// The console's routes, mounted at `/console`; `api` is the served API router it calls.
pub fn router(state: AppState, api: Router) -> Router {
    let prefix = state.config.api_prefix.clone();
    let secure = !matches!(
        state.config.app_env,
        aegis_common::config::AppEnv::Development | aegis_common::config::AppEnv::Test
    );
    let console = Console {
        state,
        api: api::Api::new(api, prefix),
        secure,
        rotations: std::sync::Arc::default(),
    };
    let signed_in = Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/incidents", get(pages::incidents))
        .route("/console/incidents/rows", get(pages::incident_rows))
        .route("/console/incidents/{id}", get(pages::incident))
        .route("/console/incidents/{id}/approve", post(pages::approve))
        .route("/console/incidents/{id}/reject", post(pages::reject))
        .route("/console/audit", get(pages::audit))
        .route("/console/mode", get(pages::mode).post(pages::set_mode))
        .route("/console/alerts", get(pages::alerts))
        .route("/console/users", get(pages::users))
        .route("/console/users/{id}/roles", post(pages::set_roles))
        .route("/console/policies", get(pages::policies))
        .route("/console/policies/new", get(pages::new_policy))
        .route("/console/policies/edit", post(pages::policy_post))
        .route("/console/policies/{id}", get(pages::edit_policy))
        .route("/console/logout", post(pages::logout))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            require_session,
        ));
    Router::new()
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/assets/{name}", get(views::asset))
        .merge(signed_in)
        .layer(middleware::from_fn(page_headers))
        .with_state(console)
}

/// The console's CSP and caching: its own scripts and styles only, forms to itself.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Resolves the session: a valid access token, or a refresh token that rotates into one.
/// Without either, a page goes to the login (with where it was going), and a fragment or a
/// form answers 401.
async fn require_session(
    State(console): State<Console>,
    client: ClientInfo,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let auth = &console.state.auth;
    let csrf = session::cookie(&headers, session::CSRF).map(str::to_owned);
    let mut rotated = None;
    let mut found = None;
    if let Some(token) = session::cookie(&headers, session::ACCESS)
        && let Ok(user) = user_from_access_token(auth, token).await
    {
        found = Some((user, token.to_owned()));
    }
    // The live refresh never rotates the refresh token: a fragment answers 401 instead, and
    // the script reloads the page, which rotates. Pages that rotate together (two tabs) share
    // one rotation, so the second presentation of the old token is not taken for reuse.
    let fragment = request.uri().path().ends_with("/rows");
    if found.is_none()
        && !fragment
        && let Some(refresh) = session::cookie(&headers, session::REFRESH)
        && let Ok(pair) = console.rotations.rotate(auth, refresh, &client).await
        && let Ok(user) = user_from_access_token(auth, &pair.access_token).await
    {
        found = Some((user, pair.access_token.clone()));
        rotated = Some(pair);
    }
    let (Some((user, token)), Some(csrf)) = (found, csrf) else {
        return pages::signed_out(&request);
    };
    request.extensions_mut().insert(Viewer {
        user,
        token,
        csrf,
        client,
    });
    let mut response = next.run(request).await;
    if let Some(pair) = rotated {
        let refresh_ttl = auth.keys.refresh_ttl().as_secs();
        let h = response.headers_mut();
        h.append(
            header::SET_COOKIE,
            session::set_cookie(
                session::ACCESS,
                &pair.access_token,
                refresh_ttl,
                console.secure,
            ),
        );
        h.append(
            header::SET_COOKIE,
            session::set_cookie(
                session::REFRESH,
                &pair.refresh_token,
                refresh_ttl,
                console.secure,
            ),
        );
    }
    response
}

/// How often `data-live` parts of a page refresh.
pub const LIVE_INTERVAL: Duration = Duration::from_secs(2);

/// A plain error page answer.
fn error_page(status: StatusCode, viewer: Option<&Viewer>, message: &str) -> Response {
    (status, views::error(viewer, status, message)).into_response()
}

//! Who is calling: the authentication middleware (deny-by-default) and the extractors every
//! protected route uses.
//!
//! * [`require_auth`] runs on every API route except [`PUBLIC_ROUTES`]: it verifies
//!   `Authorization: Bearer <access JWT>` (reloading the user and roles from the database) or
//!   `X-API-Key` (constant-time against `SERVICE_API_KEYS`) and stores the [`Principal`] in the
//!   request extensions; no valid credential → 401.
//! * Handlers take [`AuthUser`] (a JWT user; an API key gets 403), [`Principal`] (either),
//!   or [`RequireRole<S>`] (a JWT user holding one of `S::ROLES`, else 403
//!   `"Insufficient permissions"`), followed by [`super::RateLimit`].

use std::{marker::PhantomData, sync::Arc};

use aegis_common::signing::secret_in;
use axum::{
    extract::{FromRef, FromRequestParts, MatchedPath, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    AuthContext,
    jwt::{TokenError, TokenType},
};
use crate::{db::users::User, error::ApiError};

/// Routes (relative to the API prefix) reachable without a credential; everything else is
/// authenticated. `/auth/refresh` authenticates with the refresh token itself and
/// `/executor/action` with its HMAC.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/auth/signup",
    "/auth/login",
    "/auth/refresh",
    "/auth/forgot-password",
    "/auth/reset-password",
    "/health",
    "/health/ping",
    "/health/ready",
    "/prometheus",
    "/executor/health",
    "/executor/action",
    // Authenticates itself with the ALERTMANAGER_WEBHOOK_TOKEN bearer (Alertmanager has no
    // user and no API key).
    "/alerts/webhook/alertmanager",
];

/// The five roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Full access.
    Admin,
    /// Own profile and settings, reads alerts.
    User,
    /// Read-only auditing.
    Auditor,
    /// Service accounts.
    Service,
    /// On-call: reads incidents, approves and rejects actions, switches the remediation
    /// mode; no user administration and no policy changes.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::User,
        Role::Auditor,
        Role::Service,
        Role::Operator,
    ];

    /// Its name in the `roles` table.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Service => "service",
            Role::Operator => "operator",
        }
    }

    /// Parses a role name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// An authenticated, active user, reloaded from the database for this request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id.
    pub id: Uuid,
    /// Lowercase e-mail.
    pub email: String,
    /// Effective roles (a user without any role counts as `user`).
    pub roles: Vec<Role>,
    /// The user object as loaded (what `GET /users/me` returns).
    pub user: User,
}

impl AuthUser {
    /// The effective roles of `user`: its stored roles, or `user` when it has none.
    #[must_use]
    pub fn roles_of(user: &User) -> Vec<Role> {
        let mut roles: Vec<Role> = user
            .roles
            .iter()
            .filter_map(|r| Role::parse(&r.name))
            .collect();
        if roles.is_empty() {
            roles.push(Role::User);
        }
        roles
    }

    fn from_user(user: User) -> Self {
        let roles = Self::roles_of(&user);
        Self {
            id: user.id,
            email: user.email.clone(),
            roles,
            user,
        }
    }

    /// Holds `role`.
    #[must_use]
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Holds `admin`.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// 403 `"Insufficient permissions"` unless the user holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.has_role(*r)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("Insufficient permissions".into()))
        }
    }

    /// 403 `"You can only access your own resource"` unless `id` is the caller or the caller
    /// is an admin.
    pub fn require_self_or_admin(&self, id: Uuid) -> Result<(), ApiError> {
        if self.id == id || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "You can only access your own resource".into(),
            ))
        }
    }
}

/// A caller holding one of the configured `SERVICE_API_KEYS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// First 16 hex chars of SHA-256(key): a stable, non-secret id for logs and rate limits.
    pub id: String,
}

/// The verified caller of a protected route.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request; boxing would only add an allocation"
)]
pub enum Principal {
    /// `Authorization: Bearer <access JWT>`.
    User(AuthUser),
    /// `X-API-Key`.
    Service(ServiceKey),
}

impl Principal {
    /// The rate-limit subject: user id or `apikey:<id>`.
    #[must_use]
    pub fn rate_limit_subject(&self) -> String {
        match self {
            Principal::User(u) => u.id.to_string(),
            Principal::Service(k) => format!("apikey:{}", k.id),
        }
    }

    /// The user, if a JWT user.
    #[must_use]
    pub fn user(&self) -> Option<&AuthUser> {
        match self {
            Principal::User(u) => Some(u),
            Principal::Service(_) => None,
        }
    }
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::Unauthorized(msg.into())
}

/// Verifies an access token and loads its user.
pub async fn user_from_access_token(auth: &AuthContext, token: &str) -> Result<AuthUser, ApiError> {
    Ok(claims_and_user(auth, token).await?.1)
}

/// Verifies an access token and loads its user; the claims with it (the Socket.IO gateway
/// needs the token's issue and expiry times).
pub async fn claims_and_user(
    auth: &AuthContext,
    token: &str,
) -> Result<(super::jwt::Claims, AuthUser), ApiError> {
    let claims = auth
        .keys
        .verify(token, TokenType::Access)
        .map_err(|e| match e {
            TokenError::WrongType => unauthorized("Invalid token type"),
            TokenError::Invalid => unauthorized("Unauthorized"),
        })?;
    let user = crate::db::users::load(&auth.db, claims.sub)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| unauthorized("User not found or inactive"))?;
    Ok((claims, AuthUser::from_user(user)))
}

/// The bearer token of `Authorization`, if any.
#[must_use]
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks an `X-API-Key` value in constant time against `SERVICE_API_KEYS`.
#[must_use]
pub fn service_key(auth: &AuthContext, key: &str) -> Option<ServiceKey> {
    let accepted = &auth.config.service_api_keys;
    let ok = secret_in(
        key.as_bytes(),
        accepted.iter().map(|k| k.expose_secret().as_bytes()),
    );
    ok.then(|| ServiceKey {
        id: hex::encode(Sha256::digest(key.as_bytes()))
            .chars()
            .take(16)
            .collect(),
    })
}

/// Authenticates a request: a bearer JWT wins; else `X-API-Key`; else 401.
pub async fn authenticate(auth: &AuthContext, headers: &HeaderMap) -> Result<Principal, ApiError> {
    if let Some(token) = bearer(headers) {
        return user_from_access_token(auth, token)
            .await
            .map(Principal::User);
    }
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return service_key(auth, key)
            .map(Principal::Service)
            .ok_or_else(|| unauthorized("Invalid API key"));
    }
    Err(unauthorized("Unauthorized"))
}

/// Whether `template` (the matched route incl. prefix) is public.
#[must_use]
pub fn is_public(auth: &AuthContext, template: &str) -> bool {
    let route = template
        .strip_prefix(auth.api_prefix.as_str())
        .filter(|r| r.starts_with('/'))
        .unwrap_or(template);
    PUBLIC_ROUTES.contains(&route)
}

/// Deny-by-default middleware; install with `route_layer` on the API router so it sees the
/// matched route.
pub async fn require_auth(
    State(auth): State<Arc<AuthContext>>,
    mut req: Request,
    next: Next,
) -> Response {
    let public = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| is_public(&auth, m.as_str()));
    if !public {
        match authenticate(&auth, req.headers()).await {
            Ok(p) => {
                req.extensions_mut().insert(p);
            }
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}

impl<St> FromRequestParts<St> for Principal
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let auth = Arc::<AuthContext>::from_ref(state);
        let p = authenticate(&auth, &parts.headers).await?;
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

impl<St> FromRequestParts<St> for AuthUser
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(u) => Ok(u),
            Principal::Service(_) => Err(ApiError::Forbidden("Insufficient permissions".into())),
        }
    }
}

/// A set of roles for [`RequireRole`].
pub trait RoleSet: Send + Sync + 'static {
    /// Any of these grants access.
    const ROLES: &'static [Role];
}

/// `admin` only.
#[derive(Debug, Clone, Copy)]
pub struct Admin;
impl RoleSet for Admin {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// `admin` or `auditor`.
#[derive(Debug, Clone, Copy)]
pub struct AdminOrAuditor;
impl RoleSet for AdminOrAuditor {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Auditor];
}

/// `admin` or `operator`: who decides what remediation does (approve, reject, label, the
/// remediation mode).
#[derive(Debug, Clone, Copy)]
pub struct Approvers;
impl RoleSet for Approvers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
}

/// `admin`, `auditor` or `operator`: who reads incidents and the remediation mode.
#[derive(Debug, Clone, Copy)]
pub struct IncidentReaders;
impl RoleSet for IncidentReaders {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Auditor, Role::Operator];
}

/// `admin` or `user` (writers such as alert updates).
#[derive(Debug, Clone, Copy)]
pub struct AdminOrUser;
impl RoleSet for AdminOrUser {
    const ROLES: &'static [Role] = &[Role::Admin, Role::User];
}

/// `admin`, `user` or `service` (everyone but auditors, who only read).
#[derive(Debug, Clone, Copy)]
pub struct NotAuditor;
impl RoleSet for NotAuditor {
    const ROLES: &'static [Role] = &[Role::Admin, Role::User, Role::Service];
}

/// A service key, or a JWT user holding one of `S::ROLES`.
///
/// An extractor from the request's parts, so the role is checked before the body is read:
/// a caller without the role gets 403 whatever it sent, never a validation error.
#[derive(Debug, Clone)]
pub struct ServiceOrRole<S: RoleSet>(pub Principal, PhantomData<S>);

impl<S: RoleSet, St> FromRequestParts<St> for ServiceOrRole<S>
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if let Principal::User(u) = &principal {
            u.require_any(S::ROLES)?;
        }
        Ok(ServiceOrRole(principal, PhantomData))
    }
}

/// A JWT user holding one of `S::ROLES`.
#[derive(Debug, Clone)]
pub struct RequireRole<S: RoleSet>(pub AuthUser, PhantomData<S>);

impl<S: RoleSet> RequireRole<S> {
    /// The user.
    #[must_use]
    pub fn into_inner(self) -> AuthUser {
        self.0
    }
}

impl<S: RoleSet> std::ops::Deref for RequireRole<S> {
    type Target = AuthUser;
    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<S: RoleSet, St> FromRequestParts<St> for RequireRole<S>
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require_any(S::ROLES)?;
        Ok(RequireRole(user, PhantomData))
    }
}

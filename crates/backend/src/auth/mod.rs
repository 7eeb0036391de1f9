//! Authentication and authorisation: JWTs, password hashing, refresh
//! rotation, rate limits, lockout, the deny-by-default middleware and the extractors other
//! routes use:
//!
//! ```ignore
//! async fn handler(
//!     admin: RequireRole<Admin>,   // 401 / 403 first
//!     _: RateLimit,                // then 429
//!     UuidPath(id): UuidPath,      // then 400 for a bad :id
//!     Json(body): Json<Body>,      // then 400 for the body
//! ) -> Result<..., ApiError>
//! ```

pub mod client;
pub mod config;
pub mod jwt;
pub mod lockout;
pub mod mailer;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod session;
pub mod validate;

use aegis_common::redis_conn::SharedRedis;
use anyhow::Context as _;
use sqlx::PgPool;

pub use client::ClientInfo;
pub use principal::{
    Admin, AdminOrAuditor, AdminOrUser, Approvers, AuthUser, IncidentReaders, NotAuditor,
    PUBLIC_ROUTES, Principal, RequireRole, Role, RoleSet, ServiceKey, ServiceOrRole, authenticate,
    require_auth, user_from_access_token,
};
pub use rate_limit::RateLimit;

use crate::metrics::BackendMetrics;

/// Long-lived auth machinery shared by every request, with the parts of the application it
/// works with. The extractors take it from any state `S` with `Arc<AuthContext>: FromRef<S>`,
/// so authentication never names the application state.
#[derive(Debug)]
pub struct AuthContext {
    /// JWT keys.
    pub keys: jwt::TokenKeys,
    /// Password hashing.
    pub passwords: password::Passwords,
    /// Reset mail.
    pub mailer: mailer::Mailer,
    /// Authentication settings.
    pub config: config::AuthConfig,
    /// The API prefix, which route templates carry before the paths of [`PUBLIC_ROUTES`] and
    /// of the rate-limit rules.
    pub api_prefix: String,
    /// Users, roles, refresh tokens and audit rows.
    pub db: PgPool,
    /// Rate-limit counters (fail-open).
    pub redis: SharedRedis,
    /// Auth attempts and rate-limit counters.
    pub metrics: BackendMetrics,
}

impl AuthContext {
    /// Builds the hasher and the mailer from the settings, around the signing keys and the
    /// application's pool, Redis and metrics.
    pub fn new(
        config: config::AuthConfig,
        keys: jwt::TokenKeys,
        api_prefix: String,
        db: PgPool,
        redis: SharedRedis,
        metrics: BackendMetrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            keys,
            passwords: password::Passwords::new(&config)
                .context("failed to set up password hashing")?,
            mailer: mailer::Mailer::from_config(&config)?,
            config,
            api_prefix,
            db,
            redis,
            metrics,
        })
    }
}

/// SHA-256 as 64 lowercase hex characters.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Creates the bootstrap admin from `BOOTSTRAP_ADMIN_EMAIL`/`BOOTSTRAP_ADMIN_PASSWORD` when
/// both are set and the e-mail is free; an existing account is left alone (idempotent).
pub async fn bootstrap_admin(auth: &AuthContext) -> anyhow::Result<()> {
    let cfg = &auth.config;
    let (Some(email), Some(password)) = (&cfg.bootstrap_admin_email, &cfg.bootstrap_admin_password)
    else {
        return Ok(());
    };
    if !validate::is_email(email) {
        anyhow::bail!("BOOTSTRAP_ADMIN_EMAIL is not a valid e-mail address");
    }
    let password = secrecy::ExposeSecret::expose_secret(password);
    if !(8..=100).contains(&validate::chars(password)) {
        anyhow::bail!("BOOTSTRAP_ADMIN_PASSWORD must be 8 to 100 characters");
    }
    if crate::db::users::find_by_email(&auth.db, email)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let hash = auth.passwords.hash(password).await?;
    let mut tx = auth.db.begin().await?;
    let new = crate::db::users::NewUser {
        email,
        password_hash: &hash,
        first_name: None,
        last_name: None,
        avatar: None,
    };
    let row = match crate::db::users::insert(&mut *tx, &new).await {
        Ok(row) => row,
        // Another replica created it first.
        Err(e) if crate::db::is_unique_violation(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    crate::db::roles::grant(&mut tx, row.id, Role::Admin.as_str(), None).await?;
    tx.commit().await?;
    crate::db::audit::record(
        &auth.db,
        crate::db::audit::NewAuditEvent {
            event_type: "user_create",
            user_id: Some(row.id),
            entity_type: Some("user"),
            entity_id: Some(row.id.to_string()),
            details: serde_json::json!({"email": email, "bootstrap": true}),
            ..Default::default()
        },
    )
    .await;
    tracing::info!(%email, "bootstrap admin created");
    Ok(())
}

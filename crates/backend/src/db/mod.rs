//! Small named queries per table (runtime-checked `sqlx::query*` with binds).

pub mod alerts;
pub mod audit;
pub mod incidents;
pub mod logs;
pub mod modes;
pub mod notifications;
pub mod policies;
pub mod policy_audit;
pub mod predictions;
pub mod refresh_tokens;
pub mod roles;
pub mod settings;
pub mod users;

/// The backend's migrations, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Whether `err` says the connection itself failed (an I/O or TLS error): another connection
/// may well succeed. Whether repeating the work is safe is the caller's to judge.
#[must_use]
pub fn is_broken_connection(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Tls(_))
}

/// Whether `err` is a unique-constraint violation (mapped to 409 where it happens).
#[must_use]
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "23505")
}

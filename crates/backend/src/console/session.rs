//! The console's session: the API's own token pair in two cookies, and a CSRF token in a
//! third.
//!
//! A console login is an API login (`POST /auth/login`: the same password check, lockout, rate
//! limit and audit), and its access and refresh tokens become `HttpOnly`, `SameSite=Strict`
//! cookies on `/console` (`Secure` outside development and test). Nothing about a session is
//! stored beyond what the API stores for any client, so revoking a user's sessions through
//! the API (logout, a password change, deactivation) ends the console's too. An expired access
//! token is rotated with the refresh token on the next page, as any client would; pages that
//! present one refresh token together (two tabs) share that rotation ([`Rotations`]).
//!
//! CSRF: every form carries the value of the `aegis_csrf` cookie (random, set before login), and
//! every state-changing request must present both, equal, and must not come from another site
//! (`Sec-Fetch-Site` or `Origin`, when the browser sends them). A cookie set by another site cannot
//! be read or written under `SameSite=Strict`, and the token is compared in constant time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, HeaderValue, header};
use tokio::sync::OnceCell;

use crate::{
    auth::{
        AuthContext,
        client::ClientInfo,
        jwt::TokenType,
        session::{self as token_session, TokenPair},
        sha256_hex,
    },
    error::ApiError,
};

/// The access token cookie.
pub const ACCESS: &str = "aegis_at";
/// The refresh token cookie.
pub const REFRESH: &str = "aegis_rt";
/// The CSRF token cookie (and the form field of the same name).
pub const CSRF: &str = "aegis_csrf";

/// The value of cookie `name` in the request, if present and not empty.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` for the console: `HttpOnly`, `SameSite=Strict`, `Path=/console`, and
/// `Secure` when `secure`. `max_age` in seconds; 0 deletes the cookie.
#[must_use]
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // Token values are base64url and dots; the CSRF token is hex: nothing to escape.
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("aegis_invalid=; Path=/console; Max-Age=0"))
}

/// A new random CSRF token (32 bytes, hex).
#[must_use]
pub fn new_csrf_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// How long a refresh token the console has rotated still yields the pair it was rotated
/// into. Two tabs of one browser that load a page at the same moment after the access token
/// expired both present the same refresh token; without a grace the second presentation is
/// taken for reuse and ends the session. The API's `POST /auth/refresh` keeps no grace: this
/// only covers the console's `HttpOnly`, `SameSite=Strict` cookies.
pub const ROTATION_GRACE: Duration = Duration::from_secs(10);

/// At most this many rotations are remembered; past it, a rotation is not shared (as if
/// there were no grace) rather than memory growing.
const MAX_REMEMBERED: usize = 10_000;

/// The console's recent rotations, by the SHA-256 of the refresh token presented: requests
/// that present one refresh token at the same time share one rotation, and one presenting it
/// within [`ROTATION_GRACE`] gets the same pair. Only validly signed refresh tokens are
/// remembered, and only rotations that succeeded. This is the process's memory: with several
/// backend replicas, the grace holds for the requests that reach the same one.
#[derive(Default)]
pub struct Rotations {
    recent: Mutex<HashMap<String, Arc<Rotation>>>,
}

struct Rotation {
    started: Instant,
    pair: OnceCell<TokenPair>,
}

/// Never prints the tokens.
impl std::fmt::Debug for Rotations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Rotations").field("remembered", &n).finish()
    }
}

impl Rotations {
    /// Rotates `refresh` as `POST /auth/refresh` does, or answers the pair a rotation of the
    /// same token started less than [`ROTATION_GRACE`] ago produced (waiting for it if it is
    /// under way).
    pub async fn rotate(
        &self,
        auth: &AuthContext,
        refresh: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ApiError> {
        // A forged or expired token goes straight to the API's refusal, never into the map.
        if auth.keys.verify(refresh, TokenType::Refresh).is_err() {
            return token_session::rotate(auth, refresh, client).await;
        }
        let key = sha256_hex(refresh.as_bytes());
        let entry = {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.retain(|_, r| r.started.elapsed() < ROTATION_GRACE);
            if recent.len() >= MAX_REMEMBERED && !recent.contains_key(&key) {
                None
            } else {
                Some(
                    recent
                        .entry(key.clone())
                        .or_insert_with(|| {
                            Arc::new(Rotation {
                                started: Instant::now(),
                                pair: OnceCell::new(),
                            })
                        })
                        .clone(),
                )
            }
        };
        let Some(entry) = entry else {
            return token_session::rotate(auth, refresh, client).await;
        };
        let rotated = entry
            .pair
            .get_or_try_init(|| token_session::rotate(auth, refresh, client))
            .await
            .cloned();
        if rotated.is_err() {
            // A refused token is not remembered; one that failed on an outage is tried again.
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent
                .get(&key)
                .is_some_and(|r| Arc::ptr_eq(r, &entry) && r.pair.get().is_none())
            {
                recent.remove(&key);
            }
        }
        rotated
    }
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRefusal {
    /// The browser says the request came from another site.
    CrossSite,
    /// No CSRF cookie, no form token, or they differ.
    TokenMismatch,
}

/// Checks a state-changing request: same-site by the browser's own headers, and the form's
/// token equal to the cookie's.
pub fn check_csrf(headers: &HeaderMap, form_token: Option<&str>) -> Result<(), CsrfRefusal> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(CsrfRefusal::CrossSite);
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        let origin_host = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        if origin == "null" || origin_host != host {
            return Err(CsrfRefusal::CrossSite);
        }
    }
    match (cookie(headers, CSRF), form_token) {
        (Some(cookie), Some(form))
            if aegis_common::signing::secrets_equal(cookie.as_bytes(), form.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(CsrfRefusal::TokenMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            ("cookie", "aegis_at2=x; aegis_at=tok; other=1"),
            ("cookie", "aegis_csrf=c"),
        ]);
        assert_eq!(cookie(&h, ACCESS), Some("tok"));
        assert_eq!(cookie(&h, CSRF), Some("c"));
        assert_eq!(cookie(&h, REFRESH), None);
    }

    #[test]
    fn set_cookie_is_strict_and_http_only() {
        let v = set_cookie(ACCESS, "abc", 900, true);
        let v = v.to_str().unwrap();
        assert_eq!(
            v,
            "aegis_at=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=900; Secure"
        );
        assert!(
            !set_cookie(ACCESS, "abc", 0, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn csrf_needs_equal_tokens_from_the_same_site() {
        let ok = headers(&[
            ("cookie", "aegis_csrf=abc"),
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check_csrf(&ok, Some("abc")), Ok(()));
        assert_eq!(
            check_csrf(&ok, Some("abd")),
            Err(CsrfRefusal::TokenMismatch)
        );
        assert_eq!(check_csrf(&ok, None), Err(CsrfRefusal::TokenMismatch));
        let no_cookie = headers(&[("host", "h")]);
        assert_eq!(
            check_csrf(&no_cookie, Some("abc")),
            Err(CsrfRefusal::TokenMismatch)
        );
        let cross = headers(&[
            ("cookie", "aegis_csrf=abc"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(check_csrf(&cross, Some("abc")), Err(CsrfRefusal::CrossSite));
        let other_origin = headers(&[
            ("cookie", "aegis_csrf=abc"),
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            check_csrf(&other_origin, Some("abc")),
            Err(CsrfRefusal::CrossSite)
        );
    }
}

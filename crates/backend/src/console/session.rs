//! The console's session: the API's own token pair in two cookies, and a CSRF token in a
//! third.
//!
//! A console login is an API login (`POST /auth/login`: the same password check, lockout, rate
//! limit and audit), and its access and refresh tokens become `HttpOnly`, `SameSite=Strict`
//! cookies on `/console` (`Secure` outside development and test). Nothing about a session is
//! stored beyond what the API stores for any client, so revoking a user's sessions through
//! the API (logout, a password change, deactivation) ends the console's too. An expired access
//! token is rotated with the refresh token on the next page, as any client would.
//!
//! CSRF: every form carries the value of the `aegis_csrf` cookie (random, set before login), and
//! every state-changing request must present both, equal, and must not come from another site
//! (`Sec-Fetch-Site` or `Origin`, when the browser sends them). A cookie set by another site cannot
//! be read or written under `SameSite=Strict`, and the token is compared in constant time.

use axum::http::{HeaderMap, HeaderValue, header};

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

//! HS256 JWTs: access tokens signed with `JWT_SECRET`, refresh tokens with
//! `JWT_REFRESH_SECRET`. The algorithm is pinned: a token whose header names anything but HS256
//! (including `none`) is refused before its signature is looked at.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which of the two token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Sent as `Authorization: Bearer` on protected routes.
    Access,
    /// Accepted by `POST /auth/refresh` only.
    Refresh,
}

/// The claims of both kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// E-mail at issue time (informational; the user is reloaded on every request).
    pub email: String,
    /// Token kind.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// Unique id; for refresh tokens the primary key of the stored row.
    pub jti: Uuid,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, malformed, wrong algorithm or expired.
    #[error("invalid token")]
    Invalid,
    /// Valid, but of the other kind.
    #[error("Invalid token type")]
    WrongType,
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

/// Signing and verification keys for both kinds.
#[derive(Clone)]
pub struct TokenKeys {
    access_enc: EncodingKey,
    access_dec: DecodingKey,
    refresh_enc: EncodingKey,
    refresh_dec: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from the two secrets.
    #[must_use]
    pub fn new(
        access: &SecretString,
        refresh: &SecretString,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Self {
        let a = access.expose_secret().as_bytes();
        let r = refresh.expose_secret().as_bytes();
        Self {
            access_enc: EncodingKey::from_secret(a),
            access_dec: DecodingKey::from_secret(a),
            refresh_enc: EncodingKey::from_secret(r),
            refresh_dec: DecodingKey::from_secret(r),
            access_ttl,
            refresh_ttl,
        }
    }

    /// Refresh-token lifetime.
    #[must_use]
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Signs a token of `kind` for the user with the given `jti`.
    pub fn issue(
        &self,
        kind: TokenType,
        user_id: Uuid,
        email: &str,
        jti: Uuid,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let (key, ttl) = match kind {
            TokenType::Access => (&self.access_enc, self.access_ttl),
            TokenType::Refresh => (&self.refresh_enc, self.refresh_ttl),
        };
        let iat = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            email: email.to_owned(),
            token_type: kind,
            jti,
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?;
        Ok(IssuedToken { token, claims })
    }

    /// Verifies signature, algorithm, `exp` (no leeway) and the `type` claim.
    pub fn verify(&self, token: &str, kind: TokenType) -> Result<Claims, TokenError> {
        let key = match kind {
            TokenType::Access => &self.access_dec,
            TokenType::Refresh => &self.refresh_dec,
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `type` is checked by hand so a token of the other kind gets its own message. A
        // refresh token is signed with the other secret, so first look at the unverified claim
        // only to choose the message; acceptance always requires the signature below.
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => {
                    if unverified_type(token).is_some_and(|t| t != kind) {
                        TokenError::WrongType
                    } else {
                        TokenError::Invalid
                    }
                }
                _ => TokenError::Invalid,
            },
        )?;
        let claims: Claims =
            serde_json::from_value(data.claims).map_err(|_| TokenError::Invalid)?;
        if claims.token_type != kind {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }
}

/// The `type` claim of a token whose signature is not (yet) trusted; only used to pick an
/// error message, never to accept anything.
fn unverified_type(token: &str) -> Option<TokenType> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    serde_json::from_value(v.get("type")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &SecretString::from("access-secret"),
            &SecretString::from("refresh-secret"),
            Duration::from_secs(900),
            Duration::from_secs(7 * 86_400),
        )
    }

    #[test]
    fn access_round_trip_with_jti_and_lifetime() {
        let k = keys();
        let jti = Uuid::new_v4();
        let t = k
            .issue(TokenType::Access, Uuid::new_v4(), "a@b.c", jti)
            .unwrap();
        let c = k.verify(&t.token, TokenType::Access).unwrap();
        assert_eq!(c.jti, jti);
        assert_eq!(c.exp - c.iat, 900);
    }

    #[test]
    fn refresh_token_is_not_an_access_token_and_vice_versa() {
        let k = keys();
        let r = k
            .issue(TokenType::Refresh, Uuid::new_v4(), "a@b.c", Uuid::new_v4())
            .unwrap();
        assert_eq!(
            k.verify(&r.token, TokenType::Access),
            Err(TokenError::WrongType)
        );
        let a = k
            .issue(TokenType::Access, Uuid::new_v4(), "a@b.c", Uuid::new_v4())
            .unwrap();
        assert_eq!(
            k.verify(&a.token, TokenType::Refresh),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        use base64::Engine as _;
        let k = keys();
        let t = k
            .issue(TokenType::Access, Uuid::new_v4(), "a@b.c", Uuid::new_v4())
            .unwrap();
        let payload = t.token.split('.').nth(1).unwrap();
        for alg in ["none", "HS512", "RS256"] {
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let forged = format!("{header}.{payload}.");
            assert_eq!(
                k.verify(&forged, TokenType::Access),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
    }
}

//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), so that receivers
//! verify Aegis' deliveries with the specification's published libraries.
//!
//! The backend signs its webhook notifications with [`signature`]; a receiver (the demo's)
//! checks them with [`verify`].
//!
//! A delivery carries `webhook-id` (the event id, which is also the idempotency key),
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`: `v1,` and the base64 of
//! HMAC-SHA256 over `"{id}.{timestamp}.{body}"`. The key is the secret's bytes: the secret is
//! written `whsec_` followed by their base64.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a signing secret.
pub const PREFIX: &str = "whsec_";

/// A signing secret that is not `whsec_` + base64 of 24 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signing secret must be \"whsec_\" followed by the base64 of 24 to 64 random bytes")]
pub struct InvalidSecret;

/// The key bytes of a `whsec_` secret.
///
/// # Errors
/// [`InvalidSecret`] unless it is `whsec_` + base64 of 24 to 64 bytes.
pub fn key(secret: &str) -> Result<Vec<u8>, InvalidSecret> {
    let encoded = secret.strip_prefix(PREFIX).ok_or(InvalidSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
    if (24..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(InvalidSecret)
    }
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp`.
#[must_use]
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts every key length")
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether `signatures` (the `webhook-signature` header: space-separated `v1,…` values)
/// holds the signature of `body` sent as message `id` at `timestamp` (the header's text).
#[must_use]
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    signatures.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|given| given.as_slice() == expected.as_slice())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries.
    #[test]
    fn the_reference_example_signs_alike() {
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_reference_example_verifies_and_a_changed_body_does_not() {
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        assert!(verify(
            &key,
            id,
            "1614265330",
            br#"{"test": 2432232314}"#,
            sig
        ));
        assert!(!verify(
            &key,
            id,
            "1614265330",
            br#"{"test": 2432232315}"#,
            sig
        ));
        assert!(!verify(
            &key,
            id,
            "1614265331",
            br#"{"test": 2432232314}"#,
            sig
        ));
    }

    #[test]
    fn secrets_need_the_prefix_and_enough_key() {
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(InvalidSecret));
        assert_eq!(key("whsec_not base64!"), Err(InvalidSecret));
        assert_eq!(
            key(&format!("whsec_{}", STANDARD.encode([7u8; 16]))),
            Err(InvalidSecret)
        );
        assert_eq!(
            key(&format!("whsec_{}", STANDARD.encode([7u8; 32]))),
            Ok(vec![7u8; 32])
        );
    }
}

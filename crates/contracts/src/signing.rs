//! HMAC-SHA256 signatures on executor actions.
//!
//! * **v1** is byte-compatible with the original: the MAC covers the ECMAScript
//!   `JSON.stringify` serialisation of `{actionType, actionParams, requestedBy}`, including ECMAScript key order and number formatting.
//! * **v2** prefixes that string with `v2:<timestamp>:<nonce>:`, so a request
//!   can be checked for freshness and replay.
//!
//! The canonical string is streamed straight into the MAC: signing and verifying allocate
//! nothing but the hex output. Verification is constant-time.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How `requestedBy` appeared in the request body; the three cases serialise differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedBy<'a> {
    /// The key was absent: it is omitted from the canonical string.
    Absent,
    /// The key was present with `null`.
    Null,
    /// The key was present with a string.
    Value(&'a str),
}

impl<'a> RequestedBy<'a> {
    /// From an optional JSON value as found in a parsed body (`None` = key absent).
    #[must_use]
    pub fn from_json(value: Option<&'a Value>) -> Option<Self> {
        match value {
            None => Some(Self::Absent),
            Some(Value::Null) => Some(Self::Null),
            Some(Value::String(s)) => Some(Self::Value(s)),
            Some(_) => None,
        }
    }
}

/// The signed part of an action request.
#[derive(Debug, Clone, Copy)]
pub struct SignedFields<'a> {
    /// `actionType`, e.g. `restart_pod`.
    pub action_type: &'a str,
    /// `actionParams`, in the key order of the request body.
    pub action_params: &'a Map<String, Value>,
    /// `requestedBy` as it appeared in the body.
    pub requested_by: RequestedBy<'a>,
}

/// Replay-protection fields of a v2 signature.
#[derive(Debug, Clone, Copy)]
pub struct V2Fields<'a> {
    /// Decimal milliseconds since the Unix epoch, as sent.
    pub timestamp: &'a str,
    /// `[A-Za-z0-9_-]{16,64}`.
    pub nonce: &'a str,
}

/// A byte sink the canonical serialiser writes into: a `String` for tests and debugging, or the
/// MAC itself on the hot path.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn put_str(&mut self, s: &str) {
        self.put(s.as_bytes());
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for HmacSha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// The v1 canonical string of `fields` (what the original's server computed).
#[must_use]
pub fn canonical_v1(fields: &SignedFields<'_>) -> String {
    let mut out = Vec::with_capacity(128);
    write_canonical(&mut out, fields);
    // Only UTF-8 text is ever written: JSON strings are copied from `str`s and escapes are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

fn write_canonical(out: &mut impl Sink, fields: &SignedFields<'_>) {
    out.put_str("{\"actionType\":");
    write_string(out, fields.action_type);
    out.put_str(",\"actionParams\":");
    write_object(out, fields.action_params);
    match fields.requested_by {
        RequestedBy::Absent => {}
        RequestedBy::Null => out.put_str(",\"requestedBy\":null"),
        RequestedBy::Value(v) => {
            out.put_str(",\"requestedBy\":");
            write_string(out, v);
        }
    }
    out.put_str("}");
}

fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.put_str("null"),
        Value::Bool(true) => out.put_str("true"),
        Value::Bool(false) => out.put_str("false"),
        Value::Number(n) => write_number(out, n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.put_str("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_str(",");
                }
                write_value(out, item);
            }
            out.put_str("]");
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// ECMAScript Number-to-String: shortest round-trip digits, `1e+21`, `-0` as `0`.
fn write_number(out: &mut impl Sink, n: f64) {
    if n == 0.0 {
        out.put_str("0");
    } else if n.is_finite() {
        let mut buf = ryu_js::Buffer::new();
        out.put_str(buf.format_finite(n));
    } else {
        // JSON.stringify turns non-finite numbers into null; serde_json never yields them.
        out.put_str("null");
    }
}

/// ECMAScript ordering: canonical array-index keys first (ascending), then insertion order.
fn write_object(out: &mut impl Sink, map: &Map<String, Value>) {
    out.put_str("{");
    let mut first = true;
    let has_index_keys = map.keys().any(|k| array_index(k).is_some());
    if has_index_keys {
        let mut indexed: Vec<(u32, &String, &Value)> = map
            .iter()
            .filter_map(|(k, v)| array_index(k).map(|i| (i, k, v)))
            .collect();
        indexed.sort_unstable_by_key(|(i, _, _)| *i);
        for (_, key, value) in indexed {
            write_member(out, key, value, &mut first);
        }
    }
    for (key, value) in map {
        if has_index_keys && array_index(key).is_some() {
            continue;
        }
        write_member(out, key, value, &mut first);
    }
    out.put_str("}");
}

fn write_member(out: &mut impl Sink, key: &str, value: &Value, first: &mut bool) {
    if !*first {
        out.put_str(",");
    }
    *first = false;
    write_string(out, key);
    out.put_str(":");
    write_value(out, value);
}

/// A canonical array index: `0`, or digits without a leading zero, up to 2^32 − 2.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

fn write_string(out: &mut impl Sink, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_str("\"");
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.put(bytes.get(start..i).unwrap_or_default());
        match escape {
            Some(e) => out.put(e),
            None => {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0');
                out.put(&[b'\\', b'u', b'0', b'0', hi, lo]);
            }
        }
        start = i + 1;
    }
    out.put(bytes.get(start..).unwrap_or_default());
    out.put_str("\"");
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable_mac())
}

#[cold]
fn unreachable_mac() -> HmacSha256 {
    // Never reached: kept so that no panic path exists in library code.
    HmacSha256::new(&Default::default())
}

fn v1_mac(key: &[u8], fields: &SignedFields<'_>) -> HmacSha256 {
    let mut m = mac(key);
    write_canonical(&mut m, fields);
    m
}

fn v2_mac(key: &[u8], fields: &SignedFields<'_>, v2: &V2Fields<'_>) -> HmacSha256 {
    let mut m = mac(key);
    m.put_str("v2:");
    m.put_str(v2.timestamp);
    m.put_str(":");
    m.put_str(v2.nonce);
    m.put_str(":");
    write_canonical(&mut m, fields);
    m
}

/// The v1 signature, lowercase hex.
#[must_use]
pub fn sign_v1(key: &[u8], fields: &SignedFields<'_>) -> String {
    hex::encode(v1_mac(key, fields).finalize().into_bytes())
}

/// The v2 signature, lowercase hex.
#[must_use]
pub fn sign_v2(key: &[u8], fields: &SignedFields<'_>, v2: &V2Fields<'_>) -> String {
    hex::encode(v2_mac(key, fields, v2).finalize().into_bytes())
}

/// Decodes a 64-character hex signature (either case). Anything else is `None`: callers treat it
/// as a mismatch, never as a validation error.
fn decode_signature(signature: &str) -> Option<[u8; 32]> {
    if signature.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(signature, &mut out).ok()?;
    Some(out)
}

/// Constant-time check of a v1 signature.
#[must_use]
pub fn verify_v1(key: &[u8], fields: &SignedFields<'_>, signature: &str) -> bool {
    decode_signature(signature).is_some_and(|sig| v1_mac(key, fields).verify_slice(&sig).is_ok())
}

/// Constant-time check of a v2 signature (freshness and replay are the caller's checks).
#[must_use]
pub fn verify_v2(
    key: &[u8],
    fields: &SignedFields<'_>,
    v2: &V2Fields<'_>,
    signature: &str,
) -> bool {
    decode_signature(signature)
        .is_some_and(|sig| v2_mac(key, fields, v2).verify_slice(&sig).is_ok())
}

/// Whether a nonce has the v2 shape `[A-Za-z0-9_-]{16,64}`.
#[must_use]
pub fn is_valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh nonce: 16 random bytes as 22 base64url characters.
#[must_use]
pub fn new_nonce() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality for secrets such as API keys and bearer tokens.
#[must_use]
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // The length is not secret; contents are compared without early exit.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Constant-time membership of `candidate` in a list of accepted secrets.
#[must_use]
pub fn secret_in<'a>(candidate: &[u8], accepted: impl IntoIterator<Item = &'a [u8]>) -> bool {
    accepted
        .into_iter()
        .fold(false, |found, key| found | secrets_equal(candidate, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"test-secret";

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object expected"),
        }
    }

    fn fields<'a>(
        action_type: &'a str,
        action_params: &'a Map<String, Value>,
        requested_by: RequestedBy<'a>,
    ) -> SignedFields<'a> {
        SignedFields {
            action_type,
            action_params,
            requested_by,
        }
    }

    #[test]
    fn vector_a_restart_pod() {
        let p = params(json!({"namespace":"default","podName":"test-pod"}));
        let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
        assert_eq!(
            canonical_v1(&f),
            r#"{"actionType":"restart_pod","actionParams":{"namespace":"default","podName":"test-pod"},"requestedBy":"admin"}"#
        );
        assert_eq!(
            sign_v1(KEY, &f),
            "11d9e44af86e5f3c3946dfb4704b0d8f24ec4ffd11b6066de890f8eb255385b6"
        );
    }

    #[test]
    fn vector_b_scale_with_integral_float() {
        for body in [
            r#"{"namespace":"production","deploymentName":"api-deployment","replicas":5}"#,
            r#"{"namespace":"production","deploymentName":"api-deployment","replicas":5.0}"#,
        ] {
            let p: Map<String, Value> = serde_json::from_str(body).unwrap();
            let f = fields("scale_deployment", &p, RequestedBy::Value("ai-engine"));
            assert_eq!(
                sign_v1(KEY, &f),
                "441ccc0875089db98c4e2788eb4bf07d65717b99596fc6f934500085000b056d",
                "body {body}"
            );
        }
    }

    #[test]
    fn vector_c_absent_requested_by() {
        let p = params(json!({"namespace":"production","deploymentName":"api-deployment"}));
        let f = fields("rollback_deployment", &p, RequestedBy::Absent);
        assert_eq!(
            sign_v1(KEY, &f),
            "9c56dcec6267893a72c3159b063ada89470babcbd68e2ac927bbf83f8ec84cdd"
        );
    }

    #[test]
    fn vector_d_ecmascript_order_numbers_and_escapes() {
        let body = r#"{"namespace":"default","podName":"p\u00e9d","b":1.50,"1":"x","z":1e21,"q":"a/b\u0001"}"#;
        let p: Map<String, Value> = serde_json::from_str(body).unwrap();
        let f = fields("restart_pod", &p, RequestedBy::Null);
        assert_eq!(
            canonical_v1(&f),
            "{\"actionType\":\"restart_pod\",\"actionParams\":{\"1\":\"x\",\"namespace\":\"default\",\"podName\":\"p\u{e9}d\",\"b\":1.5,\"z\":1e+21,\"q\":\"a/b\\u0001\"},\"requestedBy\":null}"
        );
        assert_eq!(
            sign_v1(KEY, &f),
            "e2dbb75b71831219ea4b2d4b94ca754a8a7f74bd1a677aa3794189bfc76ab51e"
        );
    }

    #[test]
    fn vector_e_python_sorted_keys_signature_is_rejected() {
        let p = params(json!({"namespace":"default","podName":"test-pod"}));
        let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
        assert!(!verify_v1(
            KEY,
            &f,
            "8cdab8769da23aafe017a3f28013a3fc2a6574391d0cad0250e5f062d5760410"
        ));
        assert!(verify_v1(
            KEY,
            &f,
            "11d9e44af86e5f3c3946dfb4704b0d8f24ec4ffd11b6066de890f8eb255385b6"
        ));
    }

    #[test]
    fn vector_f_empty_key() {
        let p = params(json!({"namespace":"default","podName":"test-pod"}));
        let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
        assert_eq!(
            sign_v1(b"", &f),
            "c91c21f2fd11506d071b5cad6414f89296c2b8606cb3d37ff71088e073081306"
        );
    }

    #[test]
    fn v2_worked_example() {
        let p = params(json!({"namespace":"default","podName":"test-pod"}));
        let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
        let v2 = V2Fields {
            timestamp: "1700000000000",
            nonce: "n0nce-0001-abcdef",
        };
        let sig = sign_v2(KEY, &f, &v2);
        assert_eq!(
            sig,
            "53fd4e026b6007889a2770a041c565e67bd6ef86cb0fe402f8e988f38ae5d755"
        );
        assert!(verify_v2(KEY, &f, &v2, &sig));
        assert!(verify_v2(KEY, &f, &v2, &sig.to_uppercase()));
        assert!(!verify_v1(KEY, &f, &sig), "a v2 MAC is not a v1 MAC");
    }

    #[test]
    fn malformed_signatures_are_mismatches() {
        let p = params(json!({"namespace":"default","podName":"test-pod"}));
        let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
        for sig in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert!(!verify_v1(KEY, &f, sig));
        }
    }

    #[test]
    fn negative_zero_and_large_integers_follow_ecmascript() {
        let p: Map<String, Value> =
            serde_json::from_str(r#"{"a":-0,"b":-0.0,"c":9007199254740993,"d":0.1,"e":1e-7}"#)
                .unwrap();
        let f = fields("x", &p, RequestedBy::Absent);
        assert_eq!(
            canonical_v1(&f),
            r#"{"actionType":"x","actionParams":{"a":0,"b":0,"c":9007199254740992,"d":0.1,"e":1e-7}}"#
        );
    }

    #[test]
    fn array_index_rules() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("42"), Some(42));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
    }

    #[test]
    fn nonces_have_the_v2_shape() {
        let n = new_nonce();
        assert_eq!(n.len(), 22);
        assert!(is_valid_nonce(&n));
        assert!(!is_valid_nonce("short"));
        assert!(!is_valid_nonce("has space in it!!!"));
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
        assert!(secret_in(b"k2", [b"k1".as_slice(), b"k2".as_slice()]));
        assert!(!secret_in(b"k3", [b"k1".as_slice(), b"k2".as_slice()]));
    }

    proptest::proptest! {
        #[test]
        fn any_changed_byte_breaks_the_signature(pod in "[a-z0-9-]{1,20}", flip in 0usize..64) {
            let p = params(json!({"namespace":"default","podName":pod}));
            let f = fields("restart_pod", &p, RequestedBy::Value("admin"));
            let sig = sign_v1(KEY, &f);
            let mut bytes = sig.into_bytes();
            let b = bytes[flip];
            bytes[flip] = if b == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            proptest::prop_assert!(!verify_v1(KEY, &f, &tampered));
        }
    }
}

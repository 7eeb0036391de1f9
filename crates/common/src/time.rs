//! Timestamps in the one format every Aegis wire contract uses.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC with millisecond precision and `Z`, e.g. `2024-01-25T14:00:02.123Z`
/// (what JavaScript's `Date.toJSON()` produced in the original).
#[must_use]
pub fn rfc3339_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time formatted with [`rfc3339_millis`].
#[must_use]
pub fn now_rfc3339() -> String {
    rfc3339_millis(Utc::now())
}

/// Serde helpers that (de)serialise `DateTime<Utc>` as [`rfc3339_millis`] strings.
pub mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as RFC 3339 with milliseconds and `Z`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_millis(*at))
    }

    /// Accepts any RFC 3339 timestamp and normalises it to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Serialises an optional timestamp as an [`rfc3339_millis`] string, or `null`.
///
/// # Errors
/// Only the serializer's own.
pub fn serde_millis_opt<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&rfc3339_millis(*at)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_millis_and_z() {
        let at = Utc.with_ymd_and_hms(2024, 1, 25, 14, 0, 2).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(rfc3339_millis(at), "2024-01-25T14:00:02.123Z");
    }
}

//! Query-string parameters of the list routes. Each helper reads one raw value; when it is
//! invalid, the helper adds that parameter's 400 message to `errors` and answers a default,
//! so a request hears about every invalid parameter at once.

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};

/// An RFC 3339 instant or a `YYYY-MM-DD` date (its midnight, UTC).
pub(crate) fn date(
    raw: Option<&String>,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        });
    if parsed.is_none() {
        errors.push(format!("{name} must be a valid ISO 8601 date string"));
    }
    parsed
}

/// An integer within `range`; `default` when absent or invalid.
pub(crate) fn int(
    raw: Option<&String>,
    name: &str,
    range: RangeInclusive<i64>,
    default: i64,
    errors: &mut Vec<String>,
) -> i64 {
    match raw {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                errors.push(format!(
                    "{name} must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ));
                default
            }
        },
    }
}

/// The trimmed, non-empty items of a comma-separated list; `None` when there are none.
pub(crate) fn list(raw: Option<&String>) -> Option<Vec<String>> {
    let items: Vec<String> = raw?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (!items.is_empty()).then_some(items)
}

/// [`list`] whose items must all be in `allowed`.
pub(crate) fn list_of(
    raw: Option<&String>,
    name: &str,
    allowed: &[&str],
    errors: &mut Vec<String>,
) -> Option<Vec<String>> {
    let items = list(raw)?;
    if items.iter().any(|item| !allowed.contains(&item.as_str())) {
        errors.push(format!(
            "{name} must be one of the following values: {}",
            allowed.join(", ")
        ));
    }
    Some(items)
}

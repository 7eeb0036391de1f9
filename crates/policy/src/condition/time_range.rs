//! The `timeRange` condition: a daily window in a time zone, or an absolute interval.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::{join, string};
use crate::error::{ValidationError, ValidationErrorKind as K};

/// A `timeRange`: a daily window in a time zone, or an absolute interval.
#[derive(Debug, Clone)]
pub(crate) enum TimeRange {
    /// Seconds since local midnight, inclusive; wraps midnight when `start > end`.
    Daily { start: u32, end: u32, tz: Tz },
    /// `start <= now <= end`.
    Absolute {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl TimeRange {
    pub(super) fn holds(&self, now: DateTime<Utc>) -> bool {
        match *self {
            TimeRange::Daily { start, end, tz } => {
                let t = now.with_timezone(&tz).num_seconds_from_midnight();
                if start <= end {
                    start <= t && t <= end
                } else {
                    t >= start || t <= end
                }
            }
            TimeRange::Absolute { start, end } => start <= now && now <= end,
        }
    }

    pub(super) fn local_time(&self, now: DateTime<Utc>) -> Option<String> {
        match self {
            TimeRange::Daily { tz, .. } => {
                Some(now.with_timezone(tz).format("%H:%M:%S").to_string())
            }
            TimeRange::Absolute { .. } => None,
        }
    }

    /// `{start, end, timezone?}` or the alias `"HH:MM-HH:MM"`.
    pub(super) fn compile(value: &Value, path: &str) -> Result<TimeRange, ValidationError> {
        let (start, end, tz) = match value {
            Value::String(s) => {
                let Some((start, end)) = s.split_once('-') else {
                    return Err(ValidationError::new(path, K::BadTime(s.clone())));
                };
                let daily = |t: &str| {
                    parse_time_of_day(t.trim())
                        .ok_or_else(|| ValidationError::new(path, K::BadTime(t.trim().to_owned())))
                };
                return Ok(TimeRange::Daily {
                    start: daily(start)?,
                    end: daily(end)?,
                    tz: Tz::UTC,
                });
            }
            Value::Object(map) => {
                for key in map.keys() {
                    if !matches!(key.as_str(), "start" | "end" | "timezone") {
                        return Err(ValidationError::new(join(path, key), K::UnknownField));
                    }
                }
                let field = |name: &str| -> Result<&str, ValidationError> {
                    match map.get(name) {
                        Some(v) => string(v, &join(path, name)),
                        None => Err(ValidationError::new(join(path, name), K::Missing)),
                    }
                };
                let tz = match map.get("timezone") {
                    None | Some(Value::Null) => None,
                    Some(v) => {
                        let p = join(path, "timezone");
                        let name = string(v, &p)?;
                        Some(Tz::from_str(name).map_err(|_| {
                            ValidationError::new(p, K::BadTimeZone(name.to_owned()))
                        })?)
                    }
                };
                (field("start")?, field("end")?, tz)
            }
            _ => {
                return Err(ValidationError::new(
                    path,
                    K::WrongType("an object {start, end, timezone?} or a \"HH:MM-HH:MM\" string"),
                ));
            }
        };
        let (start_path, end_path) = (join(path, "start"), join(path, "end"));
        match (parse_time_of_day(start), parse_time_of_day(end)) {
            (Some(s), Some(e)) => Ok(TimeRange::Daily {
                start: s,
                end: e,
                tz: tz.unwrap_or(Tz::UTC),
            }),
            (s, e) => {
                let abs = |t: &str, p: &str| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|_| ValidationError::new(p, K::BadTime(t.to_owned())))
                };
                if s.is_some() {
                    abs(end, &end_path)?;
                    return Err(ValidationError::new(path, K::MixedTimeKinds));
                }
                if e.is_some() {
                    abs(start, &start_path)?;
                    return Err(ValidationError::new(path, K::MixedTimeKinds));
                }
                let (start, end) = (abs(start, &start_path)?, abs(end, &end_path)?);
                if tz.is_some() {
                    return Err(ValidationError::new(
                        join(path, "timezone"),
                        K::TimeZoneOnAbsoluteRange,
                    ));
                }
                if start > end {
                    return Err(ValidationError::new(path, K::StartAfterEnd));
                }
                Ok(TimeRange::Absolute { start, end })
            }
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hms = |s: u32| format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
        match self {
            TimeRange::Daily { start, end, tz } => {
                write!(f, "{}-{} {}", hms(*start), hms(*end), tz.name())
            }
            TimeRange::Absolute { start, end } => {
                write!(f, "{}..{}", start.to_rfc3339(), end.to_rfc3339())
            }
        }
    }
}

/// `H:MM`, `HH:MM` or `HH:MM:SS` (24-hour) as seconds since midnight.
fn parse_time_of_day(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let num = |p: Option<&str>, min_len: usize, max: u32| -> Option<u32> {
        let p = p?;
        if !(min_len..=2).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u32>().ok().filter(|v| *v <= max)
    };
    let h = num(parts.next(), 1, 23)?;
    let m = num(parts.next(), 2, 59)?;
    let sec = match parts.next() {
        None => 0,
        some => num(some, 2, 59)?,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

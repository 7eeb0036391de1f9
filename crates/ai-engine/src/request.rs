//! Request parsing for the inference endpoints, with FastAPI's
//! 422 error items (`type`, `loc`, `msg`, `input`).
//!
//! It is lenient where existing clients rely on it and strict where safety needs it:
//! * the non-standard tokens `NaN`, `Infinity` and `-Infinity` are accepted in values;
//! * `value` accepts JSON numbers and numeric strings, never `null`;
//! * timestamps accept ISO-8601 date-times (separator `T`, `t`, `_` or space, optional
//!   fraction, optional `Z` or offset; a naive time is UTC) and Unix seconds (milliseconds above
//!   2·10¹⁰), and are normalised to UTC;
//! * unknown keys are ignored.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Map, Value, json};

use crate::detector::{LogEntry, MetricPoint, MetricType};

/// A 422 detail item.
pub type DetailItem = Value;

/// A parsed metric with its labels (labels are kept for the feed and for signals, not for
/// features).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// What the detector sees.
    pub point: MetricPoint,
    /// Series labels.
    pub labels: BTreeMap<String, String>,
}

/// A parsed `detect-anomaly` or `detect-failure` body.
#[derive(Debug, Clone)]
pub struct DetectRequest {
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Log lines (`detect-failure` only).
    pub logs: Vec<LogEntry>,
    /// The body as received (after the non-finite tokens were made parseable), for history.
    pub raw: Value,
    /// Whether `raw` was parsed from the body bytes unmodified (no non-finite token was
    /// quoted), so the bytes themselves are valid JSON and can be stored as they came.
    pub verbatim: bool,
}

/// Longest label value that can name a workload (a Kubernetes name is at most 253 bytes).
pub const MAX_WORKLOAD_LABEL: usize = 253;

/// The workload a window's labels name, which keys its anomaly model: `<namespace>/<deployment>`
/// when a metric carries a `deployment` label, else `<namespace>/pod/<pod>` when one carries
/// `pod`, else `None` (the window shares its signature's model with every window that names no
/// workload). The first metric that names one decides. A value that could not be a
/// Kubernetes name (empty, longer than [`MAX_WORKLOAD_LABEL`], or holding `/`, `|` or a
/// control character) counts as absent, so that no label can forge another series' key.
#[must_use]
pub fn workload(metrics: &[Metric]) -> Option<String> {
    let usable = |v: &String| {
        !v.is_empty()
            && v.len() <= MAX_WORKLOAD_LABEL
            && !v.chars().any(|c| c == '/' || c == '|' || c.is_control())
    };
    metrics.iter().find_map(|m| {
        let ns = m
            .labels
            .get("namespace")
            .filter(|v| usable(v))
            .map_or("", String::as_str);
        if let Some(d) = m.labels.get("deployment").filter(|v| usable(v)) {
            Some(format!("{ns}/{d}"))
        } else {
            m.labels
                .get("pod")
                .filter(|v| usable(v))
                .map(|p| format!("{ns}/pod/{p}"))
        }
    })
}

/// Which endpoint is parsing: `detect-failure` requires `logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /detect-anomaly`.
    Anomaly,
    /// `POST /detect-failure`.
    Failure,
}

fn item(ty: &str, loc: &[Value], msg: &str, input: Option<&Value>) -> DetailItem {
    let mut loc_all = vec![json!("body")];
    loc_all.extend(loc.iter().cloned());
    let mut m = json!({"type": ty, "loc": loc_all, "msg": msg});
    if let (Some(obj), Some(input)) = (m.as_object_mut(), input) {
        obj.insert("input".into(), input.clone());
    }
    m
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings) into strings, so a
/// standard JSON parser accepts them; [`parse_value`] turns them back into numbers.
#[must_use]
pub fn quote_non_finite(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(tok) = TOKENS.iter().find(|t| body[i..].starts_with(t)) {
            let buf = out.get_or_insert_with(|| body[..i].to_vec());
            buf.push(b'"');
            buf.extend_from_slice(tok);
            buf.push(b'"');
            i += tok.len();
            continue;
        }
        if let Some(buf) = out.as_mut() {
            buf.push(b);
        }
        i += 1;
    }
    match out {
        Some(v) => std::borrow::Cow::Owned(v),
        None => std::borrow::Cow::Borrowed(body),
    }
}

/// A number, a numeric string, or one of the non-finite tokens.
fn parse_value(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            t => t
                .parse::<f64>()
                .ok()
                .filter(|x| !x.is_nan() || t.eq_ignore_ascii_case("nan")),
        },
        _ => None,
    }
}

/// datetimes.
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() {
                return None;
            }
            let secs = if secs.abs() > 2e10 {
                secs / 1000.0
            } else {
                secs
            };
            let whole = secs.floor();
            let nanos = ((secs - whole) * 1e9).round() as u32;
            Utc.timestamp_opt(whole as i64, nanos.min(999_999_999))
                .single()
        }
        Value::String(s) => parse_datetime_str(s),
        _ => None,
    }
}

fn parse_datetime_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // A date alone is not a date-time.
    if s.len() < 16 {
        return None;
    }
    let mut norm: Vec<u8> = s.as_bytes().to_vec();
    match norm.get(10) {
        Some(b'T' | b't' | b'_' | b' ') => norm[10] = b'T',
        _ => return None,
    }
    if let Some(last) = norm.last_mut()
        && *last == b'z'
    {
        *last = b'Z';
    }
    let norm = String::from_utf8(norm).ok()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(&norm) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&norm, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&norm, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// The required `timestamp` of a metric or log item, or its 422 item.
fn timestamp_field(
    obj: &Map<String, Value>,
    loc: &[Value],
    errors: &mut Vec<DetailItem>,
) -> Option<DateTime<Utc>> {
    let Some(t) = obj.get("timestamp") else {
        errors.push(item("missing", loc, "Field required", None));
        return None;
    };
    let parsed = parse_timestamp(t);
    if parsed.is_none() {
        errors.push(item(
            "datetime_parsing",
            loc,
            "Input should be a valid datetime",
            Some(t),
        ));
    }
    parsed
}

fn parse_metric(i: usize, v: &Value, errors: &mut Vec<DetailItem>) -> Option<Metric> {
    let at = |k: &str| vec![json!("metrics"), json!(i), json!(k)];
    let Some(obj) = v.as_object() else {
        errors.push(item(
            "model_attributes_type",
            &[json!("metrics"), json!(i)],
            "Input should be a valid dictionary or object to extract fields from",
            Some(v),
        ));
        return None;
    };
    let before = errors.len();
    let metric_type = match obj.get("metric_type") {
        None => {
            errors.push(item("missing", &at("metric_type"), "Field required", None));
            None
        }
        Some(Value::String(s)) => MetricType::parse(s).or_else(|| {
            errors.push(item(
                "enum",
                &at("metric_type"),
                "Input should be 'cpu_usage', 'memory_usage', 'request_rate', 'error_rate', 'response_time' or 'disk_io'",
                obj.get("metric_type"),
            ));
            None
        }),
        Some(other) => {
            errors.push(item("string_type", &at("metric_type"), "Input should be a valid string", Some(other)));
            None
        }
    };
    let value = match obj.get("value") {
        None => {
            errors.push(item("missing", &at("value"), "Field required", None));
            None
        }
        Some(v) => parse_value(v).or_else(|| {
            errors.push(item(
                "float_type",
                &at("value"),
                "Input should be a valid number",
                Some(v),
            ));
            None
        }),
    };
    let timestamp = timestamp_field(obj, &at("timestamp"), errors);
    let mut labels = BTreeMap::new();
    match obj.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, lv) in map {
                match lv {
                    Value::String(s) => {
                        labels.insert(k.clone(), s.clone());
                    }
                    other => errors.push(item(
                        "string_type",
                        &[json!("metrics"), json!(i), json!("labels"), json!(k)],
                        "Input should be a valid string",
                        Some(other),
                    )),
                }
            }
        }
        Some(other) => errors.push(item(
            "dict_type",
            &at("labels"),
            "Input should be a valid dictionary",
            Some(other),
        )),
    }
    if errors.len() > before {
        return None;
    }
    Some(Metric {
        point: MetricPoint {
            metric_type: metric_type?,
            value: value?,
            timestamp: timestamp?,
        },
        labels,
    })
}

fn parse_log(i: usize, v: &Value, errors: &mut Vec<DetailItem>) -> Option<LogEntry> {
    let at = |k: &str| vec![json!("logs"), json!(i), json!(k)];
    let Some(obj) = v.as_object() else {
        errors.push(item(
            "model_attributes_type",
            &[json!("logs"), json!(i)],
            "Input should be a valid dictionary or object to extract fields from",
            Some(v),
        ));
        return None;
    };
    let before = errors.len();
    let timestamp = timestamp_field(obj, &at("timestamp"), errors);
    let mut text = |k: &str| match obj.get(k) {
        None => {
            errors.push(item("missing", &at(k), "Field required", None));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(item(
                "string_type",
                &at(k),
                "Input should be a valid string",
                Some(other),
            ));
            None
        }
    };
    let level = text("level");
    let message = text("message");
    let service = text("service");
    if errors.len() > before {
        return None;
    }
    Some(LogEntry {
        timestamp: timestamp?,
        level: level?,
        message: message?,
        service: service?,
    })
}

fn list<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    required: bool,
    max_items: usize,
    errors: &mut Vec<DetailItem>,
) -> Option<&'a Vec<Value>> {
    match obj.get(key) {
        None if required => {
            errors.push(item("missing", &[json!(key)], "Field required", None));
            None
        }
        None => None,
        Some(Value::Array(items)) if items.len() > max_items => {
            errors.push(item(
                "too_long",
                &[json!(key)],
                &format!(
                    "List should have at most {max_items} items after validation, not {}",
                    items.len()
                ),
                None,
            ));
            None
        }
        Some(Value::Array(items)) => Some(items),
        Some(other) => {
            errors.push(item(
                "list_type",
                &[json!(key)],
                "Input should be a valid list",
                Some(other),
            ));
            None
        }
    }
}

/// Parses bytes as JSON, accepting the non-finite tokens; errors are a 422 `detail` list.
pub fn parse_lenient_json(body: &[u8]) -> Result<Value, Vec<DetailItem>> {
    let body = quote_non_finite(body);
    serde_json::from_slice(&body).map_err(|e| json_invalid(&e))
}

fn json_invalid(e: &serde_json::Error) -> Vec<DetailItem> {
    vec![item(
        "json_invalid",
        &[json!(e.column())],
        &format!("JSON decode error: {e}"),
        None,
    )]
}

/// Parses a `detect-anomaly` or `detect-failure` body; errors are the 422 `detail` list.
pub fn parse_detect(
    body: &[u8],
    kind: Kind,
    max_items: usize,
) -> Result<DetectRequest, Vec<DetailItem>> {
    let quoted = quote_non_finite(body);
    let verbatim = matches!(quoted, std::borrow::Cow::Borrowed(_));
    let raw = serde_json::from_slice(&quoted).map_err(|e| json_invalid(&e))?;
    let mut req = parse_detect_value(raw, kind, max_items)?;
    req.verbatim = verbatim;
    Ok(req)
}

/// Like [`parse_detect`] for an already parsed body (`verbatim` is false: no bytes came with it).
pub fn parse_detect_value(
    raw: Value,
    kind: Kind,
    max_items: usize,
) -> Result<DetectRequest, Vec<DetailItem>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec![item(
            "model_attributes_type",
            &[],
            "Input should be a valid dictionary or object to extract fields from",
            Some(&raw),
        )]);
    };
    let mut errors = Vec::new();
    match obj.get("context") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => errors.push(item(
            "dict_type",
            &[json!("context")],
            "Input should be a valid dictionary",
            Some(other),
        )),
    }
    let metric_items = list(obj, "metrics", true, max_items, &mut errors);
    let log_items = list(obj, "logs", kind == Kind::Failure, max_items, &mut errors);
    let metrics: Vec<Metric> = metric_items
        .map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| parse_metric(i, v, &mut errors))
                .collect()
        })
        .unwrap_or_default();
    let logs: Vec<LogEntry> = match kind {
        Kind::Failure => log_items
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| parse_log(i, v, &mut errors))
                    .collect()
            })
            .unwrap_or_default(),
        Kind::Anomaly => Vec::new(),
    };
    if errors.is_empty() {
        Ok(DetectRequest {
            metrics,
            logs,
            raw,
            verbatim: false,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens_outside_strings_are_quoted() {
        let body = br#"{"a":NaN,"b":-Infinity,"c":"NaN inside","d":Infinity}"#;
        let v: Value = serde_json::from_slice(&quote_non_finite(body)).unwrap();
        assert_eq!(v["a"], "NaN");
        assert_eq!(v["b"], "-Infinity");
        assert_eq!(v["c"], "NaN inside");
        assert!(parse_value(&v["a"]).unwrap().is_nan());
        assert_eq!(parse_value(&v["b"]), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn timestamps_per_section_3_6() {
        let utc = |s: &str| parse_timestamp(&json!(s)).map(|t| t.to_rfc3339());
        assert_eq!(
            utc("2024-01-25T10:00:00Z").unwrap(),
            "2024-01-25T10:00:00+00:00"
        );
        assert_eq!(
            utc("2024-01-25 10:00:00").unwrap(),
            "2024-01-25T10:00:00+00:00"
        );
        assert_eq!(
            utc("2024-01-25_10:00:00.5").unwrap(),
            "2024-01-25T10:00:00.500+00:00"
        );
        assert_eq!(
            utc("2024-01-25t12:00:00+02:00").unwrap(),
            "2024-01-25T10:00:00+00:00"
        );
        assert!(utc("2024-01-25").is_none());
        assert!(utc("yesterday").is_none());
        let secs = parse_timestamp(&json!(1_706_176_800)).unwrap();
        let millis = parse_timestamp(&json!(1_706_176_800_000_i64)).unwrap();
        assert_eq!(secs, millis);
    }

    #[test]
    fn errors_carry_locations() {
        let body = br#"{"metrics":[{"metric_type":"CPU","value":null,"timestamp":"2024-01-25"}]}"#;
        let errs = parse_detect(body, Kind::Anomaly, 100).unwrap_err();
        let types: Vec<&str> = errs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, vec!["enum", "float_type", "datetime_parsing"]);
        assert_eq!(errs[0]["loc"], json!(["body", "metrics", 0, "metric_type"]));
    }

    #[test]
    fn failure_requires_logs() {
        let errs = parse_detect(br#"{"metrics":[]}"#, Kind::Failure, 100).unwrap_err();
        assert_eq!(errs[0]["type"], "missing");
        assert_eq!(errs[0]["loc"], json!(["body", "logs"]));
        assert!(parse_detect(br#"{"metrics":[],"logs":[]}"#, Kind::Failure, 100).is_ok());
    }

    #[test]
    fn workload_from_labels() {
        let metric = |labels: &[(&str, &str)]| Metric {
            point: MetricPoint {
                metric_type: MetricType::CpuUsage,
                value: 1.0,
                timestamp: Utc::now(),
            },
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let both = metric(&[
            ("namespace", "shop"),
            ("deployment", "api"),
            ("pod", "api-1"),
        ]);
        assert_eq!(workload(&[both]).as_deref(), Some("shop/api"));
        let pod = metric(&[("namespace", "shop"), ("pod", "api-1")]);
        assert_eq!(workload(&[pod]).as_deref(), Some("shop/pod/api-1"));
        assert_eq!(workload(&[metric(&[("service", "x")])]), None);
        assert_eq!(workload(&[]), None);
        // The first metric that names a workload decides.
        let named = metric(&[("deployment", "web")]);
        assert_eq!(workload(&[metric(&[]), named]).as_deref(), Some("/web"));
        // Values that could forge another key, or are not names, do not count.
        for bad in ["a|b", "a/b", "", "x\n"] {
            let bad = bad.replace("\\n", "\n");
            assert_eq!(
                workload(&[metric(&[("deployment", &bad)])]),
                None,
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_WORKLOAD_LABEL + 1);
        assert_eq!(workload(&[metric(&[("deployment", &long)])]), None);
    }

    #[test]
    fn numeric_strings_and_labels() {
        let body = br#"{"metrics":[{"metric_type":"cpu_usage","value":"95.5","timestamp":1706176800,"labels":{"pod":"a"}}],"context":null,"extra":1}"#;
        let req = parse_detect(body, Kind::Anomaly, 100).unwrap();
        assert_eq!(req.metrics[0].point.value, 95.5);
        assert_eq!(req.metrics[0].labels["pod"], "a");
        let bad = br#"{"metrics":[{"metric_type":"cpu_usage","value":1,"timestamp":1,"labels":{"pod":3}}]}"#;
        let errs = parse_detect(bad, Kind::Anomaly, 100).unwrap_err();
        assert_eq!(errs[0]["type"], "string_type");
    }

    #[test]
    fn limits_and_shapes() {
        let errs = parse_detect(br#"{"metrics":{}}"#, Kind::Anomaly, 100).unwrap_err();
        assert_eq!(errs[0]["type"], "list_type");
        let errs = parse_detect(br#"{"metrics":[1,2,3]}"#, Kind::Anomaly, 2).unwrap_err();
        assert_eq!(errs[0]["type"], "too_long");
        let errs = parse_detect(b"{nope", Kind::Anomaly, 2).unwrap_err();
        assert_eq!(errs[0]["type"], "json_invalid");
        let errs = parse_detect(br#"{"metrics":[],"context":5}"#, Kind::Anomaly, 2).unwrap_err();
        assert_eq!(errs[0]["type"], "dict_type");
    }
}

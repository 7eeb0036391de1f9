//! Feature engineering: per-metric-type statistics, log counts, their
//! combination, and the fixed 55-feature vector the random forest is trained on.
//!
//! Nothing here scales or normalises: the rule thresholds use raw units.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Value that replaces `+∞` in a computed feature.
pub const POS_INF_REPLACEMENT: f64 = 1e10;
/// Value that replaces `−∞` in a computed feature.
pub const NEG_INF_REPLACEMENT: f64 = -1e10;

pub use aegis_common::contracts::MetricType;

/// One metric sample as the detector sees it (labels are not used for features).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The metric type.
    pub metric_type: MetricType,
    /// The value; non-finite values are treated as missing.
    pub value: f64,
    /// The instant, already normalised to UTC.
    pub timestamp: DateTime<Utc>,
}

/// One log line as the detector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The instant, already normalised to UTC.
    pub timestamp: DateTime<Utc>,
    /// Free-text level, compared after lower-casing (`error`, `warn`, `info`).
    pub level: String,
    /// The message; keywords are searched in its lower-cased form.
    pub message: String,
    /// Case-sensitive service identifier.
    pub service: String,
}

/// Statistic suffixes of a metric feature, in name order.
pub const METRIC_STATS: [&str; 7] = [
    "max",
    "mean",
    "median",
    "min",
    "rate_of_change",
    "std",
    "trend",
];

/// The 13 log feature names, in name order.
pub const LOG_FEATURE_NAMES: [&str; 13] = [
    "error_count",
    "error_rate",
    "info_count",
    "keyword_connection",
    "keyword_crashed",
    "keyword_error",
    "keyword_exception",
    "keyword_failed",
    "keyword_timeout",
    "max_service_errors",
    "total_logs",
    "unique_services",
    "warn_count",
];

/// Keywords counted on error-level logs, in the order of their `keyword_*` names.
const KEYWORDS: [&str; 6] = [
    "connection",
    "crashed",
    "error",
    "exception",
    "failed",
    "timeout",
];

/// Number of features in the random forest's fixed vector.
pub const RF_FEATURE_COUNT: usize = 55;

/// The random forest's fixed feature vector: the 6 × 7 metric features and
/// the 13 log features, all 55 sorted together by code point. Absent features are 0.
pub const RF_FEATURE_NAMES: [&str; RF_FEATURE_COUNT] = [
    "cpu_usage_max",
    "cpu_usage_mean",
    "cpu_usage_median",
    "cpu_usage_min",
    "cpu_usage_rate_of_change",
    "cpu_usage_std",
    "cpu_usage_trend",
    "disk_io_max",
    "disk_io_mean",
    "disk_io_median",
    "disk_io_min",
    "disk_io_rate_of_change",
    "disk_io_std",
    "disk_io_trend",
    "error_count",
    "error_rate",
    "error_rate_max",
    "error_rate_mean",
    "error_rate_median",
    "error_rate_min",
    "error_rate_rate_of_change",
    "error_rate_std",
    "error_rate_trend",
    "info_count",
    "keyword_connection",
    "keyword_crashed",
    "keyword_error",
    "keyword_exception",
    "keyword_failed",
    "keyword_timeout",
    "max_service_errors",
    "memory_usage_max",
    "memory_usage_mean",
    "memory_usage_median",
    "memory_usage_min",
    "memory_usage_rate_of_change",
    "memory_usage_std",
    "memory_usage_trend",
    "request_rate_max",
    "request_rate_mean",
    "request_rate_median",
    "request_rate_min",
    "request_rate_rate_of_change",
    "request_rate_std",
    "request_rate_trend",
    "response_time_max",
    "response_time_mean",
    "response_time_median",
    "response_time_min",
    "response_time_rate_of_change",
    "response_time_std",
    "response_time_trend",
    "total_logs",
    "unique_services",
    "warn_count",
];

/// An ordered list of named feature values: one row of the feature matrix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    names: Vec<String>,
    values: Vec<f64>,
}

impl FeatureSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a feature; the value is sanitised.
    pub fn push(&mut self, name: impl Into<String>, value: f64) {
        self.names.push(name.into());
        self.values.push(sanitize(value));
    }

    /// True when no feature was extracted.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Feature names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Feature values, in the order of [`Self::names`].
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value of the first feature called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i).copied())
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().copied())
    }

    /// `self` (metric features) followed by `other` (log features), no re-sort.
    pub fn concat(mut self, other: Self) -> Self {
        self.names.extend(other.names);
        self.values.extend(other.values);
        self
    }
}

/// NaN → 0, +∞ → 1e10, −∞ → −1e10; finite values unchanged.
pub fn sanitize(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else if value == f64::INFINITY {
        POS_INF_REPLACEMENT
    } else if value == f64::NEG_INFINITY {
        NEG_INF_REPLACEMENT
    } else {
        value
    }
}

/// The finite values of each metric type in timestamp order (stable sort,
/// so ties keep input order). Types with no finite value are absent.
pub fn metric_series(points: &[MetricPoint]) -> BTreeMap<MetricType, Vec<f64>> {
    let mut sorted: Vec<&MetricPoint> = points.iter().filter(|p| p.value.is_finite()).collect();
    sorted.sort_by_key(|p| p.timestamp);
    let mut series: BTreeMap<MetricType, Vec<f64>> = BTreeMap::new();
    for p in sorted {
        series.entry(p.metric_type).or_default().push(p.value);
    }
    series
}

/// The seven statistics of one series, in [`METRIC_STATS`] order. `series` must be non-empty
/// and finite; an empty series gives zeros.
pub fn series_stats(v: &[f64]) -> [f64; 7] {
    let n = v.len();
    if n == 0 {
        return [0.0; 7];
    }
    let nf = n as f64;
    let mean = v.iter().sum::<f64>() / nf;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / nf;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = match (sorted.get(n / 2), n % 2) {
        (Some(&hi), 1) => hi,
        (Some(&hi), _) => (sorted.get(n / 2 - 1).copied().unwrap_or(hi) + hi) / 2.0,
        (None, _) => 0.0,
    };
    let rate_of_change = match (v.first(), v.last()) {
        (Some(first), Some(last)) if n > 1 => (last - first) / nf,
        _ => 0.0,
    };
    let trend = if n > 2 { ols_slope(v) } else { 0.0 };
    [max, mean, median, min, rate_of_change, var.sqrt(), trend]
}

/// Least-squares slope of `v` against its index 0..n−1.
fn ols_slope(v: &[f64]) -> f64 {
    let nf = v.len() as f64;
    let x_mean = (nf - 1.0) / 2.0;
    let y_mean = v.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in v.iter().enumerate() {
        let dx = i as f64 - x_mean;
        sxy += dx * (y - y_mean);
        sxx += dx * dx;
    }
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// The metric features `<type>_<stat>`, types and stats in name order.
pub fn metric_features(points: &[MetricPoint]) -> FeatureSet {
    metric_features_from_series(&metric_series(points))
}

/// [`metric_features`] from series already built by [`metric_series`] (lets the service reuse the series for
/// the z-score fallback without sorting twice).
pub fn metric_features_from_series(series: &BTreeMap<MetricType, Vec<f64>>) -> FeatureSet {
    let mut out = FeatureSet::new();
    for (ty, values) in series {
        if values.is_empty() {
            continue;
        }
        let stats = series_stats(values);
        for (stat, value) in METRIC_STATS.iter().zip(stats) {
            out.push(format!("{}_{stat}", ty.as_str()), value);
        }
    }
    out
}

/// The logs inside the failure-detection window: `timestamp ≥ now − window`, no upper bound.
pub fn windowed_logs<'a>(
    logs: &'a [LogEntry],
    now: DateTime<Utc>,
    window: Duration,
) -> impl Iterator<Item = &'a LogEntry> + 'a {
    let start = now - window;
    logs.iter().filter(move |l| l.timestamp >= start)
}

/// The 13 log features over the windowed logs; empty when no log survives the window.
pub fn log_features(logs: &[LogEntry], now: DateTime<Utc>, window: Duration) -> FeatureSet {
    let mut total = 0usize;
    let (mut errors, mut infos, mut warns) = (0usize, 0usize, 0usize);
    let mut keywords = [0usize; KEYWORDS.len()];
    let mut per_service: BTreeMap<&str, usize> = BTreeMap::new();
    for log in windowed_logs(logs, now, window) {
        total += 1;
        *per_service.entry(log.service.as_str()).or_default() += 1;
        match log.level.to_lowercase().as_str() {
            "error" => {
                errors += 1;
                let message = log.message.to_lowercase();
                for (count, keyword) in keywords.iter_mut().zip(KEYWORDS) {
                    if message.contains(keyword) {
                        *count += 1;
                    }
                }
            }
            "info" => infos += 1,
            "warn" => warns += 1,
            _ => {}
        }
    }
    let mut out = FeatureSet::new();
    if total == 0 {
        return out;
    }
    let max_service = per_service.values().copied().max().unwrap_or(0);
    out.push("error_count", errors as f64);
    out.push("error_rate", errors as f64 / total as f64);
    out.push("info_count", infos as f64);
    for (keyword, count) in KEYWORDS.iter().zip(keywords) {
        out.push(format!("keyword_{keyword}"), count as f64);
    }
    out.push("max_service_errors", max_service as f64);
    out.push("total_logs", total as f64);
    out.push("unique_services", per_service.len() as f64);
    out.push("warn_count", warns as f64);
    out
}

/// `affected_services`: distinct services of the error-level windowed logs, by error
/// count descending, then name ascending.
pub fn error_services(logs: &[LogEntry], now: DateTime<Utc>, window: Duration) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for log in windowed_logs(logs, now, window) {
        if log.level.to_lowercase() == "error" {
            *counts.entry(log.service.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    // BTreeMap order is name ascending; a stable sort by count keeps it among equal counts.
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    ranked.into_iter().map(|(s, _)| s.to_owned()).collect()
}

/// The random forest's fixed vector: [`RF_FEATURE_NAMES`] order, 0 for absent features.
pub fn rf_feature_vector(features: &FeatureSet) -> [f64; RF_FEATURE_COUNT] {
    let mut out = [0.0; RF_FEATURE_COUNT];
    for (name, value) in features.iter() {
        if let Ok(i) = RF_FEATURE_NAMES.binary_search(&name)
            && let Some(slot) = out.get_mut(i)
        {
            *slot = sanitize(value);
        }
    }
    out
}

/// Inverse of [`rf_feature_vector`] for reporting: the 55 names with their values.
pub fn rf_feature_set(vector: &[f64; RF_FEATURE_COUNT]) -> FeatureSet {
    let mut out = FeatureSet::new();
    for (name, value) in RF_FEATURE_NAMES.iter().zip(vector) {
        out.push(*name, *value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 25, 10, 0, 0).unwrap()
    }

    fn point(ty: MetricType, value: f64, secs_ago: i64) -> MetricPoint {
        MetricPoint {
            metric_type: ty,
            value,
            timestamp: now() - Duration::seconds(secs_ago),
        }
    }

    fn log(level: &str, message: &str, service: &str, secs_ago: i64) -> LogEntry {
        LogEntry {
            timestamp: now() - Duration::seconds(secs_ago),
            level: level.into(),
            message: message.into(),
            service: service.into(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn request_rate_newest_first_is_sorted_by_time() {
        let points: Vec<_> = [10.0, 20.0, 30.0, 40.0, 50.0]
            .iter()
            .enumerate()
            .map(|(i, v)| point(MetricType::RequestRate, *v, 10 * i as i64))
            .collect();
        let f = metric_features(&points);
        let names: Vec<_> = f.names().to_vec();
        assert_eq!(
            names,
            [
                "request_rate_max",
                "request_rate_mean",
                "request_rate_median",
                "request_rate_min",
                "request_rate_rate_of_change",
                "request_rate_std",
                "request_rate_trend"
            ]
        );
        let expected = [50.0, 30.0, 30.0, 10.0, -8.0, 14.142135623730951, -10.0];
        for (got, want) in f.values().iter().zip(expected) {
            assert!(close(*got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn two_points_have_zero_trend() {
        let points = [
            point(MetricType::CpuUsage, 1.0, 20),
            point(MetricType::CpuUsage, 3.0, 10),
        ];
        let f = metric_features(&points);
        assert_eq!(f.get("cpu_usage_rate_of_change"), Some(1.0));
        assert_eq!(f.get("cpu_usage_std"), Some(1.0));
        assert_eq!(f.get("cpu_usage_trend"), Some(0.0));
        assert_eq!(f.get("cpu_usage_median"), Some(2.0));
    }

    #[test]
    fn trend_of_hand_computed_series() {
        // x = 0..3, y = 1, 2, 4, 8: slope = Σdx·dy / Σdx² = 11.5 / 5 = 2.3.
        let s = series_stats(&[1.0, 2.0, 4.0, 8.0]);
        assert!(close(s[6], 2.3));
        assert!(close(s[2], 3.0)); // median of an even count
        assert!(close(s[4], 7.0 / 4.0));
    }

    #[test]
    fn types_are_sorted_by_name_and_non_finite_values_are_dropped() {
        let points = [
            point(MetricType::MemoryUsage, 5.0, 3),
            point(MetricType::CpuUsage, 1.0, 3),
            point(MetricType::CpuUsage, f64::INFINITY, 2),
            point(MetricType::CpuUsage, 2.0, 1),
            point(MetricType::DiskIo, f64::NAN, 1),
        ];
        let f = metric_features(&points);
        assert_eq!(f.len(), 14);
        assert_eq!(f.names()[0], "cpu_usage_max");
        assert_eq!(f.names()[7], "memory_usage_max");
        assert_eq!(f.get("cpu_usage_max"), Some(2.0));
        assert!(f.values().iter().all(|v| v.is_finite()));
        assert!(f.get("disk_io_mean").is_none());
    }

    #[test]
    fn only_non_finite_values_give_an_empty_set() {
        let f = metric_features(&[point(MetricType::CpuUsage, f64::NAN, 0)]);
        assert!(f.is_empty());
        assert!(metric_features(&[]).is_empty());
    }

    #[test]
    fn sanitize_replaces_non_finite_values() {
        assert_eq!(sanitize(f64::NAN), 0.0);
        assert_eq!(sanitize(f64::INFINITY), 1e10);
        assert_eq!(sanitize(f64::NEG_INFINITY), -1e10);
        assert_eq!(sanitize(1.5), 1.5);
    }

    #[test]
    fn log_features_count_levels_keywords_and_the_window() {
        let logs = [
            log("error", "Connection timeout", "api", 10),
            log("error", "Failed to connect to database", "api", 20),
            log("warn", "High memory usage", "worker", 30),
            log("info", "Request completed", "api", 40),
        ];
        let f = log_features(&logs, now(), Duration::seconds(300));
        let names: Vec<&str> = f.names().iter().map(String::as_str).collect();
        assert_eq!(names, LOG_FEATURE_NAMES);
        assert_eq!(
            f.values(),
            [
                2.0, 0.5, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 3.0, 4.0, 2.0, 1.0
            ]
        );
    }

    #[test]
    fn the_window_is_inclusive_and_has_no_upper_bound() {
        let w = Duration::seconds(300);
        assert!(log_features(&[log("info", "x", "a", 301)], now(), w).is_empty());
        assert_eq!(
            log_features(&[log("info", "x", "a", 299)], now(), w).len(),
            13
        );
        assert_eq!(
            log_features(&[log("info", "x", "a", 300)], now(), w).len(),
            13
        );
        let future = log("ERROR", "x", "a", -86_400);
        assert_eq!(
            log_features(&[future], now(), w).get("error_count"),
            Some(1.0)
        );
    }

    #[test]
    fn warning_is_not_warn_and_keywords_count_only_error_logs() {
        let logs = [
            log("warning", "connection", "a", 1),
            log("WARN", "connection", "a", 1),
            log("Error", "CONNECTION connection", "b", 1),
        ];
        let f = log_features(&logs, now(), Duration::seconds(300));
        assert_eq!(f.get("warn_count"), Some(1.0));
        assert_eq!(f.get("keyword_connection"), Some(1.0));
        assert_eq!(f.get("max_service_errors"), Some(2.0));
    }

    #[test]
    fn error_services_rank_by_count_then_name() {
        let logs = [
            log("error", "x", "zeta", 1),
            log("error", "x", "alpha", 1),
            log("error", "x", "zeta", 1),
            log("error", "x", "beta", 1),
            log("info", "x", "gamma", 1),
        ];
        let s = error_services(&logs, now(), Duration::seconds(300));
        assert_eq!(s, ["zeta", "alpha", "beta"]);
    }

    #[test]
    fn rf_names_are_sorted_unique_and_cover_all_features() {
        assert!(RF_FEATURE_NAMES.windows(2).all(|w| w[0] < w[1]));
        for ty in MetricType::ALL {
            for stat in METRIC_STATS {
                let name = format!("{}_{stat}", ty.as_str());
                assert!(RF_FEATURE_NAMES.contains(&name.as_str()), "{name}");
            }
        }
        for name in LOG_FEATURE_NAMES {
            assert!(RF_FEATURE_NAMES.contains(&name));
        }
    }

    #[test]
    fn rf_vector_places_values_by_name_and_zero_fills() {
        let mut f = FeatureSet::new();
        f.push("warn_count", 3.0);
        f.push("cpu_usage_max", 7.0);
        f.push("not_a_feature", 9.0);
        let v = rf_feature_vector(&f);
        assert_eq!(v[0], 7.0);
        assert_eq!(v[54], 3.0);
        assert_eq!(v.iter().sum::<f64>(), 10.0);
        assert_eq!(rf_feature_set(&v).get("warn_count"), Some(3.0));
    }

    #[test]
    fn metric_types_parse_exactly() {
        assert_eq!(MetricType::parse("disk_io"), Some(MetricType::DiskIo));
        assert_eq!(MetricType::parse("CPU_USAGE"), None);
        assert!(
            MetricType::ALL
                .windows(2)
                .all(|w| w[0].as_str() < w[1].as_str())
        );
    }
}

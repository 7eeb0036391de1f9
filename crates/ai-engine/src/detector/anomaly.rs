//! Anomaly detection: models per series, the z-score cold start, severity, recommended action,
//! a confidence calibrated against the series' own scores (see [`calibrated_confidence`]) and
//! `affected_features`.
//!
//! A series is a workload (the window's `namespace` and `deployment` labels, or its `pod`)
//! and a feature signature (the window's metric types); windows that name no workload share
//! one series per signature ([`series_key`]). [`AnomalyDetector`] holds, per series, the
//! temporal context of each metric type ([`super::temporal`]), a FIFO baseline of feature
//! rows, and at most one isolation forest trained on them, for at most
//! [`AnomalyConfig::max_series`] series. Storage is the service's job: it writes each window's
//! means and newest points to `training_data`, and when a series is not in memory (new,
//! evicted, or after a restart) it replays the stored rows through
//! [`AnomalyDetector::rebuild`], which trains deterministically (seed 42).

use std::collections::{BTreeMap, HashMap, VecDeque};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::DetectorError;
use super::features::{FeatureSet, MetricType};
use super::isolation_forest::{Contamination, IsolationForest, IsolationForestParams};
use super::temporal::{FEATURES_PER_TYPE, Temporal};

/// Points a metric type needs for the z-score fallback.
pub const MIN_SERIES_POINTS: usize = 3;
/// |z| above which the z-score fallback flags an anomaly.
pub const Z_ANOMALY: f64 = 3.0;
/// |z| that maps to an anomaly score of 1.
pub const Z_FULL_SCALE: f64 = 6.0;
/// Standard deviations below this count as zero.
pub const EPS: f64 = 1e-12;
/// The forest never trains on fewer rows.
pub const MIN_TRAINING_ROWS: usize = 10;

pub use aegis_common::contracts::{RemediationAction, Severity};

/// How a score in [0, 1] grades.
pub trait SeverityFromScore {
    /// ≥ 0.9 critical, ≥ 0.7 high, ≥ 0.5 medium, else low.
    fn from_score(score: f64) -> Self;
}

impl SeverityFromScore for Severity {
    fn from_score(score: f64) -> Self {
        if score >= 0.9 {
            Self::Critical
        } else if score >= 0.7 {
            Self::High
        } else if score >= 0.5 {
            Self::Medium
        } else {
            Self::Low
        }
    }
}

/// The recommended action, first matching row wins. `features` is the metric feature set; only the
/// `<type>_mean` features of cpu, memory, error_rate and request_rate are read.
pub fn recommended_action(
    is_anomaly: bool,
    anomaly_score: f64,
    features: &FeatureSet,
) -> RemediationAction {
    let above = |name: &str, limit: f64| features.get(name).is_some_and(|v| v > limit);
    if !is_anomaly || anomaly_score < 0.5 {
        RemediationAction::NoAction
    } else if features.is_empty() {
        RemediationAction::AlertAdmin
    } else if above("cpu_usage_mean", 80.0) || above("memory_usage_mean", 80.0) {
        RemediationAction::ScaleUp
    } else if above("error_rate_mean", 10.0) {
        RemediationAction::RestartPod
    } else if above("request_rate_mean", 1000.0) {
        RemediationAction::ThrottleApi
    } else if anomaly_score >= 0.8 {
        RemediationAction::AlertAdmin
    } else {
        RemediationAction::NoAction
    }
}

/// Which method produced an anomaly answer (`details.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyMethod {
    /// A trained forest for the request's signature.
    IsolationForest,
    /// The cold-start fallback.
    Zscore,
    /// No metric type had enough points.
    InsufficientData,
}

impl AnomalyMethod {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IsolationForest => "isolation_forest",
            Self::Zscore => "zscore",
            Self::InsufficientData => "insufficient_data",
        }
    }
}

/// The confidence of a forest's answer: how unusual the window is among the series' own
/// recent windows, as the share of them that scored lower (ties count half). `baseline` holds
/// their anomaly scores sorted ascending. In [0, 1], and it rises with the anomaly score: a
/// window as anomalous as the most anomalous tenth of its series' recent windows gets 0.9,
/// whatever the scale of the scores.
///
/// The recent windows are the ones the series' forests scored as they arrived, so each was
/// out of sample when scored; the forest's own training rows score as more normal than new
/// windows do (they sit in its trees), and serve only until enough windows were scored.
pub fn calibrated_confidence(baseline: &[f64], score: f64) -> f64 {
    if baseline.is_empty() || !score.is_finite() {
        return 0.0;
    }
    let below = baseline.partition_point(|s| *s < score);
    let not_above = baseline.partition_point(|s| *s <= score);
    let ties = not_above - below;
    ((below as f64 + ties as f64 / 2.0) / baseline.len() as f64).clamp(0.0, 1.0)
}

/// The confidence of a z-score answer: the share of a normal distribution closer to its mean
/// than the window's last point, `erf(|z| / √2)`. It rises with the anomaly score; 0 for a
/// point at the mean.
pub fn z_confidence(max_abs_z: f64) -> f64 {
    if max_abs_z.is_finite() {
        libm::erf(max_abs_z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// `affected_features`: the top 5 names by |value|, descending; ties keep name order.
pub fn affected_features<S: AsRef<str>>(values: &[f64], names: &[S]) -> Vec<String> {
    let mut ranked: Vec<(f64, &str)> = values
        .iter()
        .zip(names)
        .map(|(v, n)| (v.abs(), n.as_ref()))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .into_iter()
        .take(5)
        .map(|(_, n)| n.to_owned())
        .collect()
}

/// Result of the z-score fallback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZScore {
    /// Largest |z| over the eligible types (`details.max_abs_z`).
    pub max_abs_z: f64,
    /// `min(1, max_abs_z / 6)`.
    pub anomaly_score: f64,
    /// `max_abs_z > 3`.
    pub is_anomaly: bool,
    /// Largest |z| against each type's spread's upper bound, `σ̂ × (1 + 3/√(2n))` for a spread
    /// estimated from `n` earlier points (three standard errors of σ̂); infinite for a jump
    /// off a constant history.
    pub bounded_z: f64,
}

/// cold start: the last point of each series against the earlier ones. `None` when no type
/// has [`MIN_SERIES_POINTS`] points (`insufficient_data`). Series are time-ordered and finite
/// (see [`super::features::metric_series`]).
pub fn zscore(series: &BTreeMap<MetricType, Vec<f64>>) -> Option<ZScore> {
    let mut max_abs_z: Option<f64> = None;
    let mut bounded_z = 0.0f64;
    for values in series.values() {
        let Some((last, prev)) = values.split_last() else {
            continue;
        };
        if values.len() < MIN_SERIES_POINTS {
            continue;
        }
        let n = prev.len() as f64;
        let mu = prev.iter().sum::<f64>() / n;
        let sigma = (prev.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n).sqrt();
        let diff = last - mu;
        let z = if sigma < EPS {
            if diff.abs() < EPS { 0.0 } else { Z_FULL_SCALE }
        } else {
            diff / sigma
        };
        let z = z.abs();
        max_abs_z = Some(max_abs_z.map_or(z, |m: f64| m.max(z)));
        bounded_z = bounded_z.max(if sigma < EPS {
            if diff.abs() < EPS { 0.0 } else { f64::INFINITY }
        } else {
            z / (1.0 + 3.0 / (2.0 * n).sqrt())
        });
    }
    max_abs_z.map(|z| ZScore {
        max_abs_z: z,
        anomaly_score: (z / Z_FULL_SCALE).min(1.0),
        is_anomaly: z > Z_ANOMALY,
        bounded_z,
    })
}

/// The signature of a metric feature set: its metric types in order, comma-joined
/// (`cpu_usage,memory_usage`), as stored in `training_data.metadata.signature`.
pub fn signature(series: &BTreeMap<MetricType, Vec<f64>>) -> String {
    series
        .keys()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Settings of the regimen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyConfig {
    /// `1 − ANOMALY_THRESHOLD` (default 0.15), in (0, 0.5].
    pub contamination: f64,
    /// `MIN_SAMPLES_FOR_TRAINING` (default 100; values below 10 act as 10).
    pub min_samples_for_training: usize,
    /// `BASELINE_MAX_ROWS` (default 10 × `min_samples_for_training`), per series.
    pub baseline_max_rows: usize,
    /// Forest seed (42).
    pub seed: u64,
    /// Number of trees (100).
    pub n_estimators: usize,
    /// `ANOMALY_MAX_SERIES`: series held in memory (default 500); the least recently used
    /// beyond it is evicted.
    pub max_series: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            contamination: 1.0 - 0.85,
            min_samples_for_training: 100,
            baseline_max_rows: 1000,
            seed: 42,
            n_estimators: 50,
            max_series: 500,
        }
    }
}

impl AnomalyConfig {
    fn min_rows(&self) -> usize {
        self.min_samples_for_training.max(MIN_TRAINING_ROWS)
    }

    fn forest_params(&self) -> IsolationForestParams {
        IsolationForestParams::new()
            .n_estimators(self.n_estimators)
            .contamination(Contamination::Fraction(self.contamination))
            .seed(self.seed)
            // Baselines are small (≤ BASELINE_MAX_ROWS); keep the request thread's pool free.
            .parallel(false)
    }
}

/// A forest in place: the forest, the rows it was trained on, and their anomaly scores
/// sorted ascending (what [`calibrated_confidence`] ranks a window against until the series
/// has enough scored windows of its own).
#[derive(Debug, Clone)]
struct Fitted {
    forest: IsolationForest,
    rows: usize,
    scores: Vec<f64>,
}

/// The key of a series: the workload its labels name, then its signature (`nab/api|cpu_usage`),
/// or the signature alone for windows that name no workload.
pub fn series_key(workload: Option<&str>, signature: &str) -> String {
    match workload {
        Some(w) => format!("{w}|{signature}"),
        None => signature.to_owned(),
    }
}

/// One metric type of one window as a series' history keeps it: the window's mean and its
/// newest point. A stored row replays as one of these per type, in signature order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The mean of the window's points of this type.
    pub mean: f64,
    /// The newest of them.
    pub last: f64,
}

/// The observations of a window, one per metric type in signature order.
pub fn observations(series: &BTreeMap<MetricType, Vec<f64>>) -> Vec<Observation> {
    series
        .values()
        .filter_map(|values| {
            let last = *values.last()?;
            Some(Observation {
                mean: values.iter().sum::<f64>() / values.len() as f64,
                last,
            })
        })
        .collect()
}

/// One series' state: each metric type's past, the FIFO baseline of feature rows, the forest
/// trained on it, the scores its forests gave its recent windows, and the retrain counter.
#[derive(Debug, Clone, Default)]
pub struct SeriesState {
    temporal: Vec<Temporal>,
    baseline: VecDeque<Vec<f64>>,
    forest: Option<Fitted>,
    /// The anomaly scores of the latest scored windows, oldest first, and the same sorted.
    scored: VecDeque<f64>,
    scored_sorted: Vec<f64>,
    appended_since_training: usize,
    /// The number of the latest retrain handed out, and of the one whose forest is in place:
    /// a forest fitted outside the lock is installed only if no later one is.
    jobs_started: u64,
    job_installed: u64,
    /// When the series was last used ([`AnomalyDetector`]'s clock), for eviction.
    last_used: u64,
}

impl SeriesState {
    /// The series' feature row for a window, each type's [`Temporal::observe`] in order, and
    /// the window's deviation from the series' normal (the largest of its types'). The
    /// window becomes part of the series' past.
    fn observe(&mut self, window: &[Observation]) -> (Vec<f64>, Option<f64>) {
        if self.temporal.len() != window.len() {
            self.temporal = vec![Temporal::new(); window.len()];
        }
        let mut row = Vec::with_capacity(window.len() * FEATURES_PER_TYPE);
        let mut deviation: Option<f64> = None;
        for (t, o) in self.temporal.iter_mut().zip(window) {
            let (features, d) = t.observe_with_deviation(o.mean, o.last);
            row.extend_from_slice(&features);
            deviation = match (deviation, d) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        (row, deviation)
    }

    /// Appends a feature row to the baseline (FIFO of `max` rows).
    fn append(&mut self, row: Vec<f64>, max: usize) {
        self.baseline.push_back(row);
        if self.baseline.len() > max.max(1) {
            self.baseline.pop_front();
        }
        self.appended_since_training += 1;
    }

    /// Bytes the series holds: its histories, baseline, forest and recent scores.
    pub fn heap_bytes(&self) -> usize {
        let history: usize = self.temporal.iter().map(Temporal::heap_bytes).sum();
        let baseline: usize = self
            .baseline
            .iter()
            .map(|r| r.capacity() * size_of::<f64>() + size_of::<Vec<f64>>())
            .sum();
        let forest = self.forest.as_ref().map_or(0, |f| {
            f.forest.heap_bytes() + f.scores.capacity() * size_of::<f64>()
        });
        let scores = (self.scored.capacity() + self.scored_sorted.capacity()) * size_of::<f64>();
        size_of::<Self>() + history + baseline + forest + scores
    }
}

/// A retrain that fell due: the series' baseline as it stood then (the due request's row
/// included), to fit without holding the detector's lock ([`TrainingJob::fit`]) and hand back
/// with [`AnomalyDetector::install`].
#[derive(Debug)]
pub struct TrainingJob {
    series: String,
    number: u64,
    params: IsolationForestParams,
    rows: usize,
    flat: Vec<f64>,
}

/// A fitted [`TrainingJob`], ready to install.
#[derive(Debug)]
pub struct TrainedForest {
    series: String,
    number: u64,
    fitted: Fitted,
}

impl TrainingJob {
    /// Fits the forest (CPU-bound: a few milliseconds for a 1,000-row baseline).
    pub fn fit(self) -> Result<TrainedForest, DetectorError> {
        let p = self.flat.len().checked_div(self.rows).unwrap_or(0);
        let x = Array2::from_shape_vec((self.rows, p), self.flat)
            .map_err(|e| DetectorError::InvalidParameter(e.to_string()))?;
        let (forest, raw) = self.params.fit_array_scored(x.view())?;
        let scores = training_scores(&forest, &raw);
        Ok(TrainedForest {
            fitted: Fitted {
                forest,
                rows: self.rows,
                scores,
            },
            series: self.series,
            number: self.number,
        })
    }
}

/// Everything the service needs to answer an anomaly request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyOutcome {
    /// `is_anomaly`
    pub is_anomaly: bool,
    /// `anomaly_score` in [0, 1]
    pub anomaly_score: f64,
    /// `severity`
    pub severity: Severity,
    /// `recommended_action`
    pub recommended_action: RemediationAction,
    /// `confidence` (= `details.model_confidence`)
    pub confidence: f64,
    /// `details.method`
    pub method: AnomalyMethod,
    /// `details.threshold_used`: contamination (forest), 3.0 (z-score), none otherwise.
    pub threshold_used: Option<f64>,
    /// `details.baseline_size` (forest only).
    pub baseline_size: Option<usize>,
    /// `details.max_abs_z` (z-score only).
    pub max_abs_z: Option<f64>,
    /// `details.affected_features`.
    pub affected_features: Vec<String>,
    /// `affected_metrics`: the types that produced features, sorted.
    pub affected_metrics: Vec<MetricType>,
    /// `model_version`: `iforest-<signature>-<n>`, `zscore-1`, or `insufficient-data`.
    pub model_version: String,
    /// The signature the request belongs to.
    pub signature: String,
    /// The series it belongs to ([`series_key`]).
    pub series: String,
    /// True when this request's row triggered a (re)training; the service may record a
    /// `model_registry` row.
    pub retrained: bool,
}

/// What [`AnomalyDetector::detect_deferred`] answers: the outcome, and the retrain it made due.
#[derive(Debug)]
pub struct Detected {
    /// The answer to the request.
    pub outcome: AnomalyOutcome,
    /// The retrain to fit and install, when this request's row made one due.
    pub training: Option<TrainingJob>,
}

/// The regimen over all series. Not internally synchronised: the service wraps it in a
/// mutex (scoring and appending take microseconds; retrains are fitted outside it).
///
/// At most [`AnomalyConfig::max_series`] series are held; taking in a new one beyond that
/// evicts the least recently used (a scan over the series, paid only when a new series
/// arrives at a full detector). An evicted series is rebuilt from its stored rows when it
/// comes back ([`AnomalyDetector::rebuild`]).
#[derive(Debug, Clone, Default)]
pub struct AnomalyDetector {
    config: AnomalyConfig,
    series: HashMap<String, SeriesState>,
    clock: u64,
    evicted: u64,
}

impl AnomalyDetector {
    /// An empty detector (no series).
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            config,
            series: HashMap::new(),
            clock: 0,
            evicted: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    /// How many series have a trained forest.
    pub fn forest_count(&self) -> usize {
        self.series.values().filter(|s| s.forest.is_some()).count()
    }

    /// How many series are held.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// How many series were evicted since start-up.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether a series is held.
    pub fn contains(&self, key: &str) -> bool {
        self.series.contains_key(key)
    }

    /// Rows in a series' baseline.
    pub fn baseline_len(&self, key: &str) -> usize {
        self.series.get(key).map_or(0, |s| s.baseline.len())
    }

    /// The bytes a series holds ([`SeriesState::heap_bytes`]), if it is held.
    pub fn series_bytes(&self, key: &str) -> Option<usize> {
        self.series.get(key).map(SeriesState::heap_bytes)
    }

    /// The forest of a series and the baseline size it was trained on, if any.
    pub fn forest(&self, key: &str) -> Option<(&IsolationForest, usize)> {
        self.series
            .get(key)
            .and_then(|s| s.forest.as_ref().map(|f| (&f.forest, f.rows)))
    }

    /// A series' state rebuilt from its stored windows (oldest first, one [`Observation`] per
    /// metric type of `signature`): each window is replayed through the temporal features,
    /// the newest `baseline_max_rows` rows form the baseline, and the forest is trained on
    /// them when there are enough. Deterministic: the same rows give the same forest. Rows
    /// whose width does not match the signature are skipped. CPU-bound (a replay of a few
    /// thousand windows and one fit): run it off the async threads.
    pub fn rebuild(
        config: &AnomalyConfig,
        signature: &str,
        rows: impl IntoIterator<Item = Vec<Observation>>,
    ) -> Result<SeriesState, DetectorError> {
        let types = signature.split(',').filter(|s| !s.is_empty()).count();
        let mut state = SeriesState::default();
        for row in rows {
            if row.len() == types {
                let (features, _) = state.observe(&row);
                state.append(features, config.baseline_max_rows);
            }
        }
        state.appended_since_training = 0;
        if state.baseline.len() >= config.min_rows() {
            state.forest = Some(train(config, &state.baseline)?);
        }
        Ok(state)
    }

    /// Puts a rebuilt series in place, unless the series is already held (a request that
    /// arrived meanwhile started it; its state is newer). Returns whether it was put.
    pub fn insert(&mut self, key: String, state: SeriesState) -> bool {
        if self.series.contains_key(&key) {
            return false;
        }
        self.make_room();
        self.clock += 1;
        self.series.insert(
            key,
            SeriesState {
                last_used: self.clock,
                ..state
            },
        );
        true
    }

    /// Evicts least recently used series until one more fits.
    fn make_room(&mut self) {
        let max = self.config.max_series.max(1);
        while self.series.len() >= max {
            let Some(oldest) = self
                .series
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.series.remove(&oldest);
            self.evicted += 1;
        }
    }

    /// Scores the request (forest, else z-score, else insufficient data), then
    /// appends its feature row to the series' baseline and (re)trains when due.
    /// `Ok(None)` when the feature set is empty (then nothing is appended).
    pub fn detect(
        &mut self,
        workload: Option<&str>,
        series: &BTreeMap<MetricType, Vec<f64>>,
        features: &FeatureSet,
    ) -> Result<Option<AnomalyOutcome>, DetectorError> {
        let Some(detected) = self.detect_deferred(workload, series, features)? else {
            return Ok(None);
        };
        if let Some(job) = detected.training {
            self.install(job.fit()?);
        }
        Ok(Some(detected.outcome))
    }

    /// [`AnomalyDetector::detect`] without the retrain: when the request's row makes one due,
    /// the answer carries it as a [`TrainingJob`], so that the caller can fit it after letting
    /// go of the detector's lock and [`install`](AnomalyDetector::install) it before answering.
    /// Requests scored in between use the previous forest, as the due request itself does.
    /// A series not held starts empty: the service rebuilds it from storage first
    /// ([`AnomalyDetector::rebuild`]).
    pub fn detect_deferred(
        &mut self,
        workload: Option<&str>,
        series: &BTreeMap<MetricType, Vec<f64>>,
        features: &FeatureSet,
    ) -> Result<Option<Detected>, DetectorError> {
        if features.is_empty() {
            return Ok(None);
        }
        let sig = signature(series);
        let key = series_key(workload, &sig);
        if !self.series.contains_key(&key) {
            self.insert(key.clone(), SeriesState::default());
        }
        self.clock += 1;
        let clock = self.clock;
        let config = &self.config;
        let Some(state) = self.series.get_mut(&key) else {
            return Ok(None);
        };
        state.last_used = clock;
        let (row, deviation) = state.observe(&observations(series));
        let window_z = zscore(series);
        let (
            score,
            is_anomaly,
            method,
            threshold_used,
            baseline_size,
            max_abs_z,
            version,
            model_confidence,
        ) = match (&state.forest, window_z) {
            (Some(fitted), _) if fitted.forest.n_features() == row.len() => {
                let raw = fitted.forest.score_slice(&row)?;
                // The history judges the deviation once it is long enough; before, the
                // window's own spread does.
                let second = deviation.or(window_z.map(|z| z.bounded_z)).unwrap_or(0.0);
                let (s, anomalous) = forest_verdict(
                    fitted.forest.anomaly_score_of(raw),
                    unusual_from(&fitted.scores),
                    second,
                );
                let n = fitted.rows;
                let reference = if state.scored_sorted.len() >= config.min_rows() {
                    &state.scored_sorted
                } else {
                    &fitted.scores
                };
                let calibrated = calibrated_confidence(reference, s);
                remember_score(
                    &mut state.scored,
                    &mut state.scored_sorted,
                    s,
                    config.baseline_max_rows.max(1),
                );
                (
                    s,
                    anomalous,
                    AnomalyMethod::IsolationForest,
                    Some(config.contamination),
                    Some(n),
                    None,
                    format!("iforest-{sig}-{n}"),
                    calibrated,
                )
            }
            (_, Some(z)) => {
                let (score, anomalous) = z_verdict(z, deviation);
                (
                    score,
                    anomalous,
                    AnomalyMethod::Zscore,
                    Some(Z_ANOMALY),
                    None,
                    Some(z.max_abs_z),
                    "zscore-1".to_owned(),
                    z_confidence(z.max_abs_z),
                )
            }
            (_, None) => (
                0.0,
                false,
                AnomalyMethod::InsufficientData,
                None,
                None,
                None,
                "insufficient-data".to_owned(),
                0.0,
            ),
        };
        let (severity, action) = if method == AnomalyMethod::InsufficientData {
            (Severity::Low, RemediationAction::NoAction)
        } else {
            (
                Severity::from_score(score),
                recommended_action(is_anomaly, score, features),
            )
        };
        // Score first, then append.
        state.append(row, config.baseline_max_rows);
        let min_rows = config.min_rows();
        let due = match state.forest {
            None => state.baseline.len() >= min_rows,
            Some(_) => state.appended_since_training >= min_rows,
        };
        let training = due.then(|| {
            state.appended_since_training = 0;
            state.jobs_started += 1;
            TrainingJob {
                series: key.clone(),
                number: state.jobs_started,
                params: config.forest_params(),
                rows: state.baseline.len(),
                flat: state.baseline.iter().flatten().copied().collect(),
            }
        });
        let outcome = AnomalyOutcome {
            is_anomaly,
            anomaly_score: score,
            severity,
            recommended_action: action,
            confidence: model_confidence,
            method,
            threshold_used,
            baseline_size,
            max_abs_z,
            affected_features: affected_features(features.values(), features.names()),
            affected_metrics: series.keys().copied().collect(),
            model_version: version,
            signature: sig,
            series: key,
            retrained: due,
        };
        Ok(Some(Detected { outcome, training }))
    }

    /// Puts a fitted forest in place, unless a later retrain of its series already is (or
    /// the series was evicted meanwhile). Returns whether it was installed.
    pub fn install(&mut self, trained: TrainedForest) -> bool {
        let Some(state) = self.series.get_mut(&trained.series) else {
            return false;
        };
        if trained.number <= state.job_installed {
            return false;
        }
        state.job_installed = trained.number;
        state.forest = Some(trained.fitted);
        true
    }
}

/// The score and verdict of a window the forest scored `forest_score`, `deviation` robust
/// standard deviations off its series' normal ([`super::temporal`]).
///
/// Both must agree before a window is an anomaly: the forest must find it unusual among the
/// series' own windows (`forest_score ≥ unusual_from`), and it must lie at least
/// [`Z_ANOMALY`] robust
/// standard deviations from the series' normal. The forest alone flags a fixed share of
/// every series' windows (the contamination), however calm; the deviation alone would flag a
/// series that is spiky by nature. An anomaly scores the higher of the two, the deviation on
/// the z-score scale (`deviation / 6`, 1 at six robust standard deviations): an isolation
/// forest scores every point beyond its training data alike, however far, and the
/// deviation says how far. Anything else scores half the forest's score, so that a score
/// above 0.5 always means an anomaly and the windows below keep the forest's order.
///
/// `unusual_from` is 0.5, or the score of the forest's most isolated training row when that is
/// lower ([`unusual_from`]): a window beyond everything a small forest was trained on is only
/// as isolated as its most extreme rows, whose score can fall either side of 0.5.
pub fn forest_verdict(forest_score: f64, unusual_from: f64, deviation: f64) -> (f64, bool) {
    let forest_score = forest_score.clamp(0.0, 1.0);
    if forest_score >= unusual_from.min(0.5) && deviation >= Z_ANOMALY {
        let by_deviation = (deviation / Z_FULL_SCALE).clamp(0.0, 1.0);
        // Above 0.5 however the two tie.
        (forest_score.max(by_deviation).max(0.5f64.next_up()), true)
    } else {
        (forest_score / 2.0, false)
    }
}

/// Where a forest starts to find a window unusual: 0.5, or lower for a forest whose most
/// isolated training row scores lower (`scores` ascending).
fn unusual_from(scores: &[f64]) -> f64 {
    scores.last().copied().unwrap_or(0.5).min(0.5)
}

/// The anomaly scores of a forest's training rows, ascending, from their `score_samples`
/// (ascending, so the anomaly scores come out descending and are reversed).
fn training_scores(forest: &IsolationForest, raw_ascending: &[f64]) -> Vec<f64> {
    raw_ascending
        .iter()
        .rev()
        .map(|r| forest.anomaly_score_of(*r))
        .collect()
}

/// The score and verdict of the z-score fallback. A window's few points give a poor estimate
/// of its spread, and ordinary noise passes |z| > 3 in them often, so a window is an anomaly
/// only when |z| > 3 also holds against the spread's upper bound ([`ZScore::bounded_z`]), and,
/// once the
/// series has a history ([`super::temporal`]), when that history confirms the deviation. A
/// window that is not an anomaly scores at most 0.5; `max_abs_z` is reported as computed.
pub fn z_verdict(z: ZScore, deviation: Option<f64>) -> (f64, bool) {
    let confirmed = z.bounded_z > Z_ANOMALY && deviation.is_none_or(|d| d >= Z_ANOMALY);
    if z.is_anomaly && confirmed {
        (z.anomaly_score, true)
    } else {
        (z.anomaly_score.min(0.5), false)
    }
}

/// Adds `score` to the recent scores, dropping the oldest beyond `max`, and keeps the sorted
/// copy in step (a binary search and a shift each way).
fn remember_score(scored: &mut VecDeque<f64>, sorted: &mut Vec<f64>, score: f64, max: usize) {
    if !score.is_finite() {
        return;
    }
    scored.push_back(score);
    sorted.insert(sorted.partition_point(|s| *s < score), score);
    while scored.len() > max {
        if let Some(old) = scored.pop_front() {
            let at = sorted.partition_point(|s| *s < old);
            if sorted.get(at) == Some(&old) {
                sorted.remove(at);
            }
        }
    }
}

fn train(config: &AnomalyConfig, baseline: &VecDeque<Vec<f64>>) -> Result<Fitted, DetectorError> {
    let n = baseline.len();
    let p = baseline.front().map_or(0, Vec::len);
    let flat: Vec<f64> = baseline.iter().flatten().copied().collect();
    let x = Array2::from_shape_vec((n, p), flat)
        .map_err(|e| DetectorError::InvalidParameter(e.to_string()))?;
    let (forest, raw) = config.forest_params().fit_array_scored(x.view())?;
    let scores = training_scores(&forest, &raw);
    Ok(Fitted {
        forest,
        rows: n,
        scores,
    })
}

#[cfg(test)]
mod tests;

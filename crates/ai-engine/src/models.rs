//! The in-memory models of a running ai-engine: the anomaly regimen (a model per series, rebuilt
//! from `training_data` when a series is not in memory) and the failure forest, plus how they
//! are retrained.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::PgPool;

use crate::detector::{
    AnomalyConfig, AnomalyDetector, AnomalyOutcome, Detected, DetectorError, FeatureSet,
    MetricType, Observation, RandomForest, RandomForestParams,
    anomaly::signature,
    failure::{FailureClass, enough_training_rows, train_failure_forest},
    series_key,
    temporal::HISTORY_POINTS,
};

/// Why [`Engine::detect_anomaly`] could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A thread panicked while holding the detector or fitting a forest.
    #[error("the anomaly detector is unavailable (a thread panicked)")]
    Poisoned,
    /// Scoring or fitting failed.
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

/// The trained failure forest and its model version.
pub type FailureModel = (Arc<RandomForest>, String);

/// Models shared by the handlers.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The regimen (scoring and appending happen under this lock; both are fast, and a
    /// retrain is fitted outside it: [`Engine::detect_anomaly`]).
    pub anomaly: Arc<Mutex<AnomalyDetector>>,
    /// The failure forest once enough labelled rows exist, with its version.
    pub failure: Arc<RwLock<Option<FailureModel>>>,
    /// Where a series not in memory is rebuilt from (`training_data`).
    store: Option<PgPool>,
}

/// How long loading a series' stored windows may take before the series starts empty.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(5);

impl Engine {
    /// Empty models, rebuilt from nothing.
    #[must_use]
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            anomaly: Arc::new(Mutex::new(AnomalyDetector::new(config))),
            failure: Arc::new(RwLock::new(None)),
            store: None,
        }
    }

    /// Empty models that rebuild each series from its windows stored in `pool` when they
    /// first need it.
    #[must_use]
    pub fn with_store(config: AnomalyConfig, pool: PgPool) -> Self {
        Self {
            store: Some(pool),
            ..Self::new(config)
        }
    }

    /// Trained forests in memory: one per anomaly series, plus the failure forest.
    #[must_use]
    pub fn active_models(&self) -> i64 {
        let anomaly = self.anomaly.lock().map(|d| d.forest_count()).unwrap_or(0);
        let failure = usize::from(self.failure_forest().is_some());
        i64::try_from(anomaly + failure).unwrap_or(i64::MAX)
    }

    /// Series held in memory.
    #[must_use]
    pub fn series_count(&self) -> usize {
        self.anomaly.lock().map(|d| d.series_count()).unwrap_or(0)
    }

    /// Scores a request of `workload` (see [`series_key`]) and appends its row.
    ///
    /// A series not in memory is first rebuilt from its stored windows (one indexed query
    /// and a replay, on a blocking thread), so that neither a restart nor an eviction forgets
    /// what normal looks like; when PostgreSQL does not answer within [`REBUILD_TIMEOUT`] the
    /// series starts empty rather than failing the request. A retrain the request makes due
    /// is fitted on a blocking thread, with the lock released so that other requests are
    /// scored meanwhile (by the previous forest), and installed before this returns: a client
    /// that waits for its answer always gets the new forest on its next request.
    /// `Ok(None)`: no features.
    pub async fn detect_anomaly(
        &self,
        workload: Option<&str>,
        series: &BTreeMap<MetricType, Vec<f64>>,
        features: &FeatureSet,
    ) -> Result<Option<AnomalyOutcome>, EngineError> {
        if features.is_empty() {
            return Ok(None);
        }
        if let Some(pool) = &self.store {
            let sig = signature(series);
            let key = series_key(workload, &sig);
            let held = self
                .anomaly
                .lock()
                .map_err(|_| EngineError::Poisoned)?
                .contains(&key);
            if !held {
                self.rebuild(pool, workload, sig, key).await?;
            }
        }
        let detected = self
            .anomaly
            .lock()
            .map_err(|_| EngineError::Poisoned)?
            .detect_deferred(workload, series, features)?;
        let Some(Detected { outcome, training }) = detected else {
            return Ok(None);
        };
        if let Some(job) = training {
            let trained = tokio::task::spawn_blocking(move || job.fit())
                .await
                .map_err(|_| EngineError::Poisoned)??;
            self.anomaly
                .lock()
                .map_err(|_| EngineError::Poisoned)?
                .install(trained);
        }
        Ok(Some(outcome))
    }

    /// Rebuilds a series from storage and puts it in place (unless a concurrent request did).
    async fn rebuild(
        &self,
        pool: &PgPool,
        workload: Option<&str>,
        sig: String,
        key: String,
    ) -> Result<(), EngineError> {
        let config = self
            .anomaly
            .lock()
            .map_err(|_| EngineError::Poisoned)?
            .config()
            .clone();
        let limit = HISTORY_POINTS + config.baseline_max_rows;
        let rows = match tokio::time::timeout(
            REBUILD_TIMEOUT,
            load_series(pool, workload, &sig, limit),
        )
        .await
        {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                tracing::warn!(series = %key, error = %e, "series history not loaded; starting it empty");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(series = %key, "series history not loaded in time; starting it empty");
                return Ok(());
            }
        };
        if rows.is_empty() {
            return Ok(());
        }
        let state =
            tokio::task::spawn_blocking(move || AnomalyDetector::rebuild(&config, &sig, rows))
                .await
                .map_err(|_| EngineError::Poisoned)??;
        self.anomaly
            .lock()
            .map_err(|_| EngineError::Poisoned)?
            .insert(key, state);
        Ok(())
    }

    /// The current failure forest, if trained.
    #[must_use]
    pub fn failure_forest(&self) -> Option<FailureModel> {
        self.failure.read().ok().and_then(|g| g.clone())
    }
}

/// The newest `limit` stored windows of a series, oldest first, as observations per metric
/// type of `signature`: each type's mean from the row's features (`<type>_mean`) and its
/// newest point from `metadata.last` (rows written before it was recorded replay their mean).
/// Rows that lack a type are skipped.
pub async fn load_series(
    pool: &PgPool,
    workload: Option<&str>,
    signature: &str,
    limit: usize,
) -> Result<Vec<Vec<Observation>>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT features, metadata -> 'last' FROM training_data \
         WHERE model_type = 'anomaly' AND metadata ->> 'signature' = $1 \
           AND (metadata ->> 'series') IS NOT DISTINCT FROM $2 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(signature)
    .bind(workload)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let types: Vec<&str> = signature.split(',').filter(|t| !t.is_empty()).collect();
    let mut out: Vec<Vec<Observation>> = rows
        .iter()
        .filter_map(|(features, last)| {
            types
                .iter()
                .map(|t| {
                    let mean = features.get(format!("{t}_mean"))?.as_f64()?;
                    let last = last
                        .as_ref()
                        .and_then(|l| l.get(*t))
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(mean);
                    Some(Observation { mean, last })
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// Outcome of a failure-forest training run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    /// Whether a forest was trained (false: not enough rows per class yet).
    pub trained: bool,
    /// Labelled rows used.
    pub rows: usize,
    /// Rows per class name.
    pub class_counts: std::collections::BTreeMap<String, usize>,
    /// Model version when trained.
    pub model_version: Option<String>,
    /// Cross-validated accuracy (k-fold) when trained.
    pub cv_accuracy: Option<f64>,
}

/// Trains the failure forest from `training_data` (model_type `failure`) when every labelled
/// class has `min_rows_per_class` rows; records it in `model_registry` and `model_metrics`.
pub async fn train_failure(
    pool: &PgPool,
    engine: &Engine,
    min_rows_per_class: usize,
) -> anyhow::Result<TrainReport> {
    let rows: Vec<(serde_json::Value, i32)> = sqlx::query_as(
        "SELECT features, label FROM training_data WHERE model_type = 'failure' AND label IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut data = Vec::with_capacity(rows.len());
    for (features, label) in rows {
        let Some(class) = usize::try_from(label).ok().and_then(FailureClass::from_id) else {
            continue;
        };
        let mut set = FeatureSet::new();
        if let Some(obj) = features.as_object() {
            for (k, v) in obj {
                if let Some(x) = v.as_f64() {
                    set.push(k.clone(), x);
                }
            }
        }
        data.push((set, class));
    }
    let labels: Vec<FailureClass> = data.iter().map(|(_, c)| *c).collect();
    let mut class_counts = std::collections::BTreeMap::new();
    for c in &labels {
        *class_counts.entry(c.as_str().to_owned()).or_insert(0) += 1;
    }
    let mut report = TrainReport {
        trained: false,
        rows: data.len(),
        class_counts,
        model_version: None,
        cv_accuracy: None,
    };
    if !enough_training_rows(&labels, min_rows_per_class) {
        return Ok(report);
    }
    let params = RandomForestParams::service_defaults();
    let (forest, cv) = tokio::task::spawn_blocking(move || {
        let cv = cross_validated_accuracy(&data, &params, 5);
        train_failure_forest(&data, &params).map(|f| (f, cv))
    })
    .await??;
    let version = format!(
        "rf-{}-{}",
        report.rows,
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    );
    sqlx::query(
        "INSERT INTO model_registry (model_name, model_type, version, algorithm, hyperparameters, \
         performance_metrics, deployed_date, status, created_by) \
         VALUES ('failure-random-forest', 'failure', $1, 'random_forest', $2, $3, now(), 'deployed', 'aegis-ai-engine')",
    )
    .bind(&version)
    .bind(serde_json::json!({"n_estimators": 100, "max_depth": 10, "class_weight": "balanced", "max_features": "sqrt", "seed": 42}))
    .bind(serde_json::json!({"cv_accuracy": cv}))
    .execute(pool)
    .await?;
    if let Some(acc) = cv {
        sqlx::query(
            "INSERT INTO model_metrics (model_type, model_version, metric_name, metric_value, dataset_size) \
             VALUES ('failure', $1, 'accuracy', $2::float8::numeric(10,6), $3)",
        )
        .bind(&version)
        .bind(acc)
        .bind(i32::try_from(report.rows).unwrap_or(i32::MAX))
        .execute(pool)
        .await?;
    }
    if let Ok(mut slot) = engine.failure.write() {
        *slot = Some((Arc::new(forest), version.clone()));
    }
    report.trained = true;
    report.model_version = Some(version);
    report.cv_accuracy = cv;
    Ok(report)
}

/// k-fold accuracy (folds by index modulo k over a deterministic order).
fn cross_validated_accuracy(
    data: &[(FeatureSet, FailureClass)],
    params: &RandomForestParams,
    k: usize,
) -> Option<f64> {
    if data.len() < k * 2 {
        return None;
    }
    let mut correct = 0usize;
    let mut total = 0usize;
    for fold in 0..k {
        let train: Vec<(FeatureSet, FailureClass)> = data
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k != fold)
            .map(|(_, r)| r.clone())
            .collect();
        let Ok(forest) = train_failure_forest(&train, params) else {
            return None;
        };
        for (i, (features, class)) in data.iter().enumerate() {
            if i % k != fold {
                continue;
            }
            let vector = crate::detector::features::rf_feature_vector(features);
            if let Ok(p) = forest.predict_proba_row(&vector) {
                total += 1;
                if crate::detector::random_forest::argmax(p.iter()) == class.id() {
                    correct += 1;
                }
            }
        }
    }
    (total > 0).then(|| correct as f64 / total as f64)
}

//! The in-memory models of a running ai-engine: the anomaly regimen (baselines and forests per
//! signature) and the failure forest, plus how they are restored and retrained.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use sqlx::PgPool;

use crate::detector::{
    AnomalyConfig, AnomalyDetector, AnomalyOutcome, Detected, DetectorError, FeatureSet,
    MetricType, RandomForest, RandomForestParams,
    failure::{FailureClass, enough_training_rows, train_failure_forest},
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
}

impl Engine {
    /// Empty models.
    #[must_use]
    pub fn new(config: AnomalyConfig) -> Self {
        Self {
            anomaly: Arc::new(Mutex::new(AnomalyDetector::new(config))),
            failure: Arc::new(RwLock::new(None)),
        }
    }

    /// Trained forests in memory: one per anomaly signature, plus the failure forest.
    #[must_use]
    pub fn active_models(&self) -> i64 {
        let anomaly = self.anomaly.lock().map(|d| d.forest_count()).unwrap_or(0);
        let failure = usize::from(self.failure_forest().is_some());
        i64::try_from(anomaly + failure).unwrap_or(i64::MAX)
    }

    /// Scores a request and appends its row. A retrain it makes due is fitted on a
    /// blocking thread, with the lock released so that other requests are scored meanwhile
    /// (by the previous forest), and installed before this returns: a client that waits for
    /// its answer always gets the new forest on its next request. `Ok(None)`: no features.
    pub async fn detect_anomaly(
        &self,
        series: &BTreeMap<MetricType, Vec<f64>>,
        features: &FeatureSet,
    ) -> Result<Option<AnomalyOutcome>, EngineError> {
        let detected = self
            .anomaly
            .lock()
            .map_err(|_| EngineError::Poisoned)?
            .detect_deferred(series, features)?;
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

    /// The current failure forest, if trained.
    #[must_use]
    pub fn failure_forest(&self) -> Option<FailureModel> {
        self.failure.read().ok().and_then(|g| g.clone())
    }
}

/// Loads the newest `max_rows` baseline rows per signature from `training_data`.
pub async fn restore_baselines(
    pool: &PgPool,
    engine: &Engine,
    max_rows: usize,
) -> anyhow::Result<usize> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT sig, features FROM ( \
           SELECT metadata ->> 'signature' AS sig, features, id, \
                  row_number() OVER (PARTITION BY metadata ->> 'signature' ORDER BY id DESC) AS rn \
           FROM training_data WHERE model_type = 'anomaly' AND metadata ? 'signature' \
         ) t WHERE rn <= $1 ORDER BY sig, id",
    )
    .bind(i64::try_from(max_rows).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let mut by_sig: std::collections::BTreeMap<String, Vec<Vec<f64>>> = Default::default();
    for (sig, features) in rows {
        if let Some(obj) = features.as_object() {
            // Feature maps are stored in name order, which is the detector's column order.
            let row: Vec<f64> = obj.values().filter_map(serde_json::Value::as_f64).collect();
            by_sig.entry(sig).or_default().push(row);
        }
    }
    let mut total = 0;
    let mut detector = engine
        .anomaly
        .lock()
        .map_err(|_| anyhow::anyhow!("anomaly detector lock poisoned"))?;
    for (sig, rows) in by_sig {
        total += rows.len();
        detector.restore_baseline(&sig, rows)?;
    }
    Ok(total)
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

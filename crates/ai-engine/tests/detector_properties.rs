//! Property tests for the detector invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aegis_ai_engine::detector::features::{MetricPoint, MetricType, metric_features};
use aegis_ai_engine::detector::{IsolationForestParams, RandomForestParams};
use chrono::{Duration, TimeZone, Utc};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn metric_features_are_always_finite(
        samples in prop::collection::vec((0usize..6, value(), 0i64..1000), 0..40)
    ) {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 25, 10, 0, 0).unwrap();
        let points: Vec<MetricPoint> = samples
            .iter()
            .map(|(ty, v, s)| MetricPoint {
                metric_type: MetricType::ALL[*ty],
                value: *v,
                timestamp: t0 + Duration::seconds(*s),
            })
            .collect();
        let f = metric_features(&points);
        prop_assert!(f.values().iter().all(|v| v.is_finite()));
        prop_assert_eq!(f.len() % 7, 0);
        let mut sorted = f.names().to_vec();
        sorted.sort();
        prop_assert_eq!(sorted, f.names().to_vec());
    }

    #[test]
    fn forest_outputs_are_well_formed(
        rows in prop::collection::vec(prop::collection::vec(-100.0f64..100.0, 3), 4..60),
        seed in 0u64..1000,
    ) {
        let n = rows.len();
        let x = Array2::from_shape_vec((n, 3), rows.concat()).unwrap();
        let y: Array1<usize> = (0..n).map(|i| i % 3).collect();
        let rf = RandomForestParams::new()
            .n_estimators(5)
            .seed(seed)
            .fit_array(x.view(), y.view())
            .unwrap();
        let proba = rf.predict_proba(x.view()).unwrap();
        for row in proba.rows() {
            prop_assert!((row.sum() - 1.0).abs() < 1e-9);
        }
        let imp: f64 = rf.feature_importances().iter().sum();
        prop_assert!(imp == 0.0 || (imp - 1.0).abs() < 1e-9);

        let iforest = IsolationForestParams::new()
            .n_estimators(10)
            .seed(seed)
            .fit_array(x.view())
            .unwrap();
        let scores = iforest.score_samples(x.view()).unwrap();
        prop_assert!(scores.iter().all(|s| (-1.0..0.0).contains(s)));
        for row in x.rows() {
            let a = iforest.anomaly_score_row(row).unwrap();
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }
}

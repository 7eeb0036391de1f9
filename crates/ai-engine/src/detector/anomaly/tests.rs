use super::*;
use crate::detector::features::{MetricPoint, metric_features_from_series, metric_series};
use chrono::{Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cpu(values: &[f64]) -> BTreeMap<MetricType, Vec<f64>> {
    let t0 = Utc.with_ymd_and_hms(2024, 1, 25, 10, 0, 0).unwrap();
    let points: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| MetricPoint {
            metric_type: MetricType::CpuUsage,
            value: *v,
            timestamp: t0 + Duration::seconds(i as i64),
        })
        .collect();
    metric_series(&points)
}

fn fs(pairs: &[(&str, f64)]) -> FeatureSet {
    let mut f = FeatureSet::new();
    for (n, v) in pairs {
        f.push(*n, *v);
    }
    f
}

#[test]
fn severity_table() {
    let cases = [
        (0.95, Severity::Critical),
        (0.9, Severity::Critical),
        (0.75, Severity::High),
        (0.7, Severity::High),
        (0.55, Severity::Medium),
        (0.5, Severity::Medium),
        (0.3, Severity::Low),
    ];
    for (score, want) in cases {
        assert_eq!(Severity::from_score(score), want, "{score}");
    }
}

#[test]
fn action_table() {
    use RemediationAction::*;
    let f = fs(&[
        ("cpu_usage_mean", 90.0),
        ("memory_usage_mean", 50.0),
        ("request_rate_mean", 10.0),
        ("error_rate_mean", 0.0),
    ]);
    assert_eq!(recommended_action(true, 0.8, &f), ScaleUp);
    let f = fs(&[
        ("cpu_usage_mean", 50.0),
        ("memory_usage_mean", 50.0),
        ("request_rate_mean", 100.0),
        ("error_rate_mean", 50.0),
    ]);
    assert_eq!(recommended_action(true, 0.8, &f), RestartPod);
    let f = fs(&[("request_rate_mean", 1500.0)]);
    assert_eq!(recommended_action(true, 0.8, &f), ThrottleApi);
    let f = fs(&[("request_rate_mean", 5.0)]);
    assert_eq!(recommended_action(true, 0.85, &f), AlertAdmin);
    assert_eq!(recommended_action(true, 0.6, &f), NoAction);
    assert_eq!(recommended_action(true, 0.4, &f), NoAction);
    assert_eq!(recommended_action(false, 0.95, &f), NoAction);
    assert_eq!(
        recommended_action(true, 0.6, &FeatureSet::new()),
        AlertAdmin
    );
}

#[test]
fn affected_features_are_the_largest_absolute_values_first() {
    let names = ["cpu", "memory", "disk", "network", "errors"];
    let top = affected_features(&[1.0, 50.0, 0.5, 100.0, 2.0], &names);
    assert!(top.contains(&"network".to_owned()) && top.contains(&"memory".to_owned()));
    let names = ["a", "b", "c", "d", "e", "f"];
    let top = affected_features(&[1.0, -50.0, 0.5, 100.0, 2.0, 3.0], &names);
    assert_eq!(top, ["d", "b", "f", "e", "a"]);
}

#[test]
fn zscore_cold_start() {
    let series = cpu(&[85.0, 86.0, 84.0, 85.0, 99.0]);
    let features = metric_features_from_series(&series);
    let mut det = AnomalyDetector::new(AnomalyConfig::default());
    let out = det.detect(None, &series, &features).unwrap().unwrap();
    assert!(out.is_anomaly);
    assert_eq!(out.anomaly_score, 1.0);
    assert_eq!(out.severity, Severity::Critical);
    assert_eq!(out.recommended_action, RemediationAction::ScaleUp);
    assert_eq!(out.confidence, 1.0);
    assert_eq!(out.method, AnomalyMethod::Zscore);
    assert!((out.max_abs_z.unwrap() - 19.79899).abs() < 1e-4);
    assert_eq!(out.threshold_used, Some(3.0));
    assert_eq!(
        out.affected_features,
        [
            "cpu_usage_max",
            "cpu_usage_mean",
            "cpu_usage_median",
            "cpu_usage_min",
            "cpu_usage_std"
        ]
    );
    assert_eq!(out.affected_metrics, [MetricType::CpuUsage]);

    let flat = cpu(&[50.0; 5]);
    let out = det
        .detect(None, &flat, &metric_features_from_series(&flat))
        .unwrap()
        .unwrap();
    assert!(!out.is_anomaly);
    assert_eq!(
        (out.anomaly_score, out.confidence),
        (0.0, 0.0),
        "a point at the mean is not unusual at all"
    );
    assert_eq!(out.recommended_action, RemediationAction::NoAction);

    let single = cpu(&[95.0]);
    let out = det
        .detect(None, &single, &metric_features_from_series(&single))
        .unwrap()
        .unwrap();
    assert_eq!(out.method, AnomalyMethod::InsufficientData);
    assert_eq!((out.anomaly_score, out.confidence), (0.0, 0.0));
    assert_eq!(out.affected_metrics, [MetricType::CpuUsage]);
}

#[test]
fn constant_history_with_a_jump_is_full_scale() {
    let z = zscore(&cpu(&[5.0, 5.0, 5.0, 7.0])).unwrap();
    assert_eq!(z.max_abs_z, Z_FULL_SCALE);
    assert!(zscore(&cpu(&[5.0, 5.0])).is_none());
}

#[test]
fn the_forest_takes_over_after_min_samples_and_retrains_on_cadence() {
    let config = AnomalyConfig {
        min_samples_for_training: 10,
        baseline_max_rows: 30,
        ..AnomalyConfig::default()
    };
    let mut det = AnomalyDetector::new(config);
    let mut retrained = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for i in 0..25 {
        let mut noisy = || 50.0 + rng.random_range(-5.0..5.0);
        let series = cpu(&[noisy(), noisy(), noisy(), noisy()]);
        let out = det
            .detect(None, &series, &metric_features_from_series(&series))
            .unwrap()
            .unwrap();
        // The request that triggers training is still scored by the fallback.
        let expected = if i < 10 {
            AnomalyMethod::Zscore
        } else {
            AnomalyMethod::IsolationForest
        };
        assert_eq!(out.method, expected, "request {i}");
        if out.retrained {
            retrained.push(i);
        }
    }
    assert_eq!(retrained, [9, 19]);
    assert_eq!(det.forest("cpu_usage").map(|(_, n)| n), Some(20));
    let series = cpu(&[50.0, 52.0, 49.0, 95.0]);
    let out = det
        .detect(None, &series, &metric_features_from_series(&series))
        .unwrap()
        .unwrap();
    assert!(out.is_anomaly && out.anomaly_score > 0.5, "{out:?}");
    assert_eq!(out.model_version, "iforest-cpu_usage-20");
}

#[test]
fn a_deferred_retrain_scores_with_the_old_forest_until_installed_and_never_goes_back() {
    let config = AnomalyConfig {
        min_samples_for_training: 10,
        ..AnomalyConfig::default()
    };
    let mut deferred = AnomalyDetector::new(config.clone());
    let mut inline = AnomalyDetector::new(config);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut series = Vec::new();
    for _ in 0..21 {
        let mut noisy = || 50.0 + rng.random_range(-5.0..5.0);
        series.push(cpu(&[noisy(), noisy(), noisy(), noisy()]));
    }
    let detect = |det: &mut AnomalyDetector, s: &BTreeMap<MetricType, Vec<f64>>| {
        det.detect_deferred(None, s, &metric_features_from_series(s))
            .unwrap()
            .unwrap()
    };
    // The first forest, fitted and installed at once.
    let mut jobs = Vec::new();
    for s in &series[..10] {
        jobs.extend(detect(&mut deferred, s).training);
        inline
            .detect(None, s, &metric_features_from_series(s))
            .unwrap();
    }
    assert_eq!(jobs.len(), 1);
    assert!(deferred.install(jobs.remove(0).fit().unwrap()));
    // The next retrain falls due; while it is out, requests use the 10-row forest.
    for s in &series[10..20] {
        jobs.extend(detect(&mut deferred, s).training);
        inline
            .detect(None, s, &metric_features_from_series(s))
            .unwrap();
    }
    assert_eq!(jobs.len(), 1);
    let second = jobs.remove(0);
    let probe = &series[20];
    assert_eq!(
        detect(&mut deferred, probe).outcome.model_version,
        "iforest-cpu_usage-10"
    );
    // A later retrain that finishes first wins, and the earlier one, finishing after it,
    // is dropped (the later one here: the same baseline under the next number).
    let late = TrainingJob {
        number: second.number + 1,
        series: second.series.clone(),
        params: second.params.clone(),
        rows: second.rows,
        flat: second.flat.clone(),
    };
    assert!(deferred.install(late.fit().unwrap()));
    assert!(
        !deferred.install(second.fit().unwrap()),
        "an older retrain is not installed"
    );
    // The installed forest is the one the inline detector trained on the same 20 rows.
    let (forest, n) = deferred.forest("cpu_usage").unwrap();
    let (reference, m) = inline.forest("cpu_usage").unwrap();
    assert_eq!((n, m), (20, 20));
    assert_eq!(forest, reference);
}

/// Windows of one metric type around `level` (±`spread`), labelled with `workload`.
fn windows(level: f64, spread: f64, n: usize, seed: u64) -> Vec<BTreeMap<MetricType, Vec<f64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            cpu(&(0..5)
                .map(|_| level + rng.random_range(-spread..spread))
                .collect::<Vec<_>>())
        })
        .collect()
}

fn feed(
    det: &mut AnomalyDetector,
    workload: Option<&str>,
    windows: &[BTreeMap<MetricType, Vec<f64>>],
) {
    for w in windows {
        det.detect(workload, w, &metric_features_from_series(w))
            .unwrap();
    }
}

fn score(det: &AnomalyDetector, workload: Option<&str>, level: f64) -> AnomalyOutcome {
    let w = cpu(&[level; 5]);
    det.clone()
        .detect(workload, &w, &metric_features_from_series(&w))
        .unwrap()
        .unwrap()
}

#[test]
fn each_workload_has_its_own_notion_of_normal() {
    let mut det = AnomalyDetector::new(AnomalyConfig {
        min_samples_for_training: 50,
        ..AnomalyConfig::default()
    });
    feed(&mut det, Some("shop/api"), &windows(20.0, 3.0, 300, 1));
    feed(&mut det, Some("shop/batch"), &windows(80.0, 3.0, 300, 2));
    assert_eq!(det.series_count(), 2);
    assert!(det.forest("shop/api|cpu_usage").is_some());
    assert!(det.forest("shop/batch|cpu_usage").is_some());
    // 80 % is the batch worker's everyday level and far off the API server's.
    let api = score(&det, Some("shop/api"), 80.0);
    let batch = score(&det, Some("shop/batch"), 80.0);
    assert_eq!(api.method, AnomalyMethod::IsolationForest);
    assert_eq!(api.series, "shop/api|cpu_usage");
    assert!(api.is_anomaly, "{api:?}");
    assert!(!batch.is_anomaly, "{batch:?}");
    assert!(
        api.anomaly_score > batch.anomaly_score + 0.1,
        "{api:?} {batch:?}"
    );
    assert!(api.confidence > 0.9, "{api:?}");
    // A window that names no workload has a series of its own, still cold.
    assert_eq!(score(&det, None, 80.0).method, AnomalyMethod::Zscore);
}

#[test]
fn the_least_recently_used_series_is_evicted_at_the_cap() {
    let mut det = AnomalyDetector::new(AnomalyConfig {
        min_samples_for_training: 10,
        max_series: 2,
        ..AnomalyConfig::default()
    });
    let w = windows(50.0, 2.0, 12, 3);
    feed(&mut det, Some("a/one"), &w);
    feed(&mut det, Some("a/two"), &w);
    // `one` was used last, so the third series pushes out `two`.
    feed(&mut det, Some("a/one"), &w[..1]);
    feed(&mut det, Some("a/three"), &w[..1]);
    assert_eq!(det.series_count(), 2);
    assert_eq!(det.evicted(), 1);
    assert!(det.contains("a/one|cpu_usage"));
    assert!(!det.contains("a/two|cpu_usage"));
    assert!(det.contains("a/three|cpu_usage"));
    let (with_forest, without) = (
        det.series_bytes("a/one|cpu_usage").unwrap(),
        det.series_bytes("a/three|cpu_usage").unwrap(),
    );
    assert!(det.forest("a/one|cpu_usage").is_some());
    assert!(
        with_forest > without + 1_000,
        "a series with a forest holds its trees: {with_forest} against {without}"
    );
}

#[test]
fn a_rebuilt_series_knows_normal_and_rebuilds_identically() {
    let config = AnomalyConfig {
        min_samples_for_training: 50,
        ..AnomalyConfig::default()
    };
    let rows: Vec<Vec<Observation>> = windows(30.0, 2.0, 400, 4)
        .iter()
        .map(observations)
        .collect();
    let a = AnomalyDetector::rebuild(&config, "cpu_usage", rows.clone()).unwrap();
    let b = AnomalyDetector::rebuild(&config, "cpu_usage", rows.clone()).unwrap();
    let mut det = AnomalyDetector::new(config.clone());
    assert!(det.insert("ns/app|cpu_usage".into(), a));
    assert!(
        !det.insert("ns/app|cpu_usage".into(), b.clone()),
        "a held series is kept"
    );
    assert_eq!(det.baseline_len("ns/app|cpu_usage"), 400);
    let mut other = AnomalyDetector::new(config.clone());
    other.insert("ns/app|cpu_usage".into(), b);
    assert_eq!(
        det.forest("ns/app|cpu_usage"),
        other.forest("ns/app|cpu_usage")
    );
    // The rebuilt series scores at once with its forest, and knows 30 % from 60 %.
    let calm = score(&det, Some("ns/app"), 30.0);
    let high = score(&det, Some("ns/app"), 60.0);
    assert_eq!(calm.method, AnomalyMethod::IsolationForest);
    assert!(!calm.is_anomaly && high.is_anomaly, "{calm:?} {high:?}");
    // Rows of another width (another signature's) are skipped.
    let wide = vec![
        vec![
            Observation {
                mean: 1.0,
                last: 1.0
            };
            2
        ];
        100
    ];
    let empty = AnomalyDetector::rebuild(&config, "cpu_usage", wide).unwrap();
    assert!(empty.forest.is_none() && empty.baseline.is_empty());
}

#[test]
fn calibrated_confidence_is_the_share_of_the_baseline_less_anomalous() {
    let baseline = [0.3, 0.4, 0.5, 0.5, 0.7, 0.9];
    assert_eq!(calibrated_confidence(&baseline, 1.0), 1.0);
    assert_eq!(calibrated_confidence(&baseline, 0.2), 0.0);
    assert!((calibrated_confidence(&baseline, 0.6) - 4.0 / 6.0).abs() < 1e-12);
    // Ties count half.
    assert!((calibrated_confidence(&baseline, 0.5) - 3.0 / 6.0).abs() < 1e-12);
    assert_eq!(calibrated_confidence(&[], 0.5), 0.0);
    assert_eq!(calibrated_confidence(&baseline, f64::NAN), 0.0);
}

#[test]
fn z_confidence_rises_from_zero_at_the_mean_towards_one() {
    assert_eq!(z_confidence(0.0), 0.0);
    assert!((z_confidence(1.0) - 0.682_689).abs() < 1e-6);
    assert!((z_confidence(3.0) - 0.997_300).abs() < 1e-6);
    assert_eq!(z_confidence(f64::INFINITY), 1.0);
    let mut last = 0.0;
    for i in 0..100 {
        let c = z_confidence(f64::from(i) / 10.0);
        assert!((0.0..=1.0).contains(&c) && c >= last, "{c} after {last}");
        last = c;
    }
}

/// A forest's confidence lies in [0, 1] and never falls as the anomaly score rises; an
/// ordinary window is middling, a far outlier is near certain.
#[test]
fn a_forests_confidence_rises_with_its_score() {
    let mut det = AnomalyDetector::new(AnomalyConfig {
        min_samples_for_training: 50,
        ..AnomalyConfig::default()
    });
    let mut rng = 7u64;
    let mut noise = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1000) as f64 / 100.0
    };
    // Enough windows for a forest and, after it, a full reference of out-of-sample scores.
    for _ in 0..200 {
        let window: Vec<f64> = (0..5).map(|_| 50.0 + noise()).collect();
        let s = cpu(&window);
        det.detect(None, &s, &metric_features_from_series(&s))
            .unwrap();
    }
    // Each window is scored by a copy of the warmed-up detector, so all of them are ranked
    // against the same recent windows.
    let mut answers = Vec::new();
    for level in [50.0, 53.0, 56.0, 60.0, 75.0, 140.0] {
        let window: Vec<f64> = (0..5).map(|_| level + noise()).collect();
        let s = cpu(&window);
        let out = det
            .clone()
            .detect_deferred(None, &s, &metric_features_from_series(&s))
            .unwrap()
            .unwrap()
            .outcome;
        assert_eq!(out.method, AnomalyMethod::IsolationForest);
        assert!((0.0..=1.0).contains(&out.confidence), "{out:?}");
        answers.push((out.anomaly_score, out.confidence));
    }
    let mut sorted = answers.clone();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in sorted.windows(2) {
        assert!(
            pair[1].1 >= pair[0].1,
            "confidence fell as the score rose: {sorted:?}"
        );
    }
    assert!(
        answers[0].1 < 0.9,
        "an ordinary window is not near certain: {answers:?}"
    );
    assert!(
        answers[5].1 > 0.95,
        "a far outlier is near certain: {answers:?}"
    );
}

#[test]
fn a_window_is_an_anomaly_only_when_the_forest_and_the_deviation_agree() {
    // Unusual to the forest and far off normal: the higher of the two.
    assert_eq!(forest_verdict(0.55, 0.5, 30.0), (1.0, true));
    assert_eq!(forest_verdict(0.95, 0.5, 3.0), (0.95, true));
    // A window beyond everything a ten-row forest saw ties with its threshold (a demo run
    // missed a 50 → 96 % burst that way).
    assert_eq!(forest_verdict(0.5, 0.5, 40.0), (1.0, true));
    // ... or scores like the forest's most isolated row, below 0.5 (a 50 → 95 % burst scored
    // 0.4952 against a ten-row forest whose most isolated row scored the same): unusual.
    assert_eq!(forest_verdict(0.4952, 0.4952, 40.0), (1.0, true));
    assert_eq!(forest_verdict(0.4952, 0.5, 40.0), (0.2476, false));
    // A forest whose extreme rows score above 0.5 still finds 0.5 unusual.
    assert_eq!(forest_verdict(0.5, 0.7, 40.0), (1.0, true));
    // Unusual to the forest, yet within 3 robust standard deviations: not an anomaly, and
    // below every anomaly, in the forest's order.
    assert_eq!(forest_verdict(0.9, 0.5, 1.2), (0.45, false));
    assert_eq!(forest_verdict(0.7, 0.5, 2.9), (0.35, false));
    // Far off, but the forest has seen such windows from this series: not an anomaly.
    assert_eq!(forest_verdict(0.4, 0.5, 12.0), (0.2, false));
    for f in [0.0, 0.3, 0.49, 0.5, 0.51, 0.8, 1.0] {
        for u in [0.3, 0.45, 0.5, 0.6] {
            for d in [0.0, 1.0, 2.9, 3.0, 6.0, 50.0] {
                let (s, a) = forest_verdict(f, u, d);
                assert!((0.0..=1.0).contains(&s));
                assert_eq!(
                    a,
                    s > 0.5,
                    "score above 0.5 means an anomaly ({f}, {u}, {d})"
                );
            }
        }
    }
}

#[test]
fn a_forest_finds_unusual_what_is_as_isolated_as_its_most_isolated_row() {
    // Scores ascending, as a fitted forest keeps them.
    assert_eq!(unusual_from(&[0.38, 0.45, 0.4952]), 0.4952);
    assert_eq!(unusual_from(&[0.3, 0.62]), 0.5);
    assert_eq!(unusual_from(&[]), 0.5);
}

#[test]
fn the_zscore_fallback_needs_the_history_to_agree_once_there_is_one() {
    let z = |max_abs_z: f64, earlier: usize| ZScore {
        max_abs_z,
        anomaly_score: (max_abs_z / Z_FULL_SCALE).min(1.0),
        is_anomaly: max_abs_z > Z_ANOMALY,
        bounded_z: max_abs_z / (1.0 + 3.0 / (2.0 * earlier as f64).sqrt()),
    };
    // No history yet: the window alone decides, against its spread's upper bound (for five
    // earlier points, |z| must pass 3 × 1.95).
    assert_eq!(z_verdict(z(7.2, 5), None), (1.0, true));
    assert_eq!(z_verdict(z(4.5, 5), None), (0.5, false));
    assert_eq!(z_verdict(z(4.5, 500), None), (0.75, true));
    // The history confirms it, or does not.
    assert_eq!(z_verdict(z(7.2, 5), Some(8.0)), (1.0, true));
    assert_eq!(z_verdict(z(7.2, 5), Some(1.0)), (0.5, false));
    assert_eq!(z_verdict(z(1.0, 5), Some(9.0)), (1.0 / 6.0, false));
    // Off a constant history, any jump is certain, however few the points.
    let jump = zscore(&cpu(&[5.0, 5.0, 5.0, 7.0])).unwrap();
    assert_eq!(jump.bounded_z, f64::INFINITY);
    assert_eq!(z_verdict(jump, None), (1.0, true));
    // Noise in a six-point window: |z| 3.3 is within what five points can say.
    let noise = zscore(&cpu(&[50.1, 49.9, 50.3, 49.8, 50.0, 50.9])).unwrap();
    assert!(noise.is_anomaly && noise.max_abs_z < 6.0, "{noise:?}");
    assert!(!z_verdict(noise, None).1, "{noise:?}");
}

//! Detector benchmarks: feature extraction, isolation forest fit/score, random forest
//! fit/predict on shuttle. Compare with `bench/sklearn_reference.py`.
//!
//! `cargo bench -p aegis-ai-engine --bench detector -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;

use aegis_ai_engine::detector::features::{
    LogEntry, MetricPoint, MetricType, log_features, metric_features, rf_feature_vector,
};
use aegis_ai_engine::detector::{Contamination, IsolationForestParams, RandomForestParams};
use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gaussian(n: usize, p: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, p), |_| {
        let u1: f64 = rng.random::<f64>().max(1e-12);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}

fn shuttle() -> (Array2<f64>, Array1<usize>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/data/shuttle.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let (mut flat, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let fields: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        flat.extend_from_slice(&fields[..9]);
        labels.push(fields[9] as usize);
    }
    let n = labels.len();
    (
        Array2::from_shape_vec((n, 9), flat).unwrap(),
        Array1::from(labels),
    )
}

fn features(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2024, 1, 25, 10, 0, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let points: Vec<MetricPoint> = (0..600)
        .map(|i| MetricPoint {
            metric_type: MetricType::ALL[i % 6],
            value: rng.random_range(0.0..100.0),
            timestamp: now - Duration::seconds((600 - i) as i64),
        })
        .collect();
    let levels = ["error", "warn", "info", "debug"];
    let logs: Vec<LogEntry> = (0..1000)
        .map(|i| LogEntry {
            timestamp: now - Duration::seconds((i % 400) as i64),
            level: levels[i % 4].into(),
            message: format!("Connection timeout while calling service {i}"),
            service: format!("svc-{}", i % 7),
        })
        .collect();
    c.bench_function("features/metric 600 points x 6 types", |b| {
        b.iter(|| metric_features(black_box(&points)))
    });
    c.bench_function("features/log 1000 lines", |b| {
        b.iter(|| log_features(black_box(&logs), now, Duration::seconds(300)))
    });
    let combined =
        metric_features(&points).concat(log_features(&logs, now, Duration::seconds(300)));
    c.bench_function("features/rf vector (55)", |b| {
        b.iter(|| rf_feature_vector(black_box(&combined)))
    });
}

fn isolation_forest(c: &mut Criterion) {
    let x = gaussian(100_000, 8, 7);
    let serial = IsolationForestParams::new().seed(42).parallel(false);
    let parallel = IsolationForestParams::new().seed(42);
    let mut g = c.benchmark_group("iforest");
    g.sample_size(20);
    g.bench_function("fit 100k x 8, 1 thread", |b| {
        b.iter(|| serial.fit_array(black_box(x.view())).unwrap())
    });
    g.bench_function("fit 100k x 8, rayon", |b| {
        b.iter(|| parallel.fit_array(black_box(x.view())).unwrap())
    });
    let model = serial.fit_array(x.view()).unwrap();
    let one = x.row(0).to_vec();
    g.bench_function("score 1 row", |b| {
        b.iter(|| model.score_slice(black_box(&one)).unwrap())
    });
    let ten = x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..10usize));
    g.bench_function("score 10 rows", |b| {
        b.iter(|| model.score_samples(black_box(ten)).unwrap())
    });
    g.bench_function("score 100k rows, rayon", |b| {
        b.iter(|| model.score_samples(black_box(x.view())).unwrap())
    });
    g.bench_function("score 100k rows, 1 thread", |b| {
        b.iter(|| model.score_samples_serial(black_box(x.view())).unwrap())
    });
    // The service's retrain (every 100 appended rows): a 1,000-row baseline, one thread, the
    // offset from the contamination percentile of the baseline's own scores.
    let baseline = gaussian(1_000, 8, 9);
    let retrain = IsolationForestParams::new()
        .seed(42)
        .parallel(false)
        .contamination(Contamination::Fraction(0.15));
    g.bench_function("retrain 1k x 8 with offset, 1 thread", |b| {
        b.iter(|| retrain.fit_array(black_box(baseline.view())).unwrap())
    });
    g.finish();
}

fn random_forest(c: &mut Criterion) {
    // The training part of an 80/20 split (every fifth row held out), as in scikit-learn's figure.
    let (x_all, y_all) = shuttle();
    let keep: Vec<usize> = (0..y_all.len()).filter(|i| i % 5 != 0).collect();
    let x = x_all.select(ndarray::Axis(0), &keep);
    let y = y_all.select(ndarray::Axis(0), &keep);
    let mut g = c.benchmark_group("rforest");
    g.sample_size(10);
    let parallel = RandomForestParams::new().seed(42);
    let serial = RandomForestParams::new().seed(42).parallel(false);
    g.bench_function("fit shuttle 39k x 9, rayon", |b| {
        b.iter(|| parallel.fit_array(black_box(x.view()), y.view()).unwrap())
    });
    g.bench_function("fit shuttle 39k x 9, 1 thread", |b| {
        b.iter(|| serial.fit_array(black_box(x.view()), y.view()).unwrap())
    });
    let model = parallel.fit_array(x.view(), y.view()).unwrap();
    let one = x.row(0).to_vec();
    let mut out = vec![0.0; model.n_classes()];
    g.bench_function("predict_proba 1 row", |b| {
        b.iter(|| model.predict_proba_into(black_box(&one), &mut out).unwrap())
    });
    g.bench_function("predict 39k rows", |b| {
        b.iter(|| model.predict_classes(black_box(x.view())).unwrap())
    });
    g.finish();
}

criterion_group!(benches, features, isolation_forest, random_forest);
criterion_main!(benches);

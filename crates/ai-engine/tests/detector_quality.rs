//! Detection quality on the shuttle benchmark (bench/data/shuttle.csv.gz), compared with the
//! scikit-learn reference figures of bench/data/README.md and with linfa-trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::PathBuf;

use aegis_ai_engine::detector::random_forest::MaxFeatures;
use aegis_ai_engine::detector::{IsolationForestParams, RandomForestParams};
use linfa::prelude::*;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/data")
}

/// The 49,097 rows: features f1..f9 and the binary `anomaly` label (the file has no class column).
fn shuttle() -> (Array2<f64>, Array1<usize>) {
    let file = std::fs::File::open(data_dir().join("shuttle.csv.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "f1,f2,f3,f4,f5,f6,f7,f8,f9,anomaly");
    let mut flat = Vec::new();
    let mut labels = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
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

/// ROC AUC by the Mann–Whitney statistic with average ranks for ties (as scikit-learn).
fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = avg;
        }
        i = j + 1;
    }
    let pos = positive.iter().filter(|p| **p).count() as f64;
    let neg = positive.len() as f64 - pos;
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Stratified 80/20 split with a fixed seed: 20 % of each class goes to the test set.
fn stratified_split(y: &Array1<usize>, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let classes = y.iter().copied().max().unwrap() + 1;
    for class in 0..classes {
        let mut idx: Vec<usize> = (0..y.len()).filter(|i| y[*i] == class).collect();
        idx.shuffle(&mut rng);
        let n_test = (idx.len() as f64 * 0.2).round() as usize;
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

fn accuracy(pred: &Array1<usize>, truth: &Array1<usize>) -> f64 {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

#[test]
fn isolation_forest_roc_auc_on_shuttle_matches_scikit_learn() {
    let (x, y) = shuttle();
    assert_eq!(x.nrows(), 49_097);
    let labels: Vec<bool> = y.iter().map(|v| *v == 1).collect();
    assert_eq!(labels.iter().filter(|l| **l).count(), 3_511);

    let model = IsolationForestParams::new()
        .n_estimators(100)
        .seed(42)
        .fit(&DatasetBase::from(x.clone()))
        .unwrap();
    // score_samples is lower for anomalies; negate it so that higher means more anomalous.
    let scores: Vec<f64> = model
        .score_samples(x.view())
        .unwrap()
        .iter()
        .map(|s| -s)
        .collect();
    let auc = roc_auc(&scores, &labels);
    println!("isolation forest shuttle ROC AUC = {auc:.4} (scikit-learn 0.9975)");
    assert!(auc >= 0.995, "AUC {auc}");
}

#[test]
fn random_forest_accuracy_on_a_stratified_shuttle_split_matches_scikit_learn() {
    let (x, y) = shuttle();
    let (train, test) = stratified_split(&y, 42);
    let train_ds = Dataset::new(x.select(Axis(0), &train), y.select(Axis(0), &train));
    let (x_test, y_test) = (x.select(Axis(0), &test), y.select(Axis(0), &test));

    let model = RandomForestParams::new().seed(42).fit(&train_ds).unwrap();
    let pred: Array1<usize> = model.predict(&x_test);
    let acc = accuracy(&pred, &y_test);
    // linfa's metrics consume the prediction directly.
    let cm = pred.confusion_matrix(&y_test).unwrap();
    println!(
        "random forest shuttle accuracy = {acc:.5} (linfa confusion matrix {:.5}; scikit-learn 0.9999)",
        cm.accuracy()
    );
    assert!((cm.accuracy() as f64 - acc).abs() < 1e-4);
    assert!(acc >= 0.999, "accuracy {acc}");

    let proba = model.predict_proba(x_test.view()).unwrap();
    assert!(
        proba
            .rows()
            .into_iter()
            .all(|r| (r.sum() - 1.0).abs() < 1e-9)
    );
    let importances = model.feature_importances();
    assert!((importances.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn a_single_unbootstrapped_tree_is_on_par_with_linfa_trees() {
    let (x, y) = shuttle();
    let (train, test) = stratified_split(&y, 7);
    let train_ds = Dataset::new(x.select(Axis(0), &train), y.select(Axis(0), &train));
    let (x_test, y_test) = (x.select(Axis(0), &test), y.select(Axis(0), &test));

    let ours = RandomForestParams::new()
        .n_estimators(1)
        .bootstrap(false)
        .max_features(MaxFeatures::All)
        .fit(&train_ds)
        .unwrap();
    let reference = DecisionTree::params().fit(&train_ds).unwrap();
    let acc_ours = accuracy(&ours.predict(&x_test), &y_test);
    let acc_linfa = accuracy(&reference.predict(&x_test), &y_test);
    println!("single CART tree accuracy: ours {acc_ours:.5}, linfa-trees {acc_linfa:.5}");
    // linfa-trees breaks ties between equal splits through a HashMap, so its figure varies a
    // little from run to run (0.9980 / 0.9981 observed); ours is deterministic.
    assert!(acc_ours >= 0.998, "ours {acc_ours}");
    assert!(acc_linfa >= 0.997, "linfa {acc_linfa}");
    assert!(acc_ours >= acc_linfa - 0.001 && (acc_ours - acc_linfa).abs() <= 0.003);
}

/// Seed spread of the shuttle AUC (run with `--ignored --nocapture`).
#[test]
#[ignore = "report only"]
fn isolation_forest_shuttle_auc_over_seeds() {
    let (x, y) = shuttle();
    let labels: Vec<bool> = y.iter().map(|v| *v == 1).collect();
    for seed in 0..8 {
        let model = IsolationForestParams::new()
            .seed(seed)
            .fit_array(x.view())
            .unwrap();
        let scores: Vec<f64> = model
            .score_samples(x.view())
            .unwrap()
            .iter()
            .map(|s| -s)
            .collect();
        println!("seed {seed}: AUC {:.4}", roc_auc(&scores, &labels));
    }
}

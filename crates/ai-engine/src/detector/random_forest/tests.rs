use super::*;
use linfa::traits::Predict;
use ndarray::array;

fn blobs(n: usize, seed: u64) -> (Array2<f64>, Array1<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, 4));
    let mut y = Array1::zeros(n);
    for i in 0..n {
        let class = i % 3;
        y[i] = class;
        x[[i, 0]] = class as f64 * 3.0 + rng.random::<f64>();
        x[[i, 1]] = rng.random::<f64>();
        x[[i, 2]] = 7.0; // constant
        x[[i, 3]] = -(class as f64) + rng.random::<f64>() * 2.0;
    }
    (x, y)
}

#[test]
fn max_features_follows_scikit_learn() {
    assert_eq!(MaxFeatures::Sqrt.resolve(9), 3);
    assert_eq!(MaxFeatures::Sqrt.resolve(55), 7);
    assert_eq!(MaxFeatures::Sqrt.resolve(1), 1);
    assert_eq!(MaxFeatures::Log2.resolve(8), 3);
    assert_eq!(MaxFeatures::Count(20).resolve(4), 4);
}

#[test]
fn separable_blobs_are_learned_and_probabilities_sum_to_one() {
    let (x, y) = blobs(300, 1);
    let model = RandomForestParams::new()
        .n_estimators(20)
        .fit_array(x.view(), y.view())
        .unwrap();
    let proba = model.predict_proba(x.view()).unwrap();
    for row in proba.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-9);
    }
    let pred = model.predict_classes(x.view()).unwrap();
    assert_eq!(pred, y);
    let imp = model.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(imp[2], 0.0, "a constant feature is never split on");
    assert!(imp[0] > imp[1]);
}

#[test]
fn constant_features_are_never_chosen() {
    let (x, y) = blobs(200, 2);
    let model = RandomForestParams::new()
        .n_estimators(10)
        .max_features(MaxFeatures::Count(1))
        .fit_array(x.view(), y.view())
        .unwrap();
    assert!(model.feature.iter().all(|f| *f != 2));
}

#[test]
fn deterministic_for_a_seed_and_independent_of_threads() {
    let (x, y) = blobs(200, 3);
    let a = RandomForestParams::new()
        .seed(9)
        .fit_array(x.view(), y.view())
        .unwrap();
    let b = RandomForestParams::new()
        .seed(9)
        .parallel(false)
        .fit_array(x.view(), y.view())
        .unwrap();
    assert_eq!(a, b);
    let c = RandomForestParams::new()
        .seed(10)
        .fit_array(x.view(), y.view())
        .unwrap();
    assert_ne!(a, c);
}

#[test]
fn depth_and_leaf_limits_are_respected() {
    let (x, y) = blobs(300, 4);
    let stump = RandomForestParams::new()
        .n_estimators(5)
        .max_depth(Some(1))
        .fit_array(x.view(), y.view())
        .unwrap();
    assert_eq!(stump.node_count(), 15);
    let single = RandomForestParams::new()
        .n_estimators(1)
        .max_depth(Some(0))
        .fit_array(x.view(), y.view())
        .unwrap();
    assert_eq!(single.node_count(), 1);
    assert!(single.feature_importances().iter().all(|v| *v == 0.0));
}

#[test]
fn absent_classes_get_zero_probability_and_balanced_weights_work() {
    let x = array![[0.0], [1.0], [2.0], [3.0], [10.0]];
    let y = array![0usize, 0, 0, 0, 2];
    let model = RandomForestParams::new()
        .n_classes(4)
        .class_weight(ClassWeight::Balanced)
        .bootstrap(false)
        .max_features(MaxFeatures::All)
        .fit_array(x.view(), y.view())
        .unwrap();
    let p = model.predict_proba_row(&[9.0]).unwrap();
    assert_eq!(p, vec![0.0, 0.0, 1.0, 0.0]);
    assert!(
        RandomForestParams::new()
            .n_classes(2)
            .fit_array(x.view(), y.view())
            .is_err()
    );
}

#[test]
fn serde_round_trip_and_linfa_traits() {
    let (x, y) = blobs(90, 5);
    let ds = DatasetBase::new(x.clone(), y.clone());
    let model = RandomForestParams::new().n_estimators(5).fit(&ds).unwrap();
    let pred: Array1<usize> = model.predict(&x);
    assert_eq!(pred.len(), 90);
    let json = serde_json::to_string(&model).unwrap();
    let back: RandomForest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, model);
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["roots"][0] = serde_json::json!(1_000_000);
    assert!(serde_json::from_value::<RandomForest>(v).is_err());
}

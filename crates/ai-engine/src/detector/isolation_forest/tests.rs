use super::*;
use linfa::traits::Predict;
use ndarray::{Array2, array};
use rand_chacha::ChaCha8Rng;

fn gaussian(n: usize, p: usize, shift: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, p), |_| {
        // Box–Muller keeps the test free of extra distribution crates.
        let u1: f64 = rng.random::<f64>().max(1e-12);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() + shift
    })
}

#[test]
fn average_path_length_matches_scikit_learn() {
    assert_eq!(average_path_length(0), 0.0);
    assert_eq!(average_path_length(1), 0.0);
    assert_eq!(average_path_length(2), 1.0);
    // 2(ln(n−1) + γ) − 2(n−1)/n, computed independently in Python.
    assert!((average_path_length(3) - 1.207_392_357_589_623).abs() < 1e-12);
    assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-9);
}

#[test]
fn percentile_is_numpy_linear() {
    let mut v = vec![4.0, 1.0, 3.0, 2.0];
    // np.percentile([1,2,3,4], 10) = 1.3; 50 → 2.5
    assert!((percentile_linear(&mut v, 10.0) - 1.3).abs() < 1e-12);
    assert!((percentile_linear(&mut v, 50.0) - 2.5).abs() < 1e-12);
    assert_eq!(percentile_linear(&mut v, 100.0), 4.0);
}

#[test]
fn offset_is_the_contamination_percentile_of_training_scores() {
    let x = gaussian(300, 4, 0.0, 7);
    let model = IsolationForestParams::new()
        .contamination(Contamination::Fraction(0.1))
        .fit_array(x.view())
        .unwrap();
    let mut scores = model.score_samples(x.view()).unwrap().to_vec();
    let expected = percentile_linear(&mut scores, 10.0);
    assert_eq!(model.offset(), expected);
    let flagged = model.predict(&x).iter().filter(|a| **a).count();
    assert!((25..=35).contains(&flagged), "{flagged}");
    let auto = IsolationForestParams::new().fit_array(x.view()).unwrap();
    assert_eq!(auto.offset(), -0.5);
}

#[test]
fn same_seed_same_scores_regardless_of_parallelism() {
    let x = gaussian(500, 3, 0.0, 1);
    let a = IsolationForestParams::new()
        .seed(5)
        .fit_array(x.view())
        .unwrap();
    let b = IsolationForestParams::new()
        .seed(5)
        .parallel(false)
        .fit_array(x.view())
        .unwrap();
    assert_eq!(a, b);
    let c = IsolationForestParams::new()
        .seed(6)
        .fit_array(x.view())
        .unwrap();
    assert_ne!(
        a.score_samples(x.view()).unwrap(),
        c.score_samples(x.view()).unwrap()
    );
}

/// The walk the forest used before its lockstep walks: branch on each split, stop at a leaf.
fn branching_score(model: &IsolationForest, row: &[f64]) -> f64 {
    let t = TreeNodes::from_nodes(&model.nodes);
    let mut sum = 0.0;
    for &root in &model.roots {
        let mut i = root as usize;
        loop {
            let f = t.feature[i];
            if f == LEAF {
                sum += t.leaf_path[i];
                break;
            }
            i = if row[f as usize] <= t.threshold[i] {
                t.left[i] as usize
            } else {
                t.right[i] as usize
            };
        }
    }
    -(-sum / model.norm).exp2()
}

#[test]
fn lockstep_walks_score_exactly_as_a_branching_walk() {
    let x = gaussian(700, 4, 0.0, 11);
    let model = IsolationForestParams::new()
        .contamination(Contamination::Fraction(0.1))
        .fit_array(x.view())
        .unwrap();
    let mut rows = gaussian(150, 4, 0.5, 12);
    // Values no split was drawn on: NaN goes right at every split, as `x <= t` is false.
    rows.row_mut(3)
        .assign(&array![f64::NAN, 0.0, f64::INFINITY, -1e300]);
    rows.row_mut(7).fill(f64::NEG_INFINITY);
    let batch = model.score_samples(rows.view()).unwrap();
    for (i, row) in rows.outer_iter().enumerate() {
        let row = row.to_vec();
        let expected = branching_score(&model, &row);
        assert_eq!(batch[i].to_bits(), expected.to_bits(), "row {i}");
        assert_eq!(
            model.score_slice(&row).unwrap().to_bits(),
            expected.to_bits()
        );
    }
    // A shallow forest (every tree a single leaf) walks zero steps.
    let flat = IsolationForestParams::new()
        .n_estimators(2)
        .fit_array(Array2::from_elem((10, 1), 3.0).view())
        .unwrap();
    assert_eq!(flat.depth, 0);
    assert_eq!(
        flat.score_slice(&[3.0]).unwrap(),
        branching_score(&flat, &[3.0])
    );
}

#[test]
fn constant_features_are_never_split_on() {
    let mut x = gaussian(400, 4, 0.0, 3);
    x.column_mut(1).fill(5.0);
    x.column_mut(3).fill(-1.0);
    let model = IsolationForestParams::new().fit_array(x.view()).unwrap();
    let used: Vec<u32> = model
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| !n.is_leaf(*i))
        .map(|(_, n)| n.feature)
        .collect();
    assert!(!used.is_empty());
    assert!(used.iter().all(|f| *f == 0 || *f == 2));
}

#[test]
fn all_constant_rows_give_single_leaf_trees() {
    let x = Array2::from_elem((50, 2), 1.0);
    let model = IsolationForestParams::new()
        .n_estimators(3)
        .fit_array(x.view())
        .unwrap();
    assert_eq!(model.node_count(), 3);
    // h = c(50) in every tree, so s = 2^(−c(50)/c(50)) = 0.5.
    let s = model.score_slice(&[1.0, 1.0]).unwrap();
    assert!((s + 0.5).abs() < 1e-12);
}

#[test]
fn shifted_rows_score_higher_and_are_flagged() {
    let x = gaussian(100, 5, 0.0, 42);
    let model = IsolationForestParams::new()
        .contamination(Contamination::Fraction(0.1))
        .fit_array(x.view())
        .unwrap();
    let normal = gaussian(1, 5, 0.0, 99);
    let shifted = gaussian(1, 5, 10.0, 99);
    let sn = model.anomaly_score_row(normal.row(0)).unwrap();
    let ss = model.anomaly_score_row(shifted.row(0)).unwrap();
    assert!(ss > 0.5 && sn < 0.7 && ss > sn, "{sn} {ss}");
    assert!(model.predict(&shifted)[0]);
}

#[test]
fn wrong_width_and_bad_params_are_errors() {
    let x = gaussian(20, 2, 0.0, 1);
    let model = IsolationForestParams::new().fit_array(x.view()).unwrap();
    assert!(model.score_slice(&[1.0]).is_err());
    assert!(
        IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.6))
            .fit_array(x.view())
            .is_err()
    );
    assert!(
        IsolationForestParams::new()
            .fit_array(array![[1.0]].view())
            .is_err()
    );
    let bad = array![[1.0, f64::NAN], [2.0, 3.0]];
    assert!(IsolationForestParams::new().fit_array(bad.view()).is_err());
}

#[test]
fn serde_round_trip_and_corrupt_models_are_rejected() {
    let x = gaussian(100, 3, 0.0, 2);
    let model = IsolationForestParams::new()
        .n_estimators(10)
        .fit_array(x.view())
        .unwrap();
    let json = serde_json::to_string(&model).unwrap();
    let back: IsolationForest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, model);
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["nodes"]["left"][0] = serde_json::json!(0);
    assert!(serde_json::from_value::<IsolationForest>(v).is_err());
}

#[test]
fn linfa_fit_on_a_dataset() {
    let x = gaussian(64, 2, 0.0, 4);
    let ds = DatasetBase::from(x.clone());
    let model = IsolationForestParams::new().fit(&ds).unwrap();
    let labels: Array1<bool> = model.predict(&x);
    assert_eq!(labels.len(), 64);
}

//! Isolation forest on the NAB subset in bench/data/nab (real infrastructure metrics with
//! labelled anomaly windows). Run with `--nocapture` to see the per-series ROC AUC table.
//!
//! Feature recipe per point `t` of a series `v` (window `W = 12` points, one hour at NAB's
//! 5-minute spacing, trailing and including `t`, shorter at the start):
//! `[v[t], v[t] − v[t−1] (0 at t = 0), mean(v[t−W+1..=t]), population std(v[t−W+1..=t])]`.
//! The forest (100 trees, ψ = 256, seed 42, contamination auto) is fitted on the whole series,
//! unsupervised, and `−score_samples` is ranked against the label "inside a labelled window".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use aegis_ai_engine::detector::IsolationForestParams;
use ndarray::Array2;

const WINDOW: usize = 12;

fn nab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/data/nab")
}

fn features(values: &[f64]) -> Array2<f64> {
    Array2::from_shape_fn((values.len(), 4), |(t, j)| {
        let lo = (t + 1).saturating_sub(WINDOW);
        let w = &values[lo..=t];
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        match j {
            0 => values[t],
            1 => {
                if t == 0 {
                    0.0
                } else {
                    values[t] - values[t - 1]
                }
            }
            2 => mean,
            _ => (w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w.len() as f64).sqrt(),
        }
    })
}

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
        for k in i..=j {
            ranks[order[k]] = (i + j) as f64 / 2.0 + 1.0;
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

#[test]
fn isolation_forest_ranks_labelled_nab_windows_above_chance() {
    let windows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(nab_dir().join("labels/combined_windows.json")).unwrap(),
    )
    .unwrap();
    let mut aucs = Vec::new();
    for group in ["realAWSCloudwatch", "realKnownCause"] {
        let mut files: Vec<_> = std::fs::read_dir(nab_dir().join("data").join(group))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        for file in files {
            let key = format!("{group}/{file}");
            let spans: Vec<(String, String)> = windows[&key]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    // "2014-04-10 07:15:00.000000" → the CSV's "2014-04-10 07:15:00" format.
                    let s = |i: usize| w[i].as_str().unwrap()[..19].to_owned();
                    (s(0), s(1))
                })
                .collect();
            let text = std::fs::read_to_string(nab_dir().join("data").join(&key)).unwrap();
            let (mut values, mut labels) = (Vec::new(), Vec::new());
            for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
                let (ts, v) = line.split_once(',').unwrap();
                values.push(v.parse::<f64>().unwrap());
                labels.push(
                    spans
                        .iter()
                        .any(|(a, b)| ts >= a.as_str() && ts <= b.as_str()),
                );
            }
            let x = features(&values);
            let model = IsolationForestParams::new()
                .seed(42)
                .fit_array(x.view())
                .unwrap();
            let scores: Vec<f64> = model
                .score_samples(x.view())
                .unwrap()
                .iter()
                .map(|s| -s)
                .collect();
            let auc = roc_auc(&scores, &labels);
            let share = labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64;
            println!(
                "{key:<60} rows {:>6}  anomalous {:>5.1}%  ROC AUC {auc:.3}",
                values.len(),
                100.0 * share
            );
            assert!(auc.is_finite());
            aucs.push(auc);
        }
    }
    let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
    println!("mean ROC AUC over {} NAB series: {mean:.3}", aucs.len());
    assert_eq!(aucs.len(), 9);
    // A weak sanity floor: NAB windows are wide and include normal-looking points.
    assert!(mean > 0.55, "mean AUC {mean}");
}

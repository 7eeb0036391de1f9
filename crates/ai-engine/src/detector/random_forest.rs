//! A native random forest classifier with scikit-learn's semantics.
//!
//! - CART trees with the Gini criterion, grown on a bootstrap of `n` rows drawn with
//!   replacement (kept as per-row weights, as scikit-learn does).
//! - At each node, features are drawn without replacement; the search stops after
//!   `max_features` features (default `max(1, floor(sqrt(p)))`), but continues past that while
//!   every drawn feature was constant in the node.
//! - For a candidate feature the node's rows are sorted and every boundary between consecutive
//!   distinct values (gap > 1e-7) is tried, respecting `min_samples_leaf`; the threshold is the
//!   midpoint. The best weighted Gini decrease wins (first found on ties).
//! - Leaves store the weighted class distribution; `predict_proba` averages them over the trees
//!   (soft voting) and `predict` takes the arg-max (lowest class on ties).
//! - `feature_importances` is the mean decrease in impurity, normalised per tree, averaged over
//!   the trees that split at least once, and normalised again.
//!
//! Tree `t` draws from the ChaCha8 stream `t` of the master seed, so a fit is identical on any
//! number of threads. All trees share one struct-of-arrays node table.

use linfa::dataset::{AsSingleTargets, DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Data, Ix2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::DetectorError;

const LEAF: u32 = u32::MAX;
/// scikit-learn's `FEATURE_THRESHOLD`: values closer than this are treated as equal.
const FEATURE_THRESHOLD: f64 = 1e-7;

/// Number of features examined per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaxFeatures {
    /// `max(1, floor(sqrt(p)))` (scikit-learn's `"sqrt"`, the classifier default).
    Sqrt,
    /// `max(1, floor(log2(p)))`.
    Log2,
    /// All `p` features (plain CART / bagging).
    All,
    /// A fixed count, capped at `p`.
    Count(usize),
}

impl MaxFeatures {
    fn resolve(self, p: usize) -> usize {
        let k = match self {
            Self::Sqrt => (p as f64).sqrt().floor() as usize,
            Self::Log2 => (p as f64).log2().floor() as usize,
            Self::All => p,
            Self::Count(k) => k,
        };
        k.clamp(1, p.max(1))
    }
}

/// Class weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassWeight {
    /// Every row weighs 1 (scikit-learn default).
    Uniform,
    /// `n / (n_present_classes · count(class))`, computed on the full training labels.
    Balanced,
}

/// Hyper-parameters of [`RandomForest`]. Defaults are scikit-learn's
/// `RandomForestClassifier(n_estimators=100, random_state=42)`; the service's settings are
/// [`RandomForestParams::service_defaults`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestParams {
    /// Number of trees (100).
    pub n_estimators: usize,
    /// Depth limit (`None`: grow until pure).
    pub max_depth: Option<usize>,
    /// A node with fewer rows is a leaf (2).
    pub min_samples_split: usize,
    /// Each child keeps at least this many rows (1).
    pub min_samples_leaf: usize,
    /// Features per split ([`MaxFeatures::Sqrt`]).
    pub max_features: MaxFeatures,
    /// Bootstrap rows per tree (true); false grows every tree on all rows.
    pub bootstrap: bool,
    /// Class weights ([`ClassWeight::Uniform`]).
    pub class_weight: ClassWeight,
    /// Number of classes the model reports; `None` uses `max(label) + 1`. The failure detector
    /// sets it to [`super::failure::FailureClass::COUNT`] so absent classes get probability 0.
    pub n_classes: Option<usize>,
    /// Master seed (42).
    pub seed: u64,
    /// Grow trees on the rayon pool (true). The result is identical either way.
    pub parallel: bool,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Sqrt,
            bootstrap: true,
            class_weight: ClassWeight::Uniform,
            n_classes: None,
            seed: 42,
            parallel: true,
        }
    }
}

impl RandomForestParams {
    /// scikit-learn defaults with seed 42.
    pub fn new() -> Self {
        Self::default()
    }

    /// 100 trees, `max_depth=10`, `class_weight="balanced"`, seed 42.
    pub fn service_defaults() -> Self {
        Self::default()
            .max_depth(Some(10))
            .class_weight(ClassWeight::Balanced)
    }

    /// Sets the number of trees.
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// Sets the depth limit.
    pub fn max_depth(mut self, d: Option<usize>) -> Self {
        self.max_depth = d;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.min_samples_leaf = n;
        self
    }

    /// Sets the features examined per split.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.max_features = m;
        self
    }

    /// Enables or disables bootstrapping.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.bootstrap = b;
        self
    }

    /// Sets the class weighting.
    pub fn class_weight(mut self, w: ClassWeight) -> Self {
        self.class_weight = w;
        self
    }

    /// Fixes the number of classes.
    pub fn n_classes(mut self, k: usize) -> Self {
        self.n_classes = Some(k);
        self
    }

    /// Sets the master seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Grow trees in parallel or on the calling thread.
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Fits on the rows of `x` with class labels `y` in `0..n_classes`.
    pub fn fit_array(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, usize>,
    ) -> Result<RandomForest, DetectorError> {
        let (n, p) = x.dim();
        if self.n_estimators == 0 || self.min_samples_split < 2 || self.min_samples_leaf < 1 {
            return Err(DetectorError::InvalidParameter(
                "need n_estimators ≥ 1, min_samples_split ≥ 2, min_samples_leaf ≥ 1".into(),
            ));
        }
        if y.len() != n {
            return Err(DetectorError::ShapeMismatch {
                what: "targets",
                expected: n,
                got: y.len(),
            });
        }
        if n == 0 {
            return Err(DetectorError::NotEnoughSamples { needed: 1, got: 0 });
        }
        if p == 0 {
            return Err(DetectorError::InvalidParameter(
                "at least one feature is required".into(),
            ));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(DetectorError::NonFinite);
        }
        let max_label = y.iter().copied().max().unwrap_or(0);
        let k = self.n_classes.unwrap_or(max_label + 1);
        if max_label >= k {
            return Err(DetectorError::InvalidParameter(format!(
                "label {max_label} is outside 0..{k}"
            )));
        }
        let mut counts = vec![0usize; k];
        for label in y {
            counts[*label] += 1;
        }
        let present = counts.iter().filter(|c| **c > 0).count() as f64;
        let class_w: Vec<f64> = counts
            .iter()
            .map(|c| match self.class_weight {
                ClassWeight::Uniform => 1.0,
                ClassWeight::Balanced if *c > 0 => n as f64 / (present * *c as f64),
                ClassWeight::Balanced => 0.0,
            })
            .collect();
        let mut cols = vec![0.0; n * p];
        for (i, row) in x.rows().into_iter().enumerate() {
            for (f, v) in row.iter().enumerate() {
                cols[f * n + i] = *v;
            }
        }
        let labels: Vec<usize> = y.to_vec();
        let trainer = Trainer {
            cols: &cols,
            y: &labels,
            n,
            p,
            k,
            class_w: &class_w,
            max_features: self.max_features.resolve(p),
            params: self,
        };
        let build = |t: usize| trainer.build(t as u64);
        let trees: Vec<Tree> = if self.parallel {
            (0..self.n_estimators).into_par_iter().map(build).collect()
        } else {
            (0..self.n_estimators).map(build).collect()
        };
        Ok(RandomForest::assemble(trees, p, k))
    }
}

struct Trainer<'a> {
    cols: &'a [f64],
    y: &'a [usize],
    n: usize,
    p: usize,
    k: usize,
    class_w: &'a [f64],
    max_features: usize,
    params: &'a RandomForestParams,
}

/// One grown tree before assembly; indices are local.
#[derive(Default)]
struct Tree {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    /// Leaf: index of its distribution in `values` (in units of k).
    value: Vec<u32>,
    values: Vec<f64>,
    importance: Vec<f64>,
}

impl Tree {
    fn push(&mut self) -> usize {
        self.feature.push(LEAF);
        self.threshold.push(0.0);
        self.left.push(0);
        self.right.push(0);
        self.value.push(0);
        self.feature.len() - 1
    }
}

struct BestSplit {
    feature: usize,
    threshold: f64,
    proxy: f64,
    left_counts: Vec<f64>,
}

fn gini(counts: &[f64], w: f64) -> f64 {
    if w <= 0.0 {
        return 0.0;
    }
    1.0 - counts.iter().map(|c| (c / w) * (c / w)).sum::<f64>()
}

impl Trainer<'_> {
    fn build(&self, stream: u64) -> Tree {
        let (n, k) = (self.n, self.k);
        let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
        rng.set_stream(stream);
        let mut weight = vec![0.0f64; n];
        if self.params.bootstrap {
            for _ in 0..n {
                weight[rng.random_range(0..n)] += 1.0;
            }
        } else {
            weight.fill(1.0);
        }
        let mut samples: Vec<u32> = Vec::with_capacity(n);
        for (i, w) in weight.iter_mut().enumerate() {
            *w *= self.class_w[self.y[i]];
            if *w > 0.0 {
                samples.push(i as u32);
            }
        }
        let mut tree = Tree {
            importance: vec![0.0; self.p],
            ..Tree::default()
        };
        let mut feats: Vec<usize> = (0..self.p).collect();
        let mut buf: Vec<(f64, u32)> = Vec::with_capacity(samples.len());
        let mut counts = vec![0.0; k];
        let root = tree.push();
        let root_weight: f64 = samples.iter().map(|s| weight[*s as usize]).sum();
        let mut stack = vec![(root, 0usize, samples.len(), 0usize)];
        while let Some((id, start, end, depth)) = stack.pop() {
            counts.fill(0.0);
            for s in &samples[start..end] {
                counts[self.y[*s as usize]] += weight[*s as usize];
            }
            let w_node: f64 = counts.iter().sum();
            let impurity = gini(&counts, w_node);
            let size = end - start;
            let leaf = self.params.max_depth.is_some_and(|d| depth >= d)
                || size < self.params.min_samples_split
                || size < 2 * self.params.min_samples_leaf
                || impurity <= f64::EPSILON;
            let best = if leaf {
                None
            } else {
                self.best_split(
                    &mut rng,
                    &samples[start..end],
                    &weight,
                    &counts,
                    &mut feats,
                    &mut buf,
                )
            };
            let Some(best) = best else {
                tree.value[id] = (tree.values.len() / k.max(1)) as u32;
                tree.values.extend(
                    counts
                        .iter()
                        .map(|c| if w_node > 0.0 { c / w_node } else { 0.0 }),
                );
                continue;
            };
            let col = &self.cols[best.feature * n..(best.feature + 1) * n];
            let slice = &mut samples[start..end];
            let mut mid = 0;
            for i in 0..slice.len() {
                if col[slice[i] as usize] <= best.threshold {
                    slice.swap(i, mid);
                    mid += 1;
                }
            }
            let w_left: f64 = best.left_counts.iter().sum();
            let right_counts: Vec<f64> = counts
                .iter()
                .zip(&best.left_counts)
                .map(|(t, l)| t - l)
                .collect();
            let w_right = w_node - w_left;
            tree.importance[best.feature] += (w_node * impurity
                - w_left * gini(&best.left_counts, w_left)
                - w_right * gini(&right_counts, w_right))
                / root_weight.max(f64::MIN_POSITIVE);
            let l = tree.push();
            let r = tree.push();
            tree.feature[id] = best.feature as u32;
            tree.threshold[id] = best.threshold;
            tree.left[id] = l as u32;
            tree.right[id] = r as u32;
            stack.push((r, start + mid, end, depth + 1));
            stack.push((l, start, start + mid, depth + 1));
        }
        let total: f64 = tree.importance.iter().sum();
        if total > 0.0 {
            for v in &mut tree.importance {
                *v /= total;
            }
        }
        tree
    }

    fn best_split(
        &self,
        rng: &mut ChaCha8Rng,
        rows: &[u32],
        weight: &[f64],
        totals: &[f64],
        feats: &mut [usize],
        buf: &mut Vec<(f64, u32)>,
    ) -> Option<BestSplit> {
        let (n, p, k) = (self.n, self.p, self.k);
        let min_leaf = self.params.min_samples_leaf;
        let w_total: f64 = totals.iter().sum();
        let mut best: Option<BestSplit> = None;
        let mut left = vec![0.0; k];
        let (mut visited, mut constants) = (0usize, 0usize);
        for d in 0..p {
            if visited >= self.max_features && visited > constants {
                break;
            }
            let j = rng.random_range(d..p);
            feats.swap(d, j);
            let f = feats[d];
            visited += 1;
            let col = &self.cols[f * n..(f + 1) * n];
            buf.clear();
            buf.extend(rows.iter().map(|r| (col[*r as usize], *r)));
            buf.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let (Some(first), Some(last)) = (buf.first(), buf.last()) else {
                continue;
            };
            if last.0 <= first.0 + FEATURE_THRESHOLD {
                constants += 1;
                continue;
            }
            left.fill(0.0);
            let mut w_left = 0.0;
            let m = buf.len();
            for i in 0..m - 1 {
                let (v, r) = buf[i];
                let w = weight[r as usize];
                left[self.y[r as usize]] += w;
                w_left += w;
                let next = buf[i + 1].0;
                if next <= v + FEATURE_THRESHOLD {
                    continue;
                }
                let n_left = i + 1;
                if n_left < min_leaf || m - n_left < min_leaf {
                    continue;
                }
                let w_right = w_total - w_left;
                if w_left <= 0.0 || w_right <= 0.0 {
                    continue;
                }
                let (mut sl, mut sr) = (0.0, 0.0);
                for (l, t) in left.iter().zip(totals) {
                    sl += l * l;
                    sr += (t - l) * (t - l);
                }
                let proxy = sl / w_left + sr / w_right;
                if best.as_ref().is_none_or(|b| proxy > b.proxy) {
                    let mut threshold = v / 2.0 + next / 2.0;
                    if threshold == next || !threshold.is_finite() {
                        threshold = v;
                    }
                    match &mut best {
                        Some(b) => {
                            b.feature = f;
                            b.threshold = threshold;
                            b.proxy = proxy;
                            b.left_counts.copy_from_slice(&left);
                        }
                        None => {
                            best = Some(BestSplit {
                                feature: f,
                                threshold,
                                proxy,
                                left_counts: left.clone(),
                            });
                        }
                    }
                }
            }
        }
        best
    }
}

/// A fitted random forest classifier. Serialises with serde (validated on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RandomForestRepr")]
pub struct RandomForest {
    n_features: usize,
    n_classes: usize,
    roots: Vec<u32>,
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    /// Leaf: offset of its class distribution in `values`.
    value: Vec<u32>,
    values: Vec<f64>,
    importances: Vec<f64>,
}

#[derive(Deserialize)]
struct RandomForestRepr {
    n_features: usize,
    n_classes: usize,
    roots: Vec<u32>,
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<u32>,
    values: Vec<f64>,
    importances: Vec<f64>,
}

impl TryFrom<RandomForestRepr> for RandomForest {
    type Error = DetectorError;

    fn try_from(r: RandomForestRepr) -> Result<Self, Self::Error> {
        let corrupt = |m: &str| Err(DetectorError::CorruptModel(m.to_owned()));
        let len = r.feature.len();
        if [
            r.threshold.len(),
            r.left.len(),
            r.right.len(),
            r.value.len(),
        ]
        .iter()
        .any(|l| *l != len)
            || r.importances.len() != r.n_features
            || r.n_classes == 0
        {
            return corrupt("array lengths disagree");
        }
        if r.roots.is_empty() || r.roots.iter().any(|x| *x as usize >= len) {
            return corrupt("bad root index");
        }
        for i in 0..len {
            let f = r.feature[i];
            if f == LEAF {
                let start = r.value[i] as usize;
                if start + r.n_classes > r.values.len() {
                    return corrupt("bad leaf value offset");
                }
                continue;
            }
            let (l, rt) = (r.left[i] as usize, r.right[i] as usize);
            if f as usize >= r.n_features || l <= i || rt <= i || l >= len || rt >= len {
                return corrupt("bad split node");
            }
        }
        Ok(Self {
            n_features: r.n_features,
            n_classes: r.n_classes,
            roots: r.roots,
            feature: r.feature,
            threshold: r.threshold,
            left: r.left,
            right: r.right,
            value: r.value,
            values: r.values,
            importances: r.importances,
        })
    }
}

impl RandomForest {
    fn assemble(trees: Vec<Tree>, p: usize, k: usize) -> Self {
        let mut forest = Self {
            n_features: p,
            n_classes: k,
            roots: Vec::with_capacity(trees.len()),
            feature: Vec::new(),
            threshold: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            value: Vec::new(),
            values: Vec::new(),
            importances: vec![0.0; p],
        };
        let mut splitting_trees = 0usize;
        for tree in trees {
            let base = forest.feature.len() as u32;
            let value_base = forest.values.len() as u32;
            forest.roots.push(base);
            if tree.feature.len() > 1 {
                splitting_trees += 1;
                for (acc, v) in forest.importances.iter_mut().zip(&tree.importance) {
                    *acc += v;
                }
            }
            for i in 0..tree.feature.len() {
                let is_leaf = tree.feature[i] == LEAF;
                forest.feature.push(tree.feature[i]);
                forest.threshold.push(tree.threshold[i]);
                forest
                    .left
                    .push(if is_leaf { 0 } else { tree.left[i] + base });
                forest
                    .right
                    .push(if is_leaf { 0 } else { tree.right[i] + base });
                forest.value.push(if is_leaf {
                    value_base + tree.value[i] * k as u32
                } else {
                    0
                });
            }
            forest.values.extend(tree.values);
        }
        let total: f64 = forest.importances.iter().sum();
        if splitting_trees > 0 && total > 0.0 {
            for v in &mut forest.importances {
                *v /= total;
            }
        }
        forest
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of classes (columns of `predict_proba`).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.roots.len()
    }

    /// Total number of nodes.
    pub fn node_count(&self) -> usize {
        self.feature.len()
    }

    /// Mean decrease in impurity per feature, summing to 1 (all zeros if no tree split).
    pub fn feature_importances(&self) -> &[f64] {
        &self.importances
    }

    #[inline]
    fn accumulate(&self, get: impl Fn(usize) -> f64, out: &mut [f64]) {
        out.fill(0.0);
        let k = self.n_classes;
        for &root in &self.roots {
            let mut i = root as usize;
            while self.feature[i] != LEAF {
                i = if get(self.feature[i] as usize) <= self.threshold[i] {
                    self.left[i] as usize
                } else {
                    self.right[i] as usize
                };
            }
            let start = self.value[i] as usize;
            for (o, v) in out.iter_mut().zip(&self.values[start..start + k]) {
                *o += v;
            }
        }
        let t = self.roots.len() as f64;
        for o in out.iter_mut() {
            *o /= t;
        }
    }

    /// Class probabilities of one row into `out` (length `n_classes`); allocation-free.
    pub fn predict_proba_into(&self, row: &[f64], out: &mut [f64]) -> Result<(), DetectorError> {
        if row.len() != self.n_features {
            return Err(DetectorError::ShapeMismatch {
                what: "features",
                expected: self.n_features,
                got: row.len(),
            });
        }
        if out.len() != self.n_classes {
            return Err(DetectorError::ShapeMismatch {
                what: "classes",
                expected: self.n_classes,
                got: out.len(),
            });
        }
        self.accumulate(|f| row[f], out);
        Ok(())
    }

    /// Class probabilities of one row.
    pub fn predict_proba_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectorError> {
        let mut out = vec![0.0; self.n_classes];
        self.predict_proba_into(row, &mut out)?;
        Ok(out)
    }

    /// Class probabilities (rows × n_classes), averaged over trees; rows sum to 1.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, DetectorError> {
        if x.ncols() != self.n_features {
            return Err(DetectorError::ShapeMismatch {
                what: "features",
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        let mut out = Array2::zeros((x.nrows(), self.n_classes));
        let fill = |(row, mut o): (ArrayView1<'_, f64>, ndarray::ArrayViewMut1<'_, f64>)| {
            let mut tmp = vec![0.0; self.n_classes];
            self.accumulate(|f| row[f], &mut tmp);
            o.assign(&ArrayView1::from(&tmp));
        };
        if x.nrows() >= 1024 {
            x.rows()
                .into_iter()
                .zip(out.rows_mut())
                .collect::<Vec<_>>()
                .into_par_iter()
                .with_min_len(128)
                .for_each(fill);
        } else {
            x.rows().into_iter().zip(out.rows_mut()).for_each(fill);
        }
        Ok(out)
    }

    /// Predicted class per row (arg-max of `predict_proba`, lowest class on ties).
    pub fn predict_classes(&self, x: ArrayView2<'_, f64>) -> Result<Array1<usize>, DetectorError> {
        let proba = self.predict_proba(x)?;
        Ok(proba.rows().into_iter().map(|r| argmax(r.iter())).collect())
    }
}

/// Index of the largest value, the first one on ties (numpy's `argmax`).
pub fn argmax<'a>(values: impl IntoIterator<Item = &'a f64>) -> usize {
    let mut best = (0usize, f64::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if *v > best.1 {
            best = (i, *v);
        }
    }
    best.0
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, DetectorError> for RandomForestParams
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = usize>,
{
    type Object = RandomForest;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<RandomForest, DetectorError> {
        self.fit_array(dataset.records().view(), dataset.as_single_targets())
    }
}

/// linfa prediction: the class id per row. A matrix with the wrong number of columns yields
/// class 0 everywhere; use [`RandomForest::predict_classes`] to get an error instead.
impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for RandomForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        match self.predict_classes(x.view()) {
            Ok(classes) => {
                for (o, c) in y.iter_mut().zip(classes) {
                    *o = c;
                }
            }
            Err(_) => y.fill(0),
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nsamples())
    }
}

#[cfg(test)]
mod tests;

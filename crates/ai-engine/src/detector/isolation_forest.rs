//! A native isolation forest with scikit-learn's semantics.
//!
//! - Each tree sees `max_samples = min(256, n)` rows drawn without replacement and grows to
//!   `ceil(log2(max(max_samples, 2)))` levels at most.
//! - A node splits on a feature drawn uniformly among those that are non-constant in the node,
//!   at a threshold uniform in `[min, max)`; rows with `x <= threshold` go left.
//! - A leaf stores `depth + c(size)`, so scoring sums one number per tree.
//! - `score_samples = −2^(−E[h(x)] / c(max_samples))` and
//!   `decision_function = score_samples − offset`, as in scikit-learn; `offset = −0.5` for
//!   [`Contamination::Auto`], else the numpy-linear percentile of the training scores at
//!   `100 · contamination`.
//! - The port's score is `anomaly_score = clamp(0.5 − decision_function, 0, 1)`, so
//!   `is_anomaly ⇔ anomaly_score > 0.5 ⇔ decision_function < 0`.
//!
//! All trees live in one node table. A leaf points at itself, so every walk takes the forest's
//! depth in steps and each step is a comparison that selects a child, without a branch on the
//! data (an isolation forest's splits are random, so a branch on them is mispredicted half the
//! time). Batch scoring walks up to [`SCORE_CHUNK`] rows through a tree in lockstep. Tree `t`
//! uses the ChaCha8 stream `t` of the master seed, so a fit is identical whether trees are
//! grown serially or with rayon.

use linfa::dataset::{DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, ArrayView1, ArrayView2, Axis, Data, Ix2, Slice};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::DetectorError;

/// Euler–Mascheroni constant, as scikit-learn's `np.euler_gamma`.
pub const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
/// scikit-learn's cap on the per-tree subsample (`max_samples="auto"`).
pub const AUTO_MAX_SAMPLES: usize = 256;
/// Batches with at least this many rows are scored in parallel.
pub const PARALLEL_SCORE_ROWS: usize = 4096;
/// Rows scored together, tree by tree, in batch scoring.
const SCORE_CHUNK: usize = 64;
/// Trees walked together when scoring one row.
const TREE_CHUNK: usize = 16;

const LEAF: u32 = u32::MAX;

/// `c(n)`: the average path length of an unsuccessful BST search over `n` points, which
/// normalises path lengths (scikit-learn's `_average_path_length`).
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = n as f64;
            2.0 * ((m - 1.0).ln() + EULER_GAMMA) - 2.0 * (m - 1.0) / m
        }
    }
}

/// numpy's default (`linear`) percentile of `values`, `q` in [0, 100]. Sorts `values`.
/// Returns NaN for an empty slice.
pub fn percentile_linear(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q / 100.0).clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    match (values.get(lo), values.get(hi)) {
        (Some(&a), Some(&b)) => a + (b - a) * (rank - lo as f64),
        _ => f64::NAN,
    }
}

/// How the decision offset is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Contamination {
    /// scikit-learn's `"auto"`: offset −0.5 (an anomaly scores `s > 0.5`).
    Auto,
    /// Expected outlier fraction in (0, 0.5]; the offset is that percentile of training scores.
    Fraction(f64),
}

/// Hyper-parameters of [`IsolationForest`]; `fit` turns them into a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Rows per tree; `None` is scikit-learn's `"auto"`, `min(256, n)`. Capped at `n`.
    pub max_samples: Option<usize>,
    /// Offset rule (default [`Contamination::Auto`]; the service uses `1 − ANOMALY_THRESHOLD`).
    pub contamination: Contamination,
    /// Master seed (default 42).
    pub seed: u64,
    /// Grow trees on the rayon pool (default true). The result is identical either way.
    pub parallel: bool,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            max_samples: None,
            contamination: Contamination::Auto,
            seed: 42,
            parallel: true,
        }
    }
}

impl IsolationForestParams {
    /// Defaults: 100 trees, auto subsample, auto contamination, seed 42, parallel.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of trees.
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// Sets the per-tree subsample size.
    pub fn max_samples(mut self, n: usize) -> Self {
        self.max_samples = Some(n);
        self
    }

    /// Sets the contamination rule.
    pub fn contamination(mut self, c: Contamination) -> Self {
        self.contamination = c;
        self
    }

    /// Sets the master seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Grow (and score the training set for the offset) in parallel or not.
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    fn validate(&self) -> Result<(), DetectorError> {
        if self.n_estimators == 0 {
            return Err(DetectorError::InvalidParameter(
                "n_estimators must be at least 1".into(),
            ));
        }
        if self.max_samples == Some(0) {
            return Err(DetectorError::InvalidParameter(
                "max_samples must be at least 1".into(),
            ));
        }
        if let Contamination::Fraction(c) = self.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(DetectorError::InvalidParameter(format!(
                "contamination must be in (0, 0.5], got {c}"
            )));
        }
        Ok(())
    }

    /// Fits a forest on the rows of `x` (at least 2 rows, finite values).
    pub fn fit_array(&self, x: ArrayView2<'_, f64>) -> Result<IsolationForest, DetectorError> {
        self.fit_scored(x, false).map(|(forest, _)| forest)
    }

    /// [`fit_array`](Self::fit_array), and the training rows' `score_samples`, sorted
    /// ascending (most anomalous first): the distribution a new row's score is ranked in. With
    /// a contamination fraction the offset needs these scores anyway, so they cost nothing more.
    pub fn fit_array_scored(
        &self,
        x: ArrayView2<'_, f64>,
    ) -> Result<(IsolationForest, Vec<f64>), DetectorError> {
        self.fit_scored(x, true)
    }

    fn fit_scored(
        &self,
        x: ArrayView2<'_, f64>,
        want_scores: bool,
    ) -> Result<(IsolationForest, Vec<f64>), DetectorError> {
        self.validate()?;
        let (n, p) = x.dim();
        if n < 2 {
            return Err(DetectorError::NotEnoughSamples { needed: 2, got: n });
        }
        if p == 0 {
            return Err(DetectorError::InvalidParameter(
                "at least one feature is required".into(),
            ));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(DetectorError::NonFinite);
        }
        let psi = self.max_samples.unwrap_or(AUTO_MAX_SAMPLES).min(n);
        let height_limit = (psi.max(2) as f64).log2().ceil() as usize;
        let build = |t: usize| build_tree(&x, psi, height_limit, self.seed, t as u64);
        let trees: Vec<Vec<Node>> = if self.parallel {
            (0..self.n_estimators).into_par_iter().map(build).collect()
        } else {
            (0..self.n_estimators).map(build).collect()
        };
        let mut nodes = Vec::with_capacity(trees.iter().map(Vec::len).sum());
        let mut roots = Vec::with_capacity(trees.len());
        for tree in trees {
            let base = nodes.len() as u32;
            roots.push(base);
            nodes.extend(tree.into_iter().map(|mut n| {
                n.children = n.children.map(|c| c + base);
                n
            }));
        }
        let mut forest = IsolationForest {
            n_features: p,
            max_samples: psi,
            contamination: self.contamination,
            offset: -0.5,
            norm: average_path_length(psi).max(f64::MIN_POSITIVE) * roots.len() as f64,
            depth: max_depth(&nodes),
            roots,
            nodes,
        };
        let fraction = match self.contamination {
            Contamination::Fraction(c) => Some(c),
            Contamination::Auto => None,
        };
        let mut scores = Vec::new();
        if fraction.is_some() || want_scores {
            scores = if self.parallel {
                forest.score_samples(x)?
            } else {
                forest.score_samples_serial(x)?
            }
            .to_vec();
            // Sorts the scores, which is what the caller wants too.
            let offset = percentile_linear(&mut scores, 100.0 * fraction.unwrap_or(0.0));
            if fraction.is_some() {
                forest.offset = offset;
            }
        }
        if !want_scores {
            scores = Vec::new();
        }
        Ok((forest, scores))
    }
}

/// One node of the forest. A split sends rows with `x[feature] <= value` to `children[0]` and
/// the others (NaN included) to `children[1]`. A leaf holds its path length, `depth + c(size)`,
/// in `value` and both its children are itself, so a walk that goes on ends where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    value: f64,
    feature: u32,
    children: [u32; 2],
}

impl Node {
    fn leaf(id: usize, path: f64) -> Self {
        Self {
            value: path,
            feature: 0,
            children: [id as u32; 2],
        }
    }

    fn is_leaf(&self, id: usize) -> bool {
        self.children == [id as u32; 2]
    }
}

/// The depth of the deepest leaf of a table whose children come after their parent (one pass).
/// Roots are the nodes nobody points at, at depth 0.
fn max_depth(nodes: &[Node]) -> usize {
    let mut depth = vec![0usize; nodes.len()];
    let mut deepest = 0;
    for (i, node) in nodes.iter().enumerate() {
        if node.is_leaf(i) {
            deepest = deepest.max(depth[i]);
            continue;
        }
        let d = depth[i] + 1;
        for c in node.children {
            if let Some(slot) = depth.get_mut(c as usize) {
                *slot = (*slot).max(d);
            }
        }
    }
    deepest
}

/// The serialised node table (struct of arrays), the format models were stored in from the
/// start: `feature` is `u32::MAX` for a leaf, whose path length is in `leaf_path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TreeNodes {
    /// Split feature, or `u32::MAX` for a leaf.
    feature: Vec<u32>,
    /// Split threshold (`x <= threshold` goes left); 0 for leaves.
    threshold: Vec<f64>,
    /// Left child index (0 for leaves).
    left: Vec<u32>,
    /// Right child index (0 for leaves).
    right: Vec<u32>,
    /// For leaves: depth + c(leaf size); 0 for splits.
    leaf_path: Vec<f64>,
}

impl TreeNodes {
    fn from_nodes(nodes: &[Node]) -> Self {
        let mut t = Self::default();
        for (i, n) in nodes.iter().enumerate() {
            let leaf = n.is_leaf(i);
            t.feature.push(if leaf { LEAF } else { n.feature });
            t.threshold.push(if leaf { 0.0 } else { n.value });
            t.left.push(if leaf { 0 } else { n.children[0] });
            t.right.push(if leaf { 0 } else { n.children[1] });
            t.leaf_path.push(if leaf { n.value } else { 0.0 });
        }
        t
    }
}

fn build_tree(
    x: &ArrayView2<'_, f64>,
    psi: usize,
    height_limit: usize,
    seed: u64,
    stream: u64,
) -> Vec<Node> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let (n, p) = x.dim();
    let sample = rand::seq::index::sample(&mut rng, n, psi);
    // Column-major copy of the subsample: scanning one feature over a node is contiguous.
    let mut cols = vec![0.0; p * psi];
    for (j, i) in sample.iter().enumerate() {
        for (f, v) in x.row(i).iter().enumerate() {
            if let Some(slot) = cols.get_mut(f * psi + j) {
                *slot = *v;
            }
        }
    }
    let mut order: Vec<u32> = (0..psi as u32).collect();
    let mut feats: Vec<usize> = (0..p).collect();
    let mut nodes = vec![Node::leaf(0, 0.0)];
    let mut stack = vec![(0usize, 0usize, psi, 0usize)];
    while let Some((id, start, end, depth)) = stack.pop() {
        let size = end - start;
        let split = if size > 1 && depth < height_limit {
            choose_split(&mut rng, &cols, psi, &order[start..end], &mut feats)
        } else {
            None
        };
        let Some((f, threshold)) = split else {
            nodes[id] = Node::leaf(id, depth as f64 + average_path_length(size));
            continue;
        };
        // In-place partition: rows with x <= threshold first.
        let col = &cols[f * psi..(f + 1) * psi];
        let slice = &mut order[start..end];
        let mut mid = 0;
        for k in 0..slice.len() {
            if col[slice[k] as usize] <= threshold {
                slice.swap(k, mid);
                mid += 1;
            }
        }
        let (left, right) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::leaf(left, 0.0));
        nodes.push(Node::leaf(right, 0.0));
        nodes[id] = Node {
            value: threshold,
            feature: f as u32,
            children: [left as u32, right as u32],
        };
        stack.push((right, start + mid, end, depth + 1));
        stack.push((left, start, start + mid, depth + 1));
    }
    nodes
}

/// Draws features in random order until one is non-constant on `rows` (so the choice is uniform
/// among the non-constant ones), then a threshold uniform in `[min, max)`.
fn choose_split(
    rng: &mut ChaCha8Rng,
    cols: &[f64],
    psi: usize,
    rows: &[u32],
    feats: &mut [usize],
) -> Option<(usize, f64)> {
    let p = feats.len();
    for k in 0..p {
        let j = rng.random_range(k..p);
        feats.swap(k, j);
        let f = feats[k];
        let col = &cols[f * psi..(f + 1) * psi];
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for r in rows {
            let v = col[*r as usize];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi > lo {
            let u: f64 = rng.random();
            let mut t = lo + u * (hi - lo);
            if t >= hi {
                t = lo;
            }
            return Some((f, t));
        }
    }
    None
}

/// A fitted isolation forest. Serialises with serde (the tables are validated on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "IsolationForestRepr", try_from = "IsolationForestRepr")]
pub struct IsolationForest {
    n_features: usize,
    max_samples: usize,
    contamination: Contamination,
    offset: f64,
    /// `c(max_samples) · n_trees`: dividing the summed path length by it gives E[h]/c.
    norm: f64,
    /// Steps of every walk: the depth of the deepest leaf.
    depth: usize,
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

#[derive(Serialize, Deserialize)]
struct IsolationForestRepr {
    n_features: usize,
    max_samples: usize,
    contamination: Contamination,
    offset: f64,
    norm: f64,
    roots: Vec<u32>,
    nodes: TreeNodes,
}

impl From<IsolationForest> for IsolationForestRepr {
    fn from(f: IsolationForest) -> Self {
        Self {
            n_features: f.n_features,
            max_samples: f.max_samples,
            contamination: f.contamination,
            offset: f.offset,
            norm: f.norm,
            nodes: TreeNodes::from_nodes(&f.nodes),
            roots: f.roots,
        }
    }
}

impl TryFrom<IsolationForestRepr> for IsolationForest {
    type Error = DetectorError;

    fn try_from(r: IsolationForestRepr) -> Result<Self, Self::Error> {
        let corrupt = |m: &str| Err(DetectorError::CorruptModel(m.to_owned()));
        let len = r.nodes.feature.len();
        if [
            r.nodes.threshold.len(),
            r.nodes.left.len(),
            r.nodes.right.len(),
            r.nodes.leaf_path.len(),
        ]
        .iter()
        .any(|l| *l != len)
        {
            return corrupt("node arrays differ in length");
        }
        if r.n_features == 0 || r.roots.is_empty() || r.roots.iter().any(|x| *x as usize >= len) {
            return corrupt("no features or bad root index");
        }
        if !(r.norm > 0.0 && r.norm.is_finite() && r.offset.is_finite()) {
            return corrupt("bad normaliser or offset");
        }
        let t = &r.nodes;
        let mut nodes = Vec::with_capacity(len);
        for i in 0..len {
            let f = t.feature[i];
            if f == LEAF {
                if !t.leaf_path[i].is_finite() {
                    return corrupt("bad leaf value");
                }
                nodes.push(Node::leaf(i, t.leaf_path[i]));
                continue;
            }
            let (l, rt) = (t.left[i] as usize, t.right[i] as usize);
            // Children after their parent: every node's depth is known in one pass.
            if f as usize >= r.n_features || l <= i || rt <= i || l >= len || rt >= len {
                return corrupt("bad split node");
            }
            nodes.push(Node {
                value: t.threshold[i],
                feature: f,
                children: [l as u32, rt as u32],
            });
        }
        Ok(Self {
            n_features: r.n_features,
            max_samples: r.max_samples,
            contamination: r.contamination,
            offset: r.offset,
            norm: r.norm,
            depth: max_depth(&nodes),
            roots: r.roots,
            nodes,
        })
    }
}

impl IsolationForest {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Bytes the trees hold on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>() + self.roots.capacity() * size_of::<u32>()
    }

    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.roots.len()
    }

    /// Rows each tree was grown on (`max_samples_` in scikit-learn).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// The contamination rule the offset came from.
    pub fn contamination(&self) -> Contamination {
        self.contamination
    }

    /// scikit-learn's `offset_`.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// The port's τ: `−offset`, the raw-score threshold above which a row is anomalous.
    pub fn threshold(&self) -> f64 {
        -self.offset
    }

    /// Total number of nodes over all trees.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// One step of a walk from node `i`: the child the row goes to (a leaf stays put).
    #[inline(always)]
    fn step(&self, i: usize, get: &impl Fn(usize) -> f64) -> usize {
        let node = &self.nodes[i];
        // False for NaN, which goes right.
        let left = get(node.feature as usize) <= node.value;
        node.children[usize::from(!left)] as usize
    }

    /// The summed path length of one row, walking [`TREE_CHUNK`] trees in lockstep.
    #[inline]
    fn path_sum(&self, get: impl Fn(usize) -> f64) -> f64 {
        let mut sum = 0.0;
        let mut at = [0usize; TREE_CHUNK];
        for roots in self.roots.chunks(TREE_CHUNK) {
            let at = &mut at[..roots.len()];
            for (i, root) in at.iter_mut().zip(roots) {
                *i = *root as usize;
            }
            for _ in 0..self.depth {
                for i in at.iter_mut() {
                    *i = self.step(*i, &get);
                }
            }
            // Summed in tree order, as a walk of one tree after the other would.
            for i in at.iter() {
                sum += self.nodes[*i].value;
            }
        }
        sum
    }

    #[inline]
    fn score_from_sum(&self, sum: f64) -> f64 {
        -(-sum / self.norm).exp2()
    }

    fn check_len(&self, got: usize) -> Result<(), DetectorError> {
        if got == self.n_features {
            Ok(())
        } else {
            Err(DetectorError::ShapeMismatch {
                what: "features",
                expected: self.n_features,
                got,
            })
        }
    }

    /// scikit-learn's `score_samples` for one row given as a slice (allocation-free).
    pub fn score_slice(&self, row: &[f64]) -> Result<f64, DetectorError> {
        self.check_len(row.len())?;
        Ok(self.score_from_sum(self.path_sum(|f| row[f])))
    }

    /// scikit-learn's `score_samples` for one row (in [−1, 0); lower is more anomalous).
    pub fn score_row(&self, row: ArrayView1<'_, f64>) -> Result<f64, DetectorError> {
        if let Some(s) = row.as_slice() {
            return self.score_slice(s);
        }
        self.check_len(row.len())?;
        Ok(self.score_from_sum(self.path_sum(|f| row[f])))
    }

    /// scikit-learn's `score_samples` for a batch; parallel from [`PARALLEL_SCORE_ROWS`] rows.
    pub fn score_samples(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>, DetectorError> {
        if x.nrows() < PARALLEL_SCORE_ROWS {
            return self.score_samples_serial(x);
        }
        self.check_len(x.ncols())?;
        let mut out = vec![0.0; x.nrows()];
        out.par_chunks_mut(SCORE_CHUNK)
            .enumerate()
            .for_each(|(c, o)| {
                let start = c * SCORE_CHUNK;
                self.score_chunk(
                    x.slice_axis(Axis(0), Slice::from(start..start + o.len())),
                    o,
                );
            });
        Ok(Array1::from(out))
    }

    /// [`Self::score_samples`] on the calling thread only.
    pub fn score_samples_serial(
        &self,
        x: ArrayView2<'_, f64>,
    ) -> Result<Array1<f64>, DetectorError> {
        self.check_len(x.ncols())?;
        let mut out = vec![0.0; x.nrows()];
        for (chunk, o) in x
            .axis_chunks_iter(Axis(0), SCORE_CHUNK)
            .zip(out.chunks_mut(SCORE_CHUNK))
        {
            self.score_chunk(chunk, o);
        }
        Ok(Array1::from(out))
    }

    /// Scores up to [`SCORE_CHUNK`] rows tree by tree, so each tree's nodes stay in cache.
    fn score_chunk(&self, rows: ArrayView2<'_, f64>, out: &mut [f64]) {
        let p = self.n_features;
        let owned;
        let flat: &[f64] = match rows.as_slice() {
            Some(s) => s,
            None => {
                owned = rows.iter().copied().collect::<Vec<f64>>();
                &owned
            }
        };
        out.fill(0.0);
        let mut at = [0usize; SCORE_CHUNK];
        let at = &mut at[..out.len()];
        for &root in &self.roots {
            at.fill(root as usize);
            // Level by level: the rows' walks are independent, so their loads overlap.
            for _ in 0..self.depth {
                for (i, row) in at.iter_mut().zip(flat.chunks_exact(p)) {
                    *i = self.step(*i, &|f| row[f]);
                }
            }
            for (sum, i) in out.iter_mut().zip(at.iter()) {
                *sum += self.nodes[*i].value;
            }
        }
        for v in out.iter_mut() {
            *v = self.score_from_sum(*v);
        }
    }

    /// scikit-learn's `decision_function` for one row: negative means anomalous.
    pub fn decision_row(&self, row: ArrayView1<'_, f64>) -> Result<f64, DetectorError> {
        Ok(self.score_row(row)? - self.offset)
    }

    /// scikit-learn's `decision_function` for a batch.
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>, DetectorError> {
        Ok(self.score_samples(x)? - self.offset)
    }

    /// The port's `anomaly_score`: `clamp(0.5 + s − τ, 0, 1)`, above 0.5 ⇔ anomalous.
    pub fn anomaly_score_row(&self, row: ArrayView1<'_, f64>) -> Result<f64, DetectorError> {
        Ok(port_score(self.decision_row(row)?))
    }

    /// The port's `anomaly_score` for a slice row (allocation-free hot path).
    pub fn anomaly_score_slice(&self, row: &[f64]) -> Result<f64, DetectorError> {
        Ok(self.anomaly_score_of(self.score_slice(row)?))
    }

    /// The port's anomaly score in [0, 1] of a row whose `score_samples` is `raw`.
    #[must_use]
    pub fn anomaly_score_of(&self, raw: f64) -> f64 {
        port_score(raw - self.offset)
    }
}

#[inline]
fn port_score(decision: f64) -> f64 {
    (0.5 - decision).clamp(0.0, 1.0)
}

impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, DetectorError> for IsolationForestParams {
    type Object = IsolationForest;

    /// Unsupervised: the dataset's targets are ignored.
    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<IsolationForest, DetectorError> {
        self.fit_array(dataset.records().view())
    }
}

/// linfa prediction: `true` marks an anomaly (`decision_function < 0`, scikit-learn's
/// `predict == −1`). Labels are the most useful linfa output because linfa's classification
/// metrics take them directly; scores come from the inherent methods. A matrix with the wrong
/// number of columns yields all `false`; use [`IsolationForest::decision_function`] to get an
/// error instead.
impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<bool>> for IsolationForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<bool>) {
        match self.decision_function(x.view()) {
            Ok(d) => {
                for (out, v) in y.iter_mut().zip(d.iter()) {
                    *out = *v < 0.0;
                }
            }
            Err(_) => y.fill(false),
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<bool> {
        Array1::from_elem(x.nsamples(), false)
    }
}

#[cfg(test)]
mod tests;

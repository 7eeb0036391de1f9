//! Temporal context: what the isolation forest of a series sees instead of the window alone.
//!
//! A 5-point window says almost nothing about whether its level is normal *for this series*:
//! 50 % CPU is calm for a batch worker and alarming for an idle API server. So each series keeps
//! its own recent past (the last point of every window it was sent, at most
//! [`HISTORY_POINTS`]), and every window is described, per metric type, by three numbers:
//!
//! * **level**: how far the window's mean lies from the median of the series' history before
//!   the window, in robust standard deviations (`1.4826 × MAD`). A level shift shows here at
//!   once, and stays while it lasts, whatever the scale of the metric.
//! * **recent unusualness, short and long** (`ew_short`, `ew_long`): exponentially weighted means
//!   of the newest point's robust |z| against the same median, with half-lives of
//!   [`HALF_LIFE_SHORT`] and [`HALF_LIFE_LONG`] points. They remember that the series *was*
//!   unusual a moment ago. Incidents are episodes, not single points: a spike followed by a
//!   return to normal is still the same incident for a while, and a burst of small deviations
//!   adds up to something no single window shows.
//!
//! The median and MAD are refreshed every [`REFRESH_EVERY`] points (they barely move from one
//! point to the next over a history of 2,016), which keeps the cost per request constant. The
//! history is counted in points, not time: 2,016 points are a week at 5-minute resolution and
//! 8.4 hours at the Prometheus feed's 15 s step.
//!
//! Tried on the NAB series and left out, because they did not help the forest rank windows
//! (`bench/README.md` has the figures): the first difference against its own median and MAD
//! (alone it ranks no better than chance), the deviation from the same time a day earlier (it
//! raised the mean but lowered the weakest series), shorter medians (an hour or six: they
//! follow the anomaly too quickly), and the window's volatility against its usual volatility.
//!
//! Everything here is deterministic: the same points in the same order give the same features.

use std::collections::VecDeque;

/// Points of history a series keeps per metric type.
pub const HISTORY_POINTS: usize = 2016;
/// The newest points of the history left out of the median: the window itself (a 5-point
/// window adds its last point, and its first four were added by the windows before it).
pub const WINDOW_OVERLAP: usize = 4;
/// Points between refreshes of the median and MAD.
pub const REFRESH_EVERY: usize = 16;
/// Points of history before the median is used.
pub const MIN_HISTORY: usize = 3;
/// Half-life in points of the short memory of unusualness.
pub const HALF_LIFE_SHORT: f64 = 6.0;
/// Half-life in points of the long memory.
pub const HALF_LIFE_LONG: f64 = 36.0;
/// Robust |z| beyond this counts as this (one wild point must not dominate the memories).
pub const Z_CLIP: f64 = 50.0;
/// Below this many points the scale is at least the standard deviation: few points often
/// repeat one value (a Prometheus range query repeats a sample until the next scrape), and
/// their MAD can be near zero although the series is noisy.
pub const MIN_ROBUST_HISTORY: usize = 30;
/// How many standard errors of the scale the deviation allows for (3 × 1.17, the MAD's
/// standard error per √n in units of σ).
pub const SCALE_UNCERTAINTY: f64 = 3.5;
/// Features per metric type.
pub const FEATURES_PER_TYPE: usize = 3;
/// Names of the features of one metric type, in column order (`<type>_<name>`).
pub const FEATURE_NAMES: [&str; FEATURES_PER_TYPE] = ["level", "ew_short", "ew_long"];

/// The median of the history and its robust scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Baseline {
    median: f64,
    scale: f64,
    /// Points it was computed from.
    n: usize,
}

/// An exponentially weighted mean with bias correction: `Σ wᵢ xᵢ / Σ wᵢ`, `wᵢ = (1 − α)^age`.
/// Unlike a plain recursion started at zero, its first values are not pulled towards zero.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Ewm {
    num: f64,
    den: f64,
}

impl Ewm {
    fn push(&mut self, x: f64, half_life: f64) -> f64 {
        let keep = 0.5f64.powf(1.0 / half_life);
        self.num = self.num * keep + x;
        self.den = self.den * keep + 1.0;
        self.num / self.den
    }
}

/// One metric type's past within one series.
#[derive(Debug, Clone, Default)]
pub struct Temporal {
    points: VecDeque<f64>,
    baseline: Option<Baseline>,
    since_refresh: usize,
    short: Ewm,
    long: Ewm,
}

impl Temporal {
    /// An empty past.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Points held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point was observed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Bytes held on the heap (the history ring).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * size_of::<f64>()
    }

    /// Takes in a window of this type (its mean and its newest point) and returns its
    /// features, in [`FEATURE_NAMES`] order: the window is compared with the history before
    /// it, then its newest point joins the history. Non-finite input counts as no deviation.
    pub fn observe(&mut self, mean: f64, last: f64) -> [f64; FEATURES_PER_TYPE] {
        self.observe_with_deviation(mean, last).0
    }

    /// [`Temporal::observe`], and how far the window lies from the series' normal, in robust
    /// standard deviations: the largest of |level|, the newest point's robust |z| and the
    /// short memory (so a spike that just ended still counts), at most [`Z_CLIP`]; `None`
    /// until the history holds enough points for a median.
    ///
    /// The deviation is measured against the scale's upper bound, `scale × (1 + 3.5/√n)` for a
    /// scale estimated from `n` points: a MAD from few points is itself uncertain (its
    /// standard error is about 1.17 σ/√n), and a short history must not make ordinary noise
    /// look like three standard deviations. Over a full history the bound is 8 % above the
    /// scale.
    pub fn observe_with_deviation(
        &mut self,
        mean: f64,
        last: f64,
    ) -> ([f64; FEATURES_PER_TYPE], Option<f64>) {
        // A short history's median moves with every point: it is recomputed each time until
        // the history is long enough (and cheap).
        let young = self.points.len() < MIN_ROBUST_HISTORY + WINDOW_OVERLAP;
        if self.baseline.is_none() || young || self.since_refresh >= REFRESH_EVERY {
            self.baseline = self.fresh_baseline().or(self.baseline);
            self.since_refresh = 0;
        }
        let (level, z) = match self.baseline {
            Some(b) if mean.is_finite() && last.is_finite() => (
                ((mean - b.median) / b.scale).clamp(-Z_CLIP, Z_CLIP),
                ((last - b.median) / b.scale).abs().min(Z_CLIP),
            ),
            _ => (0.0, 0.0),
        };
        let short = self.short.push(z, HALF_LIFE_SHORT);
        let long = self.long.push(z, HALF_LIFE_LONG);
        if last.is_finite() {
            self.points.push_back(last);
            if self.points.len() > HISTORY_POINTS {
                self.points.pop_front();
            }
            self.since_refresh += 1;
        }
        let deviation = self.baseline.map(|b| {
            let bound = 1.0 + SCALE_UNCERTAINTY / (b.n as f64).sqrt();
            level.abs().max(z).max(short) / bound
        });
        ([level, short, long], deviation)
    }

    /// The median and robust scale of the history before the newest [`WINDOW_OVERLAP`] points,
    /// when it holds [`MIN_HISTORY`] points. The scale is `1.4826 × MAD`, floored at 5 % of the
    /// standard deviation (a series that is flat most of the time has a MAD of zero; below
    /// [`MIN_ROBUST_HISTORY`] points, at the whole standard deviation) and at a millionth of
    /// the level (a series that is flat all the time).
    fn fresh_baseline(&self) -> Option<Baseline> {
        let n = self.points.len().checked_sub(WINDOW_OVERLAP)?;
        if n < MIN_HISTORY {
            return None;
        }
        let mut scratch: Vec<f64> = self.points.iter().take(n).copied().collect();
        let center = median(&mut scratch);
        let mean = scratch.iter().sum::<f64>() / n as f64;
        let std = (scratch.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
        for v in &mut scratch {
            *v = (*v - center).abs();
        }
        let mad = median(&mut scratch);
        let floor = if n < MIN_ROBUST_HISTORY {
            std
        } else {
            0.05 * std
        };
        let scale = (1.4826_f64 * mad)
            .max(floor)
            .max(1e-6 * (center.abs() + 1.0));
        Some(Baseline {
            median: center,
            scale,
            n,
        })
    }
}

/// The median of finite values (reorders them); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let mid = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower_max + upper) / 2.0
    }
}

/// The column names of a series' forest: `<type>_<feature>` for each metric type of the
/// signature, in signature order.
#[must_use]
pub fn feature_names(signature: &str) -> Vec<String> {
    signature
        .split(',')
        .filter(|t| !t.is_empty())
        .flat_map(|t| FEATURE_NAMES.iter().map(move |f| format!("{t}_{f}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn a_level_shift_shows_in_level_and_is_remembered() {
        let mut t = Temporal::new();
        for i in 0..500 {
            let v = 50.0 + f64::from(i % 5) - 2.0;
            let f = t.observe(v, v);
            if i > 100 {
                assert!(f[0].abs() < 2.0, "normal level at {i}: {f:?}");
            }
        }
        let shifted = t.observe(80.0, 80.0);
        assert!(shifted[0] > 10.0, "{shifted:?}");
        let mut probe = t.clone();
        let (_, deviation) = probe.observe_with_deviation(80.0, 80.0);
        let deviation = deviation.expect("a history of 500 points has a median");
        assert!(deviation >= shifted[0] / 1.2, "{deviation} {shifted:?}");
        assert!(shifted[1] > 2.0 && shifted[2] > 0.5, "{shifted:?}");
        // Back to normal: the level says so at once, the memories fade.
        let after = t.observe(50.0, 50.0);
        assert!(after[0].abs() < 2.0, "{after:?}");
        assert!(after[1] > 1.0 && after[1] < shifted[1], "{after:?}");
        let mut later = after;
        for _ in 0..60 {
            later = t.observe(50.0, 50.0);
        }
        assert!(later[1] < 0.5, "the short memory has faded: {later:?}");
        assert!(later[2] < after[2], "{later:?}");
    }

    #[test]
    fn a_short_history_needs_a_larger_deviation() {
        let noisy = |i: usize| 50.0 + [0.0, 1.0, -1.0, 0.5, -0.5][i % 5];
        let deviation_after = |points: usize| {
            let mut t = Temporal::new();
            for i in 0..points {
                t.observe(noisy(i), noisy(i));
            }
            t.observe_with_deviation(53.0, 53.0).1
        };
        assert_eq!(Temporal::new().observe_with_deviation(1.0, 1.0).1, None);
        let short = deviation_after(10).expect("ten points have a median");
        let long = deviation_after(1000).expect("a median");
        assert!(short < long, "{short} against {long}");
        assert!(long / short > 1.5, "{short} against {long}");
    }

    #[test]
    fn a_flat_series_has_a_finite_scale() {
        let mut t = Temporal::new();
        for _ in 0..50 {
            let f = t.observe(7.0, 7.0);
            assert_eq!(f, [0.0, 0.0, 0.0]);
        }
        let f = t.observe(8.0, 8.0);
        assert!(f.iter().all(|v| v.is_finite()));
        assert_eq!(
            f[0], Z_CLIP,
            "any move off a flat line is as unusual as it gets"
        );
    }

    #[test]
    fn non_finite_input_is_no_deviation_and_not_history() {
        let mut t = Temporal::new();
        for _ in 0..20 {
            t.observe(1.0, 1.0);
        }
        let f = t.observe(f64::NAN, f64::INFINITY);
        assert_eq!(f[0], 0.0);
        assert_eq!(t.len(), 20);
    }

    #[test]
    fn history_is_bounded() {
        let mut t = Temporal::new();
        for i in 0..(HISTORY_POINTS + 100) {
            t.observe(i as f64, i as f64);
        }
        assert_eq!(t.len(), HISTORY_POINTS);
    }

    #[test]
    fn the_same_points_give_the_same_features() {
        let run = || {
            let mut t = Temporal::new();
            (0..300)
                .map(|i| {
                    let v = (f64::from(i) * 0.37).sin() * 10.0 + 40.0;
                    t.observe(v, v)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn feature_names_follow_the_signature() {
        assert_eq!(
            feature_names("cpu_usage,error_rate"),
            [
                "cpu_usage_level",
                "cpu_usage_ew_short",
                "cpu_usage_ew_long",
                "error_rate_level",
                "error_rate_ew_short",
                "error_rate_ew_long"
            ]
        );
    }
}

#[cfg(test)]
mod short_history {
    use super::*;

    /// A few points that mostly repeat one value: their MAD is zero, yet the series is noisy.
    #[test]
    fn repeated_values_do_not_shrink_the_scale() {
        let mut t = Temporal::new();
        for v in [
            50.0, 50.0, 50.0, 51.5, 50.0, 48.5, 50.0, 50.0, 50.0, 50.0, 50.0,
        ] {
            t.observe(v, v);
        }
        let (_, deviation) = t.observe_with_deviation(50.0, 52.3);
        let deviation = deviation.expect("a median");
        assert!(deviation < 3.0, "noise is not 3 sigma: {deviation}");
        let (_, deviation) = t.observe_with_deviation(96.0, 96.0);
        assert!(deviation.expect("a median") > 3.0);
    }
}

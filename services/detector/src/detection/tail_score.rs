//! Calibrated anomaly score of a window: how rare its recent deviation is
//! among the series' own earlier windows, so scores of series with heavy
//! or light tails, or with zero-width bands, mean the same thing.
//!
//! Method:
//! - m = mean deviation ratio (|value − expected| in band half-widths, see
//!   `band.rs`) over the last `lookback` windows, the firing rule's
//!   lookback. A missing or learning window counts as 0, and a ratio counts
//!   as at most [`MAX_RATIO`], so an infinite ratio (a zero-width band)
//!   does not make m infinite.
//! - p = (number of earlier judged windows whose m was at least the current
//!   one + 1) / (number of earlier judged windows + 1). This is the
//!   conformal p-value of m, an empirical tail probability that is never 0.
//! - score = 1 − p, in [0, 1). It is 0 before any earlier window was judged.
//!
//! The earlier m values are kept in a histogram over log₂ m with
//! [`BINS_PER_OCTAVE`] bins per octave, and the count at or above m is
//! interpolated linearly in log₂ m within m's bin. The counts halve when
//! their total reaches [`MAX_COUNT`], so windows older than a few times
//! that weigh less and the distribution follows slow changes of the series.

use std::collections::VecDeque;

/// Largest deviation ratio the mean takes in, in band half-widths.
pub(crate) const MAX_RATIO: f64 = 1_000.0;

/// Resolution of the histogram of earlier means.
const BINS_PER_OCTAVE: usize = 4;

/// log₂ of the smallest mean with a bin of its own: smaller means, 0
/// included, count in the first bin.
const MIN_LOG2: f64 = -6.0;

/// log₂ of the top of the last bin, above [`MAX_RATIO`].
const MAX_LOG2: f64 = 10.0;

const BINS: usize = ((MAX_LOG2 - MIN_LOG2) as usize) * BINS_PER_OCTAVE;

/// Total count at which every count halves: 65 536 windows, 227 days of
/// 5-minute windows.
const MAX_COUNT: u32 = 1 << 16;

/// The recent deviation ratios and the histogram of earlier means of one series.
#[derive(Debug, Clone)]
pub(crate) struct TailScore {
    lookback: usize,
    /// Deviation ratios of the last `lookback` windows, newest last.
    recent: VecDeque<f32>,
    counts: Box<[u32; BINS]>,
    total: u32,
}

impl TailScore {
    /// Creates the score of a series whose mean deviation covers `lookback`
    /// windows (at least 1).
    pub fn new(lookback: usize) -> TailScore {
        let lookback = lookback.max(1);
        TailScore {
            lookback,
            recent: VecDeque::with_capacity(lookback),
            counts: Box::new([0; BINS]),
            total: 0,
        }
    }

    /// Records `windows` missing windows, which count as ratio 0.
    pub fn skip(&mut self, windows: u64) {
        let windows = usize::try_from(windows).unwrap_or(usize::MAX).min(self.lookback);
        for _ in 0..windows {
            self.push_ratio(0.0);
        }
    }

    /// Scores the next window, whose deviation ratio is `ratio` or `None`
    /// while the series is learning, then adds a judged window's mean to
    /// the histogram.
    pub fn observe(&mut self, ratio: Option<f64>) -> f64 {
        self.push_ratio(ratio.unwrap_or(0.0));
        let mean = self.recent.iter().map(|&ratio| f64::from(ratio)).sum::<f64>() / self.lookback as f64;
        // One logarithm serves both the score and the histogram.
        let position = bin_position(mean);
        let score = self.score_at(position);

        if ratio.is_some() {
            self.insert_at(position);
        }
        score
    }

    /// Returns 1 − p for a mean deviation at `position` (see [`bin_position`])
    /// against the histogram.
    fn score_at(&self, position: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }

        let bin = position as usize;
        let above: u64 = self.counts[bin + 1..].iter().map(|&count| u64::from(count)).sum();
        let within = f64::from(self.counts[bin]) * (1.0 - position.fract());
        let at_or_above = above as f64 + within;
        1.0 - (at_or_above + 1.0) / (f64::from(self.total) + 1.0)
    }

    fn insert_at(&mut self, position: f64) {
        if self.total >= MAX_COUNT {
            for count in self.counts.iter_mut() {
                *count /= 2;
            }
            self.total = self.counts.iter().sum();
        }
        self.counts[position as usize] += 1;
        self.total += 1;
    }

    fn push_ratio(&mut self, ratio: f64) {
        if self.recent.len() == self.lookback {
            self.recent.pop_front();
        }
        // NaN cannot come from a judged window, but must not poison the mean.
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, MAX_RATIO)
        };
        self.recent.push_back(ratio as f32);
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.recent.capacity() * size_of::<f32>() + size_of::<[u32; BINS]>()
    }
}

/// Position of `mean` on the histogram in bins: its bin is the integer
/// part, its place within the bin the fraction.
fn bin_position(mean: f64) -> f64 {
    if mean <= MIN_LOG2.exp2() {
        return 0.0;
    }
    let position = (mean.log2() - MIN_LOG2) * BINS_PER_OCTAVE as f64;
    // Just below the last bin's top, so the integer part stays a valid bin.
    position.min(BINS as f64 - 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_window_scores_zero() {
        let mut tail = TailScore::new(1);
        assert_eq!(tail.observe(Some(5.0)), 0.0);
    }

    #[test]
    fn learning_windows_score_zero_and_are_not_counted() {
        let mut tail = TailScore::new(1);
        assert_eq!(tail.observe(None), 0.0);
        assert_eq!(tail.observe(None), 0.0);
        assert_eq!(tail.total, 0);
    }

    #[test]
    fn score_is_one_minus_conformal_p_value() {
        let mut tail = TailScore::new(1);
        // The queries below lie above or below all nine ratios, so the
        // interpolation within a bin does not change p.
        for ratio in 1..=9 {
            tail.observe(Some(f64::from(ratio)));
        }
        // Larger than all nine earlier means: p = 1 / 10.
        assert!((tail.observe(Some(100.0)) - 0.9).abs() < 1e-12);
        // Smaller than or equal to all ten: p = 11 / 11.
        assert!(tail.observe(Some(0.5)).abs() < 1e-12);
    }

    #[test]
    fn same_ratio_scores_lower_on_heavy_tailed_series() {
        // One series deviates by 4 half-widths every tenth window, the
        // other never beyond 1: a deviation of 4 is rare only in the second.
        let mut heavy = TailScore::new(1);
        let mut light = TailScore::new(1);
        for window in 0..1_000 {
            let usual = 0.3 + 0.5 * f64::from(window % 3) / 2.0;
            heavy.observe(Some(if window % 10 == 0 { 4.0 } else { usual }));
            light.observe(Some(usual));
        }
        let heavy_score = heavy.observe(Some(4.0));
        let light_score = light.observe(Some(4.0));
        assert!(heavy_score < 0.92, "heavy-tailed series scored {heavy_score}");
        assert!(light_score > 0.998, "light-tailed series scored {light_score}");
    }

    #[test]
    fn mean_covers_lookback_windows() {
        let mut tail = TailScore::new(3);
        for _ in 0..100 {
            tail.observe(Some(0.5));
        }
        // One window at 3 half-widths: mean (0.5 + 0.5 + 3) / 3 = 1.33,
        // above every earlier mean of 0.5.
        let after_first = tail.observe(Some(3.0));
        // A second one: mean 2.17, also above every earlier mean, which now
        // include 1.33.
        let after_second = tail.observe(Some(3.0));

        assert!(after_first > 0.99, "{after_first}");
        assert!(after_second > after_first, "{after_second} <= {after_first}");
    }

    #[test]
    fn missing_windows_count_as_zero() {
        let mut tail = TailScore::new(2);
        tail.observe(Some(8.0));
        tail.skip(5);
        assert_eq!(tail.recent.iter().copied().collect::<Vec<_>>(), vec![0.0, 0.0]);
    }

    #[test]
    fn infinite_ratio_is_capped() {
        let mut tail = TailScore::new(1);
        for _ in 0..10 {
            tail.observe(Some(1.0));
        }
        let score = tail.observe(Some(f64::INFINITY));
        assert!(score.is_finite(), "{score}");
        assert!(score < 1.0, "{score}");
        assert_eq!(tail.recent.back().copied(), Some(MAX_RATIO as f32));
    }

    #[test]
    fn counts_halve_at_limit() {
        let mut tail = TailScore::new(1);
        for _ in 0..=MAX_COUNT {
            tail.observe(Some(1.0));
        }
        assert_eq!(tail.total, MAX_COUNT / 2 + 1);
    }
}

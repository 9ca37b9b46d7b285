//! Robust location and scale: the median, the median absolute deviation
//! (MAD) and a sorted sample that keeps both cheap while it slides.
//!
//! For normal data the MAD times 1/Φ⁻¹(3/4) ≈ 1.4826 estimates the standard
//! deviation, and it ignores up to half the sample being arbitrarily far off,
//! which is why anomalies in the recent past barely widen the band. When more
//! than half the deviations are exactly zero the MAD is zero, so
//! [`SortedSample::sigma`] falls back to the mean absolute deviation around
//! the median times √(π/2) ≈ 1.2533 (for normal data E|X − μ| = σ·√(2/π)),
//! which lets a mostly flat series still get a scale from its rare changes.

use std::cmp::Ordering;

/// Factor from the MAD to the standard deviation of normal data, 1/Φ⁻¹(0.75).
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Factor from the mean absolute deviation to the standard deviation of
/// normal data, √(π/2).
pub const MEAN_ABSOLUTE_DEVIATION_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Median of `values`, the mean of the two middle values when the length is
/// even, or `None` when empty. Reorders `values` (selection, O(n)).
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }

    let (lower_half, upper_middle, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper_middle = *upper_middle;
    if n % 2 == 1 {
        return Some(upper_middle);
    }

    // The lower middle value is the largest of the lower half.
    let lower_middle = lower_half.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower_middle + upper_middle) / 2.0)
}

/// Median absolute deviation from the median, or `None` when empty. Overwrites
/// `values` with the absolute deviations.
pub fn mad(values: &mut [f64]) -> Option<f64> {
    let center = median(values)?;
    for value in values.iter_mut() {
        *value = (*value - center).abs();
    }
    median(values)
}

/// A multiset of finite `f32` values kept in ascending order.
///
/// Insertion and removal shift the tail of a `Vec`, which is O(n) but only a
/// `memmove` of a few KiB; [`SortedSample::replace`] does both in one
/// shift. The median is O(1) and the MAD O(log n), or a few comparisons
/// from where it was last found ([`SortedSample::mad_near`]).
#[derive(Debug, Clone, Default)]
pub struct SortedSample {
    values: Vec<f32>,
    /// Length the allocation stops growing at. More values still fit, but
    /// then it grows further.
    expected_len: usize,
}

impl SortedSample {
    /// Creates an empty sample that expects to hold up to `expected_len`
    /// values, so its allocation stops growing there.
    pub fn new(expected_len: usize) -> SortedSample {
        SortedSample {
            values: Vec::new(),
            expected_len,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values in ascending order.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// Removes every value and keeps the allocation.
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// Adds a value. Non-finite values would break the order statistics,
    /// so callers pass finite values only (checked in debug builds).
    pub fn insert(&mut self, value: f32) {
        debug_assert!(value.is_finite(), "SortedSample::insert got {value}");
        if self.values.len() == self.values.capacity() {
            let doubled = self.values.len().max(8);
            let extra = if self.values.len() < self.expected_len {
                doubled.min(self.expected_len - self.values.len())
            } else {
                doubled
            };
            self.values.reserve_exact(extra);
        }

        let position = self
            .values
            .partition_point(|stored| stored.total_cmp(&value) == Ordering::Less);
        self.values.insert(position, value);
    }

    /// Removes one value bit-for-bit equal to `value`. Returns false when
    /// none is stored.
    pub fn remove(&mut self, value: f32) -> bool {
        match self.values.binary_search_by(|stored| stored.total_cmp(&value)) {
            Ok(position) => {
                self.values.remove(position);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes one value bit-for-bit equal to `old` and adds `new`, with
    /// one shift of the values between their places rather than a shift
    /// to the end for each. Returns false, and adds nothing, when `old` is
    /// not stored. `new` must be finite, as for [`SortedSample::insert`].
    pub fn replace(&mut self, old: f32, new: f32) -> bool {
        debug_assert!(new.is_finite(), "SortedSample::replace got {new}");
        let Ok(from) = self.values.binary_search_by(|stored| stored.total_cmp(&old)) else {
            return false;
        };

        // Where `insert` would put `new`, counted with `old` still stored.
        let to = self
            .values
            .partition_point(|stored| stored.total_cmp(&new) == Ordering::Less);
        if to <= from {
            self.values.copy_within(to..from, to + 1);
            self.values[to] = new;
        } else {
            // `old` is below `new`, so `new` lands one place lower once
            // `old` is gone.
            self.values.copy_within(from + 1..to, from);
            self.values[to - 1] = new;
        }
        true
    }

    pub fn median(&self) -> Option<f64> {
        let n = self.values.len();
        if n == 0 {
            return None;
        }

        let upper_middle = f64::from(self.values[n / 2]);
        if n % 2 == 1 {
            Some(upper_middle)
        } else {
            Some((f64::from(self.values[n / 2 - 1]) + upper_middle) / 2.0)
        }
    }

    /// Median absolute deviation from the median, in O(log n).
    ///
    /// The deviations of the values below the median, read from the median
    /// outwards, form one ascending sequence, and those of the other values
    /// form a second one. The MAD is the middle of their merge, which a
    /// binary search finds without merging.
    pub fn mad(&self) -> Option<f64> {
        self.mad_searching(None)
    }

    /// [`SortedSample::mad`], with its searches started where the MAD of the
    /// sample was found last time. Between two calls a sliding window
    /// inserts and removes one value, which moves both places by a step or
    /// two, so a few comparisons replace two binary searches. The result is
    /// the same as `mad` for any hint.
    pub fn mad_near(&self, hint: &mut MadHint) -> Option<f64> {
        self.mad_searching(Some(hint))
    }

    fn mad_searching(&self, mut hint: Option<&mut MadHint>) -> Option<f64> {
        let center = self.median()?;
        let n = self.values.len();
        let split_hint = hint.as_ref().map(|hint| hint.split);
        // The values are finite, so `>=` is exactly "not below".
        let split = first_true(0, n, split_hint, |i| f64::from(self.values[i]) >= center);
        let below = |i: usize| center - f64::from(self.values[split - 1 - i]);
        let above = |i: usize| f64::from(self.values[split + i]) - center;
        let mut from_below = hint.as_ref().map(|hint| hint.from_below);
        let mut kth = |k: usize| {
            let (value, taken) = kth_of_two_sorted(k, split, n - split, from_below, below, above);
            from_below = Some(taken);
            value
        };

        let mad = if n % 2 == 1 {
            kth(n / 2)
        } else {
            (kth(n / 2 - 1) + kth(n / 2)) / 2.0
        };
        if let Some(hint) = hint.as_mut() {
            hint.split = split;
            hint.from_below = from_below.unwrap_or(0);
        }
        Some(mad)
    }

    /// Mean absolute deviation from the median, in O(n).
    pub fn mean_absolute_deviation(&self) -> Option<f64> {
        let center = self.median()?;
        let sum: f64 = self.values.iter().map(|&value| (f64::from(value) - center).abs()).sum();
        Some(sum / self.values.len() as f64)
    }

    /// Robust estimate of the standard deviation: MAD × 1.4826, or the mean
    /// absolute deviation × 1.2533 when the MAD is zero, or `None` when empty.
    pub fn sigma(&self) -> Option<f64> {
        self.sigma_from(self.mad()?)
    }

    /// [`SortedSample::sigma`], with the MAD found by
    /// [`SortedSample::mad_near`].
    pub fn sigma_near(&self, hint: &mut MadHint) -> Option<f64> {
        self.sigma_from(self.mad_near(hint)?)
    }

    fn sigma_from(&self, mad: f64) -> Option<f64> {
        if mad > 0.0 {
            return Some(mad * MAD_TO_SIGMA);
        }
        self.mean_absolute_deviation()
            .map(|deviation| deviation * MEAN_ABSOLUTE_DEVIATION_TO_SIGMA)
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * size_of::<f32>()
    }
}

/// Start of the searches of [`SortedSample::mad_near`]: the places where
/// it last found the MAD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MadHint {
    /// Number of values below the median.
    split: usize,
    /// Number of the smallest deviations that came from below the median.
    from_below: usize,
}

/// Returns the `k`-th smallest (from 0) element of the merge of two
/// ascending sequences given by length and accessor, and how many of the
/// k + 1 smallest come from `a`. Requires `k < len_a + len_b`. The search
/// starts from `hint`, a guess of that count, when there is one.
fn kth_of_two_sorted(
    k: usize,
    len_a: usize,
    len_b: usize,
    hint: Option<usize>,
    a: impl Fn(usize) -> f64,
    b: impl Fn(usize) -> f64,
) -> (f64, usize) {
    debug_assert!(k < len_a + len_b);

    // The count is the smallest whose next `a` element is not below the
    // last `b` element taken.
    let low = (k + 1).saturating_sub(len_b);
    let high = (k + 1).min(len_a);
    let from_a = first_true(low, high, hint, |from_a| a(from_a) >= b(k - from_a));

    let from_b = k + 1 - from_a;
    let last_a = if from_a > 0 { a(from_a - 1) } else { f64::NEG_INFINITY };
    let last_b = if from_b > 0 { b(from_b - 1) } else { f64::NEG_INFINITY };
    (last_a.max(last_b), from_a)
}

/// Returns the smallest `i` in `low..=high` for which `is_past(i)` is true,
/// or `high` when it is true for none below it. `is_past` must be false up to some
/// point and true after it, and is never called with `high`. Without a
/// hint this is a binary search. With one, it first steps out from the
/// hint in doubling steps until it brackets the result, so a result d
/// places from the hint costs about 2·log₂(d) calls.
fn first_true(low: usize, high: usize, hint: Option<usize>, is_past: impl Fn(usize) -> bool) -> usize {
    // The result stays in start..=end, and `is_past(end)` is true unless
    // end == high.
    let (mut start, mut end) = (low, high);
    if let Some(hint) = hint.map(|hint| hint.clamp(low, high)) {
        if hint == high || is_past(hint) {
            end = hint;
            let mut step = 1;
            while start < end {
                let probe = end.saturating_sub(step).max(start);
                if !is_past(probe) {
                    start = probe + 1;
                    break;
                }
                end = probe;
                step *= 2;
            }
        } else {
            start = hint + 1;
            let mut step = 1;
            while start < end {
                let probe = (start + step - 1).min(end - 1);
                if is_past(probe) {
                    end = probe;
                    break;
                }
                start = probe + 1;
                step *= 2;
            }
        }
    }

    while start < end {
        let middle = start + (end - start) / 2;
        if is_past(middle) {
            end = middle;
        } else {
            start = middle + 1;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (64-bit LCG, Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn next_unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [7.0, 7.0, 1.0, 7.0]), Some(7.0));
    }

    #[test]
    fn median_ignores_outliers() {
        assert_eq!(median(&mut [1.0, 2.0, 3.0, 4.0, 1e12]), Some(3.0));
        assert_eq!(median(&mut [-1e12, 2.0, 3.0, 4.0, 1e12]), Some(3.0));
    }

    #[test]
    fn mad_of_known_samples() {
        // Median 3, deviations 2 1 0 1 2, MAD 1.
        assert_eq!(mad(&mut [1.0, 2.0, 3.0, 4.0, 5.0]), Some(1.0));
        // Median 2, deviations 1 1 0 0 2 4 7, MAD 1.
        assert_eq!(mad(&mut [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]), Some(1.0));
        assert_eq!(mad(&mut [1.0, 2.0, 3.0, 4.0, 1e12]), Some(1.0));
        assert_eq!(mad(&mut [5.0, 5.0, 5.0]), Some(0.0));
        assert_eq!(mad(&mut []), None);
    }

    #[test]
    fn sorted_sample_matches_direct_computation() {
        let mut random = Lcg(7);
        let mut sample = SortedSample::new(16);
        let mut plain: Vec<f32> = Vec::new();

        for step in 0..2_000 {
            // Coarse values make ties, which the split around the median must handle.
            let value = ((random.next_unit() * 40.0).floor() - 20.0) as f32 * 0.5;
            sample.insert(value);
            plain.push(value);
            if step % 3 == 2 {
                let removed = plain.remove((random.next_unit() * plain.len() as f64) as usize);
                assert!(sample.remove(removed), "stored value {removed} was not found");
            }

            let mut values: Vec<f64> = plain.iter().map(|&v| f64::from(v)).collect();
            assert_eq!(sample.len(), values.len());
            assert_eq!(sample.median(), median(&mut values.clone()), "median at step {step}");
            assert_eq!(sample.mad(), mad(&mut values), "MAD at step {step}");
        }
    }

    #[test]
    fn mad_near_any_hint_matches_mad() {
        let mut random = Lcg(11);
        let mut sample = SortedSample::new(64);
        let mut window: std::collections::VecDeque<f32> = std::collections::VecDeque::new();
        let mut kept_hint = MadHint::default();

        for step in 0..3_000 {
            // Ties, a wide spread and a sliding window of 1 to 60 values,
            // odd and even.
            let value = ((random.next_unit() * 30.0).floor() - 10.0) as f32 * (1.0 + (step % 7) as f32);
            sample.insert(value);
            window.push_back(value);
            let length = 1 + (step / 50) % 60;
            while window.len() > length {
                let leaving = window.pop_front().unwrap();
                assert!(sample.remove(leaving));
            }

            let expected = sample.mad();
            assert_eq!(sample.mad_near(&mut kept_hint), expected, "kept hint at step {step}");
            assert_eq!(
                sample.sigma_near(&mut kept_hint),
                sample.sigma(),
                "sigma at step {step}"
            );
            let n = sample.len();
            for (split, from_below) in [(0, 0), (n, n), (n / 3, n / 5), (usize::MAX, usize::MAX)] {
                let mut wild_hint = MadHint { split, from_below };
                assert_eq!(
                    sample.mad_near(&mut wild_hint),
                    expected,
                    "hint ({split}, {from_below}) at step {step}"
                );
            }
        }
    }

    #[test]
    fn first_true_from_every_hint() {
        for high in 0..12 {
            for expected in 0..=high {
                let is_past = |i: usize| {
                    assert!(i < high, "called with {i}, high {high}");
                    i >= expected
                };
                assert_eq!(first_true(0, high, None, is_past), expected);
                for hint in 0..=high + 2 {
                    assert_eq!(first_true(0, high, Some(hint), is_past), expected, "hint {hint}");
                }
            }
        }
    }

    #[test]
    fn replace_matches_remove_then_insert() {
        let mut random = Lcg(5);
        let mut replaced = SortedSample::new(40);
        let mut reference = SortedSample::new(40);
        for _ in 0..40 {
            let value = ((random.next_unit() * 20.0).floor() - 10.0) as f32;
            replaced.insert(value);
            reference.insert(value);
        }
        // Zeros of both signs, which `total_cmp` orders, and ties.
        for step in 0..2_000 {
            let old = replaced.as_slice()[(random.next_unit() * 40.0) as usize];
            let new = match step % 5 {
                0 => -0.0,
                1 => 0.0,
                2 => old,
                _ => ((random.next_unit() * 20.0).floor() - 10.0) as f32,
            };
            assert!(replaced.replace(old, new));
            assert!(reference.remove(old));
            reference.insert(new);
            let bits = |sample: &SortedSample| {
                sample
                    .as_slice()
                    .iter()
                    .map(|value| value.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&replaced),
                bits(&reference),
                "replacing {old} by {new} at step {step}"
            );
        }
        assert!(!replaced.replace(100.0, 1.0));
        assert_eq!(replaced.len(), 40);
    }

    #[test]
    fn sorted_sample_remove_missing_value() {
        let mut sample = SortedSample::new(16);
        sample.insert(1.0);
        assert!(!sample.remove(2.0));
        assert!(sample.remove(1.0));
        assert!(!sample.remove(1.0));
        assert!(sample.is_empty());
        assert_eq!(sample.median(), None);
        assert_eq!(sample.mad(), None);
        assert_eq!(sample.sigma(), None);
    }

    #[test]
    fn sigma_constants_match_normal_distribution() {
        // Half the normal mass lies within ±Φ⁻¹(0.75) = ±1/1.4826.
        assert!((normal_cdf(1.0 / MAD_TO_SIGMA) - 0.75).abs() < 1e-9);
        assert!((MEAN_ABSOLUTE_DEVIATION_TO_SIGMA - (std::f64::consts::PI / 2.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn sigma_scales_mad() {
        let mut sample = SortedSample::new(16);
        for value in [1.0, 2.0, 3.0, 4.0, 100.0] {
            sample.insert(value);
        }
        assert_eq!(sample.sigma(), Some(MAD_TO_SIGMA));
    }

    #[test]
    fn sigma_falls_back_to_mean_deviation() {
        // Six zeros and two ones: MAD 0, mean absolute deviation 0.25.
        let mut sample = SortedSample::new(16);
        for value in [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0] {
            sample.insert(value);
        }
        assert_eq!(sample.mad(), Some(0.0));
        assert_eq!(sample.sigma(), Some(0.25 * MEAN_ABSOLUTE_DEVIATION_TO_SIGMA));
    }

    #[test]
    fn sigma_of_constant_sample_is_zero() {
        let mut sample = SortedSample::new(16);
        for _ in 0..5 {
            sample.insert(3.0);
        }
        assert_eq!(sample.sigma(), Some(0.0));
    }

    /// Normal CDF by Simpson integration of the density from 0.
    fn normal_cdf(x: f64) -> f64 {
        let steps = 2_000;
        let h = x / steps as f64;
        let density = |t: f64| (-t * t / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut sum = density(0.0) + density(x);
        for i in 1..steps {
            let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
            sum += weight * density(i as f64 * h);
        }
        0.5 + sum * h / 3.0
    }
}

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
/// `memmove` of a few KiB. The median is O(1) and the MAD O(log n).
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
        let center = self.median()?;
        let n = self.values.len();
        let split = self.values.partition_point(|&value| f64::from(value) < center);
        let below = |i: usize| center - f64::from(self.values[split - 1 - i]);
        let above = |i: usize| f64::from(self.values[split + i]) - center;
        let kth = |k: usize| kth_of_two_sorted(k, split, n - split, below, above);

        if n % 2 == 1 {
            Some(kth(n / 2))
        } else {
            Some((kth(n / 2 - 1) + kth(n / 2)) / 2.0)
        }
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
        let mad = self.mad()?;
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

/// Returns the `k`-th smallest (from 0) element of the merge of two
/// ascending sequences given by length and accessor. Requires
/// `k < len_a + len_b`.
fn kth_of_two_sorted(k: usize, len_a: usize, len_b: usize, a: impl Fn(usize) -> f64, b: impl Fn(usize) -> f64) -> f64 {
    debug_assert!(k < len_a + len_b);

    // Find how many of the k + 1 smallest come from `a`: the smallest count
    // whose next `a` element is not below the last `b` element taken.
    let mut low = (k + 1).saturating_sub(len_b);
    let mut high = (k + 1).min(len_a);
    while low < high {
        let from_a = (low + high) / 2;
        let from_b = k + 1 - from_a;
        if a(from_a) < b(from_b - 1) {
            low = from_a + 1;
        } else {
            high = from_a;
        }
    }

    let from_a = low;
    let from_b = k + 1 - from_a;
    let last_a = if from_a > 0 { a(from_a - 1) } else { f64::NEG_INFINITY };
    let last_b = if from_b > 0 { b(from_b - 1) } else { f64::NEG_INFINITY };
    last_a.max(last_b)
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

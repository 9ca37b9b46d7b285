//! Sorted samples of one number per window over the most recent windows,
//! kept up to date as windows arrive, so the median and MAD of the last n
//! windows cost O(log n) instead of a pass over n values.
//!
//! Two kinds, which differ in how a leaving window's value is found:
//! [`WindowSample`] computes it again from the history, and
//! [`RecordedSample`] keeps it, 4 bytes per window, for values whose
//! computation reads several windows.

use std::collections::VecDeque;

use super::history::History;
use super::robust::SortedSample;

#[derive(Debug, Clone)]
pub(crate) struct WindowSample {
    sample: SortedSample,
    length: i64,
    /// Windows up to this number have left the sample.
    retired_through: i64,
}

impl WindowSample {
    /// Creates a sample of the last `length` windows.
    pub fn new(length: usize) -> WindowSample {
        WindowSample {
            // `length` values when a window is judged, and one more until
            // the next window retires the oldest.
            sample: SortedSample::new(length + 1),
            length: length as i64,
            retired_through: i64::MIN,
        }
    }

    /// Removes the values of windows more than `length` before window
    /// `number`, so the sample covers `number − length ..= number − 1`.
    /// Call it before `number` enters `history`. `value_of` must return, bit
    /// for bit, what [`WindowSample::insert`] got for that window, and the
    /// history must still contain what it reads.
    pub fn retire_before(&mut self, number: i64, history: &History, value_of: impl Fn(&History, i64) -> Option<f32>) {
        let (Some(oldest), Some(latest)) = (history.oldest(), history.latest()) else {
            return;
        };
        let last_leaving = number - self.length - 1;
        let first_leaving = self.retired_through.saturating_add(1).max(oldest);
        for leaving in first_leaving..=last_leaving.min(latest) {
            if let Some(value) = value_of(history, leaving) {
                let removed = self.sample.remove(value);
                debug_assert!(removed, "value {value} of window {leaving} was not in the sample");
            }
        }
        self.retired_through = self.retired_through.max(last_leaving);
    }

    pub fn insert(&mut self, value: f32) {
        self.sample.insert(value);
    }

    pub fn sample(&self) -> &SortedSample {
        &self.sample
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.sample.heap_bytes()
    }
}

/// A [`WindowSample`] that keeps the value of each window it covers, so a
/// leaving window is removed without reading the history.
#[derive(Debug, Clone)]
pub(crate) struct RecordedSample {
    sample: SortedSample,
    /// Value of window `first + i` at index i, NaN for a window without one.
    recorded: VecDeque<f32>,
    /// Window number of `recorded[0]`.
    first: i64,
    length: usize,
}

impl RecordedSample {
    /// Creates a sample of the last `length` windows.
    pub fn new(length: usize) -> RecordedSample {
        RecordedSample {
            sample: SortedSample::new(length + 1),
            recorded: VecDeque::new(),
            first: 0,
            length,
        }
    }

    /// Removes the values of windows more than `length` before window
    /// `number`, so the sample covers `number − length ..= number − 1`.
    pub fn retire_before(&mut self, number: i64) {
        let last_leaving = number - self.length as i64 - 1;
        while self.first <= last_leaving
            && let Some(value) = self.recorded.pop_front()
        {
            if !value.is_nan() {
                let removed = self.sample.remove(value);
                debug_assert!(removed, "value {value} of window {} was not in the sample", self.first);
            }
            self.first += 1;
        }
    }

    /// Records the value of window `number`, `None` for a window without
    /// one. The window must be later than every recorded window, and at
    /// most `length` windows after the oldest one that
    /// [`RecordedSample::retire_before`] left. A value that is not finite
    /// counts as none.
    pub fn record(&mut self, number: i64, value: Option<f32>) {
        let value = value.filter(|value| value.is_finite());
        if self.recorded.is_empty() {
            self.first = number;
        }
        let next = self.first + self.recorded.len() as i64;
        debug_assert!(number >= next, "window {number} recorded after window {}", next - 1);
        if self.recorded.capacity() == 0 {
            self.recorded.reserve_exact(self.length + 1);
        }
        for _ in next..number {
            self.recorded.push_back(f32::NAN);
        }
        self.recorded.push_back(value.unwrap_or(f32::NAN));
        if let Some(value) = value {
            self.sample.insert(value);
        }
    }

    /// Empties the sample.
    pub fn clear(&mut self) {
        self.sample.clear();
        self.recorded.clear();
    }

    pub fn sample(&self) -> &SortedSample {
        &self.sample
    }

    /// True when the sorted sample contains exactly the recorded values.
    #[cfg(test)]
    pub fn is_consistent(&self) -> bool {
        let mut recorded: Vec<f32> = self.recorded.iter().copied().filter(|value| !value.is_nan()).collect();
        recorded.sort_by(f32::total_cmp);
        recorded == self.sample.as_slice()
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.sample.heap_bytes() + self.recorded.capacity() * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Slot;
    use super::*;

    fn slot(value: f32) -> Slot {
        Slot {
            value,
            cleaned: value,
            expected: f32::NAN,
            lower: f32::NAN,
            upper: f32::NAN,
            outside: false,
        }
    }

    fn value_of(history: &History, number: i64) -> Option<f32> {
        history.get(number).map(|slot| slot.value)
    }

    /// Feeds windows `numbers` with value = number and returns the sorted
    /// sample before each window.
    fn run(length: usize, numbers: &[i64]) -> Vec<Vec<f64>> {
        let mut history = History::new(100);
        let mut sample = WindowSample::new(length);
        let mut seen = Vec::new();
        for &number in numbers {
            sample.retire_before(number, &history, value_of);
            seen.push(sorted_values(&sample));
            history.push(number, slot(number as f32));
            sample.insert(number as f32);
        }
        seen
    }

    fn sorted_values(sample: &WindowSample) -> Vec<f64> {
        sample
            .sample()
            .as_slice()
            .iter()
            .map(|&value| f64::from(value))
            .collect()
    }

    #[test]
    fn keeps_last_windows() {
        let seen = run(3, &[0, 1, 2, 3, 4]);
        assert_eq!(seen[3], vec![0.0, 1.0, 2.0]);
        assert_eq!(seen[4], vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn recorded_sample_keeps_last_windows_across_gaps() {
        let mut sample = RecordedSample::new(3);
        let mut seen = Vec::new();
        for number in [0, 1, 2, 3, 5, 6, 20] {
            sample.retire_before(number);
            seen.push(sample.sample().as_slice().to_vec());
            // Window 2 has no value.
            sample.record(number, (number != 2).then_some(number as f32));
        }

        assert_eq!(seen[3], vec![0.0, 1.0]);
        // Window 5 covers windows 2 to 4, of which only 3 has a value.
        assert_eq!(seen[4], vec![3.0]);
        assert_eq!(seen[5], vec![3.0, 5.0]);
        assert_eq!(seen[6], Vec::<f32>::new());
        assert!(sample.heap_bytes() > 0);
        assert!(sample.is_consistent());
    }

    #[test]
    fn recorded_sample_skips_values_not_finite() {
        let mut sample = RecordedSample::new(2);
        for (number, value) in [(0, 1.0), (1, f32::NAN), (2, f32::INFINITY), (3, 4.0)] {
            sample.retire_before(number);
            sample.record(number, Some(value));
        }
        assert_eq!(sample.sample().as_slice(), &[4.0]);
        assert!(sample.is_consistent());
    }

    #[test]
    fn gap_retires_by_window_number() {
        let seen = run(3, &[0, 1, 2, 4, 9]);
        // Window 4 covers windows 1 to 3; window 9 covers 6 to 8, all missing.
        assert_eq!(seen[3], vec![1.0, 2.0]);
        assert_eq!(seen[4], Vec::<f64>::new());
    }
}

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

    /// Inserts `value`, that of window `number`, which `history` now
    /// contains, and removes the window that leaves before window `number + 1`
    /// is judged: [`WindowSample::insert`] then
    /// [`WindowSample::retire_before`] of `number + 1`. When one window
    /// leaves as one enters, a single shift of the sorted values does both.
    pub fn advance(
        &mut self,
        number: i64,
        value: Option<f32>,
        history: &History,
        value_of: impl Fn(&History, i64) -> Option<f32>,
    ) {
        let leaving = number - self.length;
        let only_one_leaves = leaving < number
            && self.retired_through == leaving - 1
            && history.oldest().is_some_and(|oldest| oldest <= leaving);
        if only_one_leaves
            && let Some(value) = value
            && let Some(old) = value_of(history, leaving)
        {
            let replaced = self.sample.replace(old, value);
            debug_assert!(replaced, "value {old} of window {leaving} was not in the sample");
            self.retired_through = leaving;
            return;
        }

        if let Some(value) = value {
            self.sample.insert(value);
        }
        self.retire_before(number + 1, history, value_of);
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

    /// Records the value of window `number` as [`RecordedSample::record`]
    /// does, then removes the window that leaves before window `number + 1`
    /// as [`RecordedSample::retire_before`] does. When one window leaves as
    /// one enters, a single shift of the sorted values does both.
    pub fn advance(&mut self, number: i64, value: Option<f32>) {
        let value = value.filter(|value| value.is_finite());
        let next = self.first + self.recorded.len() as i64;
        let only_one_leaves = !self.recorded.is_empty() && number == next && self.first == number - self.length as i64;
        if !only_one_leaves {
            self.record(number, value);
            self.retire_before(number + 1);
            return;
        }

        let old = self.recorded.pop_front().filter(|old| !old.is_nan());
        self.first += 1;
        self.recorded.push_back(value.unwrap_or(f32::NAN));
        match (old, value) {
            (Some(old), Some(value)) => {
                let replaced = self.sample.replace(old, value);
                debug_assert!(
                    replaced,
                    "value {old} of window {} was not in the sample",
                    self.first - 1
                );
            }
            (Some(old), None) => {
                let removed = self.sample.remove(old);
                debug_assert!(
                    removed,
                    "value {old} of window {} was not in the sample",
                    self.first - 1
                );
            }
            (None, Some(value)) => self.sample.insert(value),
            (None, None) => {}
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

    /// Windows with gaps and windows without a value, each as
    /// (number, value).
    fn ragged_windows() -> Vec<(i64, Option<f32>)> {
        (0..200)
            .filter(|number| number % 17 != 5 && !(60..75).contains(number))
            .map(|number| (number, (number % 11 != 3).then_some((number * 7 % 13) as f32)))
            .collect()
    }

    #[test]
    fn advance_matches_insert_then_retire() {
        let mut history = History::new(100);
        let mut advanced = WindowSample::new(5);
        let mut stepwise = WindowSample::new(5);
        let value_of = |history: &History, number: i64| {
            history
                .get(number)
                .and_then(|slot| slot.value.is_finite().then_some(slot.value))
        };
        for (number, value) in ragged_windows() {
            advanced.retire_before(number, &history, value_of);
            stepwise.retire_before(number, &history, value_of);
            assert_eq!(
                sorted_values(&advanced),
                sorted_values(&stepwise),
                "before window {number}"
            );

            history.push(number, slot(value.unwrap_or(f32::NAN)));
            advanced.advance(number, value, &history, value_of);
            if let Some(value) = value {
                stepwise.insert(value);
            }
            stepwise.retire_before(number + 1, &history, value_of);
            assert_eq!(
                sorted_values(&advanced),
                sorted_values(&stepwise),
                "after window {number}"
            );
        }
    }

    #[test]
    fn recorded_advance_matches_record_then_retire() {
        let mut advanced = RecordedSample::new(5);
        let mut stepwise = RecordedSample::new(5);
        for (number, value) in ragged_windows() {
            advanced.retire_before(number);
            stepwise.retire_before(number);
            assert_eq!(
                advanced.sample().as_slice(),
                stepwise.sample().as_slice(),
                "before window {number}"
            );

            advanced.advance(number, value);
            stepwise.record(number, value);
            stepwise.retire_before(number + 1);
            assert_eq!(
                advanced.sample().as_slice(),
                stepwise.sample().as_slice(),
                "after window {number}"
            );
            assert!(advanced.is_consistent());
        }
    }

    #[test]
    fn gap_retires_by_window_number() {
        let seen = run(3, &[0, 1, 2, 4, 9]);
        // Window 4 covers windows 1 to 3; window 9 covers 6 to 8, all missing.
        assert_eq!(seen[3], vec![1.0, 2.0]);
        assert_eq!(seen[4], Vec::<f64>::new());
    }
}

//! Bounded history of one series: the last `capacity` windows, addressed by
//! window number (window start time divided by the window length), so a
//! lookup one day or one week back finds the right window across gaps.
//!
//! Values are stored as `f32` to halve the memory per window: a stored value
//! keeps about 7 significant digits (integers exactly up to 2^24 ≈ 16.7 M),
//! which is far below the noise the band is built from. Judgements are made
//! in `f64` before storing.

use std::collections::VecDeque;

/// One stored window. A window missing from the series (a gap) has a NaN
/// `value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slot {
    pub value: f32,
    /// The value clamped near `expected`: what later windows use as their
    /// seasonal and rolling reference.
    pub cleaned: f32,
    /// NaN when the window had no expected value.
    pub expected: f32,
    /// Band edges, NaN while the series was learning.
    pub lower: f32,
    pub upper: f32,
    pub outside: bool,
}

impl Slot {
    const MISSING: Slot = Slot {
        value: f32::NAN,
        cleaned: f32::NAN,
        expected: f32::NAN,
        lower: f32::NAN,
        upper: f32::NAN,
        outside: false,
    };

    pub fn is_present(&self) -> bool {
        !self.value.is_nan()
    }

    /// Residual (value − expected), divided by |expected| when `relative`,
    /// as entered into the scale sample. It is computed from the stored
    /// `f32`s, so removing it later finds the same bits.
    pub fn residual(&self, relative: bool) -> Option<f32> {
        let mut residual = self.value - self.expected;
        if relative {
            residual /= self.expected.abs();
        }
        residual.is_finite().then_some(residual)
    }
}

/// The most recent windows of a series, oldest first, gaps included.
#[derive(Debug, Clone)]
pub(crate) struct History {
    slots: VecDeque<Slot>,
    /// Window number of `slots[0]`.
    first: i64,
    capacity: usize,
}

impl History {
    /// Creates an empty history that keeps at most `capacity` windows
    /// (at least 1). Memory grows with the stored windows up to that bound.
    pub fn new(capacity: usize) -> History {
        History {
            slots: VecDeque::new(),
            first: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of the newest stored window, gap or not.
    pub fn latest(&self) -> Option<i64> {
        (!self.slots.is_empty()).then(|| self.first + self.slots.len() as i64 - 1)
    }

    /// Number of the oldest stored window.
    pub fn oldest(&self) -> Option<i64> {
        (!self.slots.is_empty()).then_some(self.first)
    }

    /// Returns window `number` if it is kept and was not a gap.
    pub fn get(&self, number: i64) -> Option<&Slot> {
        let offset = number.checked_sub(self.first)?;
        let slot = self.slots.get(usize::try_from(offset).ok()?)?;
        slot.is_present().then_some(slot)
    }

    /// Returns window `number` for a change if it is kept and was not a gap.
    pub fn get_mut(&mut self, number: i64) -> Option<&mut Slot> {
        let offset = number.checked_sub(self.first)?;
        let slot = self.slots.get_mut(usize::try_from(offset).ok()?)?;
        slot.is_present().then_some(slot)
    }

    /// Appends window `number`, which must be after [`History::latest`]. The
    /// windows in between are stored as gaps, and the oldest windows beyond
    /// the capacity are dropped.
    pub fn push(&mut self, number: i64, slot: Slot) {
        match self.latest() {
            Some(latest) => {
                assert!(number > latest, "window {number} pushed after window {latest}");
                let gap = number - latest - 1;
                if gap >= self.capacity as i64 {
                    // Nothing kept would survive the gap.
                    self.slots.clear();
                    self.first = number;
                } else {
                    for _ in 0..gap {
                        self.append(Slot::MISSING);
                    }
                }
            }
            None => self.first = number,
        }
        self.append(slot);
    }

    fn append(&mut self, slot: Slot) {
        if self.slots.len() == self.capacity {
            self.slots.pop_front();
            self.first += 1;
        } else if self.slots.len() == self.slots.capacity() {
            // Grow by doubling, but never past the capacity.
            let extra = self.slots.len().max(8).min(self.capacity - self.slots.len());
            self.slots.reserve_exact(extra);
        }
        self.slots.push_back(slot);
    }

    /// Stored windows that are not gaps, oldest first, with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Slot)> + '_ {
        (self.first..)
            .zip(self.slots.iter())
            .filter(|(_, slot)| slot.is_present())
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
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

    fn values(history: &History) -> Vec<(i64, f32)> {
        history.iter().map(|(number, slot)| (number, slot.value)).collect()
    }

    #[test]
    fn lookup_by_number_across_gap() {
        let mut history = History::new(10);
        history.push(100, slot(1.0));
        history.push(101, slot(2.0));
        history.push(104, slot(5.0));

        assert_eq!(history.get(100).map(|s| s.value), Some(1.0));
        assert_eq!(history.get(101).map(|s| s.value), Some(2.0));
        assert!(history.get(102).is_none(), "gap window must be missing");
        assert!(history.get(103).is_none(), "gap window must be missing");
        assert_eq!(history.get(104).map(|s| s.value), Some(5.0));
        assert!(history.get(99).is_none());
        assert!(history.get(105).is_none());
        assert_eq!(history.latest(), Some(104));
        assert_eq!(values(&history), vec![(100, 1.0), (101, 2.0), (104, 5.0)]);
    }

    #[test]
    fn capacity_drops_oldest() {
        let mut history = History::new(3);
        for number in 0..5 {
            history.push(number, slot(number as f32));
        }
        assert_eq!(values(&history), vec![(2, 2.0), (3, 3.0), (4, 4.0)]);
        assert_eq!(history.oldest(), Some(2));
        assert!(history.get(1).is_none());
    }

    #[test]
    fn gap_counts_against_capacity() {
        let mut history = History::new(4);
        history.push(0, slot(0.0));
        history.push(1, slot(1.0));
        history.push(4, slot(4.0));
        // Windows 1 to 4 fit, so window 0 is dropped.
        assert_eq!(values(&history), vec![(1, 1.0), (4, 4.0)]);
    }

    #[test]
    fn gap_longer_than_capacity_clears() {
        let mut history = History::new(4);
        history.push(0, slot(0.0));
        history.push(1, slot(1.0));
        history.push(50, slot(50.0));
        assert_eq!(values(&history), vec![(50, 50.0)]);
        assert_eq!(history.oldest(), Some(50));
    }

    #[test]
    fn memory_stays_within_capacity() {
        let mut history = History::new(100);
        for number in 0..1_000 {
            history.push(number, slot(1.0));
        }
        assert!(
            history.heap_bytes() <= 100 * size_of::<Slot>(),
            "{} bytes",
            history.heap_bytes()
        );
    }

    #[test]
    fn negative_window_numbers() {
        let mut history = History::new(5);
        history.push(-3, slot(1.0));
        history.push(-1, slot(2.0));
        assert_eq!(history.get(-3).map(|s| s.value), Some(1.0));
        assert!(history.get(-2).is_none());
        assert_eq!(history.get(-1).map(|s| s.value), Some(2.0));
    }
}

//! Bounded history of one series, addressed by window number (window start
//! time divided by the window length), so a lookup one day or one week back
//! finds the right window across gaps.
//!
//! Two depths, because the seasonal references reach much further back
//! than anything else:
//! - every kept window (up to `capacity`) keeps its cleaned value, whether
//!   it was outside its band, on which side and whether it is spent: 4
//!   bytes and 2 bits, what seasonal references read a day or a week back;
//! - the newest `detail_capacity` windows also keep the raw value, the
//!   expected value and the band edges: 16 bytes more, what residuals,
//!   re-baselines, the raw-value rules and charts read.
//!
//! Two optional extensions reach further back than the cleaned values. The
//! daily-job rule reads the outside bits of more windows (`with_flags`), 3
//! days back. An hourly weekly reference reads the mean cleaned value per
//! hour (`with_blocks`), a week back.
//!
//! Values are stored as `f32` to halve the memory per window: a stored value
//! keeps about 7 significant digits (integers exactly up to 2^24 ≈ 16.7 M),
//! which is far below the noise the band is built from. Judgements are made
//! in `f64` before storing.

use std::collections::VecDeque;

use super::block_means::BlockMeans;
use super::params::ResidualScale;

/// One window with every stored field, as pushed and as returned for a
/// window within the detail depth. A window missing from the series (a gap)
/// has a NaN `value`.
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
    pub fn is_present(&self) -> bool {
        !self.value.is_nan()
    }

    /// Residual (value − expected) divided by the divisor of `scale`, as
    /// entered into the scale sample. It is computed from the stored `f32`s,
    /// so removing it later finds the same bits.
    pub fn residual(&self, scale: ResidualScale) -> Option<f32> {
        let residual = (self.value - self.expected) / scale.divisor(self.expected);
        residual.is_finite().then_some(residual)
    }
}

/// The seasonal reference, which every kept window stores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reference {
    pub cleaned: f32,
    /// True when the window was outside its band, spent or not.
    pub outside: bool,
    /// True when the window was outside above its band. False once spent.
    pub above: bool,
    /// True when the window was outside and a learnt daily shape has since
    /// rewritten it, so it is no evidence for another one.
    pub spent: bool,
}

/// A stored window as [`History::iter`] returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StoredWindow {
    /// Within the detail depth: every field.
    Full(Slot),
    /// Older: the reference only.
    ReferenceOnly(Reference),
}

/// The fields only the newest windows keep.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Detail {
    value: f32,
    expected: f32,
    lower: f32,
    upper: f32,
}

impl Detail {
    const MISSING: Detail = Detail {
        value: f32::NAN,
        expected: f32::NAN,
        lower: f32::NAN,
        upper: f32::NAN,
    };
}

/// The most recent windows of a series, oldest first, gaps included.
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// Cleaned value of every kept window, NaN for a gap and only for a gap.
    cleaned: VecDeque<f32>,
    /// One bit per window of the newest `flag_capacity`, set when it was
    /// outside its band, in a ring: window `n` has bit `n` mod
    /// `flag_capacity`. Allocated with the first window.
    outside: Vec<u64>,
    /// One bit per window in the same ring as `outside`. With the
    /// `outside` bit set, the window was outside above its band. Without
    /// it, the window was outside and is spent (see [`Reference::spent`]),
    /// so the two bits give inside, below, above and spent.
    above: Vec<u64>,
    /// Windows whose bits are kept, at least `capacity`: the flags can
    /// reach further back than the cleaned values, for rules that only ask
    /// whether a window was outside.
    flag_capacity: usize,
    /// First window after which the bits are valid: the first window
    /// pushed, or the first after a gap longer than `flag_capacity`.
    flags_from: i64,
    /// The newest `detail_capacity` windows (fewer at the start), ending
    /// with the latest window.
    details: VecDeque<Detail>,
    /// Window number of `cleaned[0]`.
    first: i64,
    capacity: usize,
    detail_capacity: usize,
    /// Means of the cleaned values per block of windows, for a weekly
    /// reference by the hour. They reach further back than `cleaned`.
    /// Boxed, so a history without them stays small.
    blocks: Option<Box<BlockMeans>>,
}

impl History {
    /// Creates an empty history that keeps every field of at most
    /// `capacity` windows (at least 1).
    #[cfg(test)]
    pub fn new(capacity: usize) -> History {
        History::with_detail(capacity, capacity)
    }

    /// Creates an empty history that keeps the references of at most
    /// `capacity` windows and every field of the newest `detail_capacity`
    /// of them (at least 1, at most `capacity`). Memory grows with the
    /// stored windows up to those bounds.
    pub fn with_detail(capacity: usize, detail_capacity: usize) -> History {
        let capacity = capacity.max(1);
        History {
            cleaned: VecDeque::new(),
            outside: Vec::new(),
            above: Vec::new(),
            flag_capacity: capacity,
            flags_from: 0,
            details: VecDeque::new(),
            first: 0,
            capacity,
            detail_capacity: detail_capacity.clamp(1, capacity),
            blocks: None,
        }
    }

    /// Also keeps the mean cleaned value of each block of
    /// `windows_per_block` windows, for the newest `blocks` blocks.
    pub fn with_blocks(mut self, windows_per_block: i64, blocks: usize) -> History {
        self.blocks = Some(Box::new(BlockMeans::new(windows_per_block, blocks)));
        self
    }

    /// Also keeps whether each of the newest `windows` windows was outside
    /// its band, when that is more than the windows kept.
    pub fn with_flags(mut self, windows: usize) -> History {
        self.flag_capacity = windows.max(self.capacity);
        self
    }

    /// Mean cleaned value of the block that contains window `number`, when
    /// the history keeps blocks and that block has a window.
    pub fn block_mean(&self, number: i64) -> Option<f32> {
        self.blocks.as_ref()?.mean(number)
    }

    /// True when more than half the windows of the block that contains
    /// window `number` were outside their band and are not spent.
    pub fn block_mostly_outside(&self, number: i64) -> bool {
        self.blocks.as_ref().is_some_and(|blocks| blocks.mostly_outside(number))
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Windows covered by the block means kept, 0 without them.
    pub fn block_reach(&self) -> usize {
        self.blocks.as_ref().map_or(0, |blocks| blocks.window_reach())
    }

    /// Number of the newest stored window, gap or not.
    pub fn latest(&self) -> Option<i64> {
        (!self.cleaned.is_empty()).then(|| self.first + self.cleaned.len() as i64 - 1)
    }

    /// Number of the oldest stored window.
    pub fn oldest(&self) -> Option<i64> {
        (!self.cleaned.is_empty()).then_some(self.first)
    }

    /// Returns every field of window `number` if it is within the detail
    /// depth and was not a gap.
    pub fn get(&self, number: i64) -> Option<Slot> {
        let index = self.index(number)?;
        let detail_index = index.checked_sub(self.cleaned.len() - self.details.len())?;
        let detail = self.details[detail_index];
        let cleaned = self.cleaned[index];
        (!cleaned.is_nan()).then(|| Slot {
            value: detail.value,
            cleaned,
            expected: detail.expected,
            lower: detail.lower,
            upper: detail.upper,
            outside: self.is_outside(number),
        })
    }

    /// Returns the reference of window `number` if it is kept and was not a gap.
    pub fn reference(&self, number: i64) -> Option<Reference> {
        let index = self.index(number)?;
        let cleaned = self.cleaned[index];
        (!cleaned.is_nan()).then(|| Reference {
            cleaned,
            outside: self.is_outside(number),
            above: self.is_outside_bit(number) && self.is_above_bit(number),
            spent: !self.is_outside_bit(number) && self.is_above_bit(number),
        })
    }

    /// Counts the kept windows after `after` and before `before` that were
    /// outside their band, and those that were not gaps.
    pub fn outside_between(&self, after: i64, before: i64) -> (usize, usize) {
        let present =
            (after + 1..before).filter(|&number| self.index(number).is_some_and(|index| !self.cleaned[index].is_nan()));
        present.fold((0, 0), |(outside, present), number| {
            (outside + usize::from(self.is_outside(number)), present + 1)
        })
    }

    /// Returns the mean cleaned value of the windows from `centre − reach`
    /// to `centre + reach` that are kept, not gaps, before window `before`
    /// and within `limit(centre's value)` of the centre's value, or `None`
    /// when `centre` itself is missing. Summed in `f64`, so values near
    /// `f32::MAX` do not overflow.
    pub fn reference_mean(&self, centre: i64, reach: i64, before: i64, limit: impl Fn(f32) -> f32) -> Option<f32> {
        let centre_index = self.index(centre)?;
        let centre_value = self.cleaned[centre_index];
        if centre_value.is_nan() {
            return None;
        }
        if reach == 0 {
            return Some(centre_value);
        }

        let limit = limit(centre_value);
        let (mut sum, mut count) = (f64::from(centre_value), 1.0);
        let older = (centre - reach).max(self.first)..centre;
        let newer = centre + 1
            ..(centre + reach + 1)
                .min(before)
                .min(self.first + self.cleaned.len() as i64);
        for number in older.chain(newer) {
            // A gap's NaN fails the comparison too.
            let cleaned = self.cleaned[(number - self.first) as usize];
            if (cleaned - centre_value).abs() <= limit {
                sum += f64::from(cleaned);
                count += 1.0;
            }
        }
        Some((sum / count) as f32)
    }

    /// Replaces the cleaned value of window `number` if it is kept and was
    /// not a gap. A NaN `cleaned` is ignored, because NaN marks a gap.
    pub fn set_cleaned(&mut self, number: i64, cleaned: f32) {
        if let Some(index) = self.index(number)
            && !self.cleaned[index].is_nan()
            && !cleaned.is_nan()
        {
            if let Some(blocks) = &mut self.blocks {
                blocks.replace(number, self.cleaned[index], cleaned);
            }
            self.cleaned[index] = cleaned;
        }
    }

    /// Moves the mean of the block that contains window `number`, whose
    /// value is no longer kept, as if `change` had changed that value. The
    /// block's mean replaces the unknown value. Does nothing while the
    /// value is kept or the block is not.
    pub fn change_block_share(&mut self, number: i64, change: impl Fn(f32) -> f32) {
        if self.index(number).is_some() {
            return;
        }
        if let Some(blocks) = &mut self.blocks
            && let Some(mean) = blocks.mean(number)
        {
            blocks.replace(number, mean, change(mean));
        }
    }

    /// Replaces the block means older than every kept window by
    /// `change(mean)`, so a re-baseline reaches the hours whose windows
    /// are gone. In the block of the oldest kept window, only the share of
    /// the windows that are gone moves.
    pub fn change_older_blocks(&mut self, change: impl Fn(f32) -> f32) {
        let Some(blocks) = &self.blocks else {
            return;
        };
        let last = blocks.last_window_of_block(self.first);
        let kept_in_block = (self.first..=last)
            .filter_map(|number| self.index(number))
            .filter(|&index| !self.cleaned[index].is_nan())
            .count();

        if let Some(blocks) = &mut self.blocks {
            blocks.change_before(self.first, &change);
            blocks.change_older_share(self.first, kept_in_block, &change);
        }
    }

    /// Marks window `number`, if its bits are kept and it was outside, as
    /// spent. It stays outside for charts.
    pub fn mark_spent(&mut self, number: i64) {
        let Some((word, mask)) = self.outside_bit(number) else {
            return;
        };
        // Spent windows have the outside bit clear.
        if self.outside[word] & mask != 0 {
            if let Some(blocks) = &mut self.blocks {
                blocks.spend(number);
            }
            self.outside[word] &= !mask;
            self.above[word] |= mask;
        }
    }

    /// Returns whether window `number` was outside above its band, if its
    /// bits are kept and it was outside and is not spent. Unlike
    /// [`History::reference`] it reaches as far back as the bits.
    pub fn unspent_outside(&self, number: i64) -> Option<bool> {
        self.is_outside_bit(number).then(|| self.is_above_bit(number))
    }

    /// Position of window `number`'s bit in `outside`, word and mask, if
    /// its bits are kept.
    fn outside_bit(&self, number: i64) -> Option<(usize, u64)> {
        let latest = self.latest()?;
        let in_ring = number >= self.flags_from && number <= latest && latest - number < self.flag_capacity as i64;
        if !in_ring || self.outside.is_empty() {
            return None;
        }
        let position = number.rem_euclid(self.flag_capacity as i64) as usize;
        Some((position / 64, 1 << (position % 64)))
    }

    /// True when the window was outside its band, spent or not.
    fn is_outside(&self, number: i64) -> bool {
        self.is_outside_bit(number) || self.is_above_bit(number)
    }

    fn is_outside_bit(&self, number: i64) -> bool {
        Self::bit(&self.outside, self.outside_bit(number))
    }

    fn is_above_bit(&self, number: i64) -> bool {
        Self::bit(&self.above, self.outside_bit(number))
    }

    fn bit(bits: &[u64], position: Option<(usize, u64)>) -> bool {
        position.is_some_and(|(word, mask)| bits[word] & mask != 0)
    }

    fn index(&self, number: i64) -> Option<usize> {
        let offset = usize::try_from(number.checked_sub(self.first)?).ok()?;
        (offset < self.cleaned.len()).then_some(offset)
    }

    /// Appends window `number`, which must be after [`History::latest`]. The
    /// windows in between are stored as gaps, and the oldest windows beyond
    /// the capacities are dropped.
    pub fn push(&mut self, number: i64, slot: Slot) {
        match self.latest() {
            Some(latest) => {
                assert!(number > latest, "window {number} pushed after window {latest}");
                let gap = number - latest - 1;
                if gap >= self.flag_capacity as i64 {
                    // No bit kept would survive the gap.
                    self.outside.fill(0);
                    self.above.fill(0);
                    self.flags_from = number;
                }
                if gap >= self.capacity as i64 {
                    // No value kept would survive the gap.
                    self.cleaned.clear();
                    self.details.clear();
                    self.first = number;
                }
                let first_missing = if gap >= self.capacity as i64 {
                    number
                } else {
                    latest + 1
                };
                for missing in first_missing..number {
                    self.append(missing, f32::NAN, false, false, Detail::MISSING);
                }
                // Gap windows older than the values kept still clear their bits.
                for missing in (latest + 1).max(self.flags_from)..first_missing {
                    self.set_bits(missing, false, false);
                }
            }
            None => {
                self.first = number;
                self.flags_from = number;
            }
        }

        let detail = Detail {
            value: slot.value,
            expected: slot.expected,
            lower: slot.lower,
            upper: slot.upper,
        };
        // NaN marks a gap, so a present window stores a number: its value
        // if it came without a cleaned one.
        let cleaned = match (slot.is_present(), slot.cleaned.is_nan()) {
            (false, _) => f32::NAN,
            (true, false) => slot.cleaned,
            (true, true) => slot.value,
        };
        let outside = slot.is_present() && slot.outside;
        if let Some(blocks) = &mut self.blocks
            && !cleaned.is_nan()
        {
            blocks.add(number, cleaned, outside);
        }
        self.append(number, cleaned, outside, outside && slot.value > slot.expected, detail);
    }

    /// Appends window `number`, the one after the latest (or the first).
    fn append(&mut self, number: i64, cleaned: f32, outside: bool, above: bool, detail: Detail) {
        if self.cleaned.is_empty() {
            self.first = number;
        }
        if self.cleaned.len() == self.capacity {
            self.cleaned.pop_front();
            self.first += 1;
        }
        if self.details.len() == self.detail_capacity {
            self.details.pop_front();
        }
        reserve_up_to(&mut self.cleaned, self.capacity);
        reserve_up_to(&mut self.details, self.detail_capacity);
        self.cleaned.push_back(cleaned);
        self.details.push_back(detail);
        self.set_bits(number, outside, above);
    }

    /// Sets the bits of window `number`, which must be the latest or after
    /// the latest window whose bits are kept.
    fn set_bits(&mut self, number: i64, outside: bool, above: bool) {
        if self.outside.is_empty() {
            self.outside = vec![0; self.flag_capacity.div_ceil(64)];
            self.above = vec![0; self.flag_capacity.div_ceil(64)];
        }
        let position = number.rem_euclid(self.flag_capacity as i64) as usize;
        let (word, mask) = (position / 64, 1u64 << (position % 64));
        for (bits, set) in [(&mut self.outside, outside), (&mut self.above, above)] {
            if set {
                bits[word] |= mask;
            } else {
                bits[word] &= !mask;
            }
        }
    }

    /// Stored windows that are not gaps, oldest first, with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (i64, StoredWindow)> + '_ {
        (self.first..)
            .take(self.cleaned.len())
            .filter_map(|number| match self.get(number) {
                Some(slot) => Some((number, StoredWindow::Full(slot))),
                None => self
                    .reference(number)
                    .map(|reference| (number, StoredWindow::ReferenceOnly(reference))),
            })
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.cleaned.capacity() * size_of::<f32>()
            + (self.outside.capacity() + self.above.capacity()) * size_of::<u64>()
            + self.details.capacity() * size_of::<Detail>()
            + self
                .blocks
                .as_ref()
                .map_or(0, |blocks| size_of::<BlockMeans>() + blocks.heap_bytes())
    }
}

/// Grows a full `queue` by doubling, never past `limit` elements.
fn reserve_up_to<T>(queue: &mut VecDeque<T>, limit: usize) {
    if queue.len() == queue.capacity() && queue.len() < limit {
        let extra = queue.len().max(8).min(limit - queue.len());
        queue.reserve_exact(extra);
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
        history
            .iter()
            .map(|(number, kept)| match kept {
                StoredWindow::Full(slot) => (number, slot.value),
                StoredWindow::ReferenceOnly(_) => panic!("window {number} lost its detail"),
            })
            .collect()
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
        assert!(history.heap_bytes() <= 100 * (5 + 16), "{} bytes", history.heap_bytes());
    }

    #[test]
    fn detail_kept_for_newest_windows() {
        let mut history = History::with_detail(10, 3);
        for number in 0..6 {
            history.push(
                number,
                Slot {
                    outside: number == 1,
                    ..slot(number as f32)
                },
            );
        }

        assert!(history.get(2).is_none(), "window 2 is older than the detail depth");
        assert_eq!(history.get(3).map(|s| s.value), Some(3.0));
        assert_eq!(history.get(5).map(|s| s.value), Some(5.0));
        assert_eq!(history.reference(0).map(|r| r.cleaned), Some(0.0));
        assert_eq!(history.reference(1).map(|r| r.outside), Some(true));
        assert_eq!(history.reference(2).map(|r| r.outside), Some(false));
        let kinds: Vec<bool> = history
            .iter()
            .map(|(_, kept)| matches!(kept, StoredWindow::Full(_)))
            .collect();
        assert_eq!(kinds, [false, false, false, true, true, true]);
    }

    #[test]
    fn gap_within_detail_depth() {
        let mut history = History::with_detail(10, 3);
        history.push(0, slot(0.0));
        history.push(2, slot(2.0));

        assert!(history.get(1).is_none());
        assert!(history.reference(1).is_none());
        assert_eq!(history.get(0).map(|s| s.value), Some(0.0));
        assert_eq!(history.get(2).map(|s| s.value), Some(2.0));
        // One more window pushes window 0 out of the detail depth only.
        history.push(3, slot(3.0));
        assert!(history.get(0).is_none());
        assert_eq!(history.reference(0).map(|r| r.cleaned), Some(0.0));
    }

    #[test]
    fn set_cleaned_skips_gaps() {
        let mut history = History::with_detail(10, 2);
        history.push(0, slot(1.0));
        history.push(2, slot(3.0));

        history.set_cleaned(0, 10.0);
        history.set_cleaned(1, 20.0);
        history.set_cleaned(2, 30.0);

        assert_eq!(history.reference(0).map(|r| r.cleaned), Some(10.0));
        assert!(history.reference(1).is_none());
        assert_eq!(history.get(2).map(|s| (s.value, s.cleaned)), Some((3.0, 30.0)));
    }

    #[test]
    fn detail_memory_stays_within_depth() {
        let mut history = History::with_detail(1_000, 100);
        for number in 0..5_000 {
            history.push(number, slot(1.0));
        }
        assert!(
            history.heap_bytes() <= 1_000 * 5 + 100 * 16,
            "{} bytes",
            history.heap_bytes()
        );
    }

    #[test]
    fn reference_mean_skips_gaps_and_later_windows() {
        let mut history = History::with_detail(10, 2);
        for (number, value) in [(0, 1.0), (1, 2.0), (3, 6.0), (4, 10.0)] {
            history.push(number, slot(value));
        }

        assert_eq!(history.reference_mean(1, 0, 10, no_limit), Some(2.0));
        // Window 2 is a gap and window -1 was never stored.
        assert_eq!(history.reference_mean(1, 1, 10, no_limit), Some(1.5));
        assert_eq!(history.reference_mean(3, 1, 10, no_limit), Some(8.0));
        // Window 4 is not before window 4.
        assert_eq!(history.reference_mean(3, 1, 4, no_limit), Some(6.0));
        assert_eq!(history.reference_mean(2, 1, 10, no_limit), None, "gap at the centre");
        assert_eq!(history.reference_mean(9, 1, 10, no_limit), None, "centre not stored");
    }

    fn no_limit(_: f32) -> f32 {
        f32::INFINITY
    }

    #[test]
    fn reference_mean_leaves_out_distant_neighbours() {
        let mut history = History::new(10);
        for (number, value) in [(0, 100.0), (1, 104.0), (2, 400.0), (3, 98.0)] {
            history.push(number, slot(value));
        }

        // Window 2 is 296 from window 1, beyond the limit of 10 % of 104.
        let limit = |centre: f32| centre * 0.1;
        assert_eq!(history.reference_mean(1, 1, 10, limit), Some(102.0));
        // Both neighbours of window 2 are far from it, so it is its own reference.
        assert_eq!(history.reference_mean(2, 1, 10, limit), Some(400.0));
    }

    #[test]
    fn reference_mean_of_huge_values_is_finite() {
        let mut history = History::new(10);
        for number in 0..3 {
            history.push(number, slot(f32::MAX));
        }
        assert_eq!(history.reference_mean(1, 1, 10, no_limit), Some(f32::MAX));
    }

    #[test]
    fn outside_flags_survive_ring_wrap() {
        // 70 bits span two words, and 500 windows wrap the ring 7 times.
        // Even windows lie above their expected value, odd ones below.
        let mut history = History::new(70);
        let outside = |number: i64| number % 3 == 0 || number % 7 == 0;
        let pushed: Vec<i64> = (0..500).filter(|number| number % 11 != 5).collect();
        for &number in &pushed {
            let side = if number % 2 == 0 { 1.0 } else { -1.0 };
            history.push(
                number,
                Slot {
                    outside: outside(number),
                    expected: number as f32 - side,
                    ..slot(number as f32)
                },
            );
        }

        for number in 430..500 {
            let reference = history.reference(number);
            if number % 11 == 5 {
                assert_eq!(reference, None, "window {number} is a gap");
            } else {
                assert_eq!(reference.map(|r| r.outside), Some(outside(number)), "window {number}");
                let above = outside(number) && number % 2 == 0;
                assert_eq!(reference.map(|r| r.above), Some(above), "window {number}");
                assert_eq!(reference.map(|r| r.spent), Some(false), "window {number}");
            }
        }
        let outside_count = (450..460).filter(|&number| number % 11 != 5 && outside(number)).count();
        let present_count = (450..460).filter(|number| number % 11 != 5).count();
        assert_eq!(history.outside_between(449, 460), (outside_count, present_count));

        // A spent window stays outside and loses its side; an inside one
        // cannot be spent.
        for number in 440..460 {
            history.mark_spent(number);
        }
        for number in (440..460).filter(|number| number % 11 != 5) {
            let reference = history.reference(number).unwrap();
            assert_eq!(reference.outside, outside(number), "window {number}");
            assert_eq!(reference.spent, outside(number), "window {number}");
            assert!(!reference.above, "window {number}");
            assert_eq!(history.get(number).map(|slot| slot.outside), Some(outside(number)));
        }
        assert_eq!(history.outside_between(449, 460), (outside_count, present_count));

        // The windows that take over the spent windows' bits start unspent.
        for number in 500..580 {
            history.push(number, slot(number as f32));
        }
        for number in 510..580 {
            assert_eq!(
                history.reference(number).map(|r| r.spent),
                Some(false),
                "window {number}"
            );
        }

        // A gap longer than the history clears it; the bits of the windows
        // after it are their own.
        history.push(1_000, slot(1.0));
        history.push(
            1_001,
            Slot {
                outside: true,
                ..slot(2.0)
            },
        );
        assert_eq!(history.reference(1_000).map(|r| r.outside), Some(false));
        assert_eq!(history.reference(1_001).map(|r| r.outside), Some(true));
    }

    #[test]
    fn outside_bits_reach_past_the_values() {
        let mut history = History::with_detail(4, 4).with_flags(10);
        let outside = |value: f32, expected: f32| Slot {
            outside: true,
            expected,
            ..slot(value)
        };
        history.push(0, outside(5.0, 1.0));
        history.push(1, outside(0.0, 1.0));
        for number in 2..8 {
            history.push(number, slot(1.0));
        }

        assert!(history.reference(0).is_none(), "the value is gone");
        assert_eq!(history.unspent_outside(0), Some(true), "above");
        assert_eq!(history.unspent_outside(1), Some(false), "below");
        assert_eq!(history.unspent_outside(2), None, "inside");
        history.mark_spent(0);
        assert_eq!(history.unspent_outside(0), None, "spent");

        // Ten windows later the bits of window 1 are overwritten. A gap
        // longer than the bits clears them all.
        history.push(11, slot(1.0));
        assert_eq!(history.unspent_outside(1), None);
        history.push(12, outside(5.0, 1.0));
        history.push(30, slot(1.0));
        assert_eq!(history.unspent_outside(12), None, "beyond the flags after the gap");
        history.push(31, outside(5.0, 1.0));
        history.push(36, slot(1.0));
        assert_eq!(
            history.unspent_outside(31),
            Some(true),
            "kept across a gap shorter than the flags"
        );
        assert!(history.reference(31).is_none());
    }

    #[test]
    fn gap_clears_the_bits_it_skips() {
        let mut history = History::with_detail(4, 4).with_flags(10);
        for number in 0..10 {
            history.push(
                number,
                Slot {
                    outside: true,
                    expected: 0.0,
                    ..slot(1.0)
                },
            );
        }

        // Windows 10 to 14 are missing: more than the values kept, fewer
        // than the bits. Their places in the ring held windows 0 to 4.
        history.push(15, slot(1.0));

        for number in 10..15 {
            assert_eq!(history.unspent_outside(number), None, "window {number}");
        }
        assert_eq!(history.unspent_outside(6), Some(true));
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

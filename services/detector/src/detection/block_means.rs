//! Mean cleaned value of each block of consecutive windows, such as each
//! hour of 5-minute windows, over a bounded span. The weekly reference reads
//! these means a week back in place of single windows, so a series keeps
//! one number per hour of the week instead of one per window (see
//! `seasonal.rs`, `WeeklyReference::Hourly`).

use std::collections::VecDeque;

/// Running means of the cleaned values of blocks of `windows_per_block`
/// windows. Block `k` holds windows `k × windows_per_block` to
/// `(k + 1) × windows_per_block − 1`.
#[derive(Debug, Clone)]
pub(crate) struct BlockMeans {
    windows_per_block: i64,
    /// Mean of the windows added to block `first + i`, NaN while it has none.
    /// A mean rather than a sum, so values near `f32::MAX` do not overflow.
    means: VecDeque<f32>,
    /// Windows added to block `first + i`, at most `windows_per_block`.
    counts: VecDeque<u8>,
    /// Windows of block `first + i` that were outside their band and are
    /// not spent.
    outside: VecDeque<u8>,
    /// Block number of `means[0]`.
    first: i64,
    /// Blocks kept at most.
    capacity: usize,
}

impl BlockMeans {
    /// Creates empty means of blocks of `windows_per_block` windows (1 to
    /// 255) that keep the newest `capacity` blocks (at least 1).
    pub fn new(windows_per_block: i64, capacity: usize) -> BlockMeans {
        assert!(
            (1..=i64::from(u8::MAX)).contains(&windows_per_block),
            "a block holds 1 to 255 windows, got {windows_per_block}"
        );
        BlockMeans {
            windows_per_block,
            means: VecDeque::new(),
            counts: VecDeque::new(),
            outside: VecDeque::new(),
            first: 0,
            capacity: capacity.max(1),
        }
    }

    /// Block of window `number`.
    fn block(&self, number: i64) -> i64 {
        number.div_euclid(self.windows_per_block)
    }

    fn index(&self, block: i64) -> Option<usize> {
        let offset = usize::try_from(block.checked_sub(self.first)?).ok()?;
        (offset < self.means.len()).then_some(offset)
    }

    /// Adds the cleaned value of window `number`, which must not be before
    /// the newest window added, and whether it was outside its band. Blocks
    /// older than the capacity are dropped.
    pub fn add(&mut self, number: i64, value: f32, outside: bool) {
        let block = self.block(number);
        match self.means.len() {
            0 => self.first = block,
            length => {
                let newest = self.first + length as i64 - 1;
                if block - newest >= self.capacity as i64 {
                    self.means.clear();
                    self.counts.clear();
                    self.outside.clear();
                    self.first = block;
                } else {
                    for _ in newest..block {
                        self.push_block();
                    }
                }
            }
        }
        if self.means.is_empty() {
            self.push_block();
        }

        let index = self.index(block).expect("block was just appended");
        let count = self.counts[index].saturating_add(1);
        let mean = self.means[index];
        self.means[index] = if count == 1 {
            value
        } else {
            mean + (value - mean) / f32::from(count)
        };
        self.counts[index] = count;
        self.outside[index] += u8::from(outside);
    }

    fn push_block(&mut self) {
        if self.means.capacity() == 0 {
            // Exactly, because doubling would leave up to half unused.
            self.means.reserve_exact(self.capacity);
            self.counts.reserve_exact(self.capacity);
            self.outside.reserve_exact(self.capacity);
        }
        if self.means.len() == self.capacity {
            self.means.pop_front();
            self.counts.pop_front();
            self.outside.pop_front();
            self.first += 1;
        }
        self.means.push_back(f32::NAN);
        self.counts.push_back(0);
        self.outside.push_back(0);
    }

    /// Replaces `old`, a value added for window `number`, by `new` in its
    /// block's mean, if the block is kept.
    pub fn replace(&mut self, number: i64, old: f32, new: f32) {
        let Some(index) = self.index(self.block(number)) else {
            return;
        };
        let count = self.counts[index];
        if count > 0 {
            self.means[index] += (new - old) / f32::from(count);
        }
    }

    /// Counts window `number`, which was outside, as spent.
    pub fn spend(&mut self, number: i64) {
        if let Some(index) = self.index(self.block(number)) {
            self.outside[index] = self.outside[index].saturating_sub(1);
        }
    }

    /// True when more than half the windows of the block that contains
    /// window `number` were outside their band and are not spent.
    pub fn mostly_outside(&self, number: i64) -> bool {
        self.index(self.block(number))
            .is_some_and(|index| 2 * u32::from(self.outside[index]) > u32::from(self.counts[index]))
    }

    /// Replaces the mean of every kept block before the one that contains
    /// window `number` by `change(mean)`.
    pub fn change_before(&mut self, number: i64, change: impl Fn(f32) -> f32) {
        let end = usize::try_from(self.block(number) - self.first)
            .unwrap_or(0)
            .min(self.means.len());
        for (mean, &count) in self.means.iter_mut().zip(&self.counts).take(end) {
            if count > 0 {
                *mean = change(*mean);
            }
        }
    }

    /// Returns the last window of the block that contains window `number`.
    pub fn last_window_of_block(&self, number: i64) -> i64 {
        (self.block(number) + 1) * self.windows_per_block - 1
    }

    /// Moves the share of the block that contains window `number` that
    /// does not come from its `newest_kept` newest windows, as if `change`
    /// had changed each of those older values. The block's mean replaces
    /// the unknown values.
    pub fn change_older_share(&mut self, number: i64, newest_kept: usize, change: impl Fn(f32) -> f32) {
        let Some(index) = self.index(self.block(number)) else {
            return;
        };
        let count = usize::from(self.counts[index]);
        let older = count.saturating_sub(newest_kept);
        if older > 0 {
            let mean = self.means[index];
            self.means[index] += (change(mean) - mean) * older as f32 / count as f32;
        }
    }

    /// Mean of the block that contains window `number`, if it is kept and
    /// has a window.
    pub fn mean(&self, number: i64) -> Option<f32> {
        let index = self.index(self.block(number))?;
        (self.counts[index] > 0).then_some(self.means[index])
    }

    /// Windows covered by the blocks kept once full.
    pub fn window_reach(&self) -> usize {
        self.capacity * self.windows_per_block as usize
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.means.capacity() * size_of::<f32>() + (self.counts.capacity() + self.outside.capacity()) * size_of::<u8>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_follow_blocks_and_gaps() {
        let mut means = BlockMeans::new(3, 10);
        for (number, value) in [(0, 1.0), (1, 2.0), (2, 3.0), (3, 10.0), (7, 4.0)] {
            means.add(number, value, false);
        }

        assert_eq!(means.mean(1), Some(2.0));
        assert_eq!(means.mean(4), Some(10.0));
        assert_eq!(means.mean(8), Some(4.0));
        assert_eq!(means.mean(9), None);
        assert_eq!(means.mean(-1), None);
    }

    #[test]
    fn replace_moves_the_mean_of_its_block_only() {
        let mut means = BlockMeans::new(2, 10);
        for (number, value) in [(0, 4.0), (1, 6.0), (2, 8.0)] {
            means.add(number, value, false);
        }

        means.replace(1, 6.0, 10.0);
        means.replace(40, 8.0, 0.0);

        assert_eq!(means.mean(0), Some(7.0));
        assert_eq!(means.mean(2), Some(8.0));
    }

    #[test]
    fn older_share_moves_with_the_mean() {
        let mut means = BlockMeans::new(4, 10);
        for (number, value) in [(0, 2.0), (1, 4.0), (2, 6.0), (3, 8.0)] {
            means.add(number, value, false);
        }

        // Two of four windows are older than those kept: half the mean
        // doubles.
        means.change_older_share(3, 2, |mean| 2.0 * mean);
        assert_eq!(means.mean(0), Some(7.5));

        means.change_older_share(3, 4, |mean| 2.0 * mean);
        assert_eq!(means.mean(0), Some(7.5), "all kept");
    }

    #[test]
    fn oldest_blocks_leave_at_capacity() {
        let mut means = BlockMeans::new(2, 3);
        for number in 0..8 {
            means.add(number, number as f32, false);
        }

        assert_eq!(means.mean(1), None);
        assert_eq!(means.mean(2), Some(2.5));
        assert_eq!(means.mean(7), Some(6.5));

        means.add(100, 1.0, false);
        assert_eq!(means.mean(7), None);
        assert_eq!(means.mean(100), Some(1.0));
    }

    #[test]
    fn mostly_outside_above_half_until_spent() {
        let mut means = BlockMeans::new(4, 10);
        for (number, outside) in [(0, true), (1, false), (4, true), (5, true), (6, true)] {
            means.add(number, 1.0, outside);
        }

        assert!(!means.mostly_outside(0), "1 of 2 windows is not more than half");
        assert!(means.mostly_outside(4));
        means.spend(5);
        means.spend(6);
        assert!(!means.mostly_outside(4));
    }
}

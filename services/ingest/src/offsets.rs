//! Tracking of the Kafka offsets that may be committed.
//!
//! Every consumed message is tracked until it is done: stored in ClickHouse,
//! or acknowledged by the dead-letter topic. A partition's commit position
//! is the offset after its longest run of done messages from the start, so
//! a commit never passes a message that is still pending.

use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, PartitionOffsets>,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Consumed offsets in consumption order, each with whether it is done.
    pending: VecDeque<(i64, bool)>,
    /// Offset after the last done message that has no pending message
    /// before it: the position to commit.
    ready: Option<i64>,
    /// Position of the last successful commit.
    committed: Option<i64>,
}

impl OffsetTracker {
    /// Records a consumed message as pending.
    ///
    /// An offset at or below the last tracked one means the partition was
    /// rewound (re-delivery after a rebalance), so the earlier pending
    /// entries are dropped: their completions no longer move the position.
    pub fn track(&mut self, partition: i32, offset: i64) {
        let state = self.partitions.entry(partition).or_default();
        if state.pending.back().is_some_and(|&(last, _)| offset <= last) {
            state.pending.clear();
        }
        state.pending.push_back((offset, false));
    }

    /// Marks a tracked message as done. Unknown offsets are ignored, which
    /// covers messages of partitions dropped by [`Self::retain_partitions`].
    pub fn complete(&mut self, partition: i32, offset: i64) {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        let Ok(index) = state.pending.binary_search_by_key(&offset, |&(tracked, _)| tracked) else {
            return;
        };
        state.pending[index].1 = true;

        while let Some(&(front, true)) = state.pending.front() {
            state.pending.pop_front();
            // A rewind can complete lower offsets after higher ones; the
            // position only moves forward.
            state.ready = Some(state.ready.map_or(front + 1, |ready| ready.max(front + 1)));
        }
    }

    /// Returns `(partition, next offset)` for each partition whose commit
    /// position moved since its last successful commit.
    pub fn commit_candidates(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|(&partition, state)| {
                let ready = state.ready?;
                let moved = state.committed.is_none_or(|committed| ready > committed);
                moved.then_some((partition, ready))
            })
            .collect()
    }

    /// Records a successful commit of `next_offset` for `partition`.
    pub fn mark_committed(&mut self, partition: i32, next_offset: i64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.committed = Some(
                state
                    .committed
                    .map_or(next_offset, |committed| committed.max(next_offset)),
            );
        }
    }

    /// Forgets partitions for which `keep` returns false, e.g. after a
    /// rebalance revoked them; nothing is committed for them any more.
    pub fn retain_partitions(&mut self, mut keep: impl FnMut(i32) -> bool) {
        self.partitions.retain(|&partition, _| keep(partition));
    }

    /// Number of tracked messages not yet done, over all partitions.
    pub fn pending_messages(&self) -> usize {
        self.partitions
            .values()
            .map(|state| state.pending.iter().filter(|&&(_, done)| !done).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker_with(partition: i32, offsets: std::ops::Range<i64>) -> OffsetTracker {
        let mut tracker = OffsetTracker::default();
        for offset in offsets {
            tracker.track(partition, offset);
        }
        tracker
    }

    #[test]
    fn nothing_to_commit_before_any_completion() {
        let tracker = tracker_with(0, 0..5);
        assert_eq!(tracker.commit_candidates(), []);
        assert_eq!(tracker.pending_messages(), 5);
    }

    #[test]
    fn stored_rows_commit_next_offset() {
        let mut tracker = tracker_with(0, 0..5);
        for offset in 0..5 {
            tracker.complete(0, offset);
        }
        assert_eq!(tracker.commit_candidates(), [(0, 5)]);
    }

    #[test]
    fn pending_dead_letter_blocks_later_rows() {
        // Offsets 0, 1 and 3, 4 are stored rows; 2 is a dead letter whose
        // delivery is not yet acknowledged.
        let mut tracker = tracker_with(0, 0..5);
        for offset in [0, 1, 3, 4] {
            tracker.complete(0, offset);
        }
        assert_eq!(tracker.commit_candidates(), [(0, 2)]);

        tracker.complete(0, 2);
        assert_eq!(tracker.commit_candidates(), [(0, 5)]);
    }

    #[test]
    fn acknowledged_dead_letter_alone_commits() {
        let mut tracker = tracker_with(3, 10..11);
        tracker.complete(3, 10);
        assert_eq!(tracker.commit_candidates(), [(3, 11)]);
    }

    #[test]
    fn partitions_advance_independently() {
        let mut tracker = OffsetTracker::default();
        tracker.track(0, 0);
        tracker.track(1, 7);
        tracker.track(0, 1);
        tracker.track(1, 8);

        tracker.complete(1, 7);
        tracker.complete(1, 8);
        tracker.complete(0, 1);

        assert_eq!(tracker.commit_candidates(), [(1, 9)]);
    }

    #[test]
    fn gaps_in_offsets_are_skipped() {
        // Compaction or transaction markers leave holes in the offsets.
        let mut tracker = OffsetTracker::default();
        for offset in [4, 9, 12] {
            tracker.track(0, offset);
        }
        for offset in [4, 9, 12] {
            tracker.complete(0, offset);
        }
        assert_eq!(tracker.commit_candidates(), [(0, 13)]);
    }

    #[test]
    fn committed_position_is_not_offered_again() {
        let mut tracker = tracker_with(0, 0..2);
        tracker.complete(0, 0);
        tracker.complete(0, 1);
        tracker.mark_committed(0, 2);
        assert_eq!(tracker.commit_candidates(), []);

        tracker.track(0, 2);
        tracker.complete(0, 2);
        assert_eq!(tracker.commit_candidates(), [(0, 3)]);
    }

    #[test]
    fn failed_commit_is_offered_again() {
        let mut tracker = tracker_with(0, 0..1);
        tracker.complete(0, 0);
        assert_eq!(tracker.commit_candidates(), [(0, 1)]);
        // No mark_committed: the commit failed.
        assert_eq!(tracker.commit_candidates(), [(0, 1)]);
    }

    #[test]
    fn rewind_drops_older_pending_entries() {
        let mut tracker = tracker_with(0, 0..10);
        for offset in 0..4 {
            tracker.complete(0, offset);
        }

        // After a rebalance the partition is delivered again from the
        // group's committed offset 6; tracking restarts there.
        tracker.track(0, 6);
        tracker.track(0, 7);
        tracker.complete(0, 6);
        tracker.complete(0, 7);

        assert_eq!(tracker.commit_candidates(), [(0, 8)]);
    }

    #[test]
    fn rewind_never_moves_position_back() {
        let mut tracker = tracker_with(0, 0..10);
        for offset in 0..10 {
            tracker.complete(0, offset);
        }
        tracker.track(0, 3);
        tracker.complete(0, 3);
        assert_eq!(tracker.commit_candidates(), [(0, 10)]);
    }

    #[test]
    fn completion_of_unknown_offset_is_ignored() {
        let mut tracker = tracker_with(0, 0..2);
        tracker.complete(0, 5);
        tracker.complete(9, 0);
        assert_eq!(tracker.commit_candidates(), []);
        assert_eq!(tracker.pending_messages(), 2);
    }

    #[test]
    fn retained_partitions_only_are_committed() {
        let mut tracker = OffsetTracker::default();
        tracker.track(0, 0);
        tracker.track(1, 0);
        tracker.retain_partitions(|partition| partition == 1);

        tracker.complete(0, 0);
        tracker.complete(1, 0);

        assert_eq!(tracker.commit_candidates(), [(1, 1)]);
    }
}

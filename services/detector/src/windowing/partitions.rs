//! Progress of each Kafka partition the detector reads, so the watermark
//! waits for the slowest partition instead of following the fastest.
//!
//! Kafka orders messages within a partition only. While the detector catches
//! up on a backlog, librdkafka hands over one partition's batch after
//! another, so one partition can be hours of event time ahead of another. A
//! watermark taken from the latest event of any partition would close the
//! windows the other partitions are still filling and count their events as
//! late.
//!
//! Rule: each assigned partition holds the watermark back at the latest
//! event time it delivered, and a partition that has delivered nothing yet
//! holds it back entirely. A partition stops holding it back when it is
//! released: the consumer reached its end (nothing more to read) or it has
//! been silent for the idle timeout. Its next event makes it hold again.
//! While no partition is assigned (between the revocation and the
//! assignment of a rebalance), no window closes.

use std::collections::BTreeMap;

/// Contribution of one assigned partition to the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Assigned, nothing delivered yet and not released: the watermark
    /// cannot pass anything, because the partition may hold any event time.
    Waiting,
    /// Delivered events up to this event time (Unix epoch ms) and may
    /// deliver more from there on.
    Behind(i64),
    /// Caught up or idle: holds nothing back until an event that arrived
    /// after the release, the arrival with this sequence number or a later
    /// one. An older event applied only now (one held back as far-future)
    /// changes nothing, because the end of the log it came before was
    /// already reported.
    Released { since_arrival: u64 },
}

/// How far the partitions let the watermark go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Limit {
    /// No partition holds the watermark back.
    #[default]
    None,
    /// Event time (Unix epoch ms) the slowest holding partition reached.
    At(i64),
    /// A partition has delivered nothing yet, or none is assigned, so no
    /// window may close.
    Blocked,
}

/// The partitions assigned to the consumer and how far each has delivered.
#[derive(Debug, Default)]
pub(crate) struct PartitionProgress {
    /// `None` for a source without partitions (replay, tests), which puts
    /// no limit on the watermark. An empty assignment (between the two
    /// steps of a rebalance) blocks it, because events may still come.
    partitions: Option<BTreeMap<i32, Progress>>,
    /// [`PartitionProgress::limit`], kept up to date by every change. Only
    /// an event of the slowest partition, an assignment or a release scans
    /// all partitions again.
    limit: Limit,
}

impl PartitionProgress {
    /// Replaces the assignment. A partition kept from the previous one keeps
    /// its progress; a new one waits for its first event or its release.
    pub(crate) fn assign(&mut self, partitions: &[i32]) {
        let previous = self.partitions.take().unwrap_or_default();
        let assigned = partitions
            .iter()
            .map(|&partition| {
                let progress = previous.get(&partition).copied().unwrap_or(Progress::Waiting);
                (partition, progress)
            })
            .collect();
        self.partitions = Some(assigned);
        self.limit = self.compute_limit();
    }

    /// Records an applied event of `partition` at `event_time_ms`, which
    /// arrived with sequence number `arrival`. Events of partitions not in
    /// the assignment (still queued after a revocation) change nothing.
    pub(crate) fn observe(&mut self, partition: i32, event_time_ms: i64, arrival: u64) {
        let Some(progress) = self
            .partitions
            .as_mut()
            .and_then(|partitions| partitions.get_mut(&partition))
        else {
            return;
        };
        let previous = *progress;
        *progress = match previous {
            Progress::Behind(latest_ms) if event_time_ms <= latest_ms => return,
            Progress::Behind(_) | Progress::Waiting => Progress::Behind(event_time_ms),
            Progress::Released { since_arrival } if arrival < since_arrival => return,
            Progress::Released { .. } => Progress::Behind(event_time_ms),
        };

        // A partition further along than the slowest one moves no limit.
        let was_slowest = matches!((previous, self.limit), (Progress::Behind(latest_ms), Limit::At(limit_ms)) if latest_ms == limit_ms);
        if was_slowest || !matches!(previous, Progress::Behind(_)) {
            self.limit = self.compute_limit();
        }
    }

    /// Stops `partition` holding the watermark back until an event whose
    /// arrival sequence number is `next_arrival` or later.
    pub(crate) fn release(&mut self, partition: i32, next_arrival: u64) {
        if let Some(progress) = self
            .partitions
            .as_mut()
            .and_then(|partitions| partitions.get_mut(&partition))
        {
            *progress = Progress::Released {
                since_arrival: next_arrival,
            };
            self.limit = self.compute_limit();
        }
    }

    /// True when `partition` is assigned and holds the watermark back.
    pub(crate) fn is_holding(&self, partition: i32) -> bool {
        let progress = self
            .partitions
            .as_ref()
            .and_then(|partitions| partitions.get(&partition));
        matches!(progress, Some(Progress::Waiting | Progress::Behind(_)))
    }

    pub(crate) fn limit(&self) -> Limit {
        self.limit
    }

    fn compute_limit(&self) -> Limit {
        let Some(partitions) = &self.partitions else {
            return Limit::None;
        };
        if partitions.is_empty() {
            return Limit::Blocked;
        }

        let mut limit = Limit::None;
        for progress in partitions.values() {
            limit = match (*progress, limit) {
                (Progress::Waiting, _) | (_, Limit::Blocked) => return Limit::Blocked,
                (Progress::Behind(latest_ms), Limit::At(limit_ms)) => Limit::At(limit_ms.min(latest_ms)),
                (Progress::Behind(latest_ms), Limit::None) => Limit::At(latest_ms),
                (Progress::Released { .. }, limit) => limit,
            };
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_without_partitions_sets_no_limit() {
        let mut progress = PartitionProgress::default();
        progress.observe(0, 1_000, 0);

        assert_eq!(progress.limit(), Limit::None);
        assert!(!progress.is_holding(0));
    }

    #[test]
    fn empty_assignment_blocks_the_watermark() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0]);
        progress.observe(0, 1_000, 0);
        assert_eq!(progress.limit(), Limit::At(1_000));

        progress.assign(&[]);
        assert_eq!(progress.limit(), Limit::Blocked);
    }

    #[test]
    fn event_before_release_does_not_hold() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0, 1]);
        progress.observe(0, 9_000, 0);
        progress.release(1, 5);

        progress.observe(1, 20_000, 4);
        assert!(!progress.is_holding(1), "arrival 4 came before the end of the log");
        assert_eq!(progress.limit(), Limit::At(9_000));

        progress.observe(1, 8_000, 5);
        assert!(progress.is_holding(1));
        assert_eq!(progress.limit(), Limit::At(8_000));
    }

    #[test]
    fn slowest_partition_sets_the_limit() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0, 1, 2]);
        assert_eq!(progress.limit(), Limit::Blocked);

        progress.observe(0, 9_000, 0);
        progress.observe(1, 4_000, 1);
        assert_eq!(progress.limit(), Limit::Blocked, "partition 2 has delivered nothing");

        progress.observe(2, 7_000, 2);
        progress.observe(1, 3_000, 3);
        assert_eq!(
            progress.limit(),
            Limit::At(4_000),
            "an older event does not move a partition back"
        );
    }

    #[test]
    fn released_partition_holds_again_at_its_next_event() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0, 1]);
        progress.observe(0, 9_000, 0);
        progress.release(1, 1);
        assert_eq!(progress.limit(), Limit::At(9_000));
        assert!(!progress.is_holding(1));

        progress.observe(1, 5_000, 1);
        assert_eq!(progress.limit(), Limit::At(5_000));
        assert!(progress.is_holding(1));

        progress.release(0, 2);
        progress.release(1, 2);
        assert_eq!(progress.limit(), Limit::None);
    }

    #[test]
    fn reassignment_keeps_progress_of_kept_partitions() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0, 1]);
        progress.observe(0, 9_000, 0);
        progress.observe(1, 2_000, 1);

        progress.assign(&[0, 3]);
        progress.observe(1, 1_000, 2);
        assert_eq!(progress.limit(), Limit::Blocked, "partition 3 is new");
        progress.observe(3, 12_000, 3);
        assert_eq!(
            progress.limit(),
            Limit::At(9_000),
            "revoked partition 1 no longer counts"
        );
    }

    #[test]
    fn kept_limit_equals_a_full_scan() {
        let mut progress = PartitionProgress::default();
        progress.assign(&[0, 1, 2, 3]);
        let mut state: u64 = 12_345;
        for arrival in 0..20_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let partition = (state >> 33) as i32 % 4;
            match (state >> 20) % 50 {
                0 => progress.release(partition, arrival),
                1 => progress.assign(&[0, 1, 2, 3][..2 + (state >> 40) as usize % 3]),
                _ => progress.observe(partition, (arrival as i64) * 10 - ((state >> 45) % 500) as i64, arrival),
            }
            assert_eq!(progress.limit(), progress.compute_limit(), "after arrival {arrival}");
        }
    }
}

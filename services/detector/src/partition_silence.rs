//! Silence of each assigned Kafka partition, so the consumer can release a
//! silent partition from holding the watermark back (see
//! [`crate::windowing`]): a stuck broker must not stop the windows of every
//! other partition.
//!
//! Silence is measured in waiting time, the wall-clock time the consume loop
//! spent waiting for something to receive. While the loop is busy, as in a
//! catch-up, one partition's messages can wait behind those of others in
//! the consumer's queue, and librdkafka fetches nothing more while that
//! queue holds `queued.min.messages` (100,000 by default). So a partition
//! with unread messages would look silent in plain wall-clock time. A partition counts as silent only when the loop waited the idle
//! timeout without it delivering an event.

use std::collections::HashMap;
use std::time::Duration;

/// Waiting time of the consume loop and when each assigned partition last
/// delivered, on that clock.
#[derive(Debug)]
pub(crate) struct PartitionSilence {
    /// `None` never calls a partition silent.
    timeout: Option<Duration>,
    /// Total time the consume loop has waited to receive.
    waited: Duration,
    /// Assigned partitions and the waiting time at their last event or
    /// their assignment.
    last_heard: HashMap<i32, Duration>,
}

impl PartitionSilence {
    /// `timeout_ms` of 0 never calls a partition silent.
    pub(crate) fn new(timeout_ms: i64) -> PartitionSilence {
        PartitionSilence {
            timeout: u64::try_from(timeout_ms)
                .ok()
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
            waited: Duration::ZERO,
            last_heard: HashMap::new(),
        }
    }

    /// Adds time the consume loop spent waiting to receive.
    pub(crate) fn add_waiting(&mut self, waited: Duration) {
        self.waited += waited;
    }

    /// Replaces the assignment. A kept partition keeps its last event time;
    /// a new one counts as heard now.
    pub(crate) fn assign(&mut self, partitions: &[i32]) {
        let previous = std::mem::take(&mut self.last_heard);
        self.last_heard = partitions
            .iter()
            .map(|&partition| (partition, previous.get(&partition).copied().unwrap_or(self.waited)))
            .collect();
    }

    /// Records a valid event of `partition`. Invalid messages do not count,
    /// so a partition that delivers only those is still released.
    pub(crate) fn heard(&mut self, partition: i32) {
        if let Some(last) = self.last_heard.get_mut(&partition) {
            *last = self.waited;
        }
    }

    /// Partitions without an event while the loop waited the timeout or
    /// longer, with that waiting time, in partition order.
    pub(crate) fn silent(&self) -> Vec<(i32, Duration)> {
        let Some(timeout) = self.timeout else {
            return Vec::new();
        };
        let mut silent: Vec<(i32, Duration)> = self
            .last_heard
            .iter()
            .map(|(&partition, &last)| (partition, self.waited.saturating_sub(last)))
            .filter(|&(_, silence)| silence >= timeout)
            .collect();
        silent.sort_unstable();
        silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn partition_is_silent_after_the_timeout() {
        let mut silence = PartitionSilence::new(30_000);
        silence.assign(&[0, 1]);

        silence.add_waiting(seconds(20));
        silence.heard(1);
        silence.add_waiting(seconds(9));
        assert!(silence.silent().is_empty());

        silence.add_waiting(seconds(11));
        assert_eq!(silence.silent(), vec![(0, seconds(40))]);

        silence.add_waiting(seconds(10));
        assert_eq!(silence.silent(), vec![(0, seconds(50)), (1, seconds(30))]);
    }

    #[test]
    fn brief_waits_between_events_do_not_add_up() {
        let mut silence = PartitionSilence::new(30_000);
        silence.assign(&[0, 1]);

        // Partition 1 delivers a long backlog while partition 0's messages
        // wait behind it. The loop waits 2 µs per event, 0.2 s in all, so
        // nothing is silent.
        for _ in 0..100_000 {
            silence.add_waiting(Duration::from_micros(2));
            silence.heard(1);
        }

        assert!(silence.silent().is_empty());
    }

    #[test]
    fn reassignment_keeps_kept_partitions_and_drops_revoked_ones() {
        let mut silence = PartitionSilence::new(30_000);
        silence.assign(&[0, 1]);

        silence.add_waiting(seconds(20));
        silence.assign(&[1, 2]);
        silence.add_waiting(seconds(15));
        silence.heard(0);

        assert_eq!(
            silence.silent(),
            vec![(1, seconds(35))],
            "partition 0 is revoked and partition 2 was assigned after 20 s"
        );
    }

    #[test]
    fn zero_timeout_never_calls_a_partition_silent() {
        let mut silence = PartitionSilence::new(0);
        silence.assign(&[0]);

        silence.add_waiting(seconds(3_600));

        assert!(silence.silent().is_empty());
    }
}

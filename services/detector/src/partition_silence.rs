//! When each assigned Kafka partition last delivered something, so the
//! consumer can release a silent partition from holding the watermark back
//! (see [`crate::windowing`]). Wall-clock time: a stuck broker must not stop
//! the windows of every other partition.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Last delivery time of each assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionSilence {
    /// `None` never calls a partition silent.
    timeout: Option<Duration>,
    /// Assigned partitions and when each last delivered a message or was
    /// assigned.
    last_heard: HashMap<i32, Instant>,
}

impl PartitionSilence {
    /// `timeout_ms` of 0 never calls a partition silent.
    pub(crate) fn new(timeout_ms: i64) -> PartitionSilence {
        PartitionSilence {
            timeout: u64::try_from(timeout_ms)
                .ok()
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
            last_heard: HashMap::new(),
        }
    }

    /// Replaces the assignment at `now`. A kept partition keeps its last
    /// delivery time; a new one counts as heard at `now`.
    pub(crate) fn assign(&mut self, partitions: &[i32], now: Instant) {
        let previous = std::mem::take(&mut self.last_heard);
        self.last_heard = partitions
            .iter()
            .map(|&partition| (partition, previous.get(&partition).copied().unwrap_or(now)))
            .collect();
    }

    /// Records a message of `partition` at `now`, valid or not.
    pub(crate) fn heard(&mut self, partition: i32, now: Instant) {
        if let Some(last) = self.last_heard.get_mut(&partition) {
            *last = now;
        }
    }

    /// Partitions that have delivered nothing for the timeout or longer at
    /// `now`, with how long, in partition order.
    pub(crate) fn silent(&self, now: Instant) -> Vec<(i32, Duration)> {
        let Some(timeout) = self.timeout else {
            return Vec::new();
        };
        let mut silent: Vec<(i32, Duration)> = self
            .last_heard
            .iter()
            .map(|(&partition, &last)| (partition, now.saturating_duration_since(last)))
            .filter(|&(_, silence)| silence >= timeout)
            .collect();
        silent.sort_unstable();
        silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_silent_after_the_timeout() {
        let start = Instant::now();
        let mut silence = PartitionSilence::new(30_000);
        silence.assign(&[0, 1], start);

        silence.heard(1, start + Duration::from_secs(20));
        assert!(silence.silent(start + Duration::from_secs(29)).is_empty());
        assert_eq!(
            silence.silent(start + Duration::from_secs(40)),
            vec![(0, Duration::from_secs(40))]
        );
        assert_eq!(
            silence.silent(start + Duration::from_secs(50)),
            vec![(0, Duration::from_secs(50)), (1, Duration::from_secs(30))]
        );
    }

    #[test]
    fn reassignment_keeps_kept_partitions_and_drops_revoked_ones() {
        let start = Instant::now();
        let mut silence = PartitionSilence::new(30_000);
        silence.assign(&[0, 1], start);

        silence.assign(&[1, 2], start + Duration::from_secs(20));
        silence.heard(0, start + Duration::from_secs(25));
        assert_eq!(
            silence.silent(start + Duration::from_secs(35)),
            vec![(1, Duration::from_secs(35))],
            "partition 0 is revoked and partition 2 was assigned at 20 s"
        );
    }

    #[test]
    fn zero_timeout_never_calls_a_partition_silent() {
        let start = Instant::now();
        let mut silence = PartitionSilence::new(0);
        silence.assign(&[0], start);

        assert!(silence.silent(start + Duration::from_secs(3_600)).is_empty());
    }
}

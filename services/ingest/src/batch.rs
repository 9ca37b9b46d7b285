use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::row::BatchRow;

/// When a batch is flushed: at `max_rows` messages or `max_wait` after its
/// first message, whichever comes first. Dead-lettered messages count
/// towards `max_rows`, so memory per batch stays bounded whatever the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_rows: usize,
    pub max_wait: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_rows: 10_000,
            max_wait: Duration::from_secs(1),
        }
    }
}

impl BatchPolicy {
    /// Returns whether a batch of `messages` opened at `opened_at` is due at
    /// `now`.
    pub fn is_due(&self, messages: usize, opened_at: Instant, now: Instant) -> bool {
        messages >= self.max_rows || now >= self.deadline(opened_at)
    }

    /// Returns the latest time a batch opened at `opened_at` may be flushed.
    pub fn deadline(&self, opened_at: Instant) -> Instant {
        opened_at + self.max_wait
    }
}

/// Messages consumed since the last flush: rows for ClickHouse plus a count
/// of dead-lettered messages, whose deliveries the dead-letter queue holds.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    rows: Vec<BatchRow>,
    dead_letters: usize,
    opened_at: Option<Instant>,
    /// Lowest and highest offset of the batch's messages, per partition.
    offset_ranges: BTreeMap<i32, (i64, i64)>,
}

impl Batch {
    pub fn push_row(&mut self, row: BatchRow, now: Instant) {
        self.opened_at.get_or_insert(now);
        self.include_offset(row.partition, row.offset);
        self.rows.push(row);
    }

    /// Counts a rejected message, whose delivery the dead-letter queue holds.
    pub fn count_dead_letter(&mut self, partition: i32, offset: i64, now: Instant) {
        self.opened_at.get_or_insert(now);
        self.include_offset(partition, offset);
        self.dead_letters += 1;
    }

    fn include_offset(&mut self, partition: i32, offset: i64) {
        self.offset_ranges
            .entry(partition)
            .and_modify(|(lowest, highest)| {
                *lowest = (*lowest).min(offset);
                *highest = (*highest).max(offset);
            })
            .or_insert((offset, offset));
    }

    /// Returns the offsets of the batch's messages as
    /// `partition:lowest-highest` per partition, comma-separated, e.g.
    /// `0:120-219,1:98-180`, for logs. Offsets in a range can belong to
    /// messages of earlier batches.
    pub fn describe_offsets(&self) -> String {
        self.offset_ranges
            .iter()
            .map(|(partition, (lowest, highest))| format!("{partition}:{lowest}-{highest}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Number of messages in the batch, rows and dead letters together.
    pub fn messages(&self) -> usize {
        self.rows.len() + self.dead_letters
    }

    pub fn is_empty(&self) -> bool {
        self.messages() == 0
    }

    pub fn rows(&self) -> &[BatchRow] {
        &self.rows
    }

    pub fn opened_at(&self) -> Option<Instant> {
        self.opened_at
    }

    /// Drops the rows once ClickHouse stored them; the batch stays open
    /// until its dead letters are delivered too.
    pub fn clear_rows(&mut self) {
        self.rows.clear();
    }

    /// Removes one delivered dead letter from the count.
    pub fn uncount_dead_letter(&mut self) {
        self.dead_letters = self.dead_letters.saturating_sub(1);
    }

    /// Empties the batch once its rows are stored and its dead letters
    /// delivered.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.dead_letters = 0;
        self.opened_at = None;
        self.offset_ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use seismo_events::Event;

    use super::*;

    fn policy() -> BatchPolicy {
        BatchPolicy {
            max_rows: 3,
            max_wait: Duration::from_millis(500),
        }
    }

    fn row(offset: i64) -> BatchRow {
        BatchRow {
            event: Event::parse(br#"{"event_time": 1714564800000, "event": "view", "user_id": "u"}"#)
                .expect("valid event"),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn policy_is_due_at_max_rows() {
        let start = Instant::now();
        assert!(!policy().is_due(2, start, start));
        assert!(policy().is_due(3, start, start));
        assert!(policy().is_due(4, start, start));
    }

    #[test]
    fn policy_is_due_at_max_wait() {
        let start = Instant::now();
        assert!(!policy().is_due(1, start, start + Duration::from_millis(499)));
        assert!(policy().is_due(1, start, start + Duration::from_millis(500)));
    }

    #[test]
    fn batch_opens_at_first_message() {
        let start = Instant::now();
        let mut batch = Batch::default();
        assert_eq!(batch.opened_at(), None);

        batch.count_dead_letter(0, 9, start);
        batch.push_row(row(1), start + Duration::from_millis(10));

        assert_eq!(batch.opened_at(), Some(start));
        assert_eq!(batch.messages(), 2);
        assert_eq!(batch.rows().len(), 1);
    }

    #[test]
    fn dead_letters_count_towards_max_rows() {
        let start = Instant::now();
        let mut batch = Batch::default();
        batch.push_row(row(1), start);
        batch.count_dead_letter(0, 9, start);
        batch.count_dead_letter(0, 9, start);

        let opened_at = batch.opened_at().expect("batch is open");
        assert!(policy().is_due(batch.messages(), opened_at, start));
    }

    #[test]
    fn stored_rows_leave_dead_letters_pending() {
        let start = Instant::now();
        let mut batch = Batch::default();
        batch.push_row(row(1), start);
        batch.count_dead_letter(0, 9, start);

        batch.clear_rows();
        assert_eq!(batch.messages(), 1);
        assert_eq!(batch.opened_at(), Some(start));

        batch.uncount_dead_letter();
        assert!(batch.is_empty());
    }

    #[test]
    fn clear_resets_batch() {
        let start = Instant::now();
        let mut batch = Batch::default();
        batch.push_row(row(1), start);
        batch.count_dead_letter(0, 9, start);

        batch.clear();

        assert!(batch.is_empty());
        assert_eq!(batch.opened_at(), None);
    }

    #[test]
    fn describe_offsets_lists_range_per_partition() {
        let start = Instant::now();
        let mut batch = Batch::default();
        batch.push_row(row(5), start);
        batch.push_row(row(3), start);
        batch.count_dead_letter(2, 40, start);
        batch.count_dead_letter(0, 7, start);

        assert_eq!(batch.describe_offsets(), "0:3-7,2:40-40");

        batch.clear();
        assert_eq!(batch.describe_offsets(), "");
    }
}

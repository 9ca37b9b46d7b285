//! The `insert_deduplication_token` of a batch, which lets ClickHouse drop
//! a retried insert that it already stored.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::row::BatchRow;

/// Returns the deduplication token of an insert of `rows` consumed from
/// `topic`: `<topic>/` followed by `<partition>:<first offset>-<last
/// offset>:<rows>` per partition in partition order, comma-separated, e.g.
/// `events/0:120-219:100,1:98-180:83`.
///
/// A retry of a batch sends the same rows, hence the same token. Two
/// inserts get the same token only if they hold as many rows between the
/// same offsets of every partition, which for one topic means the same
/// messages. The row count keeps apart batches of the same messages that
/// were validated differently, e.g. by the event-time check, which depends
/// on the clock.
pub(crate) fn deduplication_token(topic: &str, rows: &[BatchRow]) -> String {
    let mut partitions: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    for row in rows {
        partitions
            .entry(row.partition)
            .and_modify(|(first, last, count)| {
                *first = (*first).min(row.offset);
                *last = (*last).max(row.offset);
                *count += 1;
            })
            .or_insert((row.offset, row.offset, 1));
    }

    let mut token = format!("{topic}/");
    for (index, (partition, (first, last, count))) in partitions.iter().enumerate() {
        if index > 0 {
            token.push(',');
        }
        write!(token, "{partition}:{first}-{last}:{count}").expect("writing to a String cannot fail");
    }
    token
}

#[cfg(test)]
mod tests {
    use seismo_events::Event;

    use super::*;

    fn row(partition: i32, offset: i64) -> BatchRow {
        BatchRow {
            event: Event::parse(br#"{"event_time": 1714564800000, "event": "view", "user_id": "u"}"#)
                .expect("valid event"),
            partition,
            offset,
        }
    }

    #[test]
    fn token_lists_partition_ranges_in_order() {
        let rows = [row(1, 98), row(0, 120), row(1, 180), row(0, 219), row(0, 150)];
        assert_eq!(deduplication_token("events", &rows), "events/0:120-219:3,1:98-180:2");
    }

    #[test]
    fn token_is_equal_for_a_retry() {
        let rows = [row(0, 5), row(2, 7), row(0, 6)];
        let retry = [row(0, 5), row(2, 7), row(0, 6)];
        assert_eq!(
            deduplication_token("events", &rows),
            deduplication_token("events", &retry)
        );
    }

    #[test]
    fn token_differs_by_row_count() {
        // Offset 6 was rejected in the first batch and stored in the second.
        let first = [row(0, 5), row(0, 7)];
        let second = [row(0, 5), row(0, 6), row(0, 7)];
        assert_ne!(
            deduplication_token("events", &first),
            deduplication_token("events", &second)
        );
    }

    #[test]
    fn token_differs_by_topic() {
        let rows = [row(0, 5)];
        assert_ne!(
            deduplication_token("events", &rows),
            deduplication_token("events-eu", &rows)
        );
    }
}

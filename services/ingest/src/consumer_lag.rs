//! The consumer lag gauge, computed from librdkafka's statistics, which
//! the consumer emits every [`STATISTICS_INTERVAL_MS`] without a request to
//! the brokers.

use std::collections::BTreeSet;

use rdkafka::statistics::{Partition, Statistics};

use crate::prometheus_metrics::CONSUMER_LAG;

/// Value of librdkafka's `statistics.interval.ms` for the consumer, which
/// is how often the lag gauge is updated. A `--kafka-property` with the same
/// key overrides it, and 0 turns the gauge off.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "5000";

/// Returns the number of messages between the high watermark and the
/// consumer position of `partition`, or `None` while either is unknown.
///
/// The position is the offset after the last message handed to ingest, or
/// the committed offset before the first one after an assignment. With
/// `isolation.level=read_committed` (the librdkafka default) the high
/// watermark can include messages of open transactions, which the lag then
/// counts too.
pub(crate) fn partition_lag(partition: &Partition) -> Option<i64> {
    if partition.hi_offset < 0 {
        return None;
    }
    let position = [partition.app_offset, partition.committed_offset]
        .into_iter()
        .find(|&offset| offset >= 0)?;
    Some((partition.hi_offset - position).max(0))
}

/// Sets the lag gauge of every partition of `topic` in `assigned` for which
/// the statistics contain a known lag.
///
/// NOTE: librdkafka 2.12 refreshes the high watermark only from fetch
/// responses (`rdkafka_fetcher.c`), and paused partitions are not fetched.
/// So while ingest holds back consumption during a ClickHouse outage, the
/// gauge stays at its value from the pause. `seismo_ingest_insert_retries_total`
/// and `/readyz` show the outage.
pub(crate) fn record_consumer_lag(statistics: &Statistics, topic: &str, assigned: &BTreeSet<i32>) {
    let Some(topic_statistics) = statistics.topics.get(topic) else {
        return;
    };
    for &partition in assigned {
        let Some(lag) = topic_statistics.partitions.get(&partition).and_then(partition_lag) else {
            continue;
        };
        metrics::gauge!(CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
            .set(lag as f64);
    }
}

/// Sets the lag gauge of revoked partitions to 0. The metrics facade cannot
/// remove a series, and the member that now owns a partition reports its
/// lag, so summing over members stays correct.
pub(crate) fn clear_consumer_lag(topic: &str, revoked: impl IntoIterator<Item = i32>) {
    for partition in revoked {
        metrics::gauge!(CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string()).set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka's value for an offset it does not know yet.
    const INVALID: i64 = -1001;

    fn partition(hi_offset: i64, app_offset: i64, committed_offset: i64) -> Partition {
        Partition {
            hi_offset,
            app_offset,
            committed_offset,
            ..Partition::default()
        }
    }

    #[test]
    fn lag_uses_application_position() {
        assert_eq!(partition_lag(&partition(100, 60, 40)), Some(40));
    }

    #[test]
    fn lag_falls_back_to_committed_offset() {
        assert_eq!(partition_lag(&partition(100, INVALID, 40)), Some(60));
    }

    #[test]
    fn lag_unknown_without_watermark_or_position() {
        assert_eq!(partition_lag(&partition(INVALID, 60, 40)), None);
        assert_eq!(partition_lag(&partition(100, INVALID, INVALID)), None);
    }

    #[test]
    fn lag_never_negative() {
        // The watermark comes from an older fetch response than the position.
        assert_eq!(partition_lag(&partition(50, 60, 40)), Some(0));
    }
}

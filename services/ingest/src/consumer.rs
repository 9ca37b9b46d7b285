//! The Kafka consumer and its rebalance and statistics callbacks.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use tracing::{info, warn};

use crate::config::IngestConfig;
use crate::consumer_lag::{STATISTICS_INTERVAL_MS, clear_consumer_lag, record_consumer_lag};
use crate::error::IngestError;
use crate::log_limit::ClientErrorLog;
use crate::readiness::ReadinessTracker;

pub(crate) type IngestConsumer = StreamConsumer<IngestConsumerContext>;

/// Counts rebalances so the pipeline notices that its assignment changed
/// and drops the offsets of partitions it no longer owns. Also marks the
/// group joined for readiness and keeps the consumer lag gauge up to date.
///
/// librdkafka runs these callbacks inside the consumer's poll, so in the
/// task that awaits `recv`.
#[derive(Debug)]
pub(crate) struct IngestConsumerContext {
    rebalances: AtomicU64,
    topic: String,
    /// Partitions of `topic` assigned to this member, kept from the
    /// rebalance callbacks for the lag gauge.
    assigned: Mutex<BTreeSet<i32>>,
    readiness: Arc<ReadinessTracker>,
    client_errors: ClientErrorLog,
}

impl IngestConsumerContext {
    /// Number of completed rebalances; it changes whenever the assignment may
    /// have changed.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Acquire)
    }

    fn partitions_of_topic(&self, partitions: &TopicPartitionList) -> Vec<i32> {
        partitions
            .elements_for_topic(&self.topic)
            .iter()
            .map(|element| element.partition())
            .collect()
    }

    fn assigned(&self) -> MutexGuard<'_, BTreeSet<i32>> {
        // A poisoned lock still contains a valid set, and the lag gauge must keep working.
        self.assigned.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for IngestConsumerContext {
    fn stats(&self, statistics: Statistics) {
        record_consumer_lag(&statistics, &self.topic, &self.assigned());
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client_errors.log(&error, reason);
    }
}

impl ConsumerContext for IngestConsumerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                info!(partitions = %describe(partitions), "partitions assigned");
                self.assigned().extend(self.partitions_of_topic(partitions));
                self.readiness.group_joined();
            }
            Rebalance::Revoke(partitions) => {
                info!(partitions = %describe(partitions), "partitions revoked");
                let revoked = self.partitions_of_topic(partitions);
                self.assigned().retain(|partition| !revoked.contains(partition));
                clear_consumer_lag(&self.topic, revoked);
            }
            Rebalance::Error(error) => warn!(%error, "rebalance failed"),
        }
        self.rebalances.fetch_add(1, Ordering::AcqRel);
    }
}

/// Renders a partition list as `topic[0,1,2]`.
fn describe(partitions: &TopicPartitionList) -> String {
    partitions
        .elements()
        .iter()
        .map(|element| format!("{}[{}]", element.topic(), element.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Time librdkafka postpones the next fetch of a partition while the
/// consumer queue is above its thresholds (`fetch.queue.backoff.ms`,
/// 1 000 ms by default in librdkafka 2.12). The high-level consumer checks
/// `queued.min.messages` (100 000 by default) against the one queue shared
/// by every partition. During an insert, ingest stops receiving once a
/// batch's worth of messages wait, so while it drains a backlog that queue
/// fills during every insert. With the default, each partition then idled
/// for up to 1 s after the queue had drained. In the throughput benchmark
/// (docs/benchmarks.md), 10 ms cut the time from the first to the last of
/// 1 000 000 rows from 9.6 s to 3.4 s. A `fetch.queue.backoff.ms` in the
/// Kafka properties overrides it.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Creates the consumer with manual commits and subscribes it to the topic.
pub(crate) fn subscribe(
    config: &IngestConfig,
    readiness: Arc<ReadinessTracker>,
) -> Result<IngestConsumer, IngestError> {
    let mut client_config = ClientConfig::new();
    client_config
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", &config.auto_offset_reset)
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    for (key, value) in &config.kafka_properties {
        client_config.set(key, value);
    }

    let consumer: IngestConsumer = client_config
        .create_with_context(IngestConsumerContext {
            rebalances: AtomicU64::new(0),
            topic: config.topic.clone(),
            assigned: Mutex::new(BTreeSet::new()),
            readiness,
            client_errors: ClientErrorLog::new("consumer"),
        })
        .map_err(|source| IngestError::Kafka {
            action: "creating the Kafka consumer",
            source,
        })?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(|source| IngestError::Kafka {
            action: "subscribing to the events topic",
            source,
        })?;
    Ok(consumer)
}

/// Returns the partitions of `topic` currently assigned to `consumer`.
pub(crate) fn assigned_partitions(consumer: &IngestConsumer, topic: &str) -> KafkaResult<BTreeSet<i32>> {
    let assignment = consumer.assignment()?;
    Ok(assignment
        .elements_for_topic(topic)
        .iter()
        .map(|element| element.partition())
        .collect())
}

//! The Kafka consumer and its rebalance bookkeeping.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::TopicPartitionList;
use tracing::{info, warn};

use crate::config::IngestConfig;
use crate::error::IngestError;

pub(crate) type IngestConsumer = StreamConsumer<IngestConsumerContext>;

/// Counts rebalances so the pipeline notices that its assignment changed
/// and drops the offsets of partitions it no longer owns.
#[derive(Debug, Default)]
pub(crate) struct IngestConsumerContext {
    rebalances: AtomicU64,
}

impl IngestConsumerContext {
    /// Number of completed rebalances; it changes whenever the assignment may
    /// have changed.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Acquire)
    }
}

impl ClientContext for IngestConsumerContext {}

impl ConsumerContext for IngestConsumerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                info!(partitions = %describe(partitions), "partitions assigned");
            }
            Rebalance::Revoke(partitions) => {
                info!(partitions = %describe(partitions), "partitions revoked");
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

/// Creates the consumer with manual commits and subscribes it to the topic.
pub(crate) fn subscribe(config: &IngestConfig) -> Result<IngestConsumer, IngestError> {
    let mut client_config = ClientConfig::new();
    client_config
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", &config.auto_offset_reset)
        .set("enable.partition.eof", "false");
    for (key, value) in &config.kafka_properties {
        client_config.set(key, value);
    }

    let consumer: IngestConsumer = client_config
        .create_with_context(IngestConsumerContext::default())
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

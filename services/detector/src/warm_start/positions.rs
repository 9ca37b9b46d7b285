//! Kafka positions the detector's consumer group resumes from, read before
//! the consumer joins the group.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::kafka_source::KafkaSettings;

/// Time allowed for each metadata or offset request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Resume offset of the consumer group in each partition of the events
/// topic, and the end of each partition's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResumePositions {
    /// `(partition, offset)`: the group's committed offset, or, for a
    /// partition without one, where `auto.offset.reset` starts (the earliest
    /// retained offset by default, the end with `latest`).
    pub positions: Vec<(i32, i64)>,
    /// Offset after the last message of each partition (its high watermark)
    /// when the positions were read: a partition whose position is below it
    /// has messages the group has not read.
    pub log_ends: BTreeMap<i32, i64>,
}

/// Reads the [`ResumePositions`] of every partition of the events topic.
/// An unknown topic has no partitions.
///
/// Reading committed offsets does not join the group. Blocking: call it
/// from `spawn_blocking`.
pub(crate) fn resume_positions(settings: &KafkaSettings) -> anyhow::Result<ResumePositions> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false");
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .create()
        .context("failed to create a Kafka client to read the detector's resume positions")?;

    let metadata = consumer
        .fetch_metadata(Some(&settings.topic), REQUEST_TIMEOUT)
        .with_context(|| format!("failed to read the metadata of Kafka topic {}", settings.topic))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|topic| topic.name() == settings.topic && topic.error().is_none())
        .flat_map(|topic| topic.partitions().iter().map(|partition| partition.id()))
        .collect();
    if partitions.is_empty() {
        return Ok(ResumePositions::default());
    }

    let mut list = TopicPartitionList::new();
    for &partition in &partitions {
        list.add_partition(&settings.topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, REQUEST_TIMEOUT)
        .with_context(|| format!("failed to read the committed offsets of group {}", settings.group_id))?;

    let starts_at_end = settings
        .properties
        .iter()
        .any(|(key, value)| key == "auto.offset.reset" && matches!(value.as_str(), "latest" | "largest" | "end"));
    let mut resume = ResumePositions::default();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&settings.topic, partition, REQUEST_TIMEOUT)
            .with_context(|| format!("failed to read the offsets of {}[{partition}]", settings.topic))?;
        let committed_offset = committed
            .find_partition(&settings.topic, partition)
            .and_then(|element| match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            });
        let offset = committed_offset.unwrap_or(if starts_at_end { high } else { low });
        resume.positions.push((partition, offset));
        resume.log_ends.insert(partition, high);
    }
    Ok(resume)
}

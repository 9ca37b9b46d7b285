//! An in-process Kafka cluster (librdkafka's mock cluster, which speaks the
//! real protocol) with helpers to produce, read back and inspect commits.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Time allowed for one produce, metadata or offset request to the mock
/// cluster. Generous, because a loaded 2-core machine slows everything.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A one-broker mock cluster plus a producer connected to it. Not `Send`:
/// keep it in the test's own task and pass [`MockKafka::bootstrap_servers`]
/// to the code under test.
pub struct MockKafka {
    producer: FutureProducer,
    bootstrap_servers: String,
    /// Declared last so it is dropped after the producer that talks to it.
    cluster: MockCluster<'static, DefaultProducerContext>,
}

/// Where a produced message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
}

impl MockKafka {
    pub fn start() -> anyhow::Result<MockKafka> {
        let cluster = MockCluster::new(1).context("starting the Kafka mock cluster")?;
        let bootstrap_servers = cluster.bootstrap_servers();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap_servers)
            .set("message.timeout.ms", REQUEST_TIMEOUT.as_millis().to_string())
            .create()
            .context("creating the test producer")?;
        Ok(MockKafka {
            producer,
            bootstrap_servers,
            cluster,
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Returns the mock cluster, e.g. to inject request errors.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .with_context(|| format!("creating topic {topic} with {partitions} partitions"))
    }

    /// Produces one message to `partition` and waits for its acknowledgement.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> anyhow::Result<Produced> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).partition(partition).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        let delivery = self
            .producer
            .send(record, REQUEST_TIMEOUT)
            .await
            .map_err(|(error, _message)| anyhow!("producing to {topic}[{partition}] failed: {error}"))?;
        Ok(Produced {
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }

    /// Returns the high watermark (offset after the last message) of each of
    /// `partitions`.
    pub async fn high_watermarks(&self, topic: &str, partitions: &[i32]) -> anyhow::Result<Vec<i64>> {
        let config = self.consumer_config("seismo-tests-watermarks");
        let topic = topic.to_string();
        let partitions = partitions.to_vec();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            partitions
                .iter()
                .map(|&partition| {
                    let (_low, high) = consumer.fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)?;
                    Ok(high)
                })
                .collect()
        })
        .await?
    }

    /// Returns the offset `group` committed for each of `partitions`, `None`
    /// where it committed nothing.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> anyhow::Result<Vec<Option<i64>>> {
        let config = self.consumer_config(group);
        let topic = topic.to_string();
        let partitions = partitions.to_vec();
        tokio::task::spawn_blocking(move || {
            // Fetching committed offsets does not join the group, so this
            // does not disturb a running member.
            let consumer: BaseConsumer = config.create()?;
            let mut list = TopicPartitionList::new();
            for &partition in &partitions {
                list.add_partition(&topic, partition);
            }
            let committed = consumer.committed_offsets(list, REQUEST_TIMEOUT)?;
            partitions
                .iter()
                .map(|&partition| {
                    let element = committed
                        .find_partition(&topic, partition)
                        .with_context(|| format!("no committed entry for {topic}[{partition}]"))?;
                    Ok(match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                })
                .collect()
        })
        .await?
    }

    /// Reads `partitions` of `topic` from the beginning until `expected`
    /// messages arrived, failing after `timeout`.
    pub async fn read_messages(
        &self,
        topic: &str,
        partitions: &[i32],
        expected: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<OwnedMessage>> {
        let consumer: StreamConsumer = self
            .consumer_config("seismo-tests-reader")
            .create()
            .context("creating the test reader")?;
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&list)?;

        let mut messages = Vec::with_capacity(expected);
        let read = async {
            while messages.len() < expected {
                messages.push(consumer.recv().await?.detach());
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(result) => result?,
            Err(_elapsed) => bail!(
                "read {} of {expected} messages from {topic} within {} s",
                messages.len(),
                timeout.as_secs()
            ),
        }
        Ok(messages)
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        config
    }
}

/// Returns the value of header `key` as text, if present and UTF-8.
pub fn header_text<'a>(message: &'a OwnedMessage, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    (0..headers.count())
        .map(|index| headers.get(index))
        .find(|header| header.key == key)
        .and_then(|header| std::str::from_utf8(header.value?).ok())
}

/// Commits `positions` (partition, offset) of `topic` for consumer `group`,
/// as a consumer that had read everything before them would have.
pub fn commit_offsets(brokers: &str, topic: &str, group: &str, positions: &[(i32, i64)]) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .context("creating the consumer that commits test offsets")?;
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in positions {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer
        .commit(&list, rdkafka::consumer::CommitMode::Sync)
        .with_context(|| format!("committing {positions:?} of {topic} for group {group}"))?;
    Ok(())
}

/// Produces `payloads` in order to `topic` with one `key` (so to one
/// partition), 500 in flight at a time, and waits for every acknowledgement.
/// For tests that only need events in Kafka, without a [`MockKafka`].
pub async fn produce_all(brokers: &str, topic: &str, key: &str, payloads: &[String]) -> anyhow::Result<()> {
    produce_records(brokers, topic, payloads, |record| record.key(key)).await
}

/// Produces `payloads` in order to `partition` of `topic`, as
/// [`produce_all`] does.
pub async fn produce_all_to(brokers: &str, topic: &str, partition: i32, payloads: &[String]) -> anyhow::Result<()> {
    produce_records(brokers, topic, payloads, |record| record.partition(partition)).await
}

async fn produce_records<'a>(
    brokers: &str,
    topic: &'a str,
    payloads: &'a [String],
    address: impl Fn(FutureRecord<'a, str, String>) -> FutureRecord<'a, str, String>,
) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .context("creating the test producer")?;

    for chunk in payloads.chunks(500) {
        let deliveries = chunk
            .iter()
            .map(|payload| producer.send(address(FutureRecord::to(topic).payload(payload)), REQUEST_TIMEOUT));
        for delivery in futures::future::join_all(deliveries).await {
            delivery.map_err(|(error, _message)| anyhow!("producing to {topic} failed: {error}"))?;
        }
    }
    Ok(())
}

//! Kafka source: consumes the events topic in the detector's own consumer
//! group and feeds each valid event to the pipeline.
//!
//! Delivery: offsets are stored after an event has been applied to the
//! in-memory windows and committed by librdkafka every `commit_interval`,
//! plus once at shutdown.
//! Event time: the source passes the windows the assigned partitions and
//! each event's partition. It also reports when a partition has no more to
//! read (the end of its log, or silence for `partition_idle_timeout`). So
//! the watermark follows the slowest partition still delivering. Events consumed again after a crash or a
//! rebalance are counted again (at-least-once).
//! Windows and series history live in memory only. A restart recovers them
//! with a warm start from ClickHouse (see [`crate::warm_start`]). Without
//! one, a restart loses the open windows, whose events are already
//! committed, and every series learns again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientConfig, ClientContext};
use seismo_events::{Event, ParseLimits};
use tokio_util::sync::CancellationToken;

use crate::partition_silence::PartitionSilence;
use crate::pipeline::Pipeline;
use crate::prometheus_metrics::RECEIVE_ERRORS;
use crate::readiness::ReadinessTracker;
use crate::stats::DetectorStats;

/// Pause after a failed receive, so a broken connection does not spin.
const RECEIVE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Shortest time between two log lines about invalid messages.
const INVALID_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Interval of the check for partitions silent for `partition_idle_timeout`.
const SILENCE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Kafka connection and event parsing settings of the detector.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`, comma separated `host:port`.
    pub brokers: String,
    pub topic: String,
    /// Consumer group; the detector needs its own, separate from ingest.
    pub group_id: String,
    /// Interval of offset commits.
    pub commit_interval: Duration,
    /// Extra librdkafka properties, applied after the defaults above.
    pub properties: Vec<(String, String)>,
    /// Message size and future-timestamp limits of event parsing.
    pub parse_limits: ParseLimits,
}

impl KafkaSettings {
    /// Settings with the defaults: topic `events`, group `seismo-detector`,
    /// commits every 5 s, default parse limits.
    pub fn new(brokers: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            topic: "events".to_string(),
            group_id: "seismo-detector".to_string(),
            commit_interval: Duration::from_secs(5),
            properties: Vec::new(),
            parse_limits: ParseLimits::default(),
        }
    }
}

pub(crate) type SourceConsumer = StreamConsumer<SourceContext>;

/// Logs rebalances, marks the consumer group joined for readiness and
/// flags each rebalance for the consume loop. librdkafka runs these
/// callbacks inside the consumer's poll, so in the task that awaits `recv`.
#[derive(Debug)]
pub(crate) struct SourceContext {
    readiness: Arc<ReadinessTracker>,
    /// Flag that every assignment or revocation sets. The consume loop
    /// clears it and hands the new assignment to the windows.
    rebalanced: AtomicBool,
}

impl SourceContext {
    /// True once after each rebalance.
    fn take_rebalanced(&self) -> bool {
        self.rebalanced.swap(false, Ordering::AcqRel)
    }
}

impl ClientContext for SourceContext {
    /// Logs librdkafka's client errors, except the end of a partition's log:
    /// librdkafka reports it as an error event too, and the consume loop
    /// receives it as [`KafkaError::PartitionEOF`].
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            return;
        }
        tracing::error!(%error, reason, "librdkafka client error");
    }
}

impl ConsumerContext for SourceContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = %describe(partitions), "partitions assigned");
                self.rebalanced.store(true, Ordering::Release);
                self.readiness.group_joined();
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = %describe(partitions), "partitions revoked");
                self.rebalanced.store(true, Ordering::Release);
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }
}

/// Renders a partition list as `topic[0],topic[1]`.
fn describe(partitions: &TopicPartitionList) -> String {
    partitions
        .elements()
        .iter()
        .map(|element| format!("{}[{}]", element.topic(), element.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates the consumer; [`run`] subscribes it to the events topic, so a
/// warm start can read the group's positions before the group is joined. A
/// new group starts at the earliest offset, so the detector learns from the
/// topic's retained history. The first partition assignment marks
/// `readiness` group joined. The consumer reports the end of each
/// partition's log, so a caught-up partition stops holding the watermark
/// back. With `enable.partition.eof` turned off, only
/// `partition_idle_timeout` releases a partition.
pub(crate) fn create_consumer(
    settings: &KafkaSettings,
    readiness: Arc<ReadinessTracker>,
) -> anyhow::Result<SourceConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            settings.commit_interval.as_millis().to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    for (key, value) in &settings.properties {
        config.set(key, value);
    }

    let context = SourceContext {
        readiness,
        rebalanced: AtomicBool::new(false),
    };
    let consumer: SourceConsumer = config.create_with_context(context).with_context(|| {
        format!(
            "failed to create the Kafka consumer for brokers {} in group {}; check --brokers and --kafka-property values",
            settings.brokers, settings.group_id
        )
    })?;
    Ok(consumer)
}

/// Subscribes to the events topic, consumes until `shutdown` fires, then
/// commits the stored offsets.
pub(crate) async fn run(
    consumer: SourceConsumer,
    mut pipeline: Pipeline,
    settings: KafkaSettings,
    stats: Arc<DetectorStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    consumer
        .subscribe(&[&settings.topic])
        .with_context(|| format!("failed to subscribe to Kafka topic {}; check --topic", settings.topic))?;
    let mut invalid_log = RateLimitedLog::new(INVALID_LOG_INTERVAL);
    let mut assignment_log = RateLimitedLog::new(INVALID_LOG_INTERVAL);
    let idle_timeout_ms = pipeline.config().windowing.partition_idle_timeout_ms;
    let mut silence = PartitionSilence::new(idle_timeout_ms);
    let mut silence_check = tokio::time::interval(SILENCE_CHECK_INTERVAL);
    silence_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(topic = %settings.topic, group_id = %settings.group_id, "consuming events");

    loop {
        // The silence check comes before `recv`, which is always ready
        // while a backlog lasts, and the interval is ready once a second.
        let waiting_since = Instant::now();
        let step = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = silence_check.tick() => Step::CheckSilence,
            received = consumer.recv() => Step::Received(received),
        };
        silence.add_waiting(waiting_since.elapsed());

        // A rebalance runs inside `recv`, also one that returned nothing
        // before the check's tick won.
        if consumer.context().take_rebalanced() {
            match assigned_partitions(&consumer, &settings.topic) {
                Ok(partitions) => {
                    silence.assign(&partitions);
                    pipeline.assign_partitions(&partitions);
                }
                Err(error) => {
                    // Read it again on the next turn.
                    consumer.context().rebalanced.store(true, Ordering::Release);
                    if let Some(suppressed) = assignment_log.allow() {
                        tracing::warn!(%error, topic = %settings.topic, suppressed_since_last_log = suppressed,
                            "failed to read the partition assignment after a rebalance; keeping the previous one for the watermark and reading it again");
                    }
                }
            }
        }

        let received = match step {
            Step::CheckSilence => {
                release_silent_partitions(&silence, &mut pipeline, &stats, idle_timeout_ms);
                continue;
            }
            Step::Received(received) => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                pipeline.release_partition(partition);
                continue;
            }
            Err(error) => {
                metrics::counter!(RECEIVE_ERRORS).increment(1);
                tracing::warn!(%error, topic = %settings.topic, "failed to receive from Kafka; retrying in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(RECEIVE_RETRY_DELAY) => continue,
                }
            }
        };
        stats.add_message();

        let parsed = Event::parse_with(
            message.payload().unwrap_or_default(),
            &settings.parse_limits,
            chrono::Utc::now(),
        );
        match parsed {
            Ok(event) => {
                silence.heard(message.partition());
                // Recorded after processing: an event that closes windows
                // belongs to the next window, not to the ones it closes.
                pipeline.process_from(message.partition(), event);
                if let Some(traceparent) = traceparent_header(&message) {
                    pipeline.record_trace_context(traceparent);
                }
            }
            Err(error) => {
                stats.add_invalid(error.kind());
                if let Some(suppressed) = invalid_log.allow() {
                    tracing::warn!(
                        partition = message.partition(),
                        offset = message.offset(),
                        kind = error.kind(),
                        %error,
                        suppressed_since_last_log = suppressed,
                        "skipped invalid event message; ingest routes these to its dead-letter topic"
                    );
                }
            }
        }

        if let Err(error) = consumer.store_offset_from_message(&message) {
            tracing::warn!(%error, partition = message.partition(), offset = message.offset(), "failed to store Kafka offset");
        }
    }

    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(group_id = %settings.group_id, "committed Kafka offsets at shutdown"),
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
            tracing::info!(group_id = %settings.group_id, "no new Kafka offsets to commit at shutdown")
        }
        Err(error) => {
            tracing::warn!(%error, group_id = %settings.group_id, "failed to commit Kafka offsets at shutdown; the next start reads some events again")
        }
    }
    Ok(())
}

/// Reason the consume loop woke up.
enum Step<'a> {
    CheckSilence,
    Received(Result<BorrowedMessage<'a>, KafkaError>),
}

/// Partitions of `topic` assigned to the consumer now.
fn assigned_partitions(consumer: &SourceConsumer, topic: &str) -> Result<Vec<i32>, KafkaError> {
    let list = consumer.assignment()?;
    let partitions = list
        .elements()
        .iter()
        .filter(|element| element.topic() == topic)
        .map(|element| element.partition())
        .collect();
    Ok(partitions)
}

/// Lets the watermark pass each partition that delivered no event while
/// the loop waited the idle timeout, if it still holds the watermark back.
fn release_silent_partitions(
    silence: &PartitionSilence,
    pipeline: &mut Pipeline,
    stats: &DetectorStats,
    idle_timeout_ms: i64,
) {
    for (partition, waited) in silence.silent() {
        if !pipeline.is_partition_holding(partition) {
            continue;
        }
        stats.add_partition_idled();
        tracing::warn!(
            partition,
            waited_ms = waited.as_millis() as u64,
            partition_idle_timeout_ms = idle_timeout_ms,
            "Kafka partition delivered no event while the consumer waited and its end was not reported; closing windows without it, so its later events may count as late"
        );
        pipeline.release_partition(partition);
    }
}

/// The message's W3C `traceparent` header, if present and UTF-8.
fn traceparent_header(message: &impl Message) -> Option<&str> {
    let headers = message.headers()?;
    let header = headers
        .iter()
        .find(|header| header.key == seismo_telemetry::TRACEPARENT)?;
    std::str::from_utf8(header.value?).ok()
}

/// Allows one log line per interval and counts the ones it suppressed.
#[derive(Debug)]
struct RateLimitedLog {
    interval: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn new(interval: Duration) -> RateLimitedLog {
        RateLimitedLog {
            interval,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// Returns the number suppressed since the last allowed line, or `None`
    /// if this line is suppressed too.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_log_counts_suppressed() {
        let mut log = RateLimitedLog::new(Duration::from_secs(3600));

        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        log.last_logged = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(log.allow(), Some(2));
        assert_eq!(log.allow(), None);
    }
}

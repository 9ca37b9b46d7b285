//! Dead-letter records of messages that failed validation.
//!
//! A dead-letter message keeps the rejected message's key and payload byte
//! for byte, so it can be fixed and replayed, and describes the failure in
//! Kafka headers, all UTF-8 text:
//!
//! | header | value |
//! |---|---|
//! | `seismo.error.kind` | stable label, e.g. `invalid_json`, `missing_field` |
//! | `seismo.error.message` | the validation error, naming field and fix |
//! | `seismo.source.topic` | topic the message was consumed from |
//! | `seismo.source.partition` | its partition, decimal |
//! | `seismo.source.offset` | its offset, decimal |
//! | `seismo.source.timestamp` | its Kafka timestamp in epoch ms, if it had one |
//! | `seismo.payload.omitted_bytes` | size of the payload left out, only when it was too large |
//!
//! A dead letter whose key and payload would not fit under the producer's
//! `message.max.bytes` (librdkafka's default is 1,000,000 bytes), or that the
//! broker rejects as too large, is sent without its payload. The source
//! topic, partition and offset still locate the original message. Without
//! this, one oversized message would be retried forever and stall ingest.
//! Headers rather than a JSON envelope, because a payload that is not UTF-8
//! (one of the rejection reasons) cannot be embedded in JSON unchanged.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use seismo_events::EventError;
use tracing::warn;

use crate::error::IngestError;
use crate::log_limit::ClientErrorLog;

pub const HEADER_ERROR_KIND: &str = "seismo.error.kind";
pub const HEADER_ERROR_MESSAGE: &str = "seismo.error.message";
pub const HEADER_SOURCE_TOPIC: &str = "seismo.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "seismo.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "seismo.source.offset";
pub const HEADER_SOURCE_TIMESTAMP: &str = "seismo.source.timestamp";
pub const HEADER_PAYLOAD_OMITTED_BYTES: &str = "seismo.payload.omitted_bytes";

/// librdkafka's default `message.max.bytes`, used when the properties do not
/// set it (librdkafka 2.12 CONFIGURATION.md).
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Room left under `message.max.bytes` for the headers and the record
/// framing. The headers are a few hundred bytes, because error messages
/// quote at most 80 characters of a value.
const RECORD_OVERHEAD_BYTES: usize = 16 * 1024;

/// A rejected message and why it was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub error_kind: &'static str,
    pub error_message: String,
    /// Size of the original payload when it was left out for being too
    /// large for the dead-letter topic.
    pub payload_omitted_bytes: Option<usize>,
}

impl DeadLetter {
    /// Copies what a dead-letter record needs out of a consumed message.
    pub fn from_message<M: Message>(message: &M, error: &EventError) -> DeadLetter {
        DeadLetter {
            source_topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            error_kind: error.kind(),
            error_message: error.to_string(),
            payload_omitted_bytes: None,
        }
    }

    /// Bytes of key and payload, the part of the record that can be large.
    pub fn key_and_payload_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len)
    }

    /// Drops the payload, recording its size in a header.
    pub fn omit_payload(&mut self) {
        if let Some(payload) = self.payload.take() {
            self.payload_omitted_bytes = Some(payload.len());
        }
    }

    /// Returns the header values of the dead-letter message, in the order of
    /// the table in the module documentation.
    pub fn header_values(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (HEADER_ERROR_KIND, self.error_kind.to_string()),
            (HEADER_ERROR_MESSAGE, self.error_message.clone()),
            (HEADER_SOURCE_TOPIC, self.source_topic.clone()),
            (HEADER_SOURCE_PARTITION, self.partition.to_string()),
            (HEADER_SOURCE_OFFSET, self.offset.to_string()),
        ];
        if let Some(timestamp_ms) = self.timestamp_ms {
            headers.push((HEADER_SOURCE_TIMESTAMP, timestamp_ms.to_string()));
        }
        if let Some(omitted) = self.payload_omitted_bytes {
            headers.push((HEADER_PAYLOAD_OMITTED_BYTES, omitted.to_string()));
        }
        headers
    }

    fn kafka_headers(&self) -> OwnedHeaders {
        self.header_values()
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            })
    }
}

/// A dead letter on its way to the dead-letter topic.
pub(crate) struct PendingDelivery {
    pub letter: DeadLetter,
    /// The delivery in progress, or the error with which librdkafka refused
    /// to enqueue the message (e.g. a full local queue), which is retried
    /// like a failed delivery. `None` when no produce is in progress.
    pub delivery: Option<Result<DeliveryFuture, KafkaError>>,
    /// Failed deliveries so far.
    pub failures: u32,
}

/// Produces dead letters and keeps them in consumption order until their
/// deliveries are checked.
pub(crate) struct DeadLetterQueue {
    producer: FutureProducer<ClientErrorLog>,
    topic: String,
    /// Largest key plus payload sent as is; larger letters go without payload.
    max_key_and_payload_bytes: usize,
    pending: VecDeque<PendingDelivery>,
}

impl DeadLetterQueue {
    pub fn new(
        brokers: &str,
        topic: &str,
        delivery_timeout: Duration,
        extra_properties: &[(String, String)],
    ) -> Result<DeadLetterQueue, IngestError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("message.timeout.ms", delivery_timeout.as_millis().to_string());
        for (key, value) in extra_properties {
            config.set(key, value);
        }
        let message_max_bytes = match config.get("message.max.bytes") {
            None => DEFAULT_MESSAGE_MAX_BYTES,
            Some(text) => text.trim().parse().map_err(|_| {
                IngestError::InvalidConfig(format!(
                    "invalid Kafka property message.max.bytes={text:?}: expected a number of bytes"
                ))
            })?,
        };
        let producer = config
            .create_with_context(ClientErrorLog::new("dead-letter producer"))
            .map_err(|source| IngestError::Kafka {
                action: "creating the dead-letter producer",
                source,
            })?;
        Ok(DeadLetterQueue {
            producer,
            topic: topic.to_string(),
            max_key_and_payload_bytes: message_max_bytes.saturating_sub(RECORD_OVERHEAD_BYTES),
            pending: VecDeque::new(),
        })
    }

    /// Starts producing `letter`; [`Self::pop_front`] returns it with its
    /// delivery once the caller is ready to wait.
    pub fn push(&mut self, mut letter: DeadLetter) {
        if letter.key_and_payload_bytes() > self.max_key_and_payload_bytes {
            warn!(
                source_partition = letter.partition,
                source_offset = letter.offset,
                bytes = letter.key_and_payload_bytes(),
                limit = self.max_key_and_payload_bytes,
                "dead letter larger than the producer's message.max.bytes; sending it without its payload"
            );
            letter.omit_payload();
        }
        let delivery = Some(self.send(&letter));
        self.pending.push_back(PendingDelivery {
            letter,
            delivery,
            failures: 0,
        });
    }

    /// Starts producing `letter`, e.g. again after a failed delivery.
    pub fn send(&self, letter: &DeadLetter) -> Result<DeliveryFuture, KafkaError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(letter.kafka_headers());
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &letter.payload {
            record = record.payload(payload.as_slice());
        }
        self.producer.send_result(record).map_err(|(error, _record)| error)
    }
}

/// Tells whether `error` says the record exceeds the producer's or the
/// broker's maximum message size, which no retry can fix.
pub(crate) fn is_too_large(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)
}

impl DeadLetterQueue {
    pub fn pop_front(&mut self) -> Option<PendingDelivery> {
        self.pending.pop_front()
    }

    /// Puts a delivery back at the front, e.g. when shutdown gave up on it.
    pub fn push_front(&mut self, pending: PendingDelivery) {
        self.pending.push_front(pending);
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;
    use seismo_events::Event;

    use super::*;

    fn rejected_message(payload: &[u8], timestamp: Timestamp) -> (OwnedMessage, EventError) {
        let message = OwnedMessage::new(
            Some(payload.to_vec()),
            Some(b"user-7".to_vec()),
            "events".to_string(),
            timestamp,
            2,
            41,
            None,
        );
        let error = Event::parse(payload).expect_err("payload is invalid");
        (message, error)
    }

    #[test]
    fn letter_copies_key_payload_and_position() {
        let (message, error) = rejected_message(b"{\"event\": ", Timestamp::CreateTime(1_714_564_800_000));
        let letter = DeadLetter::from_message(&message, &error);

        assert_eq!(letter.key.as_deref(), Some(&b"user-7"[..]));
        assert_eq!(letter.payload.as_deref(), Some(&b"{\"event\": "[..]));
        assert_eq!(letter.source_topic, "events");
        assert_eq!(letter.partition, 2);
        assert_eq!(letter.offset, 41);
        assert_eq!(letter.error_kind, "invalid_json");
    }

    #[test]
    fn headers_describe_error_and_source() {
        let (message, error) = rejected_message(b"[1, 2]", Timestamp::CreateTime(1_714_564_800_000));
        let headers = DeadLetter::from_message(&message, &error).header_values();

        let value = |key: &str| {
            headers
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value(HEADER_ERROR_KIND), Some("not_an_object"));
        assert_eq!(value(HEADER_ERROR_MESSAGE), Some(error.to_string().as_str()));
        assert_eq!(value(HEADER_SOURCE_TOPIC), Some("events"));
        assert_eq!(value(HEADER_SOURCE_PARTITION), Some("2"));
        assert_eq!(value(HEADER_SOURCE_OFFSET), Some("41"));
        assert_eq!(value(HEADER_SOURCE_TIMESTAMP), Some("1714564800000"));
    }

    #[test]
    fn omitted_payload_keeps_key_and_records_size() {
        let (message, error) = rejected_message(b"{\"event\": [", Timestamp::NotAvailable);
        let mut letter = DeadLetter::from_message(&message, &error);
        assert_eq!(letter.key_and_payload_bytes(), b"user-7".len() + b"{\"event\": [".len());

        letter.omit_payload();

        assert_eq!(letter.payload, None);
        assert_eq!(letter.key.as_deref(), Some(&b"user-7"[..]));
        assert_eq!(letter.key_and_payload_bytes(), b"user-7".len());
        let headers = letter.header_values();
        let omitted = headers
            .iter()
            .find(|(name, _)| *name == HEADER_PAYLOAD_OMITTED_BYTES)
            .map(|(_, value)| value.as_str());
        assert_eq!(omitted, Some("11"));
    }

    #[test]
    fn headers_omit_missing_timestamp() {
        let (message, error) = rejected_message(b"\xff\xfe", Timestamp::NotAvailable);
        let letter = DeadLetter::from_message(&message, &error);

        assert_eq!(letter.error_kind, "not_utf8");
        assert!(
            letter
                .header_values()
                .iter()
                .all(|(name, _)| *name != HEADER_SOURCE_TIMESTAMP)
        );
    }
}

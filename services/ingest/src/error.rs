use rdkafka::error::KafkaError;
use thiserror::Error;

/// Reason the ingest service could not start or keep running. Failures of
/// ClickHouse and of dead-letter delivery are retried and never end up here.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    #[error("{action} failed: {source}; check the Kafka settings (brokers, topic, extra properties)")]
    Kafka {
        action: &'static str,
        #[source]
        source: KafkaError,
    },
}

use std::fmt;
use std::time::Duration;

use seismo_events::ParseLimits;

use crate::backoff::RetryPolicy;
use crate::batch::BatchPolicy;
use crate::error::IngestError;

/// Every setting of the ingest service. `Default` gives a local setup:
/// Kafka on 127.0.0.1:9092, ClickHouse on http://127.0.0.1:8123.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Kafka bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic to consume events from.
    pub topic: String,
    /// Consumer group id; offsets are committed under it.
    pub group_id: String,
    /// Topic that receives messages which fail validation.
    pub dead_letter_topic: String,
    /// Start position of a group without committed offsets: `earliest` or
    /// `latest`.
    pub auto_offset_reset: String,
    /// Extra librdkafka properties applied to the consumer and the
    /// dead-letter producer, e.g. `security.protocol`.
    pub kafka_properties: Vec<(String, String)>,
    /// How long librdkafka tries to deliver one dead-letter message before
    /// it reports a failure, which the service then retries.
    pub dead_letter_delivery_timeout: Duration,

    pub clickhouse: ClickHouseConfig,

    /// Size and age limits of one insert.
    pub batch: BatchPolicy,
    /// Backoff between retries of a failed insert, connection or
    /// dead-letter produce.
    pub retry: RetryPolicy,
    /// Bounds applied while parsing each message.
    pub parse_limits: ParseLimits,
    /// Time after cancellation to keep trying to store the pending batch.
    /// Messages still not stored then stay uncommitted, so they are consumed
    /// again after a restart.
    pub shutdown_timeout: Duration,
}

/// Connection and table settings of ClickHouse.
#[derive(Clone)]
pub struct ClickHouseConfig {
    /// HTTP interface URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    /// Never logged: the `Debug` output redacts it.
    pub password: Option<String>,
    pub database: String,
    pub table: String,
    /// Maximum time of one insert request, including connecting.
    pub insert_timeout: Duration,
    /// Request server-side `async_insert` with `wait_for_async_insert=1`
    /// (acknowledged only once stored). Ignored with a warning on servers
    /// before 21.11.
    pub async_insert: bool,
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClickHouseConfig")
            .field("url", &redact_url(&self.url))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("insert_timeout", &self.insert_timeout)
            .field("async_insert", &self.async_insert)
            .finish()
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            user: "default".into(),
            password: None,
            database: "seismo".into(),
            table: "events".into(),
            insert_timeout: Duration::from_secs(30),
            async_insert: false,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "events".into(),
            group_id: "seismo-ingest".into(),
            dead_letter_topic: "events.dlq".into(),
            auto_offset_reset: "earliest".into(),
            kafka_properties: Vec::new(),
            dead_letter_delivery_timeout: Duration::from_secs(30),
            clickhouse: ClickHouseConfig::default(),
            batch: BatchPolicy::default(),
            retry: RetryPolicy::default(),
            parse_limits: ParseLimits::default(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl IngestConfig {
    /// Checks the settings that would otherwise fail late or build invalid
    /// SQL. The error names the setting and the accepted values.
    pub fn validate(&self) -> Result<(), IngestError> {
        let invalid = |message: String| Err(IngestError::InvalidConfig(message));

        for (setting, value) in [
            ("brokers", &self.brokers),
            ("topic", &self.topic),
            ("group id", &self.group_id),
            ("dead-letter topic", &self.dead_letter_topic),
        ] {
            if value.trim().is_empty() {
                return invalid(format!("{setting} is empty; set it to a non-empty value"));
            }
        }
        if self.topic == self.dead_letter_topic {
            return invalid(format!(
                "dead-letter topic {:?} is the consumed topic; use a separate topic such as \"{}.dlq\"",
                self.dead_letter_topic, self.topic
            ));
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return invalid(format!(
                "auto offset reset {:?} is invalid; use \"earliest\" or \"latest\"",
                self.auto_offset_reset
            ));
        }
        for (setting, name) in [
            ("ClickHouse database", &self.clickhouse.database),
            ("ClickHouse table", &self.clickhouse.table),
        ] {
            if !is_identifier(name) {
                return invalid(format!(
                    "{setting} name {name:?} is invalid; use letters, digits and underscores, not starting with a digit"
                ));
            }
        }
        if self.batch.max_rows == 0 {
            return invalid("batch max rows is 0; set at least 1".into());
        }
        if self.batch.max_wait.is_zero() {
            return invalid("batch max wait is 0; set at least 1 ms".into());
        }
        if self.retry.initial_backoff.is_zero() || self.retry.max_backoff < self.retry.initial_backoff {
            return invalid(format!(
                "retry backoff {:?}..{:?} is invalid; the initial backoff must be positive and not above the maximum",
                self.retry.initial_backoff, self.retry.max_backoff
            ));
        }
        if self.clickhouse.insert_timeout.is_zero() {
            return invalid("ClickHouse insert timeout is 0; set at least 1 ms".into());
        }
        Ok(())
    }
}

/// Returns whether `name` can be used as a ClickHouse database or table
/// name without escaping.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Removes `user:password@` from a URL so it can be logged.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(IngestConfig::default().validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_table_names() {
        for name in ["", "1events", "events; DROP", "ev`ents", "évents"] {
            let mut config = IngestConfig::default();
            config.clickhouse.table = name.into();
            assert!(config.validate().is_err(), "{name:?} should be rejected");
        }
    }

    #[test]
    fn validate_rejects_dead_letter_loop() {
        let mut config = IngestConfig::default();
        config.dead_letter_topic = config.topic.clone();
        assert!(config.validate().is_err());
    }

    #[test]
    fn validate_rejects_zero_batch_limits() {
        let mut config = IngestConfig::default();
        config.batch.max_rows = 0;
        assert!(config.validate().is_err());

        let mut config = IngestConfig::default();
        config.batch.max_wait = Duration::ZERO;
        assert!(config.validate().is_err());
    }

    #[test]
    fn validate_rejects_inverted_backoff() {
        let mut config = IngestConfig::default();
        config.retry.max_backoff = config.retry.initial_backoff / 2;
        assert!(config.validate().is_err());
    }

    #[test]
    fn debug_output_hides_password() {
        let mut config = IngestConfig::default();
        config.clickhouse.password = Some("hunter2".into());
        config.clickhouse.url = "http://admin:swordfish@db:8123/".into();
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("swordfish"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn redact_url_keeps_host() {
        assert_eq!(redact_url("http://u:p@host:8123/x"), "http://<redacted>@host:8123/x");
        assert_eq!(redact_url("http://host:8123"), "http://host:8123");
        assert_eq!(redact_url("host:8123"), "host:8123");
    }
}
